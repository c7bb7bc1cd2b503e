"""The contour rules lump the law of ``D^2`` below ``_T_MIN f_max`` into real atoms (exact mass),
which stand for that part of the law only while ``|u| _T_MIN f_max << 1`` or while the lumped mass
is too small to move ``F`` (rank bound, :func:`fpcore._lilypad.lump_cdf_bound`). Elsewhere the
points are unverified and the library warns: never a silent number (issue #10)."""

import warnings

import numpy as np
import pytest

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


def test_sigmoid_cdf_below_the_lump_is_warned_not_silent():
    # before: cdf(1e-21) = 0.0 and quantile(1e-6) = 1e-19 with no warning; seeded Monte Carlo
    # (2 networks, 2068 eigenvalues): 11 of them (0.0053) lie below 1e-21
    s = fpcore.jacobian_spectrum(NET_50, gram="JJt", n_points=300)
    assert lump_cdf_bound(s._eq) > 1e-3  # the lumps are heavy: F below them is not determined
    F, w = _warned(lambda: s.cdf(1e-21))
    assert w and "could not be certified or verified" in w[0]
    q, w = _warned(lambda: s.quantile(1e-6))
    assert w and "upper bound" in w[0]
    assert s.cdf(q) >= 1e-6
    ev = fpcore.sample_jacobian_eigenvalues(NET_50, gram="JJt", seed=0, n_samples=2)
    # the warned upper bound is an upper bound of the Monte Carlo quantile too
    assert q >= np.quantile(ev, 1e-6)


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
