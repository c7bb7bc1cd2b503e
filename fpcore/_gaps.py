"""Gaps of the support of equations with atomic laws of ``D^2`` (leaky ReLU), followed on the real line.

In a gap of the support ``M(x)`` is real, analytic and strictly decreasing
(``M'(x) = -int lambda / (x - lambda)^2 dmu < 0``), and so are the ``u_g``: each stays on one real
*sheet* of ``psi_g(u) = k_g m``. For a law of ``K`` positive atoms ``v_1 > ... > v_K`` the real
line of ``u`` splits at the poles ``1/v_k`` of ``psi_g`` into ``K + 1`` intervals on each of which
``psi_g`` increases: the *principal* sheet joins the outer two through ``u = infinity``
(``(-inf, 1/v_1)`` onto ``(-p, inf)`` and ``(1/v_K, inf)`` onto ``(-inf, -p)``, the branch through
``u = 0``), and each of the ``K - 1`` *middle* sheets ``(1/v_k, 1/v_{k+1})`` covers the real line.
The inner gaps of a leaky ReLU spectrum (between the clusters at the scales ``alpha^{2j}``) lie on
middle sheets, so the critical values of ``M^{-1}`` on the principal sheet alone do not show them.

Once one point ``x_0`` of a gap is solved from far above (a real ``M(x_0) = m_0``), the sheets
of its ``u_g`` are known, and on them ``F(m) = M^{-1}(m)`` is a real-analytic function of real
``m``. Scanning ``F`` from ``m_0`` downward (``x`` grows as ``m`` falls) to its first critical point
``m_c`` (its slope is checked on a dense grid that clusters at both ends, as the rational scan
``_fastchain.scan_critical`` does) shows ``F`` strictly monotone on ``[m_c, m_0]``: its inverse maps
``[x_0, F(m_c)]`` analytically onto that interval and continues ``M`` from ``x_0`` (the identity
theorem: ``M`` agrees with it on a neighbourhood of ``x_0`` in the upper half-plane), so ``M`` is
real there, the whole interval lies in the gap, and ``F(m_c)`` is its upper edge. (Short of a
singular point of ``F``, where its rounding grows, the scan stops early: what it checked is still
in the gap, and the next grid point past it is solved from far above again.) The grid points
in it are then solved on these sheets by a bracketed Newton in ``m`` instead of one chain from far
above each (``grid_discrete``: 100-300 such points per leaky ReLU spectrum cost 30-90 % of its
time). Their solutions pass the same residual checks as every other point, and the joint
certificate (``_lilypad._certify_grid``) then decides on them as on any other.
"""

from __future__ import annotations

import math

import numpy as np

from ._fastchain import _HAVE_NUMBA, _gres, _grid_point, _jit, _mfloor, _RES_FLOOR, _u_real, _walk_buffers, _walk_first

_N_SCAN = 700  # slope checks between a gap point's m and the next singular point (tanh spacing)
_N_FAR = 900  # slope checks when no singular point lies below m (exponential spacing)


@_jit
def _sheet_of(u, poles):
    """The sheet of a real ``u`` (``poles`` increasing, padded with ``inf``): 0 (principal: below
    the first pole or above the last), ``s`` for the middle sheet ``(poles[s-1], poles[s])``; -1
    on a pole or without poles."""
    K = 0
    while K < poles.size and math.isfinite(poles[K]):
        K += 1
    if K == 0:
        return -1
    if u < poles[0] or u > poles[K - 1]:
        return 0
    for s in range(1, K):
        if poles[s - 1] < u < poles[s]:
            return s
    return -1


@_jit
def _psi(u, v, w):
    s = 0.0
    d = 0.0
    for k in range(v.size):
        if w[k] == 0.0:
            continue
        r = 1.0 / (1.0 - u * v[k])
        c = w[k] * v[k] * r
        s += c
        d += c * r
    return u * s, d


@_jit
def _u_sheet(wv, s, v, w, poles, vmax, vmin, p, S, mu1, guess):
    """Real ``u`` on sheet ``s`` with ``psi(u) = wv`` and ``psi'(u)`` (NaN where none): the
    principal sheet as ``_fastchain._u_real``; a middle sheet by safeguarded Newton inside its
    two poles (``psi`` increases from ``-inf`` to ``inf`` there)."""
    if s == 0:
        return _u_real(wv, v, w, vmax, vmin, p, S, mu1, guess)
    lo, hi = poles[s - 1], poles[s]
    u = guess if lo < guess < hi else 0.5 * (lo + hi)
    for _ in range(200):  # bisection at worst: below double precision for any pole interval
        f, df = _psi(u, v, w)
        f -= wv
        if abs(f) <= 1e-15 * max(abs(wv), 1e-300):
            break
        if f < 0.0:
            lo = u
        else:
            hi = u
        un = u - f / df
        if not (math.isfinite(un) and lo < un < hi):
            un = 0.5 * (lo + hi)
        if abs(un - u) <= 1e-15 * abs(u) or hi - lo <= 1e-15 * abs(hi):
            u = un
            break
        u = un
    f, df = _psi(u, v, w)
    return u, df


