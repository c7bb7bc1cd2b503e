"""Compiled kernels (numba) that build the laws of ``D^2`` (:mod:`fpcore._activations`).

Two loops dominate building a contour rule and its checks, and both are per-node scalar work
that numpy can only do with many passes over temporary arrays:

* :func:`sigma_nodes`: the path's nodes, ``sigma(h_k) = k`` for the integers ``k`` between
  ``sigma(h_lo)`` and ``sigma(h_hi)`` (safeguarded Newton per node, then one polishing step), the
  same iteration :func:`fpcore._activations._contour_rule` ran vectorised;
* :func:`short_rule_errors`: the table of ``|Phi_s - Phi_c|`` on Bernstein ellipses behind
  :attr:`fpcore._activations.D2Law.short_check` (``Phi = sum w v / (1 - u v)``), with the complex
  divisions written out so that the sum over atoms vectorises.

the rest of the rule's construction, which as numpy was some hundred small passes per law:

* :func:`real3`, :func:`complex_dphi`: ``phi'``, ``phi''``, ``phi'''`` of the built-in smooth
  activations at real arguments and ``phi'`` at complex ones (GELU's complex ``erfc`` stays
  scipy's);
* :func:`probe_range`, :func:`probe_slopes`, :func:`refine_turns`: the path's range,
  resolution and turning points off the probe grid; :func:`path_heights`: its heights ``Y``;

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
    grid ``hg`` (sorted, resolving the clusters), inside the bracket of the grid cells around it
    (the whole range ``[h_lo, h_hi]`` made some nodes next to a cluster bisect it 60 times);
    Newton inside the node's bracket while it at
    least halves ``|sigma - k|`` (always in the first four steps), else bisection; stops at
    ``|sigma - k| <= 1e-12 max(|k|, 1)``, a Newton step or a bracket below ``1e-15 |h|``; then one Newton step
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
        # the bracket: the grid cells around the node's (sigma increases; one cell more each
        # side for rounding in sg), the whole range where k is off the grid
        lo = hg[j - 1] if (j >= 1 and sg[j] < ki) else h_lo
        hi = hg[j + 2] if (j + 2 < m and sg[j + 1] >= ki) else h_hi
        prev = np.inf
        tol = 1e-12 * max(abs(ki), 1.0)
        done = False
        v, d, d2 = 0.0, 1.0, 0.0
        for it in range(300):
            v, d, d2 = _sigma2(h, A, B, kap, cl, ce)
            fv = v - ki
            # (or the Newton step is below the rounding of h: next to a cluster's centre
            # sigma' reaches kap / e_0 ~ 1e9 and |sigma - k| stays above tol)
            if abs(fv) <= tol or hi - lo <= 1e-15 * abs(h) or abs(fv) <= 4e-16 * abs(h) * d:
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
    _real3_into(kind, a, h, g0, g1, g2)
    return g0, g1, g2


@_jit
def _real3_into(kind, a, h, g0, g1, g2):
    for i in range(h.size):
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


# -- the contour rule's probe grid, compiled ---------------------------------------------------
# :func:`fpcore._activations._contour_rule` reads the path's range, its resolution (alpha, beta)
# and the turning points of ``f = g^2`` off a probe grid of 6000 to 20000 points; as numpy that
# was some forty passes over temporaries, here it is two loops.


@_jit
def probe_range(hp, gp, d1, t_min, even):
    """``(ok, vmax, h_lo, h_hi)``: ``f = gp^2``, its largest value and the range of the probe
    points where ``f >= t_min vmax`` widened by one point each side (symmetric where ``even``);
    ``ok`` False where ``gp`` or ``d1`` is not finite, ``vmax`` not positive or no point is big."""
    n = hp.size
    vmax = -np.inf
    for i in range(n):
        if not (math.isfinite(gp[i]) and math.isfinite(d1[i])):
            return False, 0.0, 0.0, 0.0
        fi = gp[i] * gp[i]
        if fi > vmax:
            vmax = fi
    if not vmax > 0:
        return False, vmax, 0.0, 0.0
    thr = t_min * vmax
    first = -1
    last = -1
    for i in range(n):
        if gp[i] * gp[i] >= thr:
            if first < 0:
                first = i
            last = i
    if first < 0:
        return False, vmax, 0.0, 0.0
    h_lo = hp[max(first - 1, 0)]
    h_hi = hp[min(last + 1, n - 1)]
    if even:
        h_hi = max(h_hi, -h_lo)
        h_lo = -h_hi
    return True, vmax, h_lo, h_hi


@_jit
def probe_slopes(hp, gp, d1, thr, h_hi, zeros_h, sat, h_c, j_c, lg_on, H):
    """The path's resolution from the probe grid: ``(alpha, beta, h_hi, turn)``.

    ``lp = |(log f)'|`` (and, where ``sat``, at least ``sqrt(w) |(log|f - 1|)'|`` beyond ``h_c``,
    ``w = exp(-1 / (h - h_c))``, with ``lg_on`` the values of ``(log|g - 1|)'`` at ``hp[j_c:]``,
    the points beyond ``h_c``; ``h_hi`` then also stops where ``|g - 1|`` has fallen by ``e^-7``
    past the last point where ``|f - 1| > 1e-14``); ``alpha`` its largest value on ``|h| <= 1``,
    ``beta`` the largest ``(lp - alpha) / |h|`` beyond, both over the points where ``f >= thr``,
    at least ``0.5`` from every zero ``zeros_h`` and at most ``h_hi``; ``turn``: the indices ``i``
    where ``g'`` changes sign between ``hp[i]`` and ``hp[i + 1]`` (a zero counting as positive),
    both points big."""
    n = hp.size
    lp = np.empty(n)
    for i in range(n):
        lp[i] = abs(2.0 * d1[i] / gp[i])
    if sat:
        for i in range(j_c, n):
            x = hp[i] - h_c
            w = math.exp(-1.0 / x) if x > 0 else 0.0
            if w > 0:
                ls = lg_on[i - j_c] + d1[i] / (gp[i] + 1.0)
                cand = math.sqrt(w) * abs(ls) if math.isfinite(ls) else 0.0
                if not (lp[i] != lp[i]) and cand > lp[i]:
                    lp[i] = cand
        last = -1
        for i in range(j_c, n):
            if hp[i] > h_c and abs(gp[i] * gp[i] - 1.0) > 1e-14:
                last = i
        if last >= 0:
            # hp[last] > h_c: every point from there on has its lg1 in lg_on
            cum = 0.0
            stop = H
            if not cum > -7.0:
                stop = hp[last]
            else:
                for i in range(last + 1, n):
                    cum += 0.5 * (lg_on[i - j_c] + lg_on[i - 1 - j_c]) * (hp[i] - hp[i - 1])
                    if not cum > -7.0:
                        stop = hp[i]
                        break
            h_hi = min(h_hi, stop)
    alpha = 0.0
    for i in range(n):
        if gp[i] * gp[i] >= thr and math.isfinite(lp[i]) and hp[i] <= h_hi and abs(hp[i]) <= 1.0:
            near = False
            for z in zeros_h:
                if abs(hp[i] - z) < 0.5:
                    near = True
            if not near and lp[i] > alpha:
                alpha = lp[i]
    alpha = max(alpha, 1e-3)
    beta = 0.0
    for i in range(n):
        if gp[i] * gp[i] >= thr and math.isfinite(lp[i]) and hp[i] <= h_hi and abs(hp[i]) > 1.0:
            near = False
            for z in zeros_h:
                if abs(hp[i] - z) < 0.5:
                    near = True
            if not near:
                b = (lp[i] - alpha) / abs(hp[i])
                if b > beta:
                    beta = b
    nt = 0
    turn = np.empty(n, dtype=np.int64)
    for i in range(n - 1):
        s0 = 1.0 if d1[i] >= 0 else -1.0
        s1 = 1.0 if d1[i + 1] >= 0 else -1.0
        if s0 * s1 < 0 and gp[i] * gp[i] >= thr and gp[i + 1] * gp[i + 1] >= thr:
            turn[nt] = i
            nt += 1
    return alpha, beta, h_hi, turn[:nt]


@_jit
def refine_turns(kind, a, hp, d1, turn):
    """The turning points (zeros of ``g'``) in the brackets ``hp[turn], hp[turn + 1]``: three
    rounds that cut a bracket into 64 pieces and keep the first piece whose end has left the sign
    at its start (18 halvings), then three Newton steps on ``g' = 0`` kept inside the bracket;
    ``(h_c, g(h_c), g''(h_c))``."""
    nt = turn.size
    hcs = np.empty(nt)
    g0c = np.empty(nt)
    g2c = np.empty(nt)
    one = np.empty(1)
    r0 = np.empty(1)
    r1 = np.empty(1)
    r2 = np.empty(1)
    grid = np.empty(65)
    q0 = np.empty(65)
    q1 = np.empty(65)
    q2 = np.empty(65)
    for t in range(nt):
        i = turn[t]
        lo = hp[i]
        hi = hp[i] if d1[i] == 0.0 else hp[i + 1]
        sa = 1.0 if d1[i] >= 0 else -1.0
        for _ in range(3):
            for j in range(65):
                grid[j] = lo + (hi - lo) * (j / 64.0)
            _real3_into(kind, a, grid, q0, q1, q2)
            first = 65
            for j in range(1, 65):
                # np.sign: 0 at 0, NaN at NaN (neither is the sign at the start)
                if not ((q1[j] > 0 and sa > 0) or (q1[j] < 0 and sa < 0)):
                    first = j
                    break
            nlo = grid[first - 1]
            if first < 65:
                hi = grid[first]
            lo = nlo
        h = 0.5 * (lo + hi)
        for _ in range(3):
            one[0] = h
            _real3_into(kind, a, one, r0, r1, r2)
            hn = h - r1[0] / r2[0]
            if hn >= lo and hn <= hi:
                h = hn
        one[0] = h
        _real3_into(kind, a, one, r0, r1, r2)
        hcs[t] = h
        g0c[t] = r0[0]
        g2c[t] = r2[0]
    return hcs, g0c, g2c


@_jit
def path_heights(g0, g1, g2, s, theta, sat, w, j_on, lg_on, lg1p_on, h_c, hk, tail_sign, m2):
    """The path's heights ``Y`` and slopes ``Y'`` at the nodes (:func:`fpcore._activations._contour_rule`)
    from ``g, g', g''`` there: ``Y0 = -theta L / D``, ``L = (log f)' = 2 g'/g``, ``D = L^2 + 1 +
    (m2 - 1) m2 / (m2 + L^2)`` (``m2 >= 1``; written in ``g, g'`` so that ``Y0 = 0`` at zeros of ``g``):
    ``D ~ L^2 + 1`` where ``f`` changes fast (``Im log f ~ -theta``), ``D ~ m2`` at the turning
    points of ``f`` (slope ``theta |L'| / m2`` there), or where ``sat`` ``Y0 = -theta N / (N^2 + 1)``,
    ``N = sign(f') sqrt((log f)'^2 + w (log|f - 1|)'^2)`` beyond the switch ``w`` (nonzero from
    ``j_on`` on, with ``(log|g - 1|)'`` and its derivative ``lg_on``, ``lg1p_on`` there); then
    capped, ``Y = Y0 / sqrt(1 + (Y0 / (s/2))^2)``."""
    n = g0.size
    Y = np.empty(n)
    Yp = np.empty(n)
    for i in range(n):
        a0, a1, a2 = g0[i], g1[i], g2[i]
        if not sat:
            # Y0 = -theta P / E, P = 2 g g', E = g^2 D = 4 g'^2 + g^2 + (m2 - 1) m2 g^4 / F,
            # F = m2 g^2 + 4 g'^2 (m2 = 1: E = 4 g'^2 + g^2); Y0 and Y0' are homogeneous of
            # degree 0 in (g, g', g''): scaled to |g| + 2 |g'| = 1 first (g^6 terms would
            # underflow in the far tails)
            r = abs(a0) + 2.0 * abs(a1)
            if r > 0.0 and math.isfinite(r):
                a0, a1, a2 = a0 / r, a1 / r, a2 / r
            P = 2.0 * a0 * a1
            Pp = 2.0 * (a1 * a1 + a0 * a2)
            F = m2 * a0 * a0 + 4.0 * a1 * a1
            Fp = 2.0 * m2 * a0 * a1 + 8.0 * a1 * a2
            k = (m2 - 1.0) * m2
            g2_, g3_ = a0 * a0, a0 * a0 * a0
            E = 4.0 * a1 * a1 + g2_ + k * g2_ * g2_ / F
            Ep = 8.0 * a1 * a2 + 2.0 * a0 * a1 + k * (4.0 * g3_ * a1 * F - g2_ * g2_ * Fp) / (F * F)
            y0 = -theta * P / E
            y0p = -theta * (Pp * E - P * Ep) / (E * E)
        else:
            L = 2.0 * a1 / a0
            Lp = 2.0 * (a2 * a0 - a1 * a1) / (a0 * a0)
            wi = w[i]
            if wi > 0 and i >= j_on:
                Ls = lg_on[i - j_on] + a1 / (a0 + 1.0)
                xs = hk[i] - h_c
                wp = wi / (xs * xs)
                Lsp = lg1p_on[i - j_on] + (a2 * (a0 + 1.0) - a1 * a1) / ((a0 + 1.0) * (a0 + 1.0))
                rad = math.sqrt(L * L + wi * Ls * Ls)
                N = tail_sign * rad
                Np = tail_sign * (L * Lp + 0.5 * wp * Ls * Ls + wi * Ls * Lsp) / rad
            else:
                N = L
                Np = Lp
            y0 = -theta * N / (N * N + 1.0)
            y0p = -theta * Np * (1.0 - N * N) / ((N * N + 1.0) * (N * N + 1.0))
        c = y0 / (0.5 * s)
        cap = 1.0 + c * c
        Y[i] = y0 / math.sqrt(cap)
        Yp[i] = y0p / cap**1.5
    return Y, Yp
