"""Compiled lilypad chains for rational equations (numba), one grid point after another.

The vectorised solver of :mod:`fpcore._lilypad` pays numpy's per-call overhead on every round of
its walks (about 17 rounds at depth 20, 34 at depth 1). Here each point is a scalar loop in
compiled code: the first point of a support interval walks down from far above, every other
point walks along the real axis from its solved left neighbour (MATH.md section 4: neighbouring
grid points are certified starts for each other). A point whose walk fails is reported and
redone by the vectorised solver.

Every accepted step passes the Kantorovich test of the log-form Newton map

    g(m) = log z - log C - sum_j e_j log(m - a_j),   g'(m) = -sum_j e_j / (m - a_j),

with ``eta = |g / g'|`` and ``K = sum_j |e_j| / (|m - a_j| - 2 eta)^2 >= sup |g''|`` on
``B(m, 2 eta)``: certified when ``eta K <= |g'| / 2``. The logarithms take their cuts straight up
from each root (arguments in ``(-3 pi/2, pi/2]``), and the ball must keep clear of them, so one
branch of ``g`` (shifted by the ``2 pi i k`` nearest to 0 at the centre) is analytic on the ball;
Newton then runs to ``|dm| <= 4 eps |m|`` inside it.

Non-rational equations (leaky ReLU, smooth activations with short laws of ``D^2``, Gaussian
weights) get the vectorised solver's own schedule compiled: anchors walk down from far above
(:func:`vertical_general`), the other points level by level from a solved left neighbour
(:func:`walk_pairs`), each step accepted by the same a-posteriori checks as ``_gchain``.

Compiled with ``cache=True``: the first call in a fresh environment compiles (a few seconds),
later processes load the cached machine code (``benchmarks/bench_spectrum.py`` prints both).
"""

from __future__ import annotations

import math

import numpy as np

try:  # numba is a dependency; without it the vectorised solver does all the work
    import numba

    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only in environments without numba
    _HAVE_NUMBA = False

_TWO_PI = 2.0 * math.pi
_EPS4 = 4.0 * np.finfo(float).eps


def _jit(fn):
    return numba.njit(cache=True, nogil=True)(fn) if _HAVE_NUMBA else fn


@_jit
def _g(z, m, a, e, log_c):
    """``g``, ``g'``, the distance to the nearest root and to the nearest cut."""
    s = 0.0 + 0.0j
    gp = 0.0 + 0.0j
    dmin = np.inf
    cut = np.inf
    for j in range(a.size):
        d = m - a[j]
        ad = abs(d)
        if ad == 0.0:  # numba raises on complex division by zero: report a failed test instead
            return complex(np.nan, np.nan), complex(np.nan, np.nan), 0.0, 0.0
        ang = math.atan2(d.imag, d.real)
        if ang > 0.5 * math.pi:
            ang -= _TWO_PI
        s += e[j] * complex(math.log(ad), ang)
        gp -= e[j] / d
        dmin = min(dmin, ad)
        cut = min(cut, ad if m.imag <= 0.0 else abs(m.real - a[j]))
    g = complex(math.log(abs(z)), math.atan2(z.imag, z.real)) - log_c - s
    return g, gp, dmin, cut


@_jit
def _test(z, m, a, e, log_c):
    """Kantorovich test of the log-form Newton map at ``z`` from ``m``: (ok, branch shift)."""
    g, gp, dmin, cut = _g(z, m, a, e, log_c)
    k = math.floor(g.imag / _TWO_PI + 0.5)
    g = g - 1j * _TWO_PI * k
    agp = abs(gp)
    if not (agp > 0.0) or not math.isfinite(agp):
        return False, k
    eta = abs(g) / agp
    r = 2.0 * eta
    if not (r < cut) or not (r < dmin):
        return False, k
    K = 0.0
    for j in range(a.size):
        d = abs(m - a[j]) - r
        K += abs(e[j]) / (d * d)
    return eta * K <= 0.5 * agp, k


