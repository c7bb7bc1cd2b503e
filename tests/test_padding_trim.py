"""The compiled sweep and the grid certificate sum each law only up to its last atom.

The laws of ``D^2`` are padded with zero-weight atoms to the longest one (``Equation.packed_complex``:
a quarter of the atoms of tanh's contour rules at ``L = 50``); ``grid_general`` (through
``_pack_laws``' atom counts) and ``joint_grid`` (``_row_len``) skip that padding. Results must not
depend on how much padding there is, and ``joint_grid``'s step bound (``|v_0 - r_g|`` for
``|v_g| / tau_g``) must agree with the numpy test.
"""

from __future__ import annotations

import numpy as np
import pytest

import fpcore
from fpcore import _fastchain, _lilypad
from fpcore._lilypad import _Joint

pytestmark = pytest.mark.skipif(not _fastchain._HAVE_NUMBA, reason="compiled kernels")


def _tapered(L: int) -> list[int]:
    return [max(1, round(784 * (10 / 784) ** (l / L))) for l in range(L + 1)]


@pytest.fixture(scope="module")
def grid():
    net = fpcore.Network(_tapered(6), "tanh", sigma_w2=1.05, sigma_b2=1e-4)
    s = fpcore.jacobian_spectrum(net, n_points=300)
    assert s.stats.n_certified == s.x.size
    return s


def _pad(A: np.ndarray, extra: int) -> np.ndarray:
    return np.ascontiguousarray(np.concatenate([A, np.zeros((A.shape[0], extra), dtype=A.dtype)], axis=1))


def test_sweep_independent_of_padding(grid):
    eq = grid._eq
    ev = _lilypad._General(eq)
    assert np.iscomplexobj(ev.V) and np.any(ev.W[:, -1] == 0)  # contour rules, padded
    x = grid.x
    groups = np.zeros(x.size, dtype=np.int64)
    Y = _lilypad._start_height(eq, x, grid.lambda_max)
    head = (x, groups, float(Y), float(eq.mean), eq.roots.astype(float), eq.exps.astype(float), float(eq.log_c))
    tail = (ev.k, ev.n, ev.mu, _lilypad.MAX_ROUNDS, ev.tol)
    a = _fastchain.grid_general(*head, ev.V, ev.W, *tail)
    b = _fastchain.grid_general(*head, _pad(ev.V, 37), _pad(ev.W, 37), *tail)
    assert np.array_equal(a[2], b[2]) and np.all(a[2])
    np.testing.assert_allclose(b[0], a[0], rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-12, atol=0.0)
    P, n = _fastchain._pack_laws(_pad(ev.V, 37), _pad(ev.W, 37))
    assert n.tolist() == _fastchain.live_sizes(ev.W).tolist()  # the padding is not counted


def _joint_args(cj: _Joint, pad: int = 0):
    p = (lambda A: _pad(A, pad)) if pad else (lambda A: A)
    return (p(cj.Vc), p(cj.WVc), p(cj.aVc), p(cj.aWVc), p(cj.live), cj.k, cj.n, cj.a, cj.e, cj.e0)


def test_joint_grid_independent_of_padding(grid):
    eq = grid._eq
    cj = _Joint(eq)
    t = grid.x.astype(complex)
    m, u = grid._m_grid, np.ascontiguousarray(grid._u_grid)
    a = _fastchain.joint_grid(t, m, u, *_joint_args(cj), float(eq.log_c))
    b = _fastchain.joint_grid(t, m, u, *_joint_args(cj, 29), float(eq.log_c))
    assert np.array_equal(a[0], b[0])
    np.testing.assert_allclose(b[1], a[1], rtol=1e-13, atol=0.0)
    np.testing.assert_allclose(b[2], a[2], rtol=1e-13, atol=0.0)


def test_joint_grid_matches_numpy_test(grid, monkeypatch):
    # the own segment [t_i, t_i] and the next [t_i, t_{i+1}] of joint_grid against _Joint.test
    # in numpy (which forms v_g = (v_0 - r_g) / G_g and weighs it by 1 / tau_g)
    eq = grid._eq
    cj = _Joint(eq)
    t = grid.x.astype(complex)
    m, u = grid._m_grid, np.ascontiguousarray(grid._u_grid)
    ok, R, tau = _fastchain.joint_grid(t, m, u, *_joint_args(cj), float(eq.log_c))
    monkeypatch.setattr(_fastchain, "_HAVE_NUMBA", False)
    for col, zt in ((0, t), (1, np.r_[t[1:], t[-1]])):
        o, r, ta, th = cj.test(t, zt, m, u)
        sel = np.isfinite(th) & ~np.isclose(th, 0.5, rtol=1e-6)
        sel[-1] = col == 0  # (the last point has no next one)
        assert np.all(ok[sel, col] | ~o[sel])  # what numpy certifies, the grid's test does too
        assert np.mean(ok[sel, col] == o[sel]) > 0.99
        both = sel & o & ok[:, col]
        assert both.sum() > 0.5 * sel.sum()
        # (R = 2 alpha is dominated by the rounding terms on a converged grid, ~1e-13, which the
        # two implementations sum apart: they agree to a few per cent, not to rounding)
        np.testing.assert_allclose(R[both, col], r[both], rtol=0.05)
    np.testing.assert_allclose(tau, ta, rtol=1e-6)  # (tau = 1 / |G_g| up to 5e6: G_g cancels to 1e-9)


