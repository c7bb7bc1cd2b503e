"""Newton basins of ``f_z`` in the m-plane, compiled: the picture behind each lilypad step.

For a fixed ``z`` every pixel ``m_0`` of a window runs Newton's method on the equation
``M^{-1}(m) = z`` and is labelled by the root it converges to (MATH.md section 4: the Kantorovich
ball of a certified step lies inside the basin of the root the chain follows).

* **Rational equations** (linear, ReLU, hard-tanh layers): Newton on the log-form map the solver
  certifies, ``g(m) = log z - log C - sum_j e_j log(m - a_j)``, ``m <- m - g / g'``, with ``g``
  taken on the branch nearest to 0 at each iterate (every branch has the same derivative and its
  zeros are solutions).
* **Non-rational equations** (leaky ReLU, smooth activations): the joint Newton of the solver
  (``_fastchain._gnewton``) on ``(m, u_1, ..., u_G)`` with ``psi_g(u_g) = k_g m`` and the same
  log-form ``r_0``, started at ``u_g = k_g m_0 / E[D_g^2]`` (the solver's far start). The arrow
  Jacobian makes one step ``O(G K)`` for ``K`` atoms per law. For a law longer than
  ``_SHORT_ATOMS`` atoms (GELU, SiLU: over a thousand) each step uses its 16-node Gauss rule
  wherever the Gauss error bound at the iterate's ``u_g`` is below ``1e-10 |k_g m|`` and the
  full law elsewhere (near the cut of ``psi_g``): every step is the full law's step to that
  tolerance, so the picture is the full law's (``tests/test_basins.py`` compares them).

A pixel converges when a Newton step is below ``1e-10`` relative and the residual below ``1e-8``,
or (smooth laws) when a step below ``1e-4`` relative lands well inside the quadratic convergence
region of a root already found (:func:`_near_root`); its limits are merged into roots within ``1e-6`` relative (in compiled code, first come first
served, then ranked by real part, then imaginary part). The kernels are serial, release the GIL (``nogil``) and are
cached by numba next to the sources.
"""

from __future__ import annotations

import functools
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._activations import short_rule
from ._equation import Equation, _padded, build_equation
from ._fastchain import _HAVE_NUMBA, _cut_arg, _g, _gauss_error, _jit, _jit_fast, _mag, _stamped
from ._network import Network, _check_gram

__all__ = ["newton_basins"]

_TWO_PI = 2.0 * math.pi


_STEP_TOL = 1e-10  # relative Newton step at convergence
_RES_TOL = 1e-8  # |log-form residual| (and relative inner residuals) at convergence
_MERGE = 1e-6  # limits within this relative distance are one root
_MAX_ROOTS = 1024  # distinct limits kept per frame (more are labelled -1)
_SHORT_ATOMS = 16  # Gauss rules of this many nodes stand for longer laws where their error bound allows,
_MID_ATOMS = 96  # then rules of this many nodes, then the full laws
_MAX_PIXELS = 4_000_000
_ESCAPE = 1e150  # |m| beyond this: Newton diverged
_RULE_TOL = 1e-10  # a short Gauss rule stands for its law where its error bound is below this, relative
_CLOSE = 1e-4  # early exit: a step below this (relative) ...
_NEAR = 1e-4  # ... landing within this fraction of a found root's distance to 0 and to the other roots


@_jit
def _rational_pixel(m, z, a, e, log_c, max_iter):
    """Log-form Newton from ``m``: (limit, steps used, converged)."""
    for it in range(max_iter):
        g, gp, dmin, cut = _g(z, m, a, e, log_c)
        if not (math.isfinite(gp.real) and math.isfinite(gp.imag)) or abs(gp) == 0.0:
            return m, max_iter, False
        g = g - 1j * _TWO_PI * math.floor(g.imag / _TWO_PI + 0.5)
        dm = g / gp
        if not (math.isfinite(dm.real) and math.isfinite(dm.imag)):
            return m, max_iter, False
        m = m - dm
        if abs(m) > _ESCAPE:
            return m, max_iter, False
        if abs(dm) <= _STEP_TOL * max(abs(m), 1e-300):
            r, gp, dmin, cut = _g(z, m, a, e, log_c)
            r = r - 1j * _TWO_PI * math.floor(r.imag / _TWO_PI + 0.5)
            return m, it + 1, abs(r) <= _RES_TOL
    return m, max_iter, False


def _bound_table(ns: int, nm: int) -> np.ndarray:
    """Rows ``(A, B_ns, B_nm)``: ellipse sizes ``A_j`` (increasing) and the Gauss error bounds
    (``_fastchain._gauss_error``, law of mass 1 on ``[0, vmax]``) of the ``ns``- and ``nm``-point
    rules for every ``u`` with ``|t| + |t - 1| >= A_j``, ``t = 1 / (u vmax)`` (``inf`` for
    ``nm = 0``). ``|t| + |t - 1|`` is the major axis of the ellipse with foci 0 and 1 through
    ``t``, i.e. ``(rho + 1/rho) / 2`` of the Bernstein ellipse through the pole (the bound
    decreases as ``rho`` grows), so a row gives a bound valid beyond it."""
    A = 1.0 + np.logspace(-10, 8, 109)
    rows = np.empty((3, A.size))
    rows[0] = A
    for j, aj in enumerate(A):
        u = complex(2.0 / (1.0 - aj))  # real u < 0 on the ellipse of size aj (s = -aj)
        rows[1, j] = _gauss_error(u, 1.0, ns, 0.0) if ns else np.inf
        rows[2, j] = _gauss_error(u, 1.0, nm, 0.0) if nm else np.inf
    # a bound valid beyond a row holds for every larger row too: make the rows non-increasing
    rows[1] = np.minimum.accumulate(rows[1])
    rows[2] = np.minimum.accumulate(rows[2])
    return rows


