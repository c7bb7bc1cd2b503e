"""Monte Carlo sampler and KS helper: conventions of MATH.md section 1 pinned against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from fpcore._meanfield import mean_field
from fpcore._montecarlo import ks_distance, sample_jacobian_eigenvalues
from fpcore._network import Network

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # optional: only a speed-up
    threadpool_limits = None


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    # The matrices here are small (at most 600 x 2000): threaded BLAS gains nothing and, on a loaded
    # 2-core machine, its spinning threads made this file take 52 s instead of 3 s.
    if threadpool_limits is None:
        yield
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            yield


# ---------------------------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------------------------
class GridLaw:
    """``atom * delta_0 + (continuous part given by its CDF on a grid) + atoms elsewhere``."""

    def __init__(self, atom0, x, cont_cdf, atoms=()):
        self.atom0, self.x, self.cont_cdf, self.atoms = atom0, np.asarray(x), np.asarray(cont_cdf), tuple(atoms)

    def cdf(self, t):
        t = np.asarray(t, dtype=float)
        out = np.where(t >= 0, self.atom0, 0.0) + np.interp(t, self.x, self.cont_cdf, left=0.0)
        for where, mass in self.atoms:
            out = out + np.where(t >= where, mass, 0.0)
        return out


class ScipyLaw:
    """``atom * delta_0 + (1 - atom) * dist``: a fake Spectrum with a known CDF."""

    def __init__(self, dist, atom=0.0):
        self.dist, self.atom = dist, atom

    def cdf(self, t):
        t = np.asarray(t, dtype=float)
        return self.atom * (t >= 0) + (1.0 - self.atom) * self.dist.cdf(t)


def _sqrt_edge_law(lo, hi, density, mass_check=None, n=4001):
    """CDF on a grid of a density with square-root edges on ``[lo, hi]``.

    Substituting ``x = lo + (hi - lo) (1 - cos t) / 2`` removes the square-root singularity of the
    derivative at both edges, so the trapezoid rule is accurate to ~1e-7 on 4001 points.
    """
    t = np.linspace(0.0, math.pi, n)
    x = lo + (hi - lo) * (1.0 - np.cos(t)) / 2.0
    integrand = density(x) * (hi - lo) * np.sin(t) / 2.0
    cdf = integrate.cumulative_trapezoid(integrand, t, initial=0.0)
    if mass_check is not None:
        assert cdf[-1] == pytest.approx(mass_check, abs=1e-6)
    return x, cdf


def marchenko_pastur_law(s2, c, weight=1.0, atom0=0.0):
    """``weight`` times MP with scale ``s2`` and ratio ``c <= 1`` (edges ``s2 (1 +- sqrt c)^2``)."""
    lo, hi = s2 * (1 - math.sqrt(c)) ** 2, s2 * (1 + math.sqrt(c)) ** 2

    def rho(x):
        return weight * np.sqrt(np.maximum((hi - x) * (x - lo), 0.0)) / (2 * math.pi * s2 * c * x)

    x, cdf = _sqrt_edge_law(lo, hi, rho, mass_check=weight)
    return GridLaw(atom0, x, cdf)


def tracy_widom_scale(n, p):
    """Johnstone's fluctuation scales of the extreme eigenvalues of ``Y Y^T``, ``Y`` n x p unit iid."""
    top = (math.sqrt(p - 1) + math.sqrt(n)) * (1 / math.sqrt(p - 1) + 1 / math.sqrt(n)) ** (1 / 3)
    bottom = (math.sqrt(p) - math.sqrt(n)) * (1 / math.sqrt(n) - 1 / math.sqrt(p)) ** (1 / 3)
    return top, bottom


def _block_means(eig, n_samples):
    return eig.reshape(n_samples, -1).mean(axis=1)


def _mean_and_se(eig, n_samples):
    m = _block_means(eig, n_samples)
    return m.mean(), m.std(ddof=1) / math.sqrt(n_samples)


