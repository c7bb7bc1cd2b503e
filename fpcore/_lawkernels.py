"""Compiled kernels (numba) that build the laws of ``D^2`` (:mod:`fpcore._activations`).

Two loops dominate building a contour rule and its checks, and both are per-node scalar work
that numpy can only do with many passes over temporary arrays:

* :func:`sigma_nodes`: the path's nodes, ``sigma(h_k) = k`` for the integers ``k`` between
  ``sigma(h_lo)`` and ``sigma(h_hi)`` (safeguarded Newton per node, then one polishing step), the
  same iteration :func:`fpcore._activations._contour_rule` ran vectorised;
* :func:`short_rule_errors`: the table of ``|Phi_s - Phi_c|`` on Bernstein ellipses behind
  :attr:`fpcore._activations.D2Law.short_check` (``Phi = sum w v / (1 - u v)``), with the complex
  divisions written out so that the sum over atoms vectorises.

and one that evaluates an equation with them on the real line:

* :func:`log_inverse_contour_real`: ``log|M^{-1}(m)|``, its slope and sign for real ``m > 0``
  with the groups whose contour rule the solver uses taken by that rule (``Re psi_g(u_g) = k_g m``
  by safeguarded Newton over the rule's complex nodes), as
  :func:`fpcore._edges._log_inverse_contour` does in numpy; behind the upper edge
  :func:`fpcore._edges.upper_edge`.

Without numba the same functions run as Python (slowly, but with the same results).
"""

from __future__ import annotations

import math

import numpy as np

# the solver's decorators (numba, cached, numpy's error model; plain Python without numba)
from ._fastchain import _jit, _jit_fast as _jit_sum, _rational_real, _u_real


@_jit
def _sigma(h, A, B, kap, cl, ce):
    """``sigma(h)`` and ``sigma'(h)`` of the contour rule's path variable: ``int sqrt(A^2 + B^2
    h^2) dh`` plus ``kap asinh((h - h_0) / e_0)`` per cluster point ``h_0`` (scale ``e_0``)."""
    r = math.sqrt(A * A + (B * h) ** 2)
    if B > 0:
        val = 0.5 * (h * r + A * A / B * math.asinh(B * h / A))
    else:
        val = A * h
    der = r
    for j in range(cl.size):
        x = h - cl[j]
        val = val + kap * math.asinh(x / ce[j])
        der = der + kap / math.sqrt(x * x + ce[j] * ce[j])
    return val, der


@_jit
def _sigma2(h, A, B, kap, cl, ce):
    """:func:`_sigma` and ``sigma''(h)``."""
    r = math.sqrt(A * A + (B * h) ** 2)
    if B > 0:
        val = 0.5 * (h * r + A * A / B * math.asinh(B * h / A))
        der2 = B * B * h / r
    else:
        val = A * h
        der2 = 0.0
    der = r
    for j in range(cl.size):
        x = h - cl[j]
        val = val + kap * math.asinh(x / ce[j])
        rr = x * x + ce[j] * ce[j]
        inv = 1.0 / math.sqrt(rr)
        der = der + kap * inv
        der2 = der2 - kap * x * inv / rr
    return val, der, der2


@_jit
def sigma_values(h, A, B, kap, cl, ce):
    """``sigma`` and ``sigma'`` (:func:`_sigma`) at every ``h``."""
    v = np.empty(h.size)
    d = np.empty(h.size)
    for i in range(h.size):
        v[i], d[i] = _sigma(h[i], A, B, kap, cl, ce)
    return v, d