@functools.lru_cache(maxsize=8)
def _bound_table_cached(ns: int, nm: int) -> np.ndarray:
    return _bound_table(ns, nm)


@_jit
def _threshold_hint(tab, row, lim, h):
    """``(A, j)``: the smallest ``A = tab[0, j]`` with ``bound[j] <= lim`` (``bound = tab[row]``, a
    row of :func:`_bound_table`, non-increasing; ``(inf, h)`` if none): a rule whose bound row is
    ``bound`` stands for its law at ``u`` where the ellipse size ``|t| + |t - 1|``, ``t = 1 / (u
    vmax)``, is at least ``A``. The last answer's index ``h`` and its neighbours are tried before a
    binary search (a pixel's ``|m|``, hence ``lim``, moves little from one Newton step to the
    next). (Indexed in place: a row view per call costs reference counting.)"""
    n = tab.shape[1]
    if not (tab[row, n - 1] <= lim):
        return np.inf, h
    if tab[row, 0] <= lim:
        return tab[0, 0], 0
    # bound[0] > lim >= bound[n - 1]: the answer c has bound[c - 1] > lim >= bound[c], 1 <= c <= n - 1
    for d in range(3):
        c = h if d == 0 else (h + 1 if d == 1 else h - 1)
        if c >= 1 and c <= n - 1 and tab[row, c] <= lim and tab[row, c - 1] > lim:
            return tab[0, c], c
    lo = 0
    hi = n - 1
    while hi - lo > 1:  # bound[lo] > lim >= bound[hi]
        mid = (lo + hi) // 2
        if tab[row, mid] <= lim:
            hi = mid
        else:
            lo = mid
    return tab[0, hi], hi


_BIG = 2.0**256  # a scaled product is renormalised outside [1 / _BIG, _BIG]
_LN2 = math.log(2.0)


@_jit
def _renorm(P, E):
    """``P 2^E`` with ``|P|`` brought back near 1 where it left ``[1 / _BIG, _BIG]``."""
    ax = abs(P.real) + abs(P.imag)
    if ax > _BIG or (ax < 1.0 / _BIG and ax > 0.0):
        _, ex = math.frexp(ax)
        s = math.ldexp(1.0, -ex)
        return complex(P.real * s, P.imag * s), E + ex
    return P, E


@_jit
def _mulpow(P, E, d, n):
    """``P 2^E d^n`` for an integer ``n != 0``, as a scaled pair ``(P, E)`` (binary powers)."""
    if n < 0:
        d = 1.0 / d
        n = -n
    D = d
    DE = 0
    while n > 0:
        if n & 1:
            P, E = _renorm(P * D, E + DE)
        n >>= 1
        if n:
            D, DE = _renorm(D * D, 2 * DE)
    return P, E


@_jit
def _inv(x):
    """``1 / x`` by one real division (the complex division's scaling where ``|x|^2`` leaves the
    float range)."""
    d = x.real * x.real + x.imag * x.imag
    if d > 1e-290 and d < 1e290:
        r = 1.0 / d
        return complex(x.real * r, -x.imag * r)
    return 1.0 / x


@_jit
def _log_sums(lz, m, u, a, e, nn):
    """``r_0 = log z - log C - sum_j e_j log(m - a_j) + sum_g n_g log u_g`` by its logs (where the
    product of :func:`_general_pixel` leaves the float range, or an exponent is not an integer)."""
    r0 = lz
    for j in range(a.size):
        d = m - a[j]
        r0 -= e[j] * complex(math.log(abs(d)), _cut_arg(d))
    for g in range(nn.size):
        ug = u[g]
        r0 += nn[g] * complex(math.log(abs(ug)), _cut_arg(ug))
    return r0


@_jit_fast
def _row_sums(ur, ui, V, W, g):
    """:func:`_fastchain._psi_sums_real` of row ``g`` of ``V``, ``W``, indexed in place: no
    array view is made (a view per group and step costs reference counting, several times
    the sums of a 16-node rule)."""
    s_r = 0.0
    s_i = 0.0
    d_r = 0.0
    d_i = 0.0
    for k in range(V.shape[1]):
        vk = V[g, k]
        qr = 1.0 - ur * vk
        qi = -ui * vk
        inv = 1.0 / (qr * qr + qi * qi)
        c = W[g, k] * vk * inv
        rr = qr * c  # w v / q = w v conj(q) / |q|^2
        ri = -qi * c
        s_r += rr
        s_i += ri
        d_r += (rr * qr + ri * qi) * inv  # (w v / q) / q
        d_i += (ri * qr - rr * qi) * inv
    return complex(s_r, s_i), complex(d_r, d_i)