# ---------------------------------------------------------------------------------------------
# Gaussian weights: Marchenko-Pastur
# ---------------------------------------------------------------------------------------------
def test_gaussian_layer_mean_and_marchenko_pastur_edges():
    n0, n1, s2 = 400, 800, 1.5
    eig = sample_jacobian_eigenvalues(Network([n0, n1], activation="linear", sigma_w2=s2), seed=1)
    assert eig.shape == (n0,)

    # mean = tr(W^T W)/N0 = sum_ij W_ij^2 / N0, a sum of N0 N1 scaled chi^2_1: exact expectation
    # s2 N1/N0 and standard deviation s2 sqrt(2 N1 / N0^3).
    assert eig.mean() == pytest.approx(s2 * n1 / n0, abs=5 * s2 * math.sqrt(2 * n1 / n0**3))

    # J^T J = W^T W = X X^T with X = W^T (N0 x N1, entries of variance s2/N0 = (s2 N1/N0)/N1). In
    # MATH.md section 2 terms (n x p, variance s^2/p) that is n = N0, p = N1, s^2 = s2 N1/N0, so
    # the eigenvalues are s2 (N1/N0) times MP with ratio c = N0/N1, edges
    # s2 (N1/N0) (1 +- sqrt(N0/N1))^2 = s2 (sqrt(N1/N0) +- 1)^2.
    r = math.sqrt(n1 / n0)
    lo, hi = s2 * (r - 1) ** 2, s2 * (r + 1) ** 2
    # The extremes fluctuate on the Tracy-Widom scale (mean offset ~1.2 of it): allow 5.
    top, bottom = tracy_widom_scale(n0, n1)
    unit = s2 / n0  # eigenvalues of J^T J are s2/N0 times those of Y Y^T, Y unit iid
    assert abs(eig.max() - hi) < 5 * top * unit
    assert abs(eig.min() - lo) < 5 * bottom * unit


def test_gaussian_layer_wide_input_has_mp_law_with_atom():
    # N0 > N1: J^T J (N0 x N0) has rank N1, so an atom 1 - N1/N0 at 0 made of SVD round-off. The
    # non-zero part is that of W W^T (n = N1, p = N0, variance s2/N0): plain MP with s^2 = s2.
    n0, n1, s2 = 800, 400, 0.8
    eig = sample_jacobian_eigenvalues(Network([n0, n1], activation="linear", sigma_w2=s2), seed=2)
    assert eig.shape == (n0,)
    assert np.count_nonzero(eig < 1e-9 * eig.max()) == n0 - n1
    law = marchenko_pastur_law(s2, n1 / n0, weight=n1 / n0, atom0=1 - n1 / n0)
    # Eigenvalue rigidity: the KS distance of a Wishart spectrum is O(log N / N), far below 0.02.
    d = ks_distance(law, eig)
    assert d < 0.02
    # Sanity of the helper on the same data: a 25% wrong scale is visibly further away.
    assert ks_distance(marchenko_pastur_law(1.25 * s2, n1 / n0, n1 / n0, 1 - n1 / n0), eig) > max(0.04, 3 * d)


def test_jjt_shares_nonzero_eigenvalues_with_jtj():
    net = Network([120, 90, 70], activation="relu", sigma_w2=2.0)
    a = sample_jacobian_eigenvalues(net, gram="JtJ", seed=3)
    b = sample_jacobian_eigenvalues(net, gram="JJt", seed=3)
    assert a.shape == (120,) and b.shape == (70,)
    np.testing.assert_allclose(a[-70:], b, rtol=1e-12, atol=1e-12 * b.max())
    assert np.all(a[:50] == 0.0)


# ---------------------------------------------------------------------------------------------
# Orthogonal weights
# ---------------------------------------------------------------------------------------------
def test_orthogonal_square_linear_net_is_scaled_identity():
    s2, depth = 1.3, 4
    net = Network([64] * (depth + 1), activation="linear", sigma_w2=s2, init="orthogonal")
    eig = sample_jacobian_eigenvalues(net, seed=4, n_samples=2)
    np.testing.assert_allclose(eig, s2**depth, rtol=1e-10, atol=0)


def test_orthogonal_bottleneck_gives_exact_projection():
    # [100, 60, 100]: W1 = g1 O1 (orthonormal rows, g1^2 = s2), W2 = g2 O2 (orthonormal columns,
    # g2^2 = s2 * 100/60). J^T J = g1^2 g2^2 O1^T O1, a rank-60 projection times s2^2 * 100/60.
    s2 = 1.2
    net = Network([100, 60, 100], activation="linear", sigma_w2=s2, init="orthogonal")
    for gram, zeros in (("JtJ", 40), ("JJt", 40)):
        eig = sample_jacobian_eigenvalues(net, gram=gram, seed=5)
        np.testing.assert_allclose(eig[:zeros], 0.0, atol=1e-12)
        np.testing.assert_allclose(eig[zeros:], s2**2 * 100 / 60, rtol=1e-10)