@_jit
def sigma_nodes(k, h_lo, h_hi, A, B, kap, cl, ce, hg):
    """The nodes ``h_k`` with ``sigma(h_k) = k`` in ``[h_lo, h_hi]`` and ``dh = 1 / sigma'(h_k)``;
    ``ok`` False when a node did not converge in 300 steps.

    Starts from the inverse of ``sigma`` interpolated (cubic Hermite, with ``sigma'``) on the
    grid ``hg`` (sorted, resolving the clusters); Newton inside the node's bracket while it at
    least halves ``|sigma - k|`` (always in the first four steps), else bisection; stops at
    ``|sigma - k| <= 1e-12 max(|k|, 1)`` or a bracket below ``1e-15 |h|``; then one Newton step
    with the last ``sigma``, kept where it stays in the bracket (the nodes to rounding: the
    trapezoidal rule's nodes must be uniform in ``sigma``), and ``sigma'`` moved with it by
    ``sigma''`` (:func:`_sigma2`) for ``dh``: one evaluation of ``sigma`` per node where the
    interpolated start is already within the tolerance (most nodes), where two polishing
    steps took two."""
    m = hg.size
    sg = np.empty(m)
    dg = np.empty(m)
    for i in range(m):
        sg[i], dg[i] = _sigma(hg[i], A, B, kap, cl, ce)
    n = k.size
    hk = np.empty(n)
    dh = np.empty(n)
    ok = True
    j = 0
    for i in range(n):
        ki = k[i]
        # the initial guess: h(sigma) on [sg[j], sg[j + 1]] (k increasing: j only moves up)
        while j < m - 2 and sg[j + 1] < ki:
            j += 1
        s0, s1 = sg[j], sg[j + 1]
        if ki <= s0:
            h = hg[j]
        elif ki >= s1:
            h = hg[j + 1]
        else:
            w = s1 - s0
            t = (ki - s0) / w
            t2, t3 = t * t, t * t * t
            h = ((2 * t3 - 3 * t2 + 1) * hg[j] + (t3 - 2 * t2 + t) * w / dg[j]
                 + (-2 * t3 + 3 * t2) * hg[j + 1] + (t3 - t2) * w / dg[j + 1])
            if not (hg[j] <= h <= hg[j + 1]):
                h = hg[j] + t * (hg[j + 1] - hg[j])
        lo, hi = h_lo, h_hi
        prev = np.inf
        tol = 1e-12 * max(abs(ki), 1.0)
        done = False
        v, d, d2 = 0.0, 1.0, 0.0
        for it in range(300):
            v, d, d2 = _sigma2(h, A, B, kap, cl, ce)
            fv = v - ki
            if abs(fv) <= tol or hi - lo <= 1e-15 * abs(h):
                done = True
                break
            if fv < 0:
                lo = h
            else:
                hi = h
            hn = h - fv / d
            newton = (hn >= lo) and (hn <= hi) and ((it < 4) or (abs(fv) <= 0.5 * prev))
            prev = abs(fv)
            h = hn if newton else 0.5 * (lo + hi)
        if not done:
            ok = False
            v, d, d2 = _sigma2(h, A, B, kap, cl, ce)
        # |sigma - k| <= 1e-12 |k|: one Newton step puts the node within rounding of sigma = k
        # (the next step would be (sigma''/sigma') step^2 / 2, below 1e-20 |k|), and sigma' there
        # is sigma' + sigma'' step to the same order (sigma' varies on the scale of the clusters'
        # e_0, which the nodes resolve)
        step = -(v - ki) / d
        hn = h + step
        if hn >= lo and hn <= hi:
            h = hn
            d = d + d2 * step
        hk[i] = h
        dh[i] = 1.0 / d
    return hk, dh, ok


@_jit_sum
def _phi_complex(ur, ui, pr, pi, vr, vi):
    """``sum p / (1 - u v)`` over complex atoms ``v`` (``p = w v``), the division written out."""
    sr = 0.0
    si = 0.0
    for k in range(vr.size):
        ar = 1.0 - (ur * vr[k] - ui * vi[k])
        ai = -(ur * vi[k] + ui * vr[k])
        inv = 1.0 / (ar * ar + ai * ai)
        sr += (pr[k] * ar + pi[k] * ai) * inv
        si += (pi[k] * ar - pr[k] * ai) * inv
    return sr, si


@_jit_sum
def _phi_real(ur, ui, p, v):
    """``sum p / (1 - u v)`` over real atoms ``v`` (``p = w v``)."""
    sr = 0.0
    si = 0.0
    for k in range(v.size):
        ar = 1.0 - ur * v[k]
        ai = -ui * v[k]
        inv = p[k] / (ar * ar + ai * ai)
        sr += ar * inv
        si -= ai * inv
    return sr, si


@_jit
def short_rule_errors(cv, cw, sv, sw, vmax, rhos, nth):
    """Largest ``|Phi_s - Phi_c|`` on the upper half of each Bernstein ellipse ``E_rho`` (foci
    ``0``, ``vmax``) in ``t = 1/u``, sampled at ``nth + 1`` angles: ``Phi = sum w v / (1 - u v)``
    (``psi = u Phi``), ``c`` the contour rule ``(cv, cw)``, ``s`` a short real rule ``(sv, sw)``.
    The difference is analytic in ``t`` outside the ellipse (and at infinity), real on the real
    axis, so its largest value outside ``E_rho`` is taken on it (maximum modulus; conjugate
    symmetry for the lower half, where the contour rule does not stand for the law). The log
    potentials' difference needs no table of its own (:func:`fpcore._fastchain._lp_bound`). A
    non-finite difference counts as infinite."""
    pc = cw * cv
    pr, pi = np.ascontiguousarray(pc.real), np.ascontiguousarray(pc.imag)
    vr, vi = np.ascontiguousarray(cv.real), np.ascontiguousarray(cv.imag)
    ps = sw * sv
    L = rhos.size
    e_psi = np.zeros(L)
    for j in range(L):
        r = rhos[j]
        for i in range(nth + 1):
            th = math.pi * i / nth
            c, sn = math.cos(th), math.sin(th)
            t = complex(0.5 * vmax * (1.0 + 0.5 * (r + 1.0 / r) * c), 0.25 * vmax * (r - 1.0 / r) * sn)
            u = 1.0 / t
            cr, ci = _phi_complex(u.real, u.imag, pr, pi, vr, vi)
            sr, si = _phi_real(u.real, u.imag, ps, sv)
            d = math.hypot(sr - cr, si - ci)
            e_psi[j] = max(e_psi[j], d if math.isfinite(d) else np.inf)
    return e_psi