@_jit_fast
def _row_sums_short(ur, ui, V, W, g):
    """:func:`_row_sums` for rows of exactly ``_SHORT_ATOMS`` atoms: a loop of constant length
    is unrolled and vectorised whole (one of unknown length that short runs mostly in the
    vectoriser's scalar remainder: about twice the time)."""
    s_r = 0.0
    s_i = 0.0
    d_r = 0.0
    d_i = 0.0
    for k in range(_SHORT_ATOMS):
        vk = V[g, k]
        qr = 1.0 - ur * vk
        qi = -ui * vk
        inv = 1.0 / (qr * qr + qi * qi)
        c = W[g, k] * vk * inv
        rr = qr * c
        ri = -qi * c
        s_r += rr
        s_i += ri
        d_r += (rr * qr + ri * qi) * inv
        d_i += (ri * qr - rr * qi) * inv
    return complex(s_r, s_i), complex(d_r, d_i)


@_jit
def _near_root(m, dm, roots, nr):
    """Index of the found root ``r`` nearest to ``m`` if ``m`` and the last step ``dm`` are both
    within ``_NEAR`` times the distance from ``r`` to 0 and to every other found root, else -1."""
    best = -1
    d = np.inf
    for r in range(nr):
        dr = _mag(m - roots[r])
        if dr < d:
            d = dr
            best = r
    if best < 0:
        return -1
    sep = _mag(roots[best])
    for r in range(nr):
        if r != best:
            sep = min(sep, _mag(roots[r] - roots[best]))
    return best if d <= _NEAR * sep and _mag(dm) <= _NEAR * sep else -1