def test_orthogonal_expansion_then_compression_gives_free_projections():
    # [N0, N1, N2] with N0 < N1 > N2: J^T J = g1^2 g2^2 O1^T P2 O1, g1^2 = s2 N1/N0, g2^2 = s2, with
    # O1 an N1 x N0 isometry and P2 a rank-N2 projection in R^N1. Its non-zero eigenvalues are those
    # of P1 P2 P1 (two free projections, a = N0/N1, b = N2/N1; MATH.md section 6), rescaled from
    # R^N1 to R^N0 by 1/a: atom 1 - min(1, b/a) at 0, atom (a + b - 1)_+ / a at g1^2 g2^2.
    n0, n1, n2, s2 = 200, 300, 160, 0.9
    a, b = n0 / n1, n2 / n1
    scale = s2 * n1 / n0 * s2
    net = Network([n0, n1, n2], activation="linear", sigma_w2=s2, init="orthogonal")
    eig = sample_jacobian_eigenvalues(net, seed=6)

    n_zero, n_one = round(n0 * (1 - min(1, b / a))), round(n0 * max(a + b - 1, 0) / a)
    assert (n_zero, n_one) == (40, 60)
    np.testing.assert_allclose(eig[:n_zero], 0.0, atol=1e-12)
    np.testing.assert_allclose(eig[-n_one:], scale, rtol=1e-10)
    inner = eig[n_zero:-n_one]
    assert np.all((inner > 1e-6) & (inner < scale * (1 - 1e-6)))

    # The continuous part against the free-projection density (rescaled by 1/a, x -> x / scale).
    disc = 2 * math.sqrt(a * b * (1 - a) * (1 - b))
    lo, hi = a + b - 2 * a * b - disc, a + b - 2 * a * b + disc

    def rho(x):
        y = x / scale
        return np.sqrt(np.maximum((hi - y) * (y - lo), 0.0)) / (2 * math.pi * y * (1 - y)) / a / scale

    x, cdf = _sqrt_edge_law(lo * scale, hi * scale, rho, mass_check=1 - n_zero / n0 - n_one / n0)
    law = GridLaw(n_zero / n0, x, cdf, atoms=[(scale, n_one / n0)])
    # The atom at `scale` comes out within round-off of it: put it exactly there, as ks_distance
    # only resolves atoms that sit at sample values.
    snapped = np.where(np.isclose(eig, scale, rtol=1e-9, atol=0), scale, eig)
    assert ks_distance(law, snapped) < 0.03


# ---------------------------------------------------------------------------------------------
# ReLU and smooth activations
# ---------------------------------------------------------------------------------------------
def test_relu_zero_fraction_matches_rank_bound():
    # rank(J) <= min_l (number of active units of layer l) ~ min_l p_l N_l; each count is
    # Binomial(N_l, 1/2) with sd sqrt(N_l)/2 = 10 here, i.e. 0.005 of N0 = 2000, and their minimum
    # sits ~0.56 sd low: the pooled fraction of 4 networks lands 0.003 +- 0.002 above the bound
    # (largest offset 0.007 over 15 seeds).
    widths = (2000, 400, 400)
    net = Network(widths, activation="relu", sigma_w2=2.0)
    eig = sample_jacobian_eigenvalues(net, seed=7, n_samples=4)
    blocks = eig.reshape(4, -1)
    zero_fraction = np.mean(blocks < 1e-9 * blocks.max(axis=1, keepdims=True))
    bound = 1 - min(1, min(0.5 * n for n in widths[1:]) / widths[0])
    assert bound == pytest.approx(0.9)
    assert abs(zero_fraction - bound) < 0.01


@pytest.mark.parametrize("mode", ["network", "model"])
def test_relu_mean_matches_mean_field(mode):
    # E[tr(J^T J)]/N0 = prod_l sigma_l^2 E[D_l^2] * N_L/N_0 (and without the width ratio for J J^T).
    # Tolerance: 5 standard errors from the spread between networks (its relative size is about
    # sqrt(sum_l 1/N_l) per network, from the Binomial number of active units of each layer).
    widths, s2, n = (300, 500, 400, 600), (2.5, 2.0, 1.5), 12
    net = Network(widths, activation="relu", sigma_w2=s2)
    expected = np.prod(s2) * 0.5**3 * widths[-1] / widths[0]
    mean, se = _mean_and_se(sample_jacobian_eigenvalues(net, mode=mode, seed=8, n_samples=n), n)
    assert se < 2 * expected * math.sqrt(sum(1 / w for w in widths[1:]) / n)  # spread as predicted
    assert abs(mean - expected) < 5 * se

    mean, se = _mean_and_se(sample_jacobian_eigenvalues(net, gram="JJt", mode=mode, seed=8, n_samples=n), n)
    assert abs(mean - expected * widths[0] / widths[-1]) < 5 * se


