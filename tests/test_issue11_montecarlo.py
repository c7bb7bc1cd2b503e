"""Issue #11's Monte Carlo acceptance cases against real networks (seeded, width >= 1000, pooled).

Each case is a real forward pass (``mode="network"``) of independent networks whose
eigenvalues are pooled; the KS distance to the computed law must be at most 0.02. At width 1000
the finite-size KS distance of a correct law is about 0.005-0.015 (``test_against_montecarlo``:
a 20 % error in ``sigma_w2`` moves it past 0.03). Near criticality the spectrum is narrow and
the whole of it moves with one network's empirical ``q`` (``|x_0|^2 / N_0`` fluctuates by
``sqrt(2 / N_0)`` relative, and ``chi ~ 1`` does not damp it): the fixed-point case, ``[1000] * 6``,
gave KS 0.021 / 0.034 for two seeds with 2 networks pooled and 0.012 / 0.013 / 0.022 with 4,
against 0.005 for the free-probability model's sampler, so those two cases pool 8 networks.

* orthogonal tanh near criticality (``sigma_w2 = 1.05``, ``sigma_b2 = 1e-4``: dynamical
  isometry's textbook case), from ``q0 = 1`` and from the fixed point ``q*``;
* orthogonal SiLU on a square net;
* Gaussian GELU on a rectangular net with bias;
* a tapered tanh MLP (widths shrinking by 0.8 per layer, scaled so that the narrowest is 1000:
  only width ratios enter the limit law), ``J J^T``.
"""

import warnings

import pytest

import fpcore

N = fpcore.Network
CASES = [
    ("orth-tanh-critical-q0", N([1000] * 6, "tanh", sigma_w2=1.05, sigma_b2=1e-4, init="orthogonal"), "JtJ", 8),
    ("orth-tanh-critical-fixed-point",
     N([1000] * 6, "tanh", sigma_w2=1.05, sigma_b2=1e-4, init="orthogonal", q0="fixed_point"), "JtJ", 8),
    ("orth-silu-square", N([1000] * 5, "silu", sigma_w2=2.0, init="orthogonal"), "JtJ", 2),
    ("gauss-gelu-rect-bias", N([1000, 2000, 1500, 1000], "gelu", sigma_w2=2.0, sigma_b2=0.05), "JtJ", 2),
    ("gauss-tanh-tapered-mlp", N([2441, 1953, 1563, 1250, 1000], "tanh", sigma_w2=1.2, sigma_b2=0.05), "JJt", 2),
]


@pytest.mark.parametrize("name,net,gram,n", CASES, ids=[c[0] for c in CASES])
def test_issue11_cases_against_network_monte_carlo(name, net, gram, n):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # flagged points are counted in the stats
        spec = fpcore.jacobian_spectrum(net, gram=gram, n_points=300)
    ev = fpcore.sample_jacobian_eigenvalues(net, gram=gram, mode="network", seed=2026, n_samples=n)
    ks = fpcore.ks_distance(spec, ev)
    assert ks <= 0.02, f"{name}: KS {ks:.4f}"
    st = spec.stats
    assert st.n_certified + st.n_verified + st.n_uncertified == st.n_points
    # a law is not a law without its mass: the CDF runs from the atom at 0 to 1
    assert spec.cdf(spec.lambda_max) == 1.0
    assert spec.cdf(0.0) == pytest.approx(spec.atom, abs=1e-12)
