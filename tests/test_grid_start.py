"""The grid's first point walks from the solution that the checks below the lower edge share.

``_support_intervals`` checks 0.1 % and 0.01 % below a located lower edge from one walk from far
above to ``min t + i max t`` (``solve_cluster``); the grid's first point lies just above that edge,
and ``grid_general`` walked down to it from far above too (some 45 octaves for a tapered tanh net at
``L = 50``: a third of the sweep). It now walks from the shared point (``SolveResult.start``), in the
upper half-plane as the walk from far above: the same roots (to the Newton tolerance), the same
checks and certificate, fewer Newton steps.
"""

from __future__ import annotations

import numpy as np
import pytest

import fpcore
from fpcore import _fastchain, _lilypad, _spectrum

pytestmark = pytest.mark.skipif(not _fastchain._HAVE_NUMBA, reason="the compiled sweep needs numba")


def _tapered(L: int) -> list[int]:
    # benchmarks/bench_matrix.py's "tapered" profile
    return [max(1, round(784 * (10 / 784) ** (l / L))) for l in range(L + 1)]


NETS = [("tanh", _tapered(10), 1.05, 1e-4), ("sigmoid", [1000] * 3 + [250] + [1000] * 3, 1.0, 0.0),
        ("erf", [round(100 * 1.25**l) for l in range(9)], 1.05, 1e-4)]


def _eq_grid(act, widths, sw, sb):
    net = fpcore.Network(widths, act, sigma_w2=sw, sigma_b2=sb)
    s = fpcore.jacobian_spectrum(net, n_points=300)
    eq = s._eq
    atom0 = eq.atoms[0][1] if eq.atoms and eq.atoms[0][0] == 0.0 else 0.0
    starts: list = []
    (lo, hi), = _spectrum._support_intervals(eq, atom0, [], {}, starts)
    return s, eq, lo, hi, starts


@pytest.mark.parametrize("act, widths, sw, sb", NETS, ids=[n[0] for n in NETS])
def test_sweep_from_start_same_roots(act, widths, sw, sb):
    s, eq, lo, hi, starts = _eq_grid(act, widths, sw, sb)
    assert lo > 0 and len(starts) == 1
    z0, m0, u0 = starts[0]
    assert z0.imag > 0 and lo * 0.99 < z0.real < lo  # just below the edge, above the axis
    ev = _lilypad._General(eq)
    x = s.x
    groups = np.zeros(x.size, dtype=np.int64)
    Y = _lilypad._start_height(eq, x, hi)
    args = (x, groups, float(Y), float(eq.mean), eq.roots.astype(float), eq.exps.astype(float), float(eq.log_c),
            ev.V, ev.W, ev.k, ev.n, ev.mu, _lilypad.MAX_ROUNDS, ev.tol)
    m_a, u_a, ok_a, c_a = _fastchain.grid_general(*args)
    m_b, u_b, ok_b, c_b = _fastchain.grid_general(*args, complex(z0), complex(m0), np.ascontiguousarray(u0))
    assert np.all(ok_a) and np.all(ok_b)
    np.testing.assert_allclose(m_b, m_a, rtol=1e-10, atol=0.0)
    np.testing.assert_allclose(u_b, u_a, rtol=1e-10, atol=0.0)
    assert c_b[1] < c_a[1]  # fewer Newton steps: the first point's walk is short
    # every point the sweep accepts passes the a-posteriori checks where it is returned
    res, inner = _fastchain.residuals_general(x + 0j, m_b, np.ascontiguousarray(u_b), *args[4:11])
    assert np.all(res <= _fastchain._RES_ACCEPT) and np.all(inner <= _fastchain._RES_ACCEPT)


def test_no_start_is_the_old_sweep():
    # without a start (or with one not above the axis) the sweep is the one from far above
    s, eq, lo, hi, starts = _eq_grid(*NETS[0])
    ev = _lilypad._General(eq)
    x = s.x
    groups = np.zeros(x.size, dtype=np.int64)
    Y = _lilypad._start_height(eq, x, hi)
    args = (x, groups, float(Y), float(eq.mean), eq.roots.astype(float), eq.exps.astype(float), float(eq.log_c),
            ev.V, ev.W, ev.k, ev.n, ev.mu, _lilypad.MAX_ROUNDS, ev.tol)
    a = _fastchain.grid_general(*args)
    b = _fastchain.grid_general(*args, complex(x[0], 0.0), 0j, np.ascontiguousarray(starts[0][2]))
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("act, widths, sw, sb", NETS, ids=[n[0] for n in NETS])
def test_spectrum_with_start_equals_without(monkeypatch, act, widths, sw, sb):
    net = fpcore.Network(widths, act, sigma_w2=sw, sigma_b2=sb)
    used = []
    sweep = _fastchain.grid_general

    def spy(*args):
        used.append(len(args) > 14)
        return sweep(*args)

    monkeypatch.setattr(_fastchain, "grid_general", spy)
    with_start = fpcore.jacobian_spectrum(net, n_points=400)
    assert used == [True]
    solve = _spectrum.solve
    monkeypatch.setattr(_spectrum, "solve", lambda *a, start=None, **k: solve(*a, **k))
    used.clear()
    without = fpcore.jacobian_spectrum(net, n_points=400)
    assert used == [False]
    np.testing.assert_array_equal(with_start.x, without.x)
    d = without.density
    big = d > 1e-6 * d.max()
    np.testing.assert_allclose(with_start.density[big], d[big], rtol=1e-7)
    np.testing.assert_allclose(with_start._cdf_grid, without._cdf_grid, rtol=0, atol=1e-12)
    assert with_start.support == without.support
    a, b = with_start.stats, without.stats
    assert (a.n_certified, a.n_verified, a.n_uncertified) == (b.n_certified, b.n_verified, b.n_uncertified)
    assert a.n_newton_steps < b.n_newton_steps
