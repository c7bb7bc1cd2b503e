"""The check below the lowest support piece (``_warn_mass_below``) reuses the solution that
``_support_intervals`` found and verified at the same point (0.1 % below the lower edge it
located), instead of walking down from far above a second time (some 10 % of a tapered tanh
spectrum at ``L = 50``)."""

from __future__ import annotations

import warnings

import numpy as np

import fpcore
from fpcore import _spectrum
from fpcore._equation import build_equation


def _tapered(L: int) -> list[int]:
    # benchmarks/bench_matrix.py's "tapered" profile
    return [max(1, round(784 * (10 / 784) ** (l / L))) for l in range(L + 1)]


def _net() -> fpcore.Network:
    return fpcore.Network(_tapered(10), "tanh", sigma_w2=1.05, sigma_b2=1e-4)


def _eq():
    eq = build_equation(_net(), "JtJ")
    atom0 = eq.atoms[0][1] if eq.atoms and eq.atoms[0][0] == 0.0 else 0.0  # 1 - N_L / N_0
    return eq, atom0


def test_support_check_records_the_points_below_the_edge():
    eq, atom0 = _eq()
    checked: dict[float, float] = {}
    lo, hi = _spectrum._support_intervals(eq, atom0, [], checked)[0]
    assert lo > 0
    x = lo * 0.999
    assert x in checked and lo * (1.0 - _spectrum._EDGE_GAP) in checked
    # the recorded F is the solver's at that point (a gap: no mass below the edge)
    r = _spectrum.solve(eq, np.array([x + 0j]), scale=hi)
    assert bool(r.verified[0])
    F = float(1.0 - _spectrum._tail_mass(eq, r.m, r.u, r.short)[0])
    assert abs(checked[x] - F) <= 1e-12
    assert checked[x] - atom0 <= _spectrum._EDGE_MASS


def test_spectrum_solves_the_point_below_the_edge_once(monkeypatch):
    # expanding tanh, L = 10: the grid's first point lies above the checked edge (at L = 10
    # tapered, the grid finds a gap above the located edge: the piece starts higher and that
    # point is solved as before)
    calls = []
    solve = _spectrum.solve

    def counting(eq, t, *args, **kw):
        calls.append(np.asarray(t).size)
        return solve(eq, t, *args, **kw)

    net = fpcore.Network([round(100 * 1.25**l) for l in range(11)], "tanh", sigma_w2=1.05, sigma_b2=1e-4)
    s0 = fpcore.jacobian_spectrum(net, n_points=200)
    monkeypatch.setattr(_spectrum, "solve", counting)
    s1 = fpcore.jacobian_spectrum(net, n_points=200)
    assert calls == [s1.x.size]  # the grid only: the check below the edge was not solved again
    assert s1.support[0][0] > 0
    np.testing.assert_array_equal(s1.density, s0.density)


def test_unchecked_point_is_still_solved(monkeypatch):
    # a lower end the support check did not verify (e.g. a gap found on the grid) is solved
    eq, atom0 = _eq()
    lo, hi = _spectrum._support_intervals(eq, atom0, [])[0]
    calls = []
    solve = _spectrum.solve

    def counting(eq_, t, *args, **kw):
        calls.append(np.asarray(t).size)
        return solve(eq_, t, *args, **kw)

    monkeypatch.setattr(_spectrum, "solve", counting)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _spectrum._warn_mass_below(eq, lo, atom0, [], hi, {})
        _spectrum._warn_mass_below(eq, lo, atom0, [], hi, {lo * 0.999: atom0})
    assert calls == [1]


def test_recorded_mass_below_still_warns():
    # the warning reads the recorded F as it read the solved one
    eq, atom0 = _eq()
    lo, hi = _spectrum._support_intervals(eq, atom0, [])[0]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        _spectrum._warn_mass_below(eq, lo, atom0, [], hi, {lo * 0.999: atom0 + 0.01})
    assert any("lies below the lowest located support" in str(x.message) for x in w)


def test_unchecked_point_walks_from_the_shared_start():
    # a gap found on the grid above the located edge (tapered tanh at L = 10): the piece's lower
    # end lies above the checked points; its check walks from the checks' shared point
    # (solve_from) instead of from far above: the same root as solve, in fewer Newton steps
    from fpcore import _lilypad

    eq, atom0 = _eq()
    starts: list = []
    lo, hi = _spectrum._support_intervals(eq, atom0, [], {}, starts)[0]
    s = fpcore.jacobian_spectrum(_net(), n_points=1000)
    lo_piece = s.support[0][0]
    assert lo_piece > 2 * lo and len(starts) == 1
    t = np.array([lo_piece * 0.999 + 0j])
    a = _lilypad.solve(eq, t, scale=hi)
    b = _lilypad.solve_from(eq, t, starts[0], hi)
    assert bool(a.verified[0]) and bool(b.verified[0])
    np.testing.assert_allclose(b.m, a.m, rtol=1e-10, atol=0.0)
    np.testing.assert_allclose(b.u, a.u, rtol=1e-10, atol=0.0)
    assert b.n_newton < a.n_newton
    Fa = _spectrum._tail_mass(eq, a.m, a.u, a.short)
    Fb = _spectrum._tail_mass(eq, b.m, b.u, b.short)
    assert abs(Fa[0] - Fb[0]) <= 1e-12
    # a start on the real axis is no start: solve decides
    c = _lilypad.solve_from(eq, t, (complex(lo, 0.0), starts[0][1], starts[0][2]), hi)
    np.testing.assert_array_equal(c.m, a.m)
