"""The basins' joint-Newton kernel as it was before the one-log product (fpcore._basins'
``_general_pixel``): every factor of ``M^{-1}`` by its own complex log, each short rule's Gauss
bound looked up row by row. Kept here, compiled, as the reference ``tests/test_basins.py`` pins
the fast kernel to (same root at every pixel of fixed grids, up to a tiny fraction of boundary
pixels)."""

from __future__ import annotations

import math

import numpy as np

from fpcore._basins import (_CLOSE, _ESCAPE, _RES_TOL, _RULE_TOL, _STEP_TOL, _TWO_PI, _general_args, _label,
                            _near_root)  # fmt: skip
from fpcore._fastchain import _cut_arg, _jit, _psi_sums


@_jit
def _bound_row(u, vmax, A):
    """Largest ``j`` with ``A[j] <= |t| + |t - 1|``, ``t = 1 / (u vmax)``; -1 if none (``u`` on or
    near the cut ``[1 / vmax, inf)``)."""
    t = 1.0 / (u * vmax)
    size = abs(t) + abs(t - 1.0)
    if not (size >= A[0]):
        return -1
    lo = 0
    hi = A.size - 1
    if size >= A[hi]:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if A[mid] <= size:
            lo = mid
        else:
            hi = mid
    return lo


@_jit
def _gres_checked(z, m, u, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab, tol, kk, nn, rg, dps):
    """``_fastchain._gres`` with each group's ``psi_g`` from its short Gauss rule ``(Vs[g],
    Ws[g])`` where the Gauss error bound at ``u_g`` (law on ``[0, vmax[g]]``, read off the table
    ``tab`` of :func:`_bound_table`) is at most ``tol |k_g m|``, else from its longer rule
    ``(Vm[g], Wm[g])`` where that one's bound is, and from the full law ``(V[g], W[g])``
    elsewhere: the full law's ``r_0``, ``r_g`` to that tolerance at every iterate. ``vmax[g] <
    0``: the short rule is the law itself."""
    r0 = complex(math.log(abs(z)), math.atan2(z.imag, z.real)) - log_c
    gp = 0.0 + 0.0j
    nan = complex(np.nan, np.nan)
    for j in range(a.size):
        d = m - a[j]
        if d == 0.0:
            return nan, nan
        r0 -= e[j] * complex(math.log(abs(d)), _cut_arg(d))
        gp -= e[j] / d
    for g in range(kk.size):
        ug = u[g]
        if ug == 0.0:
            return nan, nan
        r0 += nn[g] * complex(math.log(abs(ug)), _cut_arg(ug))
        if vmax[g] < 0.0:
            s, sd = _psi_sums(ug.real, ug.imag, Vs[g], Ws[g])
        else:
            lim = tol * abs(kk[g] * m)
            j = _bound_row(ug, vmax[g], tab[0])
            if j >= 0 and tab[1, j] <= lim:
                s, sd = _psi_sums(ug.real, ug.imag, Vs[g], Ws[g])
            elif j >= 0 and tab[2, j] <= lim:
                s, sd = _psi_sums(ug.real, ug.imag, Vm[g], Wm[g])
            else:
                s, sd = _psi_sums(ug.real, ug.imag, V[g], W[g])
        rg[g] = ug * s - kk[g] * m
        dps[g] = sd
    return r0, gp


@_jit
def _general_pixel_reference(m, z, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab, kk, nn, mu, max_iter, u, rg, dps, roots,
                             nr):  # fmt: skip
    """Joint Newton on ``(m, u)`` from ``m``, ``u_g = k_g m / E[D_g^2]``: (limit, steps, converged).

    Each step uses the checked short rules (:func:`_gres_checked`). Early exit: once a step is
    below ``_CLOSE`` relative and the iterate lies close to a root already found (one that passed
    the convergence test below; :func:`_near_root`), Newton is in that root's quadratic
    convergence region and that root is returned (two more steps counted for
    the shading)."""
    G = kk.size
    for g in range(G):
        u[g] = kk[g] * m / mu[g]
    for it in range(max_iter):
        r0, gp = _gres_checked(z, m, u, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab, _RULE_TOL, kk, nn, rg, dps)
        if not (math.isfinite(r0.real) and math.isfinite(r0.imag) and math.isfinite(gp.real)):
            return m, max_iter, False
        r0 = r0 - 1j * _TWO_PI * math.floor(r0.imag / _TWO_PI + 0.5)
        num = r0
        den = gp
        for g in range(G):
            if u[g] * dps[g] == 0.0:
                return m, max_iter, False
            c = nn[g] / (u[g] * dps[g])
            num -= c * rg[g]
            den += c * kk[g]
        if den == 0.0:
            return m, max_iter, False
        dm = -num / den
        if not (math.isfinite(dm.real) and math.isfinite(dm.imag)):
            return m, max_iter, False
        m = m + dm
        if abs(m) > _ESCAPE:
            return m, max_iter, False
        small = abs(dm) <= _STEP_TOL * max(abs(m), 1e-300)
        for g in range(G):
            du = (kk[g] * dm - rg[g]) / dps[g]
            u[g] = u[g] + du
            if not (abs(du) <= _STEP_TOL * abs(u[g])):
                small = False
        if small:
            r0, gp = _gres_checked(z, m, u, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab, _RULE_TOL, kk, nn, rg, dps)
            r0 = r0 - 1j * _TWO_PI * math.floor(r0.imag / _TWO_PI + 0.5)
            ok = abs(r0) <= _RES_TOL
            for g in range(G):
                if not (abs(rg[g]) <= _RES_TOL * max(abs(kk[g] * m), 1e-300)):
                    ok = False
            return m, it + 1, ok
        if nr > 0 and abs(dm) <= _CLOSE * abs(m):
            r = _near_root(m, dm, roots, nr)
            if r >= 0:
                return roots[r], min(it + 3, max_iter - 1), True
    return m, max_iter, False




@_jit
def _reference_image(re, im, z, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab, kk, nn, mu, max_iter, merge, labels, its,
                     roots):  # fmt: skip
    G = kk.size
    u = np.empty(G, dtype=np.complex128)
    rg = np.empty(G, dtype=np.complex128)
    dps = np.empty(G, dtype=np.complex128)
    nr = 0
    for i in range(im.size):
        for j in range(re.size):
            m, used, ok = _general_pixel_reference(complex(re[j], im[i]), z, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab,
                                                   kk, nn, mu, max_iter, u, rg, dps, roots, nr)  # fmt: skip
            lab, nr = _label(m, ok, roots, nr, merge)
            labels[i, j] = lab
            its[i, j] = used if lab >= 0 else max_iter
    return nr


def reference_basins(eq, z, re, im, max_iter=40, atoms=16, merge=1e-6):
    """``(labels, roots, iterations)`` of the reference kernel, Newton from every pixel, one
    thread, labels in order of discovery (compare pixels by their roots)."""
    rational, a, e, general = _general_args(eq, atoms)
    assert not rational
    re = np.ascontiguousarray(re, dtype=float)
    im = np.ascontiguousarray(im, dtype=float)
    labels = np.full((im.size, re.size), -1, dtype=np.int64)
    its = np.full((im.size, re.size), int(max_iter), dtype=np.int64)
    roots = np.empty(1024, dtype=np.complex128)
    with np.errstate(all="ignore"):
        nr = _reference_image(re, im, complex(z), a, e, float(eq.log_c), *general, int(max_iter), merge, labels, its,
                              roots)  # fmt: skip
    return labels, roots[:nr].copy(), its