@_jit
def _newton(z, m, k, a, e, log_c, max_iter):
    """Newton on the branch ``g - 2 pi i k`` (inside a certified ball); returns m, iterations."""
    for it in range(max_iter):
        g, gp, dmin, cut = _g(z, m, a, e, log_c)
        if not (abs(gp) > 0.0):
            return m, max_iter
        dm = (g - 1j * _TWO_PI * k) / gp
        m = m - dm
        if abs(dm) <= _EPS4 * abs(m):
            return m, it + 1
    return m, max_iter


@_jit
def _walk(z, m, t, a, e, log_c, max_rounds, counts):
    """Certified walk from a solution ``m`` at ``z`` to the target ``t`` (step doubled after an
    accepted proposal, quartered after a rejected one). counts: lilypads, Newton, rejected."""
    h = abs(t - z)
    for _ in range(max_rounds):
        dist = abs(t - z)
        if dist == 0.0:
            return m, True
        step = min(h, dist)
        final = step >= dist
        zn = t if final else z + (t - z) * (step / dist)
        ok, k = _test(zn, m, a, e, log_c)
        if ok:
            m, used = _newton(zn, m, k, a, e, log_c, 60)
            counts[0] += 1
            counts[1] += used
            z = zn
            h = 2.0 * step
            if final:
                return m, True
        else:
            counts[2] += 1
            h = step / 4.0
            if h <= 1e-15 * max(abs(t), 1e-300):
                return m, False
    return m, False


@_jit
def grid_chain(x, groups, Y, mean, s1, a, e, log_c, max_rounds):
    """Solve ``M(x_i + i0)`` along a sorted grid (``groups``: one label per support interval).

    Returns the solutions, a certified mask and the counts (lilypads, Newton steps, rejected).
    """
    n = x.size
    out = np.empty(n, dtype=np.complex128)
    ok = np.zeros(n, dtype=np.bool_)
    counts = np.zeros(3, dtype=np.int64)
    for i in range(n):
        t = complex(x[i], 0.0)
        if i > 0 and groups[i] == groups[i - 1] and ok[i - 1]:
            m, good = _walk(complex(x[i - 1], 0.0), out[i - 1], t, a, e, log_c, max_rounds, counts)
            if good:
                out[i] = m
                ok[i] = True
                continue
        # from far above: m = mean / (z - s1) is a certified start at height Y
        z0 = complex(x[i], Y)
        m0 = mean / (z0 - s1)
        good0, k = _test(z0, m0, a, e, log_c)
        out[i] = m0
        if not good0:
            continue
        m0, used = _newton(z0, m0, k, a, e, log_c, 60)
        counts[0] += 1
        counts[1] += used
        m, good = _walk(z0, m0, t, a, e, log_c, max_rounds, counts)
        out[i] = m
        ok[i] = good
    return out, ok, counts


@_jit
def start_height(xs, scale, mean, s1, a, e, log_c):
    """Smallest ``Y = scale/2 * 2^k`` at which ``mean / (z - s1)`` passes the test at every
    ``z = x + i Y``, ``x`` in ``xs`` (0 if none is found within 2000 doublings)."""
    Y = max(0.5 * scale, 1e-300)
    for _ in range(2000):
        good = True
        for x in xs:
            z = complex(x, Y)
            ok, k = _test(z, mean / (z - s1), a, e, log_c)
            if not ok:
                good = False
                break
        if good:
            return Y
        Y *= 2.0
    return 0.0


@_jit
def _slope(m, a, e):
    s = 0.0
    for j in range(a.size):
        s += e[j] / (m - a[j])
    return s


@_jit
def critical_points(lo, hi, a, e):
    """Zeros of ``d/dm log|M^{-1}|`` in each bracket ``[lo_i, hi_i]`` (a sign change), by bisection
    to ``1e-15`` relative."""
    out = np.empty(lo.size)
    for i in range(lo.size):
        l, h = lo[i], hi[i]
        sl = _slope(l, a, e)
        for _ in range(200):
            mid = 0.5 * (l + h)
            if mid <= l or mid >= h or h - l <= 1e-15 * max(abs(mid), 1e-300):
                break
            sm = _slope(mid, a, e)
            if (sm > 0.0) == (sl > 0.0):
                l, sl = mid, sm
            else:
                h = mid
        out[i] = 0.5 * (l + h)
    return out


