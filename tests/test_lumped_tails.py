"""The contour rules lump the law of ``D^2`` below ``_T_MIN f_max`` into real atoms (exact mass),
which stand for that part of the law only while ``|u| _T_MIN f_max << 1`` or while the lumped mass
is too small to move ``F`` (rank bound, :func:`fpcore._lilypad.lump_cdf_bound`). Elsewhere the
points are unverified and the library warns: never a silent number (issue #10)."""

import math
import warnings

import numpy as np
import pytest
from scipy import optimize, special

import fpcore
from fpcore._lilypad import lump_cdf_bound

# adversarial seed 3, draw [50]: q_1 = 94, the sigmoid's D^2 reaches 1e-76; 2.3 % of it (counted
# in F through N_1 / dim) lies below the lump's 1e-19
NET_50 = fpcore.Network([1249, 1034], "sigmoid", sigma_w2=10.216197216152533, sigma_b2=0.0036437454167332502,
                        q0=9.237561647523304)


def _warned(f):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = f()
    return out, [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]


def _d2_cdf(y, q):
    """``P(sigmoid'(sqrt(q) Z)^2 <= y)`` for small ``y`` (``sigmoid'`` is even, decreasing in
    ``|h|``: the mass of ``|h| >= h(y)``)."""
    h = optimize.brentq(lambda t: -t - 2.0 * math.log1p(math.exp(-t)) - 0.5 * math.log(y), 0.0, 1e3)
    return 2.0 * special.ndtr(-h / math.sqrt(q))


def test_sigmoid_cdf_below_the_lump_within_rigorous_bounds():
    # before: cdf(1e-21) = 0.0 and quantile(1e-6) = 1e-19, no warning. J J^T = D W W^T D lies
    # between lambda_min(W W^T) D^2 and lambda_max(W W^T) D^2 (Marchenko-Pastur edges
    # sigma_w2 (1 -+ sqrt(N_1 / N_0))^2 in the limit), so F(x) is bracketed by the law of D^2
    # at x / lambda_max and x / lambda_min (and quantiles likewise)
    s = fpcore.jacobian_spectrum(NET_50, gram="JJt", n_points=300)
    q1 = NET_50.sigma_w2[0] * NET_50.q0 + NET_50.sigma_b2[0]
    c = math.sqrt(1034 / 1249)
    lmin, lmax = NET_50.sigma_w2[0] * (1 - c) ** 2, NET_50.sigma_w2[0] * (1 + c) ** 2
    F, w = _warned(lambda: s.cdf(1e-21))
    assert not w
    assert _d2_cdf(1e-21 / lmax, q1) <= F <= _d2_cdf(1e-21 / lmin, q1)
    x, w = _warned(lambda: s.quantile(1e-6))
    assert not w and s.cdf(x) >= 1e-6
    y = optimize.brentq(lambda t: math.log(_d2_cdf(math.exp(t), q1) / 1e-6), -300.0, -50.0)
    assert lmin * math.exp(y) <= x <= lmax * math.exp(y)
    # below the grid the solves use the rule with deep tails: its lumps cannot move F
    assert lump_cdf_bound(s._below_eq()) <= 1e-12


def test_silu_lumps_that_no_rule_reaches_are_warned():
    # deep SiLU at q = 5.7e4: 46 % of the last law of D^2 lies below 1e-18 of its maximum, much
    # of it below the float range; F there is not resolved, and the library says so
    net = fpcore.Network([884] * 15 + [382], "silu", sigma_w2=3.6601, sigma_b2=1.0528, q0=2.887)
    s = fpcore.jacobian_spectrum(net, gram="JJt", n_points=100)
    assert lump_cdf_bound(s._eq) > 0.4
    F, w = _warned(lambda: s.cdf(1e-30))
    assert w and "could not be certified or verified" in w[0]


def test_sigmoid_lumps_do_not_touch_the_resolved_part():
    # where |u| v_lump is small the lumps stand for their part of the law: the grid and the
    # deciles are unwarned, certified or verified, and agree with Monte Carlo
    s = fpcore.jacobian_spectrum(NET_50, gram="JJt", n_points=300)
    assert s.stats.n_uncertified == 0
    d, w = _warned(lambda: s.deciles)
    assert not w
    ev = fpcore.sample_jacobian_eigenvalues(NET_50, gram="JJt", seed=0, n_samples=2)
    emp = np.searchsorted(np.sort(ev), d, side="right") / ev.size
    # KS-type tolerance for n = 2068 pooled eigenvalues (95 %: 1.36 / sqrt(n) = 0.03)
    assert np.max(np.abs(emp - np.arange(1, 10) / 10)) <= 1.36 / np.sqrt(ev.size) + 0.005


def test_light_lumps_pass_the_rank_bound():
    # tanh at moderate q: the lumped tails carry < 1e-9 of the mass, so F is verified at any u
    net = fpcore.Network([1000, 1000], "tanh", sigma_w2=1.5, init="orthogonal", q0=2.0)
    eq = fpcore.jacobian_spectrum(net, gram="JJt", n_points=100)._eq
    assert lump_cdf_bound(eq) <= 1e-9