@_jit
def _general_pixel(m, z, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab, kk, nn, mu, max_iter, u, rg, dps, roots, nr,
                   hint):
    """Joint Newton on ``(m, u)`` from ``m``, ``u_g = k_g m / E[D_g^2]``: (limit, steps, converged).

    Each step evaluates, at ``(m, u)``, ``r_0 = log z - log M^{-1}(m, u)`` and ``dr_0/dm``
    (partial), ``r_g = psi_g(u_g) - k_g m`` and ``psi_g'(u_g)``, then takes the arrow-Jacobian
    Newton step. ``r_0`` is wanted modulo ``2 pi i`` only (the branch nearest to 0 is taken) and
    the exponents ``e_j``, ``n_g`` are integers, so it is the log of one product ``prod_j (m -
    a_j)^{e_j} prod_g u_g^{-n_g}`` kept as ``P 2^E`` (one complex log per step instead of one per
    factor; :func:`_log_sums` where that product fails). Each group's ``psi_g`` comes from its
    short rule ``(Vs[g], Ws[g])`` where that rule's Gauss error bound at ``u_g`` (law on ``[0,
    vmax[g]]``, table ``tab`` of :func:`_bound_table`) is at most ``_RULE_TOL |k_g m|``, else from
    its longer rule ``(Vm[g], Wm[g])`` where that one's is, and from the full law ``(V[g], W[g])``
    elsewhere; ``vmax[g] < 0``: the short rule is the law itself. The bound's test, ``|t| + |t -
    1| >= A`` at ``t = 1 / (u_g vmax)``, is taken as ``1 + |1 - w| >= A |w|``, ``w = u_g vmax``,
    with the thresholds ``A`` (:func:`_threshold_hint`, from the table indices kept in ``hint``
    between pixels) found once per step and scale ``k_g``.

    The evaluation is written out in this loop, once (the last one checks convergence): as a
    function of its fifteen arrays, inlined or not, it counted references to each of them on
    every step, atomic operations that took a third of a frame's time on one thread (more where
    two threads share the arrays).

    Early exit: once a step is below ``_CLOSE`` relative and the iterate lies close to a root
    already found (one that passed the convergence test; :func:`_near_root`), Newton is in that
    root's quadratic convergence region and that root is returned (two more steps counted for
    the shading). (The same steps as the log-sum kernel this one replaced, to rounding:
    ``tests/basins_reference.py`` keeps that one, and ``tests/test_basins.py`` compares them.)"""
    G = kk.size
    lz = complex(math.log(_mag(z)), math.atan2(z.imag, z.real)) - log_c
    for g in range(G):
        u[g] = kk[g] * m / mu[g]
    tol2 = _STEP_TOL * _STEP_TOL
    hs = hint[0]  # (the thresholds' last table indices)
    hm = hint[1]
    short = Vs.shape[1] == _SHORT_ATOMS  # (the dashboard's rules: _row_sums_short)
    nan = complex(np.nan, np.nan)
    final = False  # the step was below the tolerance: evaluate once more and check the residuals
    it = 0  # Newton steps taken
    while final or it < max_iter:
        # -- the residuals at (m, u) --
        P = 1.0 + 0.0j
        E = 0
        exact = True  # (the product stands for the log sums: integer exponents, no overflow)
        gp = 0.0 + 0.0j
        am = _mag(m)
        bad = False  # (m on a root a_j or some u_g = 0: no residual)
        for j in range(a.size):
            d = m - a[j]
            if d == 0.0:
                bad = True
                break
            gp -= e[j] / d
            if e[j] == 1.0:
                P, E = _renorm(P * d, E)
            elif e[j] == math.floor(e[j]) and abs(e[j]) < 1e9:
                if e[j] != 0.0:
                    P, E = _mulpow(P, E, d, int(e[j]))
            else:
                exact = False
        ts = np.inf
        tm = np.inf
        for g in range(0 if bad else G):
            ug = u[g]
            if ug == 0.0:
                bad = True
                break
            if nn[g] == 1.0:
                P, E = _renorm(P * _inv(ug), E)
            elif nn[g] == math.floor(nn[g]) and abs(nn[g]) < 1e9:
                if nn[g] != 0.0:
                    P, E = _mulpow(P, E, ug, -int(nn[g]))
            else:
                exact = False
            if vmax[g] < 0.0:
                s, sd = (_row_sums_short(ug.real, ug.imag, Vs, Ws, g) if short else _row_sums(ug.real, ug.imag, Vs, Ws, g))
            else:
                if g == 0 or kk[g] != kk[g - 1]:
                    lim = _RULE_TOL * abs(kk[g]) * am
                    ts, hs = _threshold_hint(tab, 1, lim, hs)
                    tm, hm = _threshold_hint(tab, 2, lim, hm)
                wr = ug.real * vmax[g]
                wi = ug.imag * vmax[g]
                a2 = wr * wr + wi * wi  # |w|^2
                b2 = (1.0 - wr) * (1.0 - wr) + wi * wi  # |1 - w|^2
                # the test size >= ts |w|, size = 1 + |1 - w| = (|t| + |t - 1|) |w|: it holds where
                # |1 - w| >= ts |w| (most steps, far from the cut: no square root there)
                if ts * ts * a2 <= b2:
                    short_ok = True
                    size = aw = 0.0
                else:
                    aw = math.sqrt(a2)
                    size = 1.0 + math.sqrt(b2)
                    short_ok = size >= ts * aw
                if short_ok:
                    s, sd = (_row_sums_short(ug.real, ug.imag, Vs, Ws, g) if short else _row_sums(ug.real, ug.imag, Vs, Ws, g))
                elif size >= tm * aw:
                    s, sd = _row_sums(ug.real, ug.imag, Vm, Wm, g)
                else:
                    s, sd = _row_sums(ug.real, ug.imag, V, W, g)
            rg[g] = ug * s - kk[g] * m
            dps[g] = sd
        if bad:
            r0 = gp = nan
        elif exact and math.isfinite(P.real) and math.isfinite(P.imag) and P != 0.0:
            r0 = lz - complex(math.log(_mag(P)) + E * _LN2, math.atan2(P.imag, P.real))
        else:
            r0 = _log_sums(lz, m, u, a, e, nn)
        if not (math.isfinite(r0.real) and math.isfinite(r0.imag) and math.isfinite(gp.real)):
            break
        r0 = r0 - 1j * _TWO_PI * math.floor(r0.imag / _TWO_PI + 0.5)
        if final:
            ok = abs(r0) <= _RES_TOL
            for g in range(G):
                if not (abs(rg[g]) <= _RES_TOL * max(abs(kk[g] * m), 1e-300)):
                    ok = False
            hint[0] = hs
            hint[1] = hm
            return m, it, ok
        # -- the Newton step --
        num = r0
        den = gp
        for g in range(G):
            if u[g] == 0.0 or dps[g] == 0.0:
                den = 0.0
                break
            # one division for 1 / psi_g'(u_g) and 1 / u_g: w = 1 / (psi_g' u_g)
            w = _inv(dps[g] * u[g])
            if math.isfinite(w.real) and math.isfinite(w.imag) and w != 0.0:
                c = nn[g] * w
                dps[g] = w * u[g]  # (1 / psi_g'(u_g) from here on)
            else:  # (the product left the float range)
                dps[g] = _inv(dps[g])
                c = nn[g] * dps[g] * _inv(u[g])
            num -= c * rg[g]
            den += c * kk[g]
        if den == 0.0:
            break
        dm = -num / den
        if not (math.isfinite(dm.real) and math.isfinite(dm.imag)):
            break
        m = m + dm
        it += 1
        am = _mag(m)
        if am > _ESCAPE:
            break
        adm = _mag(dm)
        small = adm <= _STEP_TOL * max(am, 1e-300)
        for g in range(G):
            du = (kk[g] * dm - rg[g]) * dps[g]
            ug = u[g] + du
            u[g] = ug
            # (|du| <= tol |u|, squared: no hypot in the inner loop)
            if small and not (du.real * du.real + du.imag * du.imag <= tol2 * (ug.real * ug.real + ug.imag * ug.imag)):
                small = False
        if small:
            final = True
        elif nr > 0 and adm <= _CLOSE * am:
            r = _near_root(m, dm, roots, nr)
            if r >= 0:
                hint[0] = hs
                hint[1] = hm
                return roots[r], min(it + 2, max_iter - 1), True
    hint[0] = hs
    hint[1] = hm
    return m, max_iter, False


@_jit
def _label(m, ok, roots, nr, merge):
    """Root index of a limit (a new root if none is within ``merge``): (label, roots in use)."""
    if not ok or not (math.isfinite(m.real) and math.isfinite(m.imag)):
        return -1, nr
    for r in range(nr):
        if _mag(m - roots[r]) <= merge * max(_mag(roots[r]), 1e-300):
            return r, nr
    if nr < roots.size:
        roots[nr] = m
        return nr, nr + 1
    return -1, nr