@pytest.mark.parametrize("q0", [0.7, "fixed_point"])
def test_model_and_network_modes_agree_in_mean(q0):
    # tanh with a bias: D_l depends on q_l, so this also pins the mean-field recursion of q_l.
    widths, n = (200, 300, 250, 400), 16
    net = Network(widths, activation="tanh", sigma_w2=1.5, sigma_b2=0.1, q0=q0)
    expected = np.prod(mean_field(net).chi) * widths[-1] / widths[0]
    m_net, se_net = _mean_and_se(sample_jacobian_eigenvalues(net, mode="network", seed=9, n_samples=n), n)
    m_mod, se_mod = _mean_and_se(sample_jacobian_eigenvalues(net, mode="model", seed=10, n_samples=n), n)
    assert abs(m_net - expected) < 5 * se_net
    assert abs(m_mod - expected) < 5 * se_mod
    assert abs(m_net - m_mod) < 5 * math.hypot(se_net, se_mod)


def test_fixed_point_input_unreachable_draws_first_preactivations():
    # ReLU with sigma_w2 = 4 (chi = 2) diverges: mean_field falls back to q* = 1 < sigma_b2, which
    # no input variance reaches, so h_1 ~ N(0, q*) is drawn directly. The ReLU D law ignores q.
    net = Network([150, 150, 150], activation="relu", sigma_w2=4.0, sigma_b2=1.5, q0="fixed_point")
    assert mean_field(net).q[0] < net.sigma_b2[0]
    eig = sample_jacobian_eigenvalues(net, seed=11, n_samples=8)
    mean, se = _mean_and_se(eig, 8)
    assert np.all(np.isfinite(eig)) and abs(mean - 4.0) < 5 * se


# ---------------------------------------------------------------------------------------------
# Depth, seeds, arguments
# ---------------------------------------------------------------------------------------------
def test_depth_300_linear_net_is_finite():
    eig = sample_jacobian_eigenvalues(Network([50] * 301, activation="linear", sigma_w2=1.0), seed=12)
    assert eig.shape == (50,)
    assert np.all(np.isfinite(eig)) and np.all(eig >= 0) and eig.max() > 0


def test_deep_chaotic_nets_never_give_nan():
    # ReLU chi = 2 for 300 layers: eigenvalues ~ 2^300, large but representable.
    eig = sample_jacobian_eigenvalues(Network([50] * 301, activation="relu", sigma_w2=4.0), seed=13)
    assert np.all(np.isfinite(eig)) and eig.max() > 1e60
    # tanh chi ~ 1.77 for 1500 layers: the top eigenvalue leaves the float range (inf), never NaN.
    eig = sample_jacobian_eigenvalues(Network([40] * 1501, activation="tanh", sigma_w2=8.0), seed=14)
    assert not np.any(np.isnan(eig)) and np.all(eig >= 0)