@_jit
def _sheet_eval(m, sheets, ug, a, e, log_c, V, W, kk, nn, P, vmax, vmin, p, S, mu1):
    """``log|M^{-1}(m)|``, its slope in ``m`` and its sign for real ``m`` with each ``u_g`` on sheet
    ``sheets[g]`` (warm started from ``ug``, updated in place); NaN where a ``u_g`` has none."""
    v = log_c
    sl = 0.0
    sg = 1.0
    for j in range(a.size):
        d = m - a[j]
        if d == 0.0:
            return np.nan, np.nan, np.nan
        v += e[j] * math.log(abs(d))
        sl += e[j] / d
        if d < 0.0 and int(abs(e[j])) % 2 == 1:
            sg = -sg
    for g in range(kk.size):
        u, dps = _u_sheet(m * kk[g], sheets[g], V[g], W[g], P[g], vmax[g], vmin[g], p[g], S[g], mu1[g], ug[g])
        if not (math.isfinite(u) and math.isfinite(dps)) or u == 0.0 or dps == 0.0:
            return np.nan, np.nan, np.nan
        ug[g] = u
        v -= nn[g] * math.log(abs(u))
        sl -= nn[g] * kk[g] / (dps * u)
        if u < 0.0 and int(nn[g]) % 2 == 1:
            sg = -sg
    return v, sl, sg


@_jit
def gap_top(m0, u0, a, e, log_c, V, W, kk, nn, P, vmax, vmin, p, S, mu1):
    """The upper edge ``x_c`` of the gap through a real solution ``(m0, u0)`` and the ``m_c`` there:
    ``F`` (``u_g`` on the sheets of ``u0``) is checked to decrease from ``m0`` down to ``m_c``, its
    first critical point below ``m0`` (module docstring). ``(nan, nan)`` where ``F`` does not
    decrease at ``m0``. Where the scan meets no critical point before a singular point, the last
    point it checked bounds the gap from below."""
    G = kk.size
    sheets = np.empty(G, dtype=np.int64)
    ug = np.empty(G)
    for g in range(G):
        sheets[g] = _sheet_of(u0[g], P[g])
        if sheets[g] < 0:
            return np.nan, np.nan
        ug[g] = u0[g]
    v0, s0, sg0 = _sheet_eval(m0, sheets, ug, a, e, log_c, V, W, kk, nn, P, vmax, vmin, p, S, mu1)
    if not (sg0 > 0.0 and s0 < 0.0 and math.isfinite(v0)):
        return np.nan, np.nan
    # the singular points below m0: roots of M^{-1}, and where a principal u_g passes infinity
    # (k_g m = -p_g). Where two of them meet (the root -p_g / k_g, or u_g ~ m at m = 0), F stays
    # finite and smooth, but it is a ratio of two vanishing factors there and its rounding error
    # grows like eps / |m - b| (the slope's even faster): the scan stops short of b by 1e-4 of
    # its span (log F to about 1e-12); the next point past it walks from far above again
    b = -np.inf
    for j in range(a.size):
        if a[j] < m0 and a[j] > b:
            b = a[j]
    for g in range(G):
        if sheets[g] == 0 and vmin[g] > 0.0:
            mb = -p[g] / kk[g]
            if mb < m0 and mb > b:
                b = mb
    if b > -np.inf:
        b += 1e-4 * max(abs(b), m0 - b)
        if not b < m0:
            return np.nan, np.nan
    n = _N_FAR if b == -np.inf else _N_SCAN
    span = m0 - b
    prev_m, prev_v = m0, v0
    for g in range(G):
        ug[g] = u0[g]
    for i in range(1, n):
        if b == -np.inf:
            m = m0 - max(1.0, abs(m0)) * math.exp(-40.0 + 80.0 * i / (n - 1))
        else:
            m = m0 - span * 0.5 * (1.0 + math.tanh(-14.0 + 28.0 * i / (n - 1)))
            if not (b <= m < m0):
                continue
        v, sl, sg = _sheet_eval(m, sheets, ug, a, e, log_c, V, W, kk, nn, P, vmax, vmin, p, S, mu1)
        if not (math.isfinite(v) and math.isfinite(sl) and sg > 0.0):
            break  # (a singular point met early: the checked part stands)
        if sl >= 0.0:
            # bisect the slope's sign change in (m, prev_m); keep the side where it is negative
            lo, hi = m, prev_m
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                if not (lo < mid < hi) or hi - lo <= 1e-15 * abs(mid):
                    break
                vm, sm, sgm = _sheet_eval(mid, sheets, ug, a, e, log_c, V, W, kk, nn, P, vmax, vmin, p, S, mu1)
                if not (math.isfinite(sm) and sgm > 0.0):
                    return np.nan, np.nan
                if sm < 0.0:
                    hi = mid
                else:
                    lo = mid
            vh, sh, _ = _sheet_eval(hi, sheets, ug, a, e, log_c, V, W, kk, nn, P, vmax, vmin, p, S, mu1)
            return math.exp(vh), hi
        prev_m, prev_v = m, v
    # no critical point before the singular point (e.g. an atom of the law, where m runs to
    # -infinity): the gap reaches at least as far as the last point checked
    if prev_m < m0:
        return math.exp(prev_v), prev_m
    return np.nan, np.nan


