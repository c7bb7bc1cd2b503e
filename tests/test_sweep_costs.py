"""The grid sweep's fast paths against the full ones (issue 11, core speed).

* Expanding nets (no atom at 0): the lower edge is found on the real line (the scan of
  ``_edges.lower_edge`` once missed every edge within 0.2 of ``M = -1``, and the grid then spent
  one point in seven on vertical walks in the gap below it). The edge is checked against the
  solver's own equation and the law against the spectrum whose grid starts at 0, and Monte Carlo.
"""

import warnings

import numpy as np
import pytest

import fpcore
from fpcore import _edges, _spectrum
from fpcore._lilypad import solve


def _expanding(act, L, sw, sb, base=100):
    return fpcore.Network([round(base * 1.25**l) for l in range(L + 1)], act, sigma_w2=sw, sigma_b2=sb)


EXPANDING = [("tanh", 2, 1.05, 1e-4), ("tanh", 10, 1.05, 1e-4), ("erf", 10, 1.05, 1e-4), ("sigmoid", 2, 1.0, 0.0),
             ("silu", 10, 2.0, 0.0), ("softplus", 10, 2.0, 0.0), ("elu", 10, 1.5, 0.0), ("selu", 2, 1.0, 0.0)]


@pytest.mark.parametrize("act,L,sw,sb", EXPANDING, ids=[f"{a}-{L}" for a, L, _, _ in EXPANDING])
def test_expanding_lower_edge_against_grid_from_zero(act, L, sw, sb, monkeypatch):
    net = _expanding(act, L, sw, sb)
    s = fpcore.jacobian_spectrum(net)
    lo = s.support[0][0]
    assert lo > 0.0 and s.stats.n_uncertified == 0
    eq = s._eq
    # below the edge M is real and carries no mass; above it, M is not real
    x = lo * np.array([0.5, 0.99, 0.9999, 1.001, 1.01])
    r = solve(eq, x + 0j, scale=s.lambda_max)
    assert np.all(r.verified)
    F = 1.0 - _spectrum._tail_mass(eq, r.m, r.u, r.short)
    real = -r.m.imag <= 1e-9 * np.abs(r.m)
    assert np.all(real[:3]) and not np.any(real[3:])
    assert np.all(np.abs(F[:3]) <= 1e-10)
    # the spectrum whose grid starts at 0 (the scan finding no edge): same law
    monkeypatch.setattr(_spectrum, "lower_edge", lambda eq, atom0: 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s0 = fpcore.jacobian_spectrum(net)
    if s0.x[0] < 0.98 * lo:  # (that grid stops at 1e-8 lambda_max)
        assert s0.support[0][0] == pytest.approx(lo, rel=2e-2)  # (the grid's resolution)
    xs = np.quantile(s.x, np.linspace(0.02, 0.98, 25))
    assert np.max(np.abs(s.cdf(xs) - s0.cdf(xs))) <= 1e-9
    inner = (s0.x > s.x[0]) & (s0.x < s.x[-1])
    assert np.max(np.abs(np.interp(s0.x[inner], s.x, s.density) - s0.density[inner])) <= 2e-2 * np.max(s.density)


def test_expanding_tanh_against_network_monte_carlo():
    net = _expanding("tanh", 3, 1.05, 1e-4, base=1000)
    s = fpcore.jacobian_spectrum(net, n_points=400)
    assert s.support[0][0] > 0.0
    ev = fpcore.sample_jacobian_eigenvalues(net, mode="network", seed=11, n_samples=1)
    assert fpcore.ks_distance(s, ev) <= 0.02
    # the smallest eigenvalue sits at the lower edge (finite-size spread ~ N^(-2/3))
    assert np.min(ev) == pytest.approx(s.support[0][0], rel=0.25)