@_jit
def _pixel(i, j, re, im, rational, z, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab, kk, nn, mu, max_iter, merge, labels, its,
           roots, nr, u, rg, dps, hint):  # fmt: skip
    """Newton from pixel ``(i, j)``: fills ``labels``, ``its``; returns the roots in use."""
    m0 = complex(re[j], im[i])
    if rational:
        m, used, ok = _rational_pixel(m0, z, a, e, log_c, max_iter)
    else:
        m, used, ok = _general_pixel(m0, z, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab, kk, nn, mu, max_iter, u, rg, dps,
                                     roots, nr, hint)  # fmt: skip
    lab, nr = _label(m, ok, roots, nr, merge)
    labels[i, j] = lab
    its[i, j] = used if lab >= 0 else max_iter
    return nr


@_jit
def _basin_image(re, im, rows, cols, rational, z, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab, kk, nn, mu, max_iter, merge,
                 labels, its, roots, computed):  # fmt: skip
    """Fill ``labels`` and ``its`` (ny, nx) and mark in ``computed`` where Newton ran. Newton runs at the lattice ``rows x cols``; then,
    block by block (quadtree), a block whose four corners share a label is filled with it (steps
    interpolated) and every other block is split in four, Newton running at the new corners,
    down to single pixels. Every corner looked at is computed (never a neighbour's fill), so the
    split and the labels do not depend on the order of the blocks (row slabs give the same
    labels). Returns the number of roots."""
    G = kk.size
    u = np.empty(G, dtype=np.complex128)
    rg = np.empty(G, dtype=np.complex128)
    dps = np.empty(G, dtype=np.complex128)
    hint = np.zeros(2, dtype=np.int64)  # (the rule thresholds' last table indices)
    filled = np.zeros(labels.shape, dtype=np.bool_)  # given a block's label
    nr = 0
    for i in rows:
        for j in cols:
            nr = _pixel(i, j, re, im, rational, z, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab, kk, nn, mu, max_iter, merge,
                        labels, its, roots, nr, u, rg, dps, hint)  # fmt: skip
            computed[i, j] = True
    # blocks still to look at: (r0, r1, c0, c1), corners computed
    cap = 4 * (rows.size + 1) * (cols.size + 1) + 64
    stack = np.empty((cap, 4), dtype=np.int64)
    top = 0
    for bi in range(rows.size - 1):
        for bj in range(cols.size - 1):
            stack[top, 0] = rows[bi]
            stack[top, 1] = rows[bi + 1]
            stack[top, 2] = cols[bj]
            stack[top, 3] = cols[bj + 1]
            top += 1
    while top > 0:
        top -= 1
        r0 = stack[top, 0]
        r1 = stack[top, 1]
        c0 = stack[top, 2]
        c1 = stack[top, 3]
        if r1 - r0 <= 1 and c1 - c0 <= 1:
            continue  # no pixel inside
        lab = labels[r0, c0]
        if labels[r0, c1] == lab and labels[r1, c0] == lab and labels[r1, c1] == lab:
            for i in range(r0, r1 + 1):
                for j in range(c0, c1 + 1):
                    if not (computed[i, j] or filled[i, j]):
                        ty = (i - r0) / max(r1 - r0, 1)
                        tx = (j - c0) / max(c1 - c0, 1)
                        v = ((1 - ty) * ((1 - tx) * its[r0, c0] + tx * its[r0, c1])
                             + ty * ((1 - tx) * its[r1, c0] + tx * its[r1, c1]))  # fmt: skip
                        labels[i, j] = lab
                        its[i, j] = int(v + 0.5)
                        filled[i, j] = True
            continue
        rm = (r0 + r1) // 2
        cm = (c0 + c1) // 2
        for i in (r0, rm, r1):
            for j in (c0, cm, c1):
                if not computed[i, j]:  # (a corner filled by a neighbouring block is computed now)
                    nr = _pixel(i, j, re, im, rational, z, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab, kk, nn, mu, max_iter,
                                merge, labels, its, roots, nr, u, rg, dps, hint)  # fmt: skip
                    computed[i, j] = True
        if top + 4 > cap:  # (cannot happen: each split replaces a block by at most four smaller ones)
            break
        # split only a side with a pixel inside it (a side of one pixel step stays whole)
        for h in range(2 if r1 - r0 >= 2 else 1):
            p0 = r0 if h == 0 else rm
            p1 = (rm if r1 - r0 >= 2 else r1) if h == 0 else r1
            for w in range(2 if c1 - c0 >= 2 else 1):
                q0 = c0 if w == 0 else cm
                q1 = (cm if c1 - c0 >= 2 else c1) if w == 0 else c1
                stack[top, 0] = p0
                stack[top, 1] = p1
                stack[top, 2] = q0
                stack[top, 3] = q1
                top += 1
    return nr


