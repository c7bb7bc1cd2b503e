"""Smooth activations: exact erf moments, the push-forward law of one orthogonal layer, network
Monte Carlo for tanh, GELU, SELU and sigmoid nets, and the quadrature behind the laws of D^2."""

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, stats

import fpcore


# -- erf: exact moments (MATH.md section 6) ---------------------------------------------------
def _erf_mean_field(a, sw, sb, q0, L):
    q = [sw * q0 + sb]
    for _ in range(L - 1):
        q.append(sw * (2 / math.pi) * math.asin(2 * a * a * q[-1] / (1 + 2 * a * a * q[-1])) + sb)
    mu = [[(4 * a * a / math.pi) ** k * (1 + 4 * k * a * a * ql) ** -0.5 for k in (1, 2)] for ql in q]
    return q, mu


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("a,sw,sb", [(math.sqrt(math.pi) / 2, 1.5, 0.05), (0.7, 2.0, 0.2)])
def test_erf_mean_and_variance_are_exact(init, a, sw, sb):
    # var/mean^2 is additive under free multiplicative convolution (the first coefficient of
    # log S): each D_l^2 adds mu_2/mu_1^2 - 1, each Gaussian (Marchenko-Pastur) factor adds 1.
    L = 4
    net = fpcore.Network([300] * (L + 1), fpcore.get_activation("erf", scale=a), sigma_w2=sw, sigma_b2=sb, init=init)
    q, mu = _erf_mean_field(a, sw, sb, 1.0, L)
    assert fpcore.mean_field(net).q == pytest.approx(q, rel=1e-12)
    s = fpcore.jacobian_spectrum(net, n_points=200)
    mean = math.prod(sw * m1 for m1, _ in mu)
    spread = sum(m2 / m1**2 - 1 for m1, m2 in mu) + (L if init == "gaussian" else 0)
    assert s.mean == pytest.approx(mean, rel=1e-8)
    assert s.moment(1) == pytest.approx(mean, rel=1e-8)
    assert s.variance == pytest.approx(spread * mean**2, rel=1e-8)


# -- the quadrature of D^2 laws ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tanh", "gelu", "silu", "selu", "elu", "sigmoid", "softplus"])
@pytest.mark.parametrize("q", [0.01, 1.0, 30.0, 1000.0])
def test_moments_of_the_laws_against_adaptive_quadrature(name, q):
    act = fpcore.get_activation(name)
    s = math.sqrt(q)
    pts = [0.0, -1 / s, 1 / s, -5 / s, 5 / s]

    def ref(g):
        return integrate.quad(lambda z: g(s * z) * stats.norm.pdf(z), -12, 12, points=pts, limit=1000,
                              epsabs=0, epsrel=1e-13)[0]

    law = act.d2_law(q)
    assert law.weights.sum() == pytest.approx(1.0, abs=1e-14)
    for k in (1, 2):
        exact = ref(lambda h: act.dphi(h) ** (2 * k))
        assert float(act.d2_moment(q, k)) == pytest.approx(exact, rel=1e-10)
        assert law.moment(k) == pytest.approx(exact, rel=1e-6)  # the law's atoms: 1e-9 unless refined
    assert float(act.second_moment(q)) == pytest.approx(ref(lambda h: act.phi(h) ** 2), rel=1e-10)


# -- one orthogonal layer: the push-forward law ----------------------------------------------------
PUSH = [
    ("tanh", 1.5, [1000, 1000], "JtJ"),
    ("selu", 1.0, [1000, 700], "JtJ"),  # phi' = lambda on h > 0: an atom of mass 1/2 (x 0.7)
    ("gelu", 2.0, [1000, 800], "JJt"),
    ("sigmoid", 4.0, [1000, 1000], "JtJ"),
    ("silu", 2.0, [800, 500], "JJt"),
]


