"""The spectrum engine against the closed forms of MATH.md section 6."""

from math import comb, erf, sqrt

import numpy as np
import pytest

import fpcore


def mp_density(x, c, s2=1.0):
    """Density of s2 * W^T W, W (N1 x N0) entries of variance 1/N0, c = N1/N0 >= 1."""
    lo, hi = s2 * (sqrt(c) - 1) ** 2, s2 * (sqrt(c) + 1) ** 2
    return np.sqrt(np.maximum((hi - x) * (x - lo), 0.0)) / (2 * np.pi * s2 * x)


def narayana_moment(k, c):
    """k-th moment of W^T W (c = N1/N0): sum_j Narayana(k, j) c^j."""
    return sum(comb(k, j) * comb(k, j - 1) / k * c**j for j in range(1, k + 1))


@pytest.mark.parametrize("n0,n1,s2", [(100, 200, 1.0), (300, 1200, 0.7), (250, 250 * 3, 2.5)])
def test_marchenko_pastur_density_edges_moments(n0, n1, s2):
    c = n1 / n0
    s = fpcore.jacobian_spectrum(fpcore.Network([n0, n1], "linear", sigma_w2=s2))
    lo, hi = s2 * (sqrt(c) - 1) ** 2, s2 * (sqrt(c) + 1) ** 2
    assert len(s.support) == 1 and s.support[0] == pytest.approx((lo, hi), rel=1e-10)
    assert s.lambda_max == pytest.approx(hi, rel=1e-12)
    assert s.atom == 0.0
    inner = (s.x > lo + 1e-3 * (hi - lo)) & (s.x < hi - 1e-3 * (hi - lo))
    rel = np.abs(s.density[inner] / mp_density(s.x[inner], c, s2) - 1)
    assert rel.max() <= 1e-6
    for k in range(1, 6):
        assert s.moment(k) == pytest.approx(s2**k * narayana_moment(k, c), rel=1e-10)
    assert s.stats.n_certified == s.stats.n_points


def test_marchenko_pastur_jjt_has_the_rank_atom():
    # J J^T is N1 x N1 with rank N0: atom 1 - N0/N1, same non-zero eigenvalues.
    s = fpcore.jacobian_spectrum(fpcore.Network([100, 400], "linear", sigma_w2=1.0), gram="JJt")
    assert s.atom == pytest.approx(0.75, abs=1e-15)
    x = np.array([2.0, 4.0, 6.0])
    assert s.cdf(x) - 0.75 == pytest.approx((fpcore.jacobian_spectrum(
        fpcore.Network([100, 400], "linear", sigma_w2=1.0)).cdf(x)) * 0.25, rel=1e-9)


def fuss_catalan(L, t):
    x = np.sin((L + 1) * t) ** (L + 1) / (np.sin(t) * np.sin(L * t) ** L)
    rho = np.sin(t) ** 2 * np.sin(L * t) ** (L - 1) / (np.pi * np.sin((L + 1) * t) ** L)
    return x, rho


@pytest.mark.parametrize("L", [1, 2, 5, 20, 100])
def test_fuss_catalan(L):
    s = fpcore.jacobian_spectrum(fpcore.Network([200] * (L + 1), "linear", sigma_w2=1.0), n_points=300)
    edge = (L + 1) ** (L + 1) / L**L
    assert s.lambda_max == pytest.approx(edge, rel=1e-10)
    assert s.support[0][0] == 0.0
    t = np.linspace(0.02, 0.98, 15) * np.pi / (L + 1)
    x, rho = fuss_catalan(L, t)
    keep = x > 1e-8 * edge
    F, dens = s._cdf_and_density(x[keep])
    assert np.max(np.abs(dens / rho[keep] - 1)) <= 1e-6
    for k in (1, 2, 3, 4):
        assert s.moment(k) == pytest.approx(comb((L + 1) * k, k) / (L * k + 1), rel=1e-9)


def test_fuss_catalan_depth_500_no_overflow():
    L = 500
    s = fpcore.jacobian_spectrum(fpcore.Network([100] * (L + 1), "linear", sigma_w2=1.0), n_points=200)
    assert np.all(np.isfinite(s.density)) and np.all(s.density >= 0)
    assert s.lambda_max == pytest.approx((L + 1) * (1 + 1 / L) ** L, rel=1e-9)
    assert s.moment(2) == pytest.approx(comb(2 * L + 2, 2) / (2 * L + 1), rel=1e-8)
    assert s.stats.n_uncertified == 0