# -- non-rational equations: joint Newton on (m, u_1, ..., u_G), verified a posteriori ---------
@_jit
def _cut_arg(w):
    ang = math.atan2(w.imag, w.real)
    if ang > 0.5 * math.pi:
        ang -= _TWO_PI
    return ang


@_jit
def _gres(z, m, u, a, e, log_c, V, W, kk, nn, rg, dps):
    """``r_0 = log z - log M^{-1}(m, u)`` and ``dr_0/dm`` (partial); fills ``r_g = psi_g(u_g) -
    k_g m`` and ``psi_g'(u_g)``."""
    r0 = complex(math.log(abs(z)), math.atan2(z.imag, z.real)) - log_c
    gp = 0.0 + 0.0j
    nan = complex(np.nan, np.nan)
    for j in range(a.size):
        d = m - a[j]
        if d == 0.0:  # numba raises on complex division by zero: return NaN (a failed step)
            return nan, nan
        r0 -= e[j] * complex(math.log(abs(d)), _cut_arg(d))
        gp -= e[j] / d
    for g in range(kk.size):
        ug = u[g]
        if ug == 0.0:
            return nan, nan
        r0 += nn[g] * complex(math.log(abs(ug)), _cut_arg(ug))
        s = 0.0 + 0.0j
        sd = 0.0 + 0.0j
        for k in range(V.shape[1]):
            w = W[g, k]
            if w == 0.0:
                continue
            v = V[g, k]
            q = 1.0 - ug * v
            if q == 0.0:
                return nan, nan
            r = 1.0 / q
            s += w * v * r
            sd += w * v * r * r
        rg[g] = ug * s - kk[g] * m
        dps[g] = sd
    return r0, gp


@_jit
def _gnewton(z, m, u, iters, tol, a, e, log_c, V, W, kk, nn, rg, dps):
    """Joint Newton (arrow Jacobian, Schur complement on m). Returns m, converged, |r_0|, the
    worst relative inner residual and the iterations used; ``u`` is updated in place."""
    G = kk.size
    conv = False
    used = 0
    for _ in range(iters):
        r0, gp = _gres(z, m, u, a, e, log_c, V, W, kk, nn, rg, dps)
        if not (math.isfinite(r0.real) and math.isfinite(gp.real)):
            break
        num = r0
        den = gp
        bad = False
        for g in range(G):
            if u[g] * dps[g] == 0.0:
                bad = True
                break
            c = nn[g] / (u[g] * dps[g])
            num -= c * rg[g]
            den += c * kk[g]
        if bad or den == 0.0:
            break
        dm = -num / den
        if not (math.isfinite(dm.real) and math.isfinite(dm.imag)):
            break
        m = m + dm
        small = abs(dm) <= tol * abs(m)
        for g in range(G):
            du = (kk[g] * dm - rg[g]) / dps[g]
            u[g] = u[g] + du
            if not (abs(du) <= tol * abs(u[g])):
                small = False
        used += 1
        if small:
            conv = True
            break
    r0, gp = _gres(z, m, u, a, e, log_c, V, W, kk, nn, rg, dps)
    if not (math.isfinite(r0.real) and math.isfinite(r0.imag)):
        return m, False, np.inf, np.inf, used
    inner = 0.0
    for g in range(G):
        inner = max(inner, abs(rg[g]) / max(abs(kk[g] * m), 1e-300))
    return m, conv, abs(r0), inner, used


