"""The tail mass's short real rules take the branch-free argument kernel
(``_fastchain._log_potential_short``: ``_lp_angles`` alone for a row of real atoms and weights):
the same sum as the scalar kernel ``_log_potential_arg`` to rounding, on and off the real axis and
on an atom's pole; and ``tail_mass_mixed`` / ``tail_mass`` equal a loop over the scalar kernel as
before."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fpcore
from fpcore import _fastchain
from fpcore._equation import build_equation
from fpcore._lilypad import solve

pytestmark = pytest.mark.skipif(not _fastchain._HAVE_NUMBA, reason="compiled kernels")

NETS = {
    "tanh-tapered": fpcore.Network([784, 400, 200, 100, 10], "tanh", sigma_w2=1.05, sigma_b2=1e-4),
    "gelu-square": fpcore.Network([500] * 4, "gelu", sigma_w2=2.0),
}


def _us(vmax, rng, n=30):
    us = (rng.uniform(0.01, 30.0, n) / vmax) * np.exp(-1j * rng.uniform(0.0, np.pi, n))
    return np.r_[us, 0.0, 0.5 / vmax, 2.0 / vmax, 50.0 / vmax, 2.0 / vmax - 1e-14j, -3.0 / vmax]


@pytest.mark.parametrize("name", list(NETS))
def test_short_row_kernel_equals_scalar_kernel(name):
    eq = build_equation(NETS[name])
    Vs, Ws = eq.tail_short[:2] if eq.tail_short is not None else eq.packed_short[:2]
    Ks = _fastchain.live_sizes(Ws)
    vr, vi, wr, _, cplx, r2, _, _ = _fastchain._split_rules(Vs, Ws)
    real = _fastchain.real_rows(cplx, Ks)
    rows = np.flatnonzero(real & (Ks <= _fastchain._LP_SHORT))
    assert rows.size > 0
    rng = np.random.default_rng(11)
    for g in rows:
        k = Ks[g]
        scale = max(1.0, float(np.sum(np.abs(Ws[g, :k]))))
        pole = 1.0 / Vs[g, k // 2]  # 1 - u v = 0 for one atom
        for uu in np.r_[_us(np.max(np.abs(Vs[g, :k])), rng), pole, pole - 1e-12j]:
            uu = complex(uu)
            a = _fastchain._log_potential_arg(uu.real, uu.imag, Vs[g, :k], Ws[g, :k])
            b = _fastchain._log_potential_short(uu.real, uu.imag, vr[g, :k], vi[g, :k], wr[g, :k], cplx[g, :k],
                                                Vs[g, :k], Ws[g, :k], r2[:k], real[g])
            assert abs(a - b) <= 1e-13 * scale, (g, uu, a, b)


def test_real_rows_mask():
    V = np.array([[0.5, 1.0, 0.0], [0.5, 1.0 - 0.1j, 0.0], [0.5, 0.0, 0.3 - 0.2j]], dtype=complex)
    W = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]], dtype=complex)
    W[2, 2] = 0.0  # a complex atom past the live atoms does not count
    _, _, _, _, cplx, _, _, _ = _fastchain._split_rules(V, W)
    K = _fastchain.live_sizes(W)
    assert list(_fastchain.real_rows(cplx, K)) == [True, False, True]


def _reference_mixed(m, u, a, e, V, W, Vs, Ws, check, vmax, rhos, e_psi, kk, nn, tol):
    """tail_mass_mixed as it was: the scalar kernel on the short rows."""
    K, Ks = _fastchain.live_sizes(W), _fastchain.live_sizes(Ws)
    vr, vi, wr, wi, cplx, r2, bits, mbits = _fastchain._split_rules(V, W)
    out, used = np.empty(m.size), np.zeros(m.size, dtype=np.int64)
    for i in range(m.size):
        im = _fastchain._roots_arg(m[i], a, e)
        for g in range(kk.size):
            ug = u[i, g]
            short = False
            if check[g] and ug != 0.0:
                jj = _fastchain._ellipse_index(ug, vmax[g], rhos[g])
                short = jj >= 0 and nn[g] * _fastchain._lp_bound(ug, vmax[g], rhos[g], e_psi[g], jj) <= tol * kk[g]
            if short:
                lp = _fastchain._log_potential_arg(ug.real, ug.imag, Vs[g, :Ks[g]], Ws[g, :Ks[g]])
                used[i] += 1
            else:
                k = K[g]
                lp = _fastchain._log_potential_fast(ug.real, ug.imag, vr[g, :k], vi[g, :k], wr[g, :k], wi[g, :k],
                                                    cplx[g, :k], V[g, :k], W[g, :k], r2, bits, mbits)
            im -= nn[g] * (_fastchain._arg_lower(ug) - lp / kk[g])
        out[i] = im / math.pi
    return out, used


@pytest.mark.parametrize("name", list(NETS))
def test_tail_mass_kernels_equal_the_scalar_loop(name):
    from fpcore._spectrum import _TAIL_SHORT_TOL

    net = NETS[name]
    s = fpcore.jacobian_spectrum(net, n_points=120)
    eq = build_equation(net)
    r = solve(eq, s.x.astype(complex), scale=s.lambda_max)
    sel = np.flatnonzero(r.verified)
    m, u = np.ascontiguousarray(r.m[sel]), np.ascontiguousarray(r.u[sel])
    _, _, k, n = eq.packed
    V, W = eq.packed_complex
    args = (eq.roots.astype(float), eq.exps.astype(float))
    if eq.tail_short is not None:
        got, gu = _fastchain.tail_mass_mixed(m, u, *args, V, W, *eq.tail_short, k, n, _TAIL_SHORT_TOL)
        want, wu = _reference_mixed(m, u, *args, V, W, *eq.tail_short, k, n, _TAIL_SHORT_TOL)
        assert np.array_equal(gu, wu) and gu.sum() > 0
        assert np.allclose(got, want, rtol=0, atol=1e-13)
    # tail_mass with the short real rules (rows of at most _LP_SHORT atoms)
    Vs, Ws = eq.packed_short[:2]
    got = _fastchain.tail_mass(m, u, *args, Vs, Ws, k, n)
    Ks = _fastchain.live_sizes(Ws)
    want = np.empty(m.size)
    for i in range(m.size):
        im = _fastchain._roots_arg(m[i], *args)
        for g in range(k.size):
            lp = _fastchain._log_potential_arg(u[i, g].real, u[i, g].imag, Vs[g, :Ks[g]], Ws[g, :Ks[g]])
            im -= n[g] * (_fastchain._arg_lower(u[i, g]) - lp / k[g])
        want[i] = im / math.pi
    assert np.allclose(got, want, rtol=0, atol=1e-13)