@_jit
def _nearest_other(re, im, order, dist, rational, z, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab, kk, nn, mu, max_iter,
                   merge, labels, its, roots, nr):  # fmt: skip
    """Newton from the pixels ``order`` (flat indices, by increasing ``dist``) until one does not
    reach root 0 (``roots[0]``, seeded): that pixel's ``dist`` (``inf`` if none). Pixels farther
    than it are not computed (their labels stay -2)."""
    G = kk.size
    u = np.empty(G, dtype=np.complex128)
    rg = np.empty(G, dtype=np.complex128)
    dps = np.empty(G, dtype=np.complex128)
    hint = np.zeros(2, dtype=np.int64)  # (the rule thresholds' last table indices)
    nx = re.size
    best = np.inf
    for p in range(order.size):
        if dist[p] > best:
            break
        i = order[p] // nx
        j = order[p] - i * nx
        nr = _pixel(i, j, re, im, rational, z, a, e, log_c, Vs, Ws, Vm, Wm, V, W, vmax, tab, kk, nn, mu, max_iter, merge,
                    labels, its, roots, nr, u, rg, dps, hint)  # fmt: skip
        if labels[i, j] != 0 and dist[p] < best:
            best = dist[p]
    return best


def _general_args(eq: Equation, atoms: int):
    a, e, general = _equation_arrays_cached(eq, int(atoms))
    if general is None:
        empty = np.zeros((0, 0))
        general = (empty, empty, empty, empty, empty, empty, np.zeros(0), np.zeros((3, 1)), np.zeros(0), np.zeros(0),
                   np.zeros(0))  # fmt: skip
        return True, a, e, general
    return False, a, e, general


def nearest_other_start(eq: Equation, z: complex, root: complex, re: np.ndarray, im: np.ndarray, centre: complex,
                        max_iter: int = 40, atoms: int = _SHORT_ATOMS) -> float:
    """Distance from ``centre`` to the nearest start of the grid ``re x im`` from which Newton (as
    in :func:`basins_of_equation`) does not converge to ``root`` (a root of the equation, e.g. the
    limit from the chain's solution): ``inf`` where every start does.

    The starts are run in order of their distance from ``centre``, stopping at the first that
    goes elsewhere: the same distance as labelling the whole grid (as :func:`basins_of_equation`
    does) and taking the nearest start not labelled ``root``, at the cost of the disk inside it.
    """
    re = np.ascontiguousarray(re, dtype=float)
    im = np.ascontiguousarray(im, dtype=float)
    X, Y = np.meshgrid(re - centre.real, im - centre.imag)
    d = np.hypot(X, Y).ravel()
    order = np.argsort(d, kind="stable").astype(np.int64)
    rational, a, e, general = _general_args(eq, atoms)
    labels = np.full((im.size, re.size), -2, dtype=np.int64)
    its = np.zeros((im.size, re.size), dtype=np.int64)
    roots = np.empty(_MAX_ROOTS, dtype=np.complex128)
    roots[0] = complex(root)
    with np.errstate(all="ignore"):
        return float(_nearest_other(re, im, order, d[order], rational, complex(z), a, e, float(eq.log_c), *general,
                                    int(max_iter), _MERGE, labels, its, roots, 1))  # fmt: skip


def _equation_arrays(eq: Equation, atoms: int = _SHORT_ATOMS):
    """``(a, e, None)`` for a rational equation, else ``(a, e, (Vs, Ws, Vm, Wm, V, W, vmax, tab,
    kk, nn, mu))``: the laws' ``ns``-point Gauss rules ``Vs, Ws`` (``ns = atoms``; a law with at
    most ``ns`` atoms is its own rule, marked ``vmax = -1``), their ``nm``-point rules ``Vm, Wm``
    (``_MID_ATOMS``), the full laws ``V, W`` and the largest atoms
    ``vmax`` (the Gauss error bound's interval; the laws of ``D^2`` have mass 1)."""
    a = np.ascontiguousarray(eq.roots, dtype=float)
    e = np.ascontiguousarray(eq.exps, dtype=float)
    if eq.rational:
        return a, e, None
    V, W, kk, nn = eq.packed
    ns = int(atoms) if 0 < atoms < V.shape[1] else 0
    nm = _MID_ATOMS if ns and ns < _MID_ATOMS < V.shape[1] else 0
    if ns:
        Vs, Ws = _padded([short_rule(g.values, g.weights, ns) if g.values.size > ns else (g.values, g.weights)
                          for g in eq.ugroups])  # fmt: skip
        vmax = np.array([float(np.max(g.values)) if g.values.size > ns else -1.0 for g in eq.ugroups])
    else:
        Vs, Ws, vmax = V, W, np.full(len(eq.ugroups), -1.0)
    if nm:
        Vm, Wm = _padded([short_rule(g.values, g.weights, nm) if g.values.size > nm else (g.values, g.weights)
                          for g in eq.ugroups])  # fmt: skip
    else:
        Vm, Wm = Vs, Ws
    mu = np.array([g.law.mean for g in eq.ugroups], dtype=float)
    c = np.ascontiguousarray
    return a, e, (c(Vs, dtype=float), c(Ws, dtype=float), c(Vm, dtype=float), c(Wm, dtype=float), c(V, dtype=float),
                  c(W, dtype=float), c(vmax, dtype=float), _bound_table_cached(ns, nm), c(kk, dtype=float), c(nn, dtype=float),
                  c(mu, dtype=float))  # fmt: skip


_ARRAYS: dict = {}  # (id(eq), atoms) -> (eq, arrays): the rules of an equation built once (GELU: ~30 ms)
_ARRAYS_MAX = 8
_ARRAYS_LOCK = threading.Lock()