@pytest.mark.parametrize(
    "widths,activation,expected",
    [
        ([300, 300, 300], "relu", 0.5),  # rank p N = N/2
        ([300, 900, 900], "relu", 0.0),  # p N_l = 450 >= N_0
        ([300, 500, 100, 300], "linear", 2 / 3),  # bottleneck of 100
        ([400, 300, 600], "relu", 1 - 150 / 400),
    ],
)
def test_atom_at_zero_rank_bound(widths, activation, expected):
    s = fpcore.jacobian_spectrum(fpcore.Network(widths, activation), n_points=200)
    assert s.atom == pytest.approx(expected, abs=1e-14)
    # the exact CDF just above 0 starts at the atom
    assert s.cdf(0.0) == s.atom
    assert s.cdf(1e-13 * s.lambda_max) == pytest.approx(s.atom, abs=1e-5)


def test_atom_hard_tanh_uses_p_of_q():
    net = fpcore.Network([400, 400], "hard_tanh", sigma_w2=1.0, q0=4.0)
    p = erf(1 / sqrt(2 * 4.0))
    assert fpcore.jacobian_spectrum(net, n_points=100).atom == pytest.approx(1 - p, abs=1e-14)


@pytest.mark.parametrize("L,s2", [(1, 1.0), (3, 1.7), (10, 0.9)])
def test_orthogonal_linear_is_a_single_atom(L, s2):
    s = fpcore.jacobian_spectrum(fpcore.Network([64] * (L + 1), "linear", sigma_w2=s2, init="orthogonal"))
    assert len(s.atoms) == 1 and s.atoms[0] == pytest.approx((s2**L, 1.0), rel=1e-12)
    assert s.support == ()
    assert np.all(s.density == 0)
    assert s.lambda_max == pytest.approx(s2**L, rel=1e-12)
    assert s.cdf(s2**L * (1 - 1e-9)) == pytest.approx(0.0, abs=1e-9)
    assert s.cdf(s.atoms[0][0]) == 1.0  # right-continuous at the (computed) atom
    assert s.quantile(0.5) == pytest.approx(s2**L, rel=1e-9)
    assert s.moment(2) == pytest.approx(s2 ** (2 * L), rel=1e-10)


def free_projections(a, b, x):
    lp = a + b - 2 * a * b + 2 * sqrt(a * b * (1 - a) * (1 - b))
    lm = a + b - 2 * a * b - 2 * sqrt(a * b * (1 - a) * (1 - b))
    return lm, lp, np.sqrt(np.maximum((lp - x) * (x - lm), 0)) / (2 * np.pi * x * (1 - x))


@pytest.mark.parametrize("q0", [0.5, 2.0])
def test_two_free_projections(q0):
    # Square orthogonal depth 2: J^T J ~ sigma^4 P_a P_b P_a with free projections of ranks
    # a = P(|h_1| < 1), b = P(|h_2| < 1) (hard-tanh derivatives).
    net = fpcore.Network([300, 300, 300], "hard_tanh", sigma_w2=1.0, init="orthogonal", q0=q0)
    mf = fpcore.mean_field(net)
    a, b = (law.p_nonzero for law in mf.laws)
    s = fpcore.jacobian_spectrum(net, n_points=300)
    lm, lp, _ = free_projections(a, b, np.array([0.5]))
    assert s.atom == pytest.approx(1 - min(a, b), abs=1e-12)
    atom1 = max(a + b - 1, 0)
    others = [m for loc, m in s.atoms if loc != 0]
    assert sum(others) == pytest.approx(atom1, abs=1e-12)
    x = lm + (lp - lm) * np.linspace(0.05, 0.95, 11)
    F, dens = s._cdf_and_density(x)
    assert np.max(np.abs(dens / free_projections(a, b, x)[2] - 1)) <= 1e-6
    assert s.support[0] == pytest.approx((lm, lp), rel=1e-8)