@_jit
def union_sorted2(x, y):
    """``np.unique(np.r_[x, y])`` for sorted ``x`` and ``y``: one merge, equal values kept once."""
    out = np.empty(x.size + y.size)
    i = j = n = 0
    while i < x.size or j < y.size:
        if j >= y.size or (i < x.size and x[i] <= y[j]):
            v = x[i]
            i += 1
        else:
            v = y[j]
            j += 1
        if n == 0 or v != out[n - 1]:
            out[n] = v
            n += 1
    return out[:n]


@_jit_sum
def _re_psi_real_u(u, pr, pi, vr, vi):
    """``Re sum p / (1 - u v)`` and ``Re sum p / (1 - u v)^2`` over complex atoms ``v`` (``p = w
    v``) at real ``u`` (``psi = u Phi``, ``psi' = sum p / (1 - u v)^2``), the divisions written out."""
    s = 0.0
    d = 0.0
    for k in range(vr.size):
        ar = 1.0 - u * vr[k]
        ai = -u * vi[k]
        inv = 1.0 / (ar * ar + ai * ai)
        qr = (pr[k] * ar + pi[k] * ai) * inv  # p / q = p conj(q) / |q|^2
        qi = (pi[k] * ar - pr[k] * ai) * inv
        s += qr
        d += (qr * ar + qi * ai) * inv  # Re (p / q) / q
    return s, d


@_jit
def log_inverse_contour_real(ms, a, e, log_c, V, W, kk, nn, vmax, vmin, p, S, mu1, PR, PI, VR, VI, inuse,
                             hi0, top):
    """``log|M^{-1}(m)|``, its derivative in ``m`` and the sign of ``M^{-1}(m)`` at real ``m > 0``
    (:func:`fpcore._edges._log_inverse_contour`): the rational factors ``(a, e, log_c)``; each
    group ``g`` by its real atoms ``(V[g], W[g])`` (:func:`fpcore._fastchain._u_real`), or, where
    ``inuse[g]``, by its contour rule (``p = w v`` and ``v`` split into ``PR``, ``PI``, ``VR``,
    ``VI``): ``u_g`` in ``(0, hi0[g])`` with ``Re psi_g(u_g) = k_g m`` by safeguarded Newton from
    the real atoms' ``u_g`` (``Re psi_g`` increases there), NaN where ``k_g m >= top[g] = Re
    psi_g(hi0[g])`` (the rule does not hold beyond ``hi0[g]``)."""
    n = ms.size
    G = kk.size
    val = np.empty(n)
    slope = np.empty(n)
    sign = np.empty(n)
    prev = np.full(G, np.nan)
    for i in range(n):
        m = ms[i]
        v, sl, sg = _rational_real(m, a, e, log_c)
        for g in range(G):
            w = m * kk[g]
            ug, dps = _u_real(w, V[g], W[g], vmax[g], vmin[g], p[g], S[g], mu1[g], prev[g])
            prev[g] = ug
            if inuse[g] and not w < top[g]:
                ug = np.nan
                dps = np.nan
            elif inuse[g]:
                h = hi0[g]
                u = ug if (math.isfinite(ug) and 0.0 < ug < h) else 0.5 * h
                lo, hi = 0.0, h
                for _ in range(200):  # halvings at worst: below double precision for (0, hi0)
                    s, df = _re_psi_real_u(u, PR[g], PI[g], VR[g], VI[g])
                    f = u * s - w
                    if f < 0.0:
                        lo = u
                    else:
                        hi = u
                    un = u - f / df
                    if not (math.isfinite(un) and lo < un < hi):
                        un = 0.5 * (lo + hi)
                    done = abs(un - u) <= 1e-15 * u or hi - lo <= 1e-15 * hi
                    u = un
                    if done:
                        break
                ug = u
                dps = _re_psi_real_u(u, PR[g], PI[g], VR[g], VI[g])[1]
            v -= nn[g] * math.log(abs(ug))
            sl -= nn[g] * kk[g] / (dps * ug)
            if ug < 0.0 and int(nn[g]) % 2 == 1:
                sg = -sg
            elif not ug == ug:
                sg = np.nan
        val[i] = v
        slope[i] = sl
        sign[i] = sg
    return val, slope, sign