def test_seed_reproducibility_and_blocks():
    net = Network([30, 40, 20], activation="tanh", sigma_w2=1.2, init="orthogonal")
    a = sample_jacobian_eigenvalues(net, seed=15, n_samples=3)
    b = sample_jacobian_eigenvalues(net, seed=np.random.default_rng(15), n_samples=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (90,)
    blocks = a.reshape(3, 30)
    assert np.all(np.diff(blocks, axis=1) >= 0)  # each network's block sorted ascending
    assert not np.array_equal(blocks[0], blocks[1])
    assert np.all(blocks[:, :10] == 0.0)  # N0 - N2 structural zeros of J^T J


def test_progress_reports_every_matrix_and_leaves_the_sample_unchanged():
    net = Network([30, 40, 35, 20], activation="tanh", sigma_w2=1.2)
    calls = []
    a = sample_jacobian_eigenvalues(net, seed=15, n_samples=2, progress=lambda k, n: calls.append((k, n)))
    np.testing.assert_array_equal(a, sample_jacobian_eigenvalues(net, seed=15, n_samples=2))
    # 3 weight matrices and one SVD per network
    assert calls == [(k, 8) for k in range(1, 9)]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(mode="free"), "mode"),
        (dict(gram="JTJ"), "gram"),
        (dict(n_samples=0), "n_samples"),
        (dict(n_samples=-2), "n_samples"),
        (dict(n_samples=1.5), "n_samples"),
        (dict(n_samples=True), "n_samples"),
        (dict(progress=3), "progress"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    net = Network([5, 5])
    with pytest.raises(ValueError, match=name) as info:
        sample_jacobian_eigenvalues(net, **kwargs)
    assert repr(next(iter(kwargs.values()))) in str(info.value)


# ---------------------------------------------------------------------------------------------
# KS helper against laws with known answers
# ---------------------------------------------------------------------------------------------
def test_ks_continuous_law_at_midpoint_quantiles():
    # Samples at the (i - 1/2)/n quantiles: the ECDF misses F by exactly 1/(2n) on both sides.
    n = 50
    law = ScipyLaw(stats.expon(scale=2.0))
    samples = law.dist.ppf((np.arange(n) + 0.5) / n)
    assert ks_distance(law, samples) == pytest.approx(1 / (2 * n), abs=1e-12)


def test_ks_matches_scipy_for_continuous_law():
    rng = np.random.default_rng(16)
    dist = stats.gamma(a=2.0)
    samples = dist.rvs(size=300, random_state=rng)
    expected = stats.kstest(samples, dist.cdf).statistic
    assert ks_distance(ScipyLaw(dist), samples) == pytest.approx(expected, abs=1e-12)


def test_ks_with_atom_at_zero():
    law = ScipyLaw(stats.expon(), atom=0.3)
    # 3 of 10 samples at 0 (two of them round-off) and 7 at the midpoint quantiles of the
    # continuous part: the atom is matched exactly and each continuous sample sits half an ECDF
    # step (1/20) from F on both sides.
    cont = stats.expon.ppf((np.arange(7) + 0.5) / 7)
    samples = np.concatenate([[0.0, 1e-25, -3e-26], cont])
    assert ks_distance(law, samples) == pytest.approx(1 / 20, abs=1e-12)
    # No sample at 0: the ECDF is 0 where F jumps to 0.3 (checked at x = 0 itself).
    assert ks_distance(law, cont) >= 0.3
    # 6 zeros and the first 4 of those quantiles: ECDF(0) = 0.6 against F(0) = 0.3, and at the k-th
    # continuous sample ECDF = 0.6 + k/10 against F = 0.3 + (k - 1/2)/10: distance 0.35.
    assert ks_distance(law, np.concatenate([np.zeros(6), cont[:4]])) == pytest.approx(0.35, abs=1e-12)
    # All samples at 0 against a law without atom: distance 1.
    assert ks_distance(ScipyLaw(stats.expon()), np.zeros(5)) == pytest.approx(1.0)


def test_ks_zero_threshold_is_relative_to_largest_sample():
    law = ScipyLaw(stats.expon(), atom=0.3)
    cont = stats.expon.ppf((np.arange(7) + 0.5) / 7)  # largest ~2.6: threshold ~2.6e-14
    exact = ks_distance(law, np.concatenate([np.zeros(3), cont]))
    # zero eigenvalues: ~1e-30 relative from squared singular values, ~1e-16 from eigvalsh
    assert ks_distance(law, np.concatenate([[1e-30, 2e-16, 0.0], cont])) == exact
    # 1e-12 is a genuine small eigenvalue (deep nets have many), not round-off: the atom is
    # then short by 1/10.
    assert ks_distance(law, np.concatenate([[1e-12, 0.0, 0.0], cont])) == pytest.approx(0.1, abs=1e-5)


def test_ks_small_scale_samples_are_not_all_zero():
    # A law living at scale 1e-12 (deep ordered nets) must not be read as one big atom at 0.
    dist = stats.uniform(scale=1e-12)
    samples = dist.ppf((np.arange(20) + 0.5) / 20)
    assert ks_distance(ScipyLaw(dist), samples) == pytest.approx(1 / 40, abs=1e-12)


@pytest.mark.parametrize("samples", [[], [1.0, np.nan], [np.inf]])
def test_ks_rejects_bad_samples(samples):
    with pytest.raises(ValueError, match="samples"):
        ks_distance(ScipyLaw(stats.uniform()), samples)


def test_forward_pass_overflow_is_reported():
    # Linear, sigma_w2 = 4: |x_l| grows like 2^l and leaves the float range near l = 1024.
    net = Network([20] * 1201, activation="linear", sigma_w2=4.0)
    with pytest.raises(ValueError, match="overflowed"):
        sample_jacobian_eigenvalues(net, seed=17)
