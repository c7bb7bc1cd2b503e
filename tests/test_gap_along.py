"""The grid sweep's step along the real axis inside a gap (``_fastchain._gap_along``) against the
walks from far above it replaces.

Orthogonal smooth nets that narrow to their last layer (tapered MLPs) have a stretch below the
bulk where ``|Im M| / |M| < 1e-9`` (a gap to the sweep): at depth 50 about half of the 1000 grid
points. Each such point used to walk up, over and down from its left neighbour or from far above
(5 to 1700 Newton steps, with 50 laws of some 1900 complex atoms each). In a gap ``M`` is real
and analytic along the axis, so the root continued from the two left neighbours by the secant is
the physical one when Newton contracts from the prediction, the correction stays below half the
predicted move, ``M`` decreases (``M'(x) = -int lambda / (x - lambda)^2 dmu < 0``) and so does
``M^{-1}`` along the joint equation (the other real root, which meets the physical one at the
gap's edge, has the opposite slope).
"""

import math

import numpy as np
import pytest

import fpcore
from fpcore import _fastchain
from fpcore._lilypad import solve

pytestmark = pytest.mark.skipif(not _fastchain._HAVE_NUMBA, reason="the compiled sweep needs numba")


def _tapered(L):
    return [round(784 * (10 / 784) ** (l / L)) for l in range(L + 1)]


def test_gap_steps_follow_the_physical_root(monkeypatch):
    net = fpcore.Network(_tapered(12), "silu", sigma_w2=2.0, init="orthogonal")
    calls = []
    sweep = _fastchain.grid_general

    def spy(*args):
        out = sweep(*args)
        calls.append((args, out))
        return out

    monkeypatch.setattr(_fastchain, "grid_general", spy)
    s = fpcore.jacobian_spectrum(net, n_points=200)
    assert s.stats.n_uncertified == 0
    (x, groups, Y, mean, a, e, log_c, V, W, kk, nn, mu, rounds, tol), (m, u, ok, _) = calls[0]
    G = kk.size
    rg, dps, du, uu = (np.empty(G, dtype=complex) for _ in range(4))
    counts = np.zeros(3, dtype=np.int64)
    took = []
    for i in range(x.size):
        mi, good = _fastchain._gap_along(i, x, groups, m, u, ok, uu, du, rg, dps, counts, a, e, log_c, V, W, kk, nn,
                                         tol)
        if good:
            took.append(i)
            # the sweep's point is the step's (its left neighbour lies in the gap: no walk along the
            # support came first)
            assert abs(mi - m[i]) <= 1e-12 * abs(m[i])
            np.testing.assert_allclose(uu, u[i], rtol=1e-12)
    took = np.array(took)
    assert took.size >= 50  # the sweep did step along the gap
    # physical: real, on the Stieltjes side, decreasing in x along each run of steps
    mt = m[took]
    assert np.all(np.abs(mt.imag) <= 1e-9 * np.abs(mt)) and np.all(mt.imag <= 1e-10 * np.abs(mt))
    assert np.all(m.real[took] < m.real[took - 1])
    # each of those points alone, walked down from far above (no grid: no neighbour to start from),
    # reaches the same root
    far = solve(s._eq, x[took] + 0j, scale=s.lambda_max)
    assert np.count_nonzero(far.verified) >= 0.9 * took.size
    v = far.verified
    np.testing.assert_allclose(far.m[v], mt[v], rtol=1e-8)
    # and the spectrum's CDF there is flat: the atom below the bulk, 1 above it
    F = s._cdf_grid[took]
    assert np.all((np.abs(F - s.atom) <= 1e-9) | (np.abs(F - 1.0) <= 1e-9))
    assert np.any(np.abs(F - s.atom) <= 1e-9)
    assert math.isclose(s.atom, 1 - 10 / 784, rel_tol=1e-12)