@_jit
def _solve_on_sheets(x, m_hi, m_lo, u0, a, e, log_c, V, W, kk, nn, P, vmax, vmin, p, S, mu1, uout, m_start=np.nan):
    """The real ``m`` in ``(m_lo, m_hi)`` with ``M^{-1}(m) = x`` on the sheets of ``u0``
    (``log M^{-1}`` decreases there), by Newton in a bracket from ``m_start`` (the bracket's
    midpoint where it lies outside); ``uout`` receives the ``u_g``. Returns ``m`` (NaN if the
    bracket does not hold ``x``)."""
    G = kk.size
    sheets = np.empty(G, dtype=np.int64)
    ug = np.empty(G)
    for g in range(G):
        sheets[g] = _sheet_of(u0[g], P[g])
        ug[g] = u0[g]
    lx = math.log(x)
    lo, hi = m_lo, m_hi  # F(lo) > x > F(hi)
    # (from the grid's secant prediction Newton takes 2-4 steps; from the midpoint of the
    # bracket, which spans the rest of the gap, 6-26)
    m = m_start if lo <= m_start <= hi else 0.5 * (lo + hi)
    for _ in range(200):  # bisection at worst: below double precision for any bracket
        v, sl, sg = _sheet_eval(m, sheets, ug, a, e, log_c, V, W, kk, nn, P, vmax, vmin, p, S, mu1)
        if not (math.isfinite(v) and math.isfinite(sl) and sg > 0.0):
            return np.nan
        f = v - lx
        if f > 0.0:
            lo = m
        else:
            hi = m
        mn = m - f / sl
        if not (math.isfinite(mn) and lo < mn < hi):
            mn = 0.5 * (lo + hi)
        if abs(mn - m) <= 1e-15 * abs(m) + 1e-300 or hi - lo <= 1e-15 * abs(m):  # (a few ulps)
            m = mn
            break
        m = mn
    v, sl, sg = _sheet_eval(m, sheets, ug, a, e, log_c, V, W, kk, nn, P, vmax, vmin, p, S, mu1)
    if not (math.isfinite(v) and sg > 0.0):
        return np.nan
    for g in range(G):
        uout[g] = ug[g]
    return m