@pytest.mark.parametrize("act,sw,widths,gram", PUSH, ids=[p[0] for p in PUSH])
def test_one_orthogonal_layer_is_the_push_forward_law(act, sw, widths, gram):
    net = fpcore.Network(widths, act, sigma_w2=sw, init="orthogonal")
    s = fpcore.jacobian_spectrum(net, gram=gram, n_points=400)
    a = net.activations[0]
    q = fpcore.mean_field(net).q[0]
    n = 1_000_000
    y = np.sort(sw * a.dphi(math.sqrt(q) * np.random.default_rng(7).standard_normal(n)) ** 2)
    scale = 1.0 if gram == "JJt" else widths[1] / widths[0]
    pts = np.quantile(y, np.linspace(0.002, 0.998, 300))
    emp = np.searchsorted(y, pts, side="right") / n
    law = (s.cdf(pts) - (1 - scale)) / scale
    # Dvoretzky-Kiefer-Wolfowitz: P(sup |F_n - F| > eps) <= 2 exp(-2 n eps^2) = 1e-6 at eps = 2.7e-3
    assert np.max(np.abs(law - emp)) <= math.sqrt(math.log(2 / 1e-6) / (2 * n))
    # exact moments, total mass, and the atoms (SELU's flat phi' on h > 0)
    for k in (1, 2):
        assert s.moment(k) == pytest.approx(scale * sw**k * float(a.d2_moment(q, k)), rel=1e-12)
    assert s.mean == pytest.approx(s.moment(1), rel=1e-12)
    assert s.cdf(s.lambda_max) == 1.0 and s.cdf(0.0) == pytest.approx(s.atom, abs=1e-15)
    assert np.all(s.density >= 0) and np.all(np.isfinite(s.density))
    if act == "selu":
        lam = 1.0507009873554804934193349852946
        assert any(loc == pytest.approx(sw * lam**2, rel=1e-12) and m == pytest.approx(0.5 * scale, rel=1e-9)
                   for loc, m in s.atoms)
    assert s.quantile(s.cdf(np.median(y))) == pytest.approx(np.median(y), rel=1e-9)
    # and a real network (several pooled: one layer has no free-probability averaging, so the
    # KS distance of one width-1000 draw is ~1/sqrt(N))
    ev = fpcore.sample_jacobian_eigenvalues(net, gram=gram, mode="network", seed=3, n_samples=8)
    assert fpcore.ks_distance(s, ev) <= 0.02


# -- deeper smooth nets against network Monte Carlo --------------------------------------------------
N = fpcore.Network
SMOOTH = [
    ("gauss-tanh-square-bias", N([1000] * 4, "tanh", sigma_w2=1.5, sigma_b2=0.05)),
    ("orth-tanh-rect-bias", N([1000, 1300, 900], "tanh", sigma_w2=1.1, sigma_b2=0.05, init="orthogonal")),
    ("gauss-gelu-rect-bias", N([1000, 1500, 800], "gelu", sigma_w2=2.0, sigma_b2=0.1)),
    ("orth-gelu-square", N([1000] * 3, "gelu", sigma_w2=2.0, init="orthogonal")),
    ("gauss-selu-square", N([1000] * 4, "selu", sigma_w2=1.0)),
    ("orth-selu-rect-bias", N([1000, 1200, 1000], "selu", sigma_w2=1.0, sigma_b2=0.05, init="orthogonal")),
    ("gauss-sigmoid-rect-bias", N([1000, 1200, 1000], "sigmoid", sigma_w2=4.0, sigma_b2=0.5)),
    ("orth-sigmoid-square-bias", N([1000] * 3, "sigmoid", sigma_w2=4.0, sigma_b2=0.5, init="orthogonal")),
]


@pytest.mark.parametrize("name,net", SMOOTH, ids=[c[0] for c in SMOOTH])
def test_smooth_nets_against_network_monte_carlo(name, net):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # flagged points are counted in the stats
        spec = fpcore.jacobian_spectrum(net, n_points=300)
        ks = fpcore.ks_distance(spec, fpcore.sample_jacobian_eigenvalues(net, mode="network", seed=12345))
    assert ks <= 0.02, f"{name}: KS {ks:.4f}"
    st = spec.stats
    assert st.n_verified + st.n_certified + st.n_uncertified == st.n_points


