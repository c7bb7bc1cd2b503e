"""Laws of ``D^2`` for GELU, SiLU and softplus (``phi' -> 1`` as ``h -> +inf``): contour rules.

Their laws accumulate near 0 (zeros of ``phi'``, or ``phi' -> 0`` as ``h -> -inf``) and near 1
(``|phi'^2 - 1|`` falls over many decades in the right tail). The real-atom discretisation made
CDFs decrease, split the support into spurious intervals and lost mass (issue #10 item 2 and the
adversarial script's silent failures on main); each reproducer below failed before.

Monte Carlo tolerances: the KS distance between the limit law and ``n`` pooled eigenvalues is at
most about ``1.36 / sqrt(n)`` (95 %) plus the finite-width error (O(L / N)); with ``n >= 1000`` at
width >= 1000 we ask for the issue's 0.02 (or ``1.36 / sqrt(n) + 0.005`` where ``n`` is smaller).
"""

import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import fpcore
from fpcore import _activations as A

sys.path.insert(0, str(Path(__file__).parent))
from test_continuous_laws import _psi_reference, monotone_and_close_to_monte_carlo  # noqa: E402


@pytest.mark.parametrize("name", ["gelu", "silu", "softplus"])
@pytest.mark.parametrize("q", [0.001, 0.3, 16.0, 200.0])
def test_sat_contour_rule_psi_and_moments(name, q):
    act = fpcore.get_activation(name)
    law = act.d2_law(q)
    assert law.cvalues is not None
    exact = float(act.d2_moment(q, 1)) if q <= 1000 else None
    assert complex(np.dot(law.cweights, law.cvalues)).real == pytest.approx(exact, rel=1e-11)
    cw, cv = law.cweights, law.cvalues
    vmax = float(law.values.max())
    # adaptive quadrature where it converges (well off the axis), also near 1 and near 0
    for w in [vmax * (0.5 + 0.3j), 1.0 + 0.05j, (1 - 1e-3) * np.exp(0.05j), vmax * 1e-4 * np.exp(0.1j)]:
        got = np.sum(cw * cv / (w - cv))
        ref = _psi_reference(act.dphi, q, w)
        assert abs(got - ref) <= 1e-9 * abs(ref), w
    # next to the axis: the same path sampled twice as finely (exponentially small error)
    old = A._H_TAU, A._H_X
    try:
        A._H_TAU, A._H_X = old[0] / 2, old[1] / 2
        cv2, cw2, _, _ = A._contour_rule(A._analytic_dphi(act), q, False, act._zeros_in_z(math.sqrt(q)),
                                         A._LOG_MINUS_ONE[name])
    finally:
        A._H_TAU, A._H_X = old
    rv = law.values
    lo = float(rv[rv > 0.01 * vmax].min())
    # (inside the law: 1e-14 measured; 1e-6 from the accumulation point at 1, 1e-7 off the
    # axis, the rule degrades to about 1e-8: measured 9e-9)
    for w, tol in [(0.5 * (lo + vmax) * np.exp(0.005j), 1e-9), (0.5 * (lo + vmax) * np.exp(5e-4j), 1e-9),
                   ((1 + 1e-6) * np.exp(1e-7j), 5e-8)]:
        a = np.sum(cw * cv / (w - cv))
        b = np.sum(cw2 * cv2 / (w - cv2))
        assert abs(a - b) <= tol * abs(b), w


def _check(net, gram, n_samples=2, ks=0.02):
    return monotone_and_close_to_monte_carlo(net, gram, n_samples, ks)[0]


def test_deep_silu_keeps_its_mass():
    # issue #10 item 2: cdf(0.0025) = 0 against Monte Carlo 0.491; deciles 1-4 all equal
    net = fpcore.Network([884] * 15 + [382], "silu", sigma_w2=3.6601, sigma_b2=1.0528, q0=2.887)
    s = _check(net, "JJt", n_samples=3)
    assert len(s.support) == 1
    # deciles 5-9 are resolved by the contour rules; deciles 1-4 lie below 1e-20, where the
    # lumped tails (mass 0.46 of the last layer's D^2 below 1e-18 of its maximum: the law reaches
    # e^-4000) decide them: moving the lumps inside (0, 1e-18 max] moved them by 10 decades (1e-26
    # to 1e-36), so they are returned as warned upper bounds (cdf >= p), never as silent numbers
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        d = np.asarray(s.deciles)
    assert np.all(np.diff(d[4:]) > 0) and np.all(np.diff(d) >= 0)
    assert any("upper bound" in str(x.message) for x in w)
    assert np.all(s.cdf(d) >= np.arange(1, 10) / 10.0)


def test_gaussian_softplus_tapered_against_monte_carlo():
    # adversarial draw (seed 2): KS 0.087 on main
    net = fpcore.Network([1250, 1166, 1083, 1000], "softplus", sigma_w2=4.067023372331492,
                         sigma_b2=0.0014438581320108403, q0=2.019455210372733)
    s = _check(net, "JJt")
    assert s.stats.n_uncertified == 0


def test_orthogonal_silu_rectangular_is_monotone_with_one_interval():
    # adversarial draw (seed 2): 13 support intervals, F drops 9e-4 on main
    net = fpcore.Network([1060, 1013, 1118, 1212, 1192], "silu", sigma_w2=2.2749218584816147,
                         sigma_b2=0.012663682496723092, init="orthogonal", q0=0.1526876465543845)
    s = _check(net, "JtJ")
    assert len(s.support) == 1 and s.stats.n_uncertified == 0


def test_orthogonal_softplus_against_monte_carlo():
    # KS 0.17 on main (real atoms), 0.014 with the contour rule
    net = fpcore.Network([1000, 1000, 1000, 1000], "softplus", init="orthogonal", sigma_w2=4.0, q0=3.0)
    _check(net, "JJt")