@pytest.mark.parametrize("init,s1", [("gaussian", -1.0), ("orthogonal", 0.0)])
@pytest.mark.parametrize("act,q0", [("relu", 1.0), ("hard_tanh", 0.8), ("linear", 1.0)])
def test_spread_formula_square_nets(init, s1, act, q0):
    # var/mean^2 = L (mu_2/mu_1^2 - 1 - s_1) for square nets with one D^2 law (MATH.md sec. 6);
    # sigma_w2 = 1 / E[D^2] keeps q at the same value for hard_tanh only at q*, so use q0 = q*.
    L = 6
    a = fpcore.get_activation(act)
    sw = 1.0 if act != "relu" else 2.0
    net = fpcore.Network([200] * (L + 1), act, sigma_w2=sw, sigma_b2=0.3 if act == "hard_tanh" else 0.0,
                         init=init, q0="fixed_point" if act == "hard_tanh" else q0)
    mf = fpcore.mean_field(net)
    mu1, mu2 = mf.laws[0].mean, mf.laws[0].moment(2)
    s = fpcore.jacobian_spectrum(net, n_points=200)
    if act == "linear" and init == "orthogonal":
        assert s.variance == pytest.approx(0.0, abs=1e-12)
        return
    assert s.variance / s.mean**2 == pytest.approx(L * (mu2 / mu1**2 - 1 - s1), rel=1e-8)
    assert s.mean == pytest.approx((sw * mu1) ** L, rel=1e-12)


def test_cdf_is_the_integral_of_the_density():
    from scipy import integrate

    net = fpcore.Network([300, 500, 400, 300], "relu", sigma_w2=2.0, sigma_b2=0.1)
    s = fpcore.jacobian_spectrum(net, n_points=200)
    a, b = s.quantile([0.6, 0.9])
    val, err = integrate.quad(lambda t: float(s._cdf_and_density(np.array([t]))[1][0]), a, b, epsabs=1e-12, epsrel=1e-10)
    assert s.cdf(b) - s.cdf(a) == pytest.approx(val, rel=1e-8)


def test_quantile_inverts_cdf_exactly():
    s = fpcore.jacobian_spectrum(fpcore.Network([300] * 6, "relu", sigma_w2=2.0), n_points=300)
    p = np.array([0.5, 0.51, 0.6, 0.75, 0.9, 0.99, 0.999])
    q = s.quantile(p)
    assert np.all(np.diff(q) > 0)
    assert s.cdf(q) == pytest.approx(p, abs=1e-11)
    assert s.quantile(0.3) == 0.0  # inside the atom
    assert s.quantile(1.0) == pytest.approx(s.lambda_max, rel=1e-9)
    assert isinstance(s.quantile(0.7), float)
    assert s.deciles.shape == (9,)
    with pytest.raises(ValueError, match="p"):
        s.quantile(1.5)


@pytest.mark.parametrize("net", [
    fpcore.Network([300] * 21, "linear", sigma_w2=1.0),  # Fuss-Catalan: F(x) ~ x^(1/21) near 0
    fpcore.Network([1000] * 21, "tanh", sigma_w2=1.0),
])
def test_quantiles_far_below_the_grid_invert_the_cdf(net):
    """Deep nets put deciles far below the grid (tanh L = 20: the first at 2e-24). Bisection in x
    from a bracket [0, 1e-9] stopped after 100 halvings with F(q) - p = 0.012 (tanh, p = 0.01):
    the quantile now iterates in log x."""
    s = fpcore.jacobian_spectrum(net, n_points=400)
    p = np.array([0.01, 0.1, 0.5, 0.9])
    q = s.quantile(p)
    assert np.all(np.diff(q) > 0) and q[0] > 0
    assert s.cdf(q) == pytest.approx(p, abs=1e-11)


def test_jjt_and_jtj_share_nonzero_eigenvalues():
    net = fpcore.Network([200, 500, 300], "relu", sigma_w2=2.0)
    a = fpcore.jacobian_spectrum(net, gram="JtJ", n_points=200)
    b = fpcore.jacobian_spectrum(net, gram="JJt", n_points=200)
    # mu_A = (1 - c) delta_0 + c mu_B on the non-zero part, c = N_L / N_0 (here 300/200)
    x = np.array([0.5, 1.0, 2.0, 5.0])
    ratio = 300 / 200
    assert (1 - a.cdf(x)) == pytest.approx(ratio * (1 - b.cdf(x)), rel=1e-9)
    assert a.mean == pytest.approx(ratio * b.mean, rel=1e-12)