# -- phi' of the built-in smooth activations, compiled ---------------------------------------------
# The same closed forms as :func:`fpcore._activations._r3tanh` and its siblings (real ``h``: ``g``,
# ``g'``, ``g''``) and :func:`fpcore._activations._cdtanh` and its siblings (complex ``h``: ``g``),
# one pass per array instead of a dozen numpy temporaries: the contour rule evaluates them on
# its probe grid (4000 to 20000 points), on its turning points' brackets and on its nodes, for
# every law. ``kind``: the index in :data:`KINDS`; ``a``: erf's scale (unused by the others).
KINDS = ("tanh", "sigmoid", "gelu", "silu", "softplus", "erf")
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@_jit
def real3(kind, a, h):
    """``g, g', g''`` at every real ``h`` (1-D) of ``phi'`` of the activation ``KINDS[kind]``."""
    n = h.size
    g0 = np.empty(n)
    g1 = np.empty(n)
    g2 = np.empty(n)
    for i in range(n):
        x = h[i]
        if kind == 0:  # tanh: sech^2 without overflow
            e = math.exp(-2.0 * abs(x))
            g = 4.0 * e / ((1.0 + e) * (1.0 + e))
            t = (1.0 - e) / (1.0 + e)
            if x < 0:
                t = -t
            elif not x > 0:
                t = 0.0 * t
            g0[i] = g
            g1[i] = -2.0 * t * g
            g2[i] = g * (4.0 * t * t - 2.0 * g)
        elif kind == 5:  # erf(a h)
            c = 2.0 * a / math.sqrt(math.pi)
            a2 = a * a
            g = c * math.exp(-((a * x) ** 2))
            g0[i] = g
            g1[i] = -2.0 * a2 * x * g
            g2[i] = (4.0 * a2 * a2 * x * x - 2.0 * a2) * g
        elif kind == 2:  # GELU
            ph = math.exp(-0.5 * x * x) * _INV_SQRT_2PI
            g0[i] = 0.5 * math.erfc(-x * _SQRT_HALF) + x * ph
            g1[i] = ph * (2.0 - x * x)
            g2[i] = ph * x * (x * x - 4.0)
        else:  # sigmoid, SiLU, softplus: sigma(h), sigma (1 - sigma), 1 - 2 sigma without cancellation
            e = math.exp(-abs(x))
            sg = 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)
            p = e / ((1.0 + e) * (1.0 + e))
            t = (1.0 - e) / (1.0 + e)
            d = -t if x >= 0 else t
            if kind == 1:
                g0[i] = p
                g1[i] = p * d
                g2[i] = p * (d * d - 2.0 * p)
            elif kind == 3:
                g0[i] = sg * (1.0 + x * (1.0 - sg))
                g1[i] = p * (2.0 + x * d)
                g2[i] = p * (d * (3.0 + x * d) - 2.0 * x * p)
            else:
                g0[i] = sg
                g1[i] = p
                g2[i] = p * d
    return g0, g1, g2


@_jit
def complex_dphi(kind, a, z):
    """``phi'(z)`` at every complex ``z`` (1-D) for the activations ``KINDS[kind]`` other than
    GELU (whose complex ``erfc`` numba lacks)."""
    n = z.size
    out = np.empty(n, dtype=np.complex128)
    for i in range(n):
        x = z[i]
        if kind == 5:
            out[i] = (2.0 * a / math.sqrt(math.pi)) * np.exp(-((a * x) ** 2))
            continue
        sgn = 1.0 if x.real >= 0 else -1.0
        if kind == 0:
            e = np.exp(-2.0 * x * sgn)
            out[i] = 4.0 * e / ((1.0 + e) * (1.0 + e))
        elif kind == 1:
            e = np.exp(-x * sgn)
            out[i] = e / ((1.0 + e) * (1.0 + e))
        else:
            e = np.exp(-x * sgn)
            sg = 1.0 / (1.0 + e) if x.real >= 0 else e / (1.0 + e)
            out[i] = sg if kind == 4 else sg * (1.0 + x * (1.0 - sg))
    return out