@_jit
def _gwalk(z, m, u, t, h, a, e, log_c, V, W, kk, nn, rg, dps, un, max_rounds, tol, counts, iters):
    """Walk ``(m, u)`` at ``z`` to ``t`` as the vectorised solver does (``_gchain``): a step is
    accepted when joint Newton (``iters`` iterations) from the current solution converges at the new
    point to residuals ``<= 1e-10`` with ``Im m <= 0`` and stays near the current ``m``; the step
    is doubled after an accepted proposal and quartered after a rejected one. ``u`` is updated in
    place."""
    G = kk.size
    for _ in range(max_rounds):
        dist = abs(t - z)
        step = min(h, dist)
        final = step >= dist
        zn = t if final else z + (t - z) * (step / dist)
        for g in range(G):
            un[g] = u[g]
        mn, conv, res, inner, used = _gnewton(zn, m, un, iters, tol, a, e, log_c, V, W, kk, nn, rg, dps)
        counts[1] += used
        ok = conv and res <= 1e-10 and inner <= 1e-10 and mn.imag <= 1e-12 * abs(mn)
        ok = ok and abs(mn - m) <= 0.5 * (abs(m) + abs(mn))
        if ok:
            counts[0] += 1
            m = mn
            for g in range(G):
                u[g] = un[g]
            z = zn
            h = 2.0 * step
            if final:
                return m, True
        else:
            counts[2] += 1
            h = step / 4.0
            if h <= 1e-15 * max(abs(t), 1e-300):
                return m, False
    return m, False


@_jit
def vertical_general(x, Y, mean, a, e, log_c, V, W, kk, nn, mu, max_rounds, tol):
    """Each target ``x_i + i0`` from far above: joint Newton at ``x_i + i Y`` from
    ``m = mean / z``, ``u_g = k_g m / E[D_g^2]``, then a vertical walk. Returns ``m``, ``u``
    (n, G), a verified mask and the counts (lilypads, Newton steps, rejected)."""
    n = x.size
    G = kk.size
    out = np.empty(n, dtype=np.complex128)
    outu = np.zeros((n, G), dtype=np.complex128)
    ok = np.zeros(n, dtype=np.bool_)
    counts = np.zeros(3, dtype=np.int64)
    rg = np.empty(G, dtype=np.complex128)
    dps = np.empty(G, dtype=np.complex128)
    un = np.empty(G, dtype=np.complex128)
    u = np.empty(G, dtype=np.complex128)
    for i in range(n):
        t = complex(x[i], 0.0)
        z0 = complex(x[i], Y)
        m, good = 0j, False
        # 8 Newton iterations per step as in the vectorised walk; near a square-root edge Newton
        # slows down (the Jacobian degenerates there), so a failed walk is retried with 16
        for iters in (8, 16):
            m0 = mean / z0
            for g in range(G):
                u[g] = kk[g] * m0 / mu[g]
            m0, conv, res, inner, used = _gnewton(z0, m0, u, 12, tol, a, e, log_c, V, W, kk, nn, rg, dps)
            counts[0] += 1
            counts[1] += used
            m, good = _gwalk(z0, m0, u, t, 0.25 * Y, a, e, log_c, V, W, kk, nn, rg, dps, un, max_rounds, tol,
                             counts, iters)
            if good:
                break
        out[i] = m
        for g in range(G):
            outu[i, g] = u[g]
        ok[i] = good
    return out, outu, ok, counts


@_jit
def walk_pairs(x0, m0, u0, x1, a, e, log_c, V, W, kk, nn, max_rounds, tol):
    """Walk each solution ``(m0_i, u0_i)`` at ``x0_i + i0`` along the real axis to ``x1_i``
    (the level schedule of the vectorised solver, compiled)."""
    n = x1.size
    G = kk.size
    out = np.empty(n, dtype=np.complex128)
    outu = np.zeros((n, G), dtype=np.complex128)
    ok = np.zeros(n, dtype=np.bool_)
    counts = np.zeros(3, dtype=np.int64)
    rg = np.empty(G, dtype=np.complex128)
    dps = np.empty(G, dtype=np.complex128)
    un = np.empty(G, dtype=np.complex128)
    u = np.empty(G, dtype=np.complex128)
    for i in range(n):
        for g in range(G):
            u[g] = u0[i, g]
        z = complex(x0[i], 0.0)
        t = complex(x1[i], 0.0)
        m, good = _gwalk(z, m0[i], u, t, 0.25 * abs(t - z), a, e, log_c, V, W, kk, nn, rg, dps, un, max_rounds,
                         tol, counts, 8)
        out[i] = m
        for g in range(G):
            outu[i, g] = u[g]
        ok[i] = good
    return out, outu, ok, counts