@_jit
def grid_discrete(x, groups, Y, mean, a, e, log_c, V, W, kk, nn, mu, max_rounds, tol, P, vmax, vmin, p, S, mu1,
                  z0=0j, m0=0j, u0=None):
    """``_fastchain.grid_general`` for equations whose laws of ``D^2`` are exact atoms (real ``V``,
    ``W``; ``P`` their poles, (G, K) padded with ``inf``), with the gaps followed on their sheets:
    after a point solved from far above with a real ``M`` (a gap), the gap's upper edge is found by
    :func:`gap_top` and the next points below it are solved on the same sheets
    (:func:`_solve_on_sheets`), each checked by the joint residuals as every other point. The first
    point walks from a start ``(z0, m0, u0)`` where one is given, as in ``grid_general``. Returns
    ``m``, ``u`` (n, G), a verified mask and the counts (lilypads, Newton, rejected)."""
    n = x.size
    G = kk.size
    out, outu, ok, counts, rg, dps, un, u = _walk_buffers(n, G)
    du = np.empty(G, dtype=np.complex128)
    one = np.empty(1)
    ur = np.empty(G)
    us = np.empty(G)
    gap_x = -1.0  # the current gap's upper edge (x), its m there, and the group it lies in
    gap_m = 0.0
    gap_grp = -1
    sheet_prev = False  # whether point i - 1 was solved on the sheets (i - 2 then lies in its gap too)
    for i in range(n):
        t = complex(x[i], 0.0)
        good = False
        m = 0.0 + 0.0j
        in_gap = False
        if gap_grp == groups[i] and i > 0 and ok[i - 1] and x[i] < gap_x:
            # inside the gap found at an earlier point: the same sheets, M decreasing in x
            for g in range(G):
                ur[g] = outu[i - 1, g].real
            # the start: m secant in log x through the last two gap points (the last one alone
            # at the gap's first step: Newton's first step is then the tangent)
            m_start = out[i - 1].real
            if i > 1 and sheet_prev and x[i - 2] > 0.0:
                dl = math.log(x[i - 1] / x[i - 2])
                if dl > 0.0:
                    m_start += (out[i - 1].real - out[i - 2].real) * math.log(x[i] / x[i - 1]) / dl
            ms = _solve_on_sheets(x[i], out[i - 1].real, gap_m, ur, a, e, log_c, V, W, kk, nn, P, vmax, vmin,
                                  p, S, mu1, us, m_start)
            if math.isfinite(ms):
                m = complex(ms, 0.0)
                for g in range(G):
                    u[g] = complex(us[g], 0.0)
                r0, gp = _gres(t, m, u, a, e, log_c, V, W, kk, nn, rg, dps)
                inner = 0.0
                for g in range(G):
                    inner = max(inner, abs(rg[g]) / max(abs(kk[g] * m), 1e-300))
                res = max(abs(r0) - _RES_FLOOR * _mfloor(m, a, e), 0.0)
                good = res <= 1e-10 and inner <= 1e-10
                counts[1] += 1
                if good:
                    counts[0] += 1
                    in_gap = True
        if not good:
            if i == 0 and u0 is not None:
                m, good = _walk_first(x[0], z0, m0, u0, u, a, e, log_c, V, W, kk, nn, rg, dps, un, max_rounds, tol,
                                      counts)
            if not good:
                m, good = _grid_point(i, x, groups, out, outu, ok, u, du, one, rg, dps, un, counts, Y, mean, a, e,
                                      log_c, V, W, kk, nn, mu, max_rounds, tol)
            gap_grp = -1
            if good and -m.imag <= 1e-9 * abs(m):
                # a gap point (from far above or the up-over-down walk: the physical M, real here):
                # its real branch, and how far the gap reaches
                real = True
                for g in range(G):
                    real = real and abs(u[g].imag) <= 1e-9 * abs(u[g])
                    ur[g] = u[g].real
                if real:
                    xc, mc = gap_top(m.real, ur, a, e, log_c, V, W, kk, nn, P, vmax, vmin, p, S, mu1)
                    if math.isfinite(xc) and xc > x[i]:
                        gap_x, gap_m, gap_grp = xc, mc, groups[i]
        sheet_prev = in_gap
        out[i] = m
        for g in range(G):
            outu[i, g] = u[g]
        ok[i] = good
    return out, outu, ok, counts


def discrete_args(V: np.ndarray, W: np.ndarray):
    """The arrays :func:`grid_discrete` takes besides the laws (``V``, ``W`` real, (G, K)): poles
    (padded with ``inf``), ``vmax``, ``vmin``, ``p``, ``S``, ``mu1`` (as ``_edges._log_inverse_compiled``)."""
    live = (W > 0) & (V > 0)
    P = np.full(V.shape, np.inf)
    for g in range(V.shape[0]):
        pg = np.sort(1.0 / V[g][live[g]])
        P[g, : pg.size] = pg
    vmax = V.max(axis=1)
    vmin = np.where(W > 0, V, np.inf).min(axis=1)
    p = np.sum(np.where(V > 0, W, 0.0), axis=1)
    S = np.sum(np.where(V > 0, W / np.where(V > 0, V, 1.0), 0.0), axis=1)
    return P, vmax, vmin, p, S, np.sum(W * V, axis=1)


__all__ = ["grid_discrete", "gap_top", "discrete_args", "_HAVE_NUMBA"]