# -- a wrong user activation -------------------------------------------------------------------------
def test_a_user_activation_that_breaks_outside_the_probe_is_a_clear_error():
    def dphi(x):
        return np.sqrt(25.0 - x * x)  # NaN for |x| > 5: past the [-3, 3] probe

    net = fpcore.Network([50, 50], activation=(np.tanh, dphi), sigma_w2=4.0)
    with pytest.raises(ValueError, match="activation"):
        fpcore.jacobian_spectrum(net, n_points=20)


def test_a_non_vectorised_user_activation_is_a_clear_error():
    def phi(x):
        return x if x > 0 else 0.0  # `if` on an array raises

    with pytest.raises(ValueError, match="vectorised"):
        fpcore.Network([10, 10], activation=(phi, lambda x: (x > 0).astype(float)))


def test_deep_tanh_with_one_law_per_layer_is_verified():
    # q_l -> 0 without bias: 100 distinct laws; r_0 sums 100 logarithms, so the Newton steps have
    # a rounding floor above 1e-13 (this used to leave every point uncertified after ~100 s)
    net = fpcore.Network([1000] * 101, "tanh", sigma_w2=1.0)
    s = fpcore.jacobian_spectrum(net, n_points=200)
    assert len(s._eq.ugroups) == 100
    assert s.stats.n_uncertified <= 0.03 * s.stats.n_points
    assert s.moment(1) == pytest.approx(s.mean, rel=1e-8)
    F = s.cdf(s.x)
    assert np.all(np.diff(F) >= -1e-12) and F[-1] <= 1.0


@pytest.mark.parametrize("name, q", [("gelu", 1.7), ("silu", 0.3), ("gelu", 40.0)])
def test_the_short_gauss_rule_is_within_its_error_bound(name, q):
    """Long laws (refined onto the zeros of phi') are solved with their 40-point Gauss rules
    where the Bernstein-ellipse bound says the two agree: check the bound against the full law
    on u from deep in the lower half-plane to next to the cut, and the compiled test against it."""
    from fpcore import _fastchain
    from fpcore._activations import N_SHORT, gauss_error_bound, get_activation

    # (the built-in GELU and SiLU now have contour rules; the same functions passed as a custom
    # (phi, dphi) pair keep the long real law refined onto the zeros of phi')
    act = get_activation(name)
    law = get_activation((act.phi, act.dphi)).d2_law(q)
    xs, ws = law.short
    assert law.values.size > 3 * N_SHORT and xs.size == N_SHORT
    vmax = float(law.values.max())
    rng = np.random.default_rng(0)
    r = 10.0 ** rng.uniform(-3, 1.5, 4000) / vmax
    u = np.concatenate([r * np.exp(-1j * rng.uniform(0, np.pi, r.size)),  # Im u <= 0
                        rng.uniform(-50, 0.999, 500) / vmax + 0j])  # real, up to the cut

    def psi(values, weights):
        return np.sum(weights * u[:, None] * values / (1.0 - u[:, None] * values), axis=1)

    err = np.abs(psi(law.values, law.weights) - psi(xs, ws))
    bound = gauss_error_bound(u, vmax, N_SHORT)
    rounding = 1e-14 * (1.0 + np.abs(psi(law.values, law.weights)))
    assert np.all(err <= bound + rounding)
    tight = bound <= 1e-12
    assert 0.3 < tight.mean() < 1.0  # neither vacuous nor trivially satisfied
    m = u  # the compiled test, scaled by |k m| = |u| (k = 1)
    ok = _fastchain.gauss_error_ok(u[:, None], np.array([vmax]), np.ones(1), m, N_SHORT, 1e-12)
    np.testing.assert_array_equal(ok, bound <= 1e-12 * np.abs(m))


def test_zeros_of_dphi_are_found_once_per_scale_range():
    from fpcore._activations import _zeros_of, get_activation

    act = get_activation("gelu")
    for s in (0.05, 0.7, 1.0, 3.0, 40.0):
        np.testing.assert_allclose(act._zeros_in_z(s), _zeros_of(act.dphi, s), rtol=1e-13)
    assert act._zeros_in_z(1.0)[0] == pytest.approx(-0.7517915246935645, rel=1e-13)