def _equation_arrays_cached(eq: Equation, atoms: int):
    """:func:`_equation_arrays`, kept for the last ``_ARRAYS_MAX`` equations (keyed by identity;
    the entry holds the equation, so its id is not reused while it is cached)."""
    key = (id(eq), int(atoms))
    with _ARRAYS_LOCK:
        hit = _ARRAYS.get(key)
    if hit is not None and hit[0] is eq:
        return hit[1]
    arrays = _equation_arrays(eq, int(atoms))
    with _ARRAYS_LOCK:
        _ARRAYS[key] = (eq, arrays)
        while len(_ARRAYS) > _ARRAYS_MAX:
            del _ARRAYS[next(iter(_ARRAYS))]
    return arrays


_POOL = None
_POOL_LOCK = threading.Lock()
_POOL_THREADS = 8  # (four frames of two threads each at once without waiting for a thread)


def _slab_pool() -> ThreadPoolExecutor:
    """The threads that run a frame's row slabs, started once (starting two threads per frame
    took milliseconds on a loaded machine). Each call of :func:`basins_of_equation` runs at most
    ``threads`` of them at a time, so concurrent frames share the cores as before."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=_POOL_THREADS, thread_name_prefix="fpcore-basins")
        return _POOL


def _lattice(n: int, block: int) -> np.ndarray:
    idx = np.arange(0, n, block, dtype=np.int64)
    return idx if idx[-1] == n - 1 else np.append(idx, n - 1)


def basins_of_equation(
    eq: Equation, z: complex, re: np.ndarray, im: np.ndarray, max_iter: int = 40, block: int = 1,
    atoms: int = _SHORT_ATOMS, threads: int = 1,
):
    """Newton basins of ``M^{-1}(m) = z`` for an assembled equation: ``(labels, roots, iterations)``
    as in :func:`newton_basins`.

    ``block > 1`` runs Newton on every ``block``-th row and column first and fills each block whose
    four corners reach the same root with that root (steps interpolated); every other block is
    split in four, Newton running at the new corners, down to single pixels (a quadtree). A basin
    island smaller than a block that touches none of the corners looked at is missed: a preview,
    several times faster where basins are large. ``atoms``: each step of a law longer than that
    uses its ``atoms``-node Gauss rule where the rule's error bound allows (``1e-10`` relative),
    the full law elsewhere; ``atoms=0``: the full laws at every step. ``threads > 1`` splits the rows into ``4 * threads`` slabs run by that many parallel threads
    (the calling thread and ``threads - 1`` of a pool started once).
    """
    re = np.ascontiguousarray(re, dtype=float)
    im = np.ascontiguousarray(im, dtype=float)
    shape = (im.size, re.size)
    labels = np.full(shape, -1, dtype=np.int64)
    its = np.full(shape, int(max_iter), dtype=np.int64)
    found = np.empty(_MAX_ROOTS, dtype=np.complex128)
    rational, a, e, general = _general_args(eq, int(atoms))
    rows, cols = _lattice(im.size, block), _lattice(re.size, block)
    args = (rational, complex(z), a, e, float(eq.log_c), *general, int(max_iter), _MERGE)
    # four slabs per thread, taken in turn by the threads: a slab that holds most of the frame's
    # slow pixels (a chaotic boundary) does not leave the other thread idle
    workers = max(int(threads), 1)
    nslab = min(4 * workers if workers > 1 else 1, max(1, (rows.size - 1) // 4))
    if nslab <= 1:
        with np.errstate(all="ignore"):
            nr = int(_basin_image(re, im, rows, cols, *args, labels, its, found, np.zeros(shape, dtype=bool)))
        roots = found[:nr]
    else:
        # row slabs on lattice lines, each in its own thread (the kernel releases the GIL); the
        # slabs' roots are merged afterwards with the same tolerance
        cuts = np.linspace(0, rows.size - 1, nslab + 1).round().astype(int)

        def run(p: int):
            r = rows[cuts[p]: cuts[p + 1] + 1]
            lo, hi = int(r[0]), int(r[-1]) + 1
            lab = np.full((hi - lo, re.size), -1, dtype=np.int64)
            it = np.full((hi - lo, re.size), int(max_iter), dtype=np.int64)
            fd = np.empty(_MAX_ROOTS, dtype=np.complex128)
            comp = np.zeros((hi - lo, re.size), dtype=bool)
            with np.errstate(all="ignore"):
                n = int(_basin_image(re, im[lo:hi], r - lo, cols, *args, lab, it, fd, comp))
            return lo, hi, lab, it, fd[:n], comp

        parts = [None] * nslab
        taken = iter(range(nslab))
        lock = threading.Lock()

        def worker():  # takes the next slab until none is left
            while True:
                with lock:
                    p = next(taken, None)
                if p is None:
                    return
                parts[p] = run(p)

        # the calling thread is one of the workers (it would only wait otherwise)
        futures = [_slab_pool().submit(worker) for _ in range(min(workers, nslab) - 1)]
        try:
            worker()
        finally:
            for f in futures:
                f.result()
        merged: list[complex] = []
        above = None  # the slab above's computed flags on the shared lattice row
        for p, (lo, hi, lab, it, fd, comp) in enumerate(parts):
            remap = np.empty(fd.size + 1, dtype=np.int64)
            remap[-1] = -1
            for q, m in enumerate(fd):
                hit = next((i for i, r in enumerate(merged) if abs(m - r) <= _MERGE * max(abs(r), 1e-300)), -1)
                if hit < 0 and len(merged) < _MAX_ROOTS:
                    merged.append(complex(m))
                    hit = len(merged) - 1
                remap[q] = hit
            glob = remap[np.where(lab >= 0, lab, fd.size)]
            if p > 0:
                # the shared lattice row: computed by either slab wins over the other's fill (as
                # in one pass, where a pixel any neighbouring block needs as a corner is computed)
                take = comp[0] & ~above
                labels[lo, take] = glob[0, take]
                its[lo, take] = it[0, take]
                lo, glob, it, comp = lo + 1, glob[1:], it[1:], comp[1:]
            labels[lo:hi] = glob
            its[lo:hi] = it
            above = comp[-1]
        nr = len(merged)
        roots = np.array(merged, dtype=np.complex128)
    order = np.lexsort((roots.imag, roots.real))
    rank = np.empty(nr + 1, dtype=np.int64)
    rank[order] = np.arange(nr)
    rank[nr] = -1
    labels = rank[np.where(labels >= 0, labels, nr)]
    its = np.where(labels >= 0, its, int(max_iter))
    return labels, roots[order], its


def newton_basins(
    net: Network, z: complex, re, im, gram: str = "JtJ", max_iter: int = 40, *, iterations: bool = False,
    block: int = 1,
):
    """Basins of attraction of Newton's method for ``f_z`` in the m-plane (compiled).

    Newton runs from every start ``m = re[j] + 1j * im[i]``: for rational equations (linear,
    ReLU, hard-tanh layers) with the solver's log-form map ``m <- m - g/g'``,
    ``g = log(z / M^{-1}(m))``; for the others (leaky ReLU, smooth activations) the solver's joint
    Newton on ``(m, u_1, ..., u_G)`` from ``u_g = k_g m / E[D_g^2]``. Starts that converge to the
    same root share a label.

    Parameters
    ----------
    net : Network
    z : complex
        The point ``z`` of ``M^{-1}(m) = z``.
    re, im : array_like, 1-D
        Real and imaginary parts of the starts (pixel centres).
    gram : {"JtJ", "JJt"}
    max_iter : int
        Newton steps per start (1 to 10000).
    iterations : bool
        Also return the Newton steps each start used (for shading).
    block : int
        1 (default): Newton from every start. ``block > 1``: a preview that runs Newton on every
        ``block``-th row and column and fills blocks whose four corners reach the same root
        (see :func:`fpcore._basins.basins_of_equation`).

    Returns
    -------
    labels : ndarray of int, shape (len(im), len(re))
        Index into ``roots``, or -1 where Newton did not converge in ``max_iter`` steps.
    roots : ndarray of complex
        Distinct limits found, sorted by real part (then imaginary part).
    iterations : ndarray of int, shape (len(im), len(re))
        Only with ``iterations=True``: steps used (``max_iter`` where Newton did not converge).

    Examples
    --------
    >>> import fpcore, numpy as np
    >>> lab, roots = fpcore.newton_basins(fpcore.Network([100] * 3, "relu"), 1.0 + 0.5j,
    ...                                   np.linspace(-2, 1, 30), np.linspace(-1.5, 1.5, 30))
    >>> lab.shape, roots.size >= 1
    ((30, 30), True)
    >>> lab, roots, its = fpcore.newton_basins(fpcore.Network([100] * 3, "tanh"), 1.0 + 0.5j,
    ...                                        np.linspace(-2, 1, 30), np.linspace(-1.5, 1.5, 30),
    ...                                        iterations=True)
    >>> bool(np.all(its[lab >= 0] < 40))
    True
    """
    _check_gram(gram)
    if not isinstance(net, Network):
        raise ValueError(f"net must be an fpcore.Network, got {type(net).__name__}")
    try:
        z = complex(z)
    except (TypeError, ValueError):
        raise ValueError(f"z must be a complex number, got {z!r}") from None
    if not (math.isfinite(z.real) and math.isfinite(z.imag)) or z == 0:
        raise ValueError(f"z must be a finite non-zero complex number, got {z!r}")
    re = np.asarray(re, dtype=float)
    im = np.asarray(im, dtype=float)
    if re.ndim != 1 or im.ndim != 1 or re.size == 0 or im.size == 0:
        raise ValueError("re and im must be non-empty 1-D arrays")
    if not (np.all(np.isfinite(re)) and np.all(np.isfinite(im))):
        raise ValueError("re and im must be finite")
    if re.size * im.size > _MAX_PIXELS:
        raise ValueError(f"re and im: at most {_MAX_PIXELS} starts, got {re.size} x {im.size}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1 or max_iter > 10_000:
        raise ValueError(f"max_iter must be an integer in [1, 10000], got {max_iter!r}")
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 1 <= block <= 64:
        raise ValueError(f"block must be an integer in [1, 64], got {block!r}")
    eq = build_equation(net, gram)
    labels, roots, its = basins_of_equation(eq, z, re, im, int(max_iter), int(block))
    return (labels, roots, its) if iterations else (labels, roots)