def test_joint_chains_independent_of_padding(grid):
    """``joint_walk``, ``joint_vertical`` and ``joint_mid`` pack the full laws (``_pack_laws``): their
    Newton sums skip the zero padding to the longest law (orthogonal SiLU, tapered, L = 50: 39
    groups of about 180 atoms padded to 1939, a third of the cell's time in those sums). The
    chains reach the same points, with the same balls, whatever the padding."""
    eq = grid._eq
    cj = _Joint(eq)
    ev = cj.ev
    t = grid.x.astype(complex)
    m, u = grid._m_grid, np.ascontiguousarray(grid._u_grid)
    head = (eq.roots.astype(float), eq.exps.astype(float), float(eq.log_c))
    src, dst = np.arange(0, t.size - 5, 25), np.arange(5, t.size, 25)  # links five grid steps long
    theta = np.full(src.size, np.inf)
    cjargs = (cj.Vc, cj.WVc, cj.aVc, cj.aWVc, cj.live, cj.a, cj.e, cj.e0)
    tail = (ev.k, ev.n, *cjargs, 48, float(ev.tol), theta)
    a = _fastchain.joint_walk(t[src], m[src], u[src], t[dst], *head, ev.V, ev.W, *tail)
    b = _fastchain.joint_walk(t[src], m[src], u[src], t[dst], *head, _pad(ev.V, 41), _pad(ev.W, 41), *tail)
    assert np.all(a[-1]) and np.array_equal(a[-1], b[-1])
    for x, y in zip(a[:-1], b[:-1]):
        np.testing.assert_allclose(y, x, rtol=1e-12, atol=0.0)
    # the chain's last ball holds the grid solution at the target, as the certificate asks
    assert np.all(cj.dist(m[dst], u[dst], a[2], a[3], a[5]) <= a[4])
    Y = float(_lilypad._start_height(eq, grid.x, grid.lambda_max))
    pick = np.arange(10, t.size, 97)
    vt = (float(eq.mean), *head)
    vtail = (ev.k, ev.n, ev.mu, *cjargs, 300, float(ev.tol), True)
    c = _fastchain.joint_vertical(grid.x[pick], Y, *vt, ev.V, ev.W, *vtail)
    d = _fastchain.joint_vertical(grid.x[pick], Y, *vt, _pad(ev.V, 41), _pad(ev.W, 41), *vtail)
    assert np.any(c[-1]) and np.array_equal(c[-1], d[-1])
    for x, y in zip(c[:-1], d[:-1]):
        np.testing.assert_allclose(y, x, rtol=1e-12, atol=0.0)
    mid = 0.5 * (t[src] + t[dst])
    e = _fastchain.joint_mid(mid, m[src], u[src], m[dst], u[dst], *head, ev.V, ev.W, ev.k, ev.n, float(ev.tol))
    f = _fastchain.joint_mid(mid, m[src], u[src], m[dst], u[dst], *head, _pad(ev.V, 41), _pad(ev.W, 41), ev.k, ev.n,
                             float(ev.tol))
    assert np.all(e[2]) and np.array_equal(e[2], f[2])
    np.testing.assert_allclose(f[0], e[0], rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(f[1], e[1], rtol=1e-12, atol=0.0)


def test_real_edge_scan_independent_of_padding():
    """``log_inverse_real`` (the support edges' scan) sums each real law up to its last atom
    (``_edges._real_args``' live sizes): GELU's laws at ``L = 50`` are two thirds padding. The
    scan gives the same values, slopes, signs and ``u`` whatever the padding."""
    from fpcore import _edges

    net = fpcore.Network([300] * 9, "gelu", sigma_w2=2.0)
    eq = fpcore._equation.build_equation(net)
    V, W = eq.packed[0], eq.packed[1]
    assert not np.iscomplexobj(V) and V.shape[1] > 100
    ms = np.concatenate([-np.geomspace(1e-3, 0.9, 40), np.geomspace(1e-3, 50.0, 40)])
    a = _edges._log_inverse_compiled(eq, ms, V, W)
    b = _edges._log_inverse_compiled(eq, ms, _pad(V, 333), _pad(W, 333))
    assert np.array_equal(np.isnan(a[0]), np.isnan(b[0])) and np.any(np.isfinite(a[0]))
    for x, y in zip(a, b):
        np.testing.assert_allclose(y, x, rtol=1e-12, atol=0.0)
