"""Support edges: critical values of ``M^{-1}`` on the real line (MATH.md section 3).

``lambda_max = min_{m > 0} M^{-1}(m)``; when the support is bounded away from 0 the lower edge is
the critical value of ``M^{-1}`` on the interval of real ``m`` just left of ``M(0^-) = atom - 1``.
On the real line the unknowns ``u_g`` are real and found by a safeguarded monotone solve.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from . import _fastchain, _lawkernels
from ._activations import N_SHORT
from ._equation import Equation

_BISECT = 80  # halvings: below double precision for any bracket
_NOISE = 1e-12  # |d log M^{-1} / d log m| below this is rounding (the slope's terms cancel)


def _u_real_vec(eq: Equation, ms: np.ndarray, V: np.ndarray | None = None, W: np.ndarray | None = None) -> np.ndarray:
    """Real ``u_g`` with ``psi_g(u_g) = k_g m`` for many ``m`` and all groups at once, by
    safeguarded Newton inside a bracket of the right branch (``nan`` where none exists); the
    laws are ``eq.packed``'s atoms unless ``V``, ``W`` are given.

    ``psi`` increases on each branch: ``(0, 1/vmax) -> (0, inf)``, ``(-inf, 0) -> (-p, 0)`` and,
    when every atom is positive, ``(1/vmin, inf) -> (-inf, -p)``.
    """
    ms = np.asarray(ms, dtype=float)
    if V is None:
        V, W, k, _ = eq.packed
    else:
        k = eq.packed[2]
    vmax = V.max(axis=1)
    vmin = np.where(W > 0, V, np.inf).min(axis=1)
    p = np.sum(np.where(V > 0, W, 0.0), axis=1)
    w = ms[:, None] * k  # (n, G)

    def psi(u):
        t = 1.0 - u[..., None] * V
        r = V / t
        return np.sum(W * u[..., None] * r, axis=-1), np.sum(W * r / t, axis=-1)

    lo = np.full(w.shape, np.nan)
    hi = np.full(w.shape, np.nan)
    b1 = w >= 0
    b2 = (w < 0) & (w > -p)
    b3 = (w <= -p) & (vmin > 0)
    lo = np.where(b1, 0.0, lo)
    hi = np.where(b1, 1.0 / vmax, hi)
    # far ends of the unbounded branches: psi(u) ~ -p + S/(-u) (u -> -inf), -p - S/u (u -> inf)
    # with S = sum_i w_i / v_i over the positive atoms, so these brackets already enclose
    S = np.sum(np.where(V > 0, W / np.where(V > 0, V, 1.0), 0.0), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(b2, -1.0 - 2.0 * S / (w + p), lo)
        hi = np.where(b2, 0.0, hi)
        lo = np.where(b3, 1.0 / vmin, lo)
        hi = np.where(b3, 2.0 / vmin + 2.0 * S / (-p - w), hi)
    finite = np.isfinite(lo) & np.isfinite(hi) & (np.abs(lo) < 1e150) & (np.abs(hi) < 1e150)
    lo = np.where(finite, lo, np.nan)
    hi = np.where(finite, hi, np.nan)
    with np.errstate(all="ignore"):
        for _ in range(1100):  # bracket expansion on the unbounded branches (doubling, bounded)
            grow_lo = b2 & (psi(np.nan_to_num(lo))[0] > w)
            grow_hi = b3 & (psi(np.nan_to_num(hi))[0] < w)
            if not (np.any(grow_lo) or np.any(grow_hi)):
                break
            lo = np.where(grow_lo, 2.0 * lo, lo)
            hi = np.where(grow_hi, 2.0 * hi, hi)
        mu1 = np.sum(W * V, axis=1)
        u = np.clip(w / mu1, lo, hi)  # psi(u) ~ u E[D^2] for small u
        u = np.where((u > lo) & (u < hi), u, 0.5 * (lo + hi))
        for _ in range(_BISECT):
            f, df = psi(np.nan_to_num(u))
            f = f - w
            lo = np.where(f < 0, u, lo)
            hi = np.where(f < 0, hi, u)
            un = u - f / df
            bad = ~np.isfinite(un) | (un < lo) | (un > hi)
            un = np.where(bad, 0.5 * (lo + hi), un)
            done = (np.abs(un - u) <= 1e-14 * np.maximum(np.abs(u), 1e-300)) | (hi - lo <= 1e-14 * np.abs(hi))
            done |= np.abs(f) <= 1e-15 * np.maximum(np.abs(w), 1e-300)
            un = np.where(done, u, un)
            u = un
            if np.all(done | ~np.isfinite(u)):
                break
    return u


def _log_inverse_compiled(eq: Equation, ms: np.ndarray, V: np.ndarray, W: np.ndarray):
    return _fastchain.log_inverse_real(np.ascontiguousarray(ms, dtype=float), *_real_args(eq, V, W))


def _real_args(eq: Equation, V: np.ndarray, W: np.ndarray) -> tuple:
    """The arguments of :func:`_fastchain.log_inverse_real` after ``ms`` for the laws ``V``, ``W``,
    kept on ``eq`` (the edge searches evaluate one point at a time from ``brentq``: preparing
    them took 100 us of each 4 us evaluation)."""
    cache = eq.__dict__.setdefault("_real_args", [])  # (V, W, args); V, W held, so ids stay theirs
    for V_, W_, args in cache:
        if V_ is V and W_ is W:
            return args
    _, _, k, n = eq.packed
    vmax = V.max(axis=1)
    vmin = np.where(W > 0, V, np.inf).min(axis=1)
    p = np.sum(np.where(V > 0, W, 0.0), axis=1)
    S = np.sum(np.where(V > 0, W / np.where(V > 0, V, 1.0), 0.0), axis=1)
    args = (eq.roots.astype(float), eq.exps.astype(float), float(eq.log_c), V, W, k, n, vmax, vmin, p, S,
            np.sum(W * V, axis=1), _fastchain.live_sizes(np.ascontiguousarray(W)))
    cache.append((V, W, args))
    return args


def _rational_part(eq: Equation, ms: np.ndarray):
    """The rational factors' ``log|M^{-1}(m)|``, slope and sign at the real ``ms``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = ms[:, None] - eq.roots
        return (eq.log_c + np.sum(eq.exps * np.log(np.abs(d)), axis=1), np.sum(eq.exps / d, axis=1),
                np.prod(np.sign(d) ** eq.exps, axis=1))


def _log_inverse_numpy(eq: Equation, ms: np.ndarray, V: np.ndarray, W: np.ndarray):
    """:func:`_log_inverse_compiled` in numpy (no numba): value, slope, sign and the real ``u_g``."""
    _, _, k, n = eq.packed
    val, slope, sign = _rational_part(eq, ms)
    with np.errstate(divide="ignore", invalid="ignore"):
        U = _u_real_vec(eq, ms, V, W)
        for g in range(V.shape[0]):
            u = U[:, g]
            t = 1.0 - u[:, None] * V[g]
            dps = np.sum(W[g] * V[g] / t**2, axis=1)
            val = val - n[g] * np.log(np.abs(u))
            slope = slope - n[g] * k[g] / (dps * u)
            sign = sign * np.sign(u) ** n[g]
    return val, slope, sign, U


def log_inverse_and_slope_vec(eq: Equation, ms: np.ndarray):
    """:func:`log_inverse_and_slope` for an array of real ``m``.

    Long laws of ``D^2`` (more than ``N_SHORT`` atoms, or a short rule of their own,
    :attr:`fpcore._activations.D2Law.short`) are taken by their short Gauss rules where the Gauss
    error bound at the real ``u_g`` is below ``1e-12`` relative, by their full atoms elsewhere
    (``u_g`` near the poles of ``psi_g``): the same rules, compiled or in numpy."""
    ms = np.asarray(ms, dtype=float)
    if not eq.ugroups:
        return _rational_part(eq, ms)
    evaluate = _log_inverse_compiled if _fastchain._HAVE_NUMBA else _log_inverse_numpy
    V, W, k, n = eq.packed
    if V.shape[1] <= N_SHORT and not any(g.law._short_src is not None for g in eq.ugroups):
        return evaluate(eq, ms, V, W)[:3]
    val, slope, sign, U = evaluate(eq, ms, *eq.packed_short)
    full = ~_fastchain.gauss_error_ok(np.ascontiguousarray(U, dtype=complex), V.max(axis=1), k,
                                      ms.astype(complex), N_SHORT, 1e-12)
    if np.any(full):
        val[full], slope[full], sign[full], _ = evaluate(eq, ms[full], V, W)
    return val, slope, sign


def log_inverse_and_slope(eq: Equation, m: float) -> tuple[float, float, float]:
    """``log|M^{-1}(m)|``, its derivative and the sign of ``M^{-1}(m)`` for real ``m``."""
    d = m - eq.roots
    val = eq.log_c + float(np.sum(eq.exps * np.log(np.abs(d))))
    slope = float(np.sum(eq.exps / d))
    sign = float(np.prod(np.sign(d) ** eq.exps))
    if eq.ugroups:
        v, s, g = log_inverse_and_slope_vec(eq, np.array([m], dtype=float))
        return float(v[0]), float(s[0]), float(g[0])
    return val, slope, sign


def _slope(eq, m):
    return log_inverse_and_slope(eq, m)[1]


def _log_inverse_contour(eq: Equation, ms: np.ndarray):
    """``log|M^{-1}(m)|``, its slope and sign for real ``m > 0`` with each group whose contour rule
    the solver uses (:meth:`Equation._contour_in_use`) taken by that rule: ``u_g`` in
    ``(0, 1/sup D^2)`` with ``Re psi_g(u_g) = k_g m`` (``nan`` where the rule does not hold). The real atoms of a
    continuous law miss ``psi_g`` near its pole (orthogonal tanh: ``psi_g(0.999)`` 21 instead of
    48), where the minimum of ``M^{-1}`` of orthogonal expanding nets lies."""
    ms = np.asarray(ms, dtype=float)
    V, W, k, n = eq.packed
    val, slope, sign = _rational_part(eq, ms)
    with np.errstate(divide="ignore", invalid="ignore"):
        U = _u_real_vec(eq, ms, V, W)
        for gi, grp in enumerate(eq.ugroups):
            if eq._contour_in_use(grp):
                cv, cw = grp.law.cvalues, grp.law.cweights
                # the rule has a real node at the law's supremum (psi_g's pole); it holds on the
                # real axis up to where Im psi_g (0 for the law) stays below 1e-6 of |psi_g|
                real = cv.imag == 0
                pole = 1.0 / float(np.max(cv.real[real])) if np.any(real) else 1.0 / float(np.max(np.abs(cv)))
                hi0 = 0.0
                for uc in pole * (1.0 - 10.0 ** -np.arange(1.0, 13.0)):
                    pc = complex(np.sum(cw * uc * cv / (1.0 - uc * cv)))
                    if not (np.isfinite(pc) and abs(pc.imag) <= 1e-6 * abs(pc)):
                        break
                    hi0 = uc
                w = ms * k[gi]
                lo, hi = np.zeros_like(ms), np.full_like(ms, hi0)
                top = float(np.sum(cw * hi0 * cv / (1.0 - hi0 * cv)).real) if hi0 > 0 else 0.0
                # safeguarded Newton from the real atoms' u_g (Re psi_g increases on (0, hi0))
                u = np.where(np.isfinite(U[:, gi]) & (U[:, gi] > 0) & (U[:, gi] < hi0), U[:, gi], 0.5 * hi0)
                for _ in range(200):  # halvings at worst: below double precision for (0, hi0)
                    t = 1.0 - u[:, None] * cv
                    f = np.sum(cw * u[:, None] * cv / t, axis=1).real - w
                    df = np.sum(cw * cv / t**2, axis=1).real
                    lo = np.where(f < 0, u, lo)
                    hi = np.where(f < 0, hi, u)
                    un = u - f / df
                    un = np.where(np.isfinite(un) & (un > lo) & (un < hi), un, 0.5 * (lo + hi))
                    done = (np.abs(un - u) <= 1e-15 * u) | (hi - lo <= 1e-15 * hi)
                    u = un
                    if np.all(done):
                        break
                u = np.where(w < top, u, np.nan)
                dps = np.sum(cw * cv / (1.0 - u[:, None] * cv) ** 2, axis=1).real
            else:
                u = U[:, gi]
                dps = np.sum(W[gi] * V[gi] / (1.0 - u[:, None] * V[gi]) ** 2, axis=1)
            val = val - n[gi] * np.log(np.abs(u))
            slope = slope - n[gi] * k[gi] / (dps * u)
            sign = sign * np.sign(u) ** n[gi]
    return val, slope, sign


def _upper_edge_contour(eq: Equation, line=None) -> float | None:
    """:func:`upper_edge` with the contour rules (:func:`_log_inverse_contour`, or ``line``, an
    evaluator from :func:`_contour_line`); ``None`` when ``M^{-1}`` has no minimum where they
    hold. The first sign change of the slope on a scan of ``log m`` in ``[-40, 40]``, refined."""
    if line is None:
        line = lambda ms: _log_inverse_contour(eq, ms)  # noqa: E731
    ts = np.linspace(-40.0, 40.0, 161)
    val, sl, _ = line(np.exp(ts))
    sl = sl * np.exp(ts)
    idx = np.flatnonzero(np.isfinite(sl[:-1]) & np.isfinite(sl[1:]) & (sl[:-1] < -_NOISE) & (sl[1:] > _NOISE))
    if idx.size == 0:
        return None
    g = lambda t: float(line(np.array([math.exp(t)]))[1][0]) * math.exp(t)  # noqa: E731
    t_star = optimize.brentq(g, ts[idx[0]], ts[idx[0] + 1], xtol=1e-14, rtol=1e-15, maxiter=400)
    return math.exp(float(line(np.array([math.exp(t_star)]))[0][0]))


def _contour_ends(cv: np.ndarray, cw: np.ndarray) -> tuple[float, float]:
    """Where a contour rule ``(cv, cw)`` holds on the real axis: ``hi0`` (below ``psi``'s pole at
    ``1 / sup D^2``, the last of ``pole (1 - 10^-j)``, ``j = 1..12``, with ``Im psi <= 1e-6
    |psi|``, 0 when none) and ``top = Re psi(hi0)``, as :func:`_log_inverse_contour` takes them."""
    real = cv.imag == 0
    pole = 1.0 / float(np.max(cv.real[real])) if np.any(real) else 1.0 / float(np.max(np.abs(cv)))
    ucs = pole * (1.0 - 10.0 ** -np.arange(1.0, 13.0))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pc = np.sum(cw * ucs[:, None] * cv / (1.0 - ucs[:, None] * cv), axis=1)
        bad = ~(np.isfinite(pc) & (np.abs(pc.imag) <= 1e-6 * np.abs(pc)))
    j = int(np.argmax(bad)) if np.any(bad) else ucs.size  # the probes stop at the first failure
    if j == 0:
        return 0.0, 0.0
    hi0 = float(ucs[j - 1])
    return hi0, float(np.sum(cw * hi0 * cv / (1.0 - hi0 * cv)).real)


def _contour_line(eq: Equation):
    """An evaluator ``ms -> (log|M^{-1}|, slope, sign)`` of :func:`_log_inverse_contour`: compiled
    (:func:`fpcore._lawkernels.log_inverse_contour_real`) with the equation's arrays and each
    law's ``hi0``, ``top`` (:func:`_contour_ends`) prepared once, instead of per call; the numpy
    function itself without numba."""
    if not _fastchain._HAVE_NUMBA:
        return lambda ms: _log_inverse_contour(eq, np.asarray(ms, dtype=float))
    V, W, k, n = eq.packed
    vmax = V.max(axis=1)
    vmin = np.where(W > 0, V, np.inf).min(axis=1)
    p = np.sum(np.where(V > 0, W, 0.0), axis=1)
    S = np.sum(np.where(V > 0, W / np.where(V > 0, V, 1.0), 0.0), axis=1)
    mu1 = np.sum(W * V, axis=1)
    CV, CW = eq.packed_complex
    P = CW * CV
    G = len(eq.ugroups)
    inuse = np.array([eq._contour_in_use(g) for g in eq.ugroups], dtype=np.bool_)
    hi0, top = np.zeros(G), np.zeros(G)
    ends: dict[int, tuple[float, float]] = {}  # groups of one depth's law share it
    for gi, grp in enumerate(eq.ugroups):
        if inuse[gi]:
            key = id(grp.law)
            if key not in ends:
                ends[key] = _contour_ends(grp.law.cvalues, grp.law.cweights)
            hi0[gi], top[gi] = ends[key]
    args = (eq.roots.astype(float), eq.exps.astype(float), float(eq.log_c), V, W, k, n, vmax, vmin, p, S, mu1,
            np.ascontiguousarray(P.real), np.ascontiguousarray(P.imag), np.ascontiguousarray(CV.real),
            np.ascontiguousarray(CV.imag), inuse, hi0, top)
    return lambda ms: _lawkernels.log_inverse_contour_real(np.ascontiguousarray(ms, dtype=float), *args)


_LOCAL_STEPS = (1e-3, 4e-3, 1.6e-2, 6.4e-2, 0.256)  # offsets in log m from the start, then
_SCAN_STEP = 0.5  # steps of the scan's spacing (its resolution) out to |log m| = 40


def _upper_edge_contour_near(line, t0: float) -> float | None:
    """:func:`_upper_edge_contour` from ``t0 = log m`` (the real atoms' minimum): the slope's sign
    change bracketed by a walk from ``t0`` (offsets ``_LOCAL_STEPS``, then steps of the scan's
    spacing ``_SCAN_STEP``), towards larger ``m`` where the slope is negative and smaller ``m``
    where it is positive, then refined as the scan's; ``None`` (the scan decides) where the walk
    meets a non-finite slope (``u_g`` beyond where a rule holds) or ``|log m| > 40``. A start
    where the slope is not finite moves first to the nearest point below where it is.

    The scan's edge: on ``(0, m_edge)`` ``M^{-1}`` is the inverse of ``M`` on ``(lambda_max,
    inf)``, where ``M`` decreases, so the slope is negative left of the edge; right of it, where
    the rules hold, it stayed positive on every tanh / erf / sigmoid equation tried (346, depths
    1 to 50, both inits, both Gram orders: one sign change or none). With one sign change, the
    walk's bracket (as narrow as the scan's) holds the scan's root. The real atoms put ``t0``
    within ``~1e-3`` of the edge for deep nets (the laws differ only near ``psi_g``'s pole) and
    within ``~3`` for one-layer orthogonal ones (``u_g`` at the pole: the atoms' minimum lies
    beyond the contour's), a few steps either way."""
    def g(t):
        m = math.exp(t)
        return float(line(np.array([m]))[1][0]) * m

    def offsets():  # bounded: out to |log m| = 80 at most
        yield from _LOCAL_STEPS
        off = _LOCAL_STEPS[-1]
        for _ in range(int(80.0 / _SCAN_STEP)):
            off += _SCAN_STEP
            yield off

    def walk(t0, direction):  # (last point with the start's sign, first with the other), or None
        last = t0
        for off in offsets():
            tn = t0 + direction * off
            if abs(tn) > 40.0:
                return None
            gn = g(tn)
            if not math.isfinite(gn):
                return None
            if abs(gn) > _NOISE:
                if (gn > 0) == (direction > 0):
                    return last, tn
                last = tn
        return None

    if not (-40.0 <= t0 <= 40.0):
        return None
    g0 = g(t0)
    if not math.isfinite(g0):
        # t0 beyond where the rules hold (one-layer orthogonal nets): from the first point below
        for off in offsets():
            if t0 - off < -40.0:
                return None
            g0 = g(t0 - off)
            if math.isfinite(g0):
                if g0 < -_NOISE:  # the minimum would lie where no rule holds: the scan decides
                    return None
                t0 -= off
                break
        else:
            return None
    if g0 < -_NOISE:
        br = walk(t0, 1.0)
    elif g0 > _NOISE:
        br = walk(t0, -1.0)
        br = None if br is None else (br[1], br[0])
    else:  # at the minimum to rounding: the signs on either side
        left, right = walk(t0, -1.0), walk(t0, 1.0)
        br = None if left is None or right is None else (left[1], right[1])
    if br is None:
        return None
    t_star = optimize.brentq(g, br[0], br[1], xtol=1e-14, rtol=1e-15, maxiter=400)
    return math.exp(float(line(np.array([math.exp(t_star)]))[0][0]))


def upper_edge(eq: Equation) -> float:
    """``lambda_max`` of the continuous part (the right end of the support)."""
    if not (eq.ugroups and eq.uses_contour) or any(
            eq._contour_in_use(g) and g.law._short_src is not None for g in eq.ugroups):
        # (GELU, SiLU, softplus, ELU, SELU: their rules' real nodes do not mark psi_g's pole; the
        # contour scan found no minimum on the nets tried, 5 s for orthogonal GELU depth 30)
        return _upper_edge_atoms(eq)[0]
    # the solver's laws (contour rules) decide: the real atoms stand for psi_g only away from its
    # pole; their minimum stands where it is a critical point of M^{-1} with the contour rules
    line = _contour_line(eq)
    m_star = None
    try:
        edge, m_star = _upper_edge_atoms(eq)
        v, sl, _ = line(np.array([m_star]))
        if abs(float(v[0]) - math.log(edge)) <= 1e-10 and abs(float(sl[0]) * m_star) <= 1e-8:
            return edge
    except RuntimeError:
        edge = None
    # else the contour minimum near the real atoms' (the scan where no bracket is found there)
    contour = None
    if m_star is not None and 0.0 < m_star < math.inf:
        contour = _upper_edge_contour_near(line, math.log(m_star))
    if contour is None:
        contour = _upper_edge_contour(eq, line)
    if contour is not None:
        return contour
    if edge is None:
        raise RuntimeError("upper edge: no minimum of M^{-1} on m > 0")
    return edge


def _upper_edge_atoms(eq: Equation) -> tuple[float, float]:
    """:func:`upper_edge` with the laws' real atoms, and the ``m`` where it is attained."""
    if eq.rational and eq.degree_at_infinity == 0:
        # M^{-1} decreases to its value at infinity (an atom) unless it has an interior minimum.
        ts = np.linspace(-40, 40, 801)
        ms = np.exp(ts)
        sl = np.sum(eq.exps / (ms[:, None] - eq.roots), axis=1) * ms
        idx = np.flatnonzero((sl[:-1] < 0) & (sl[1:] >= 0))
        if idx.size == 0:
            return math.exp(eq.log_c), math.inf
        a, b = ts[idx[0]], ts[idx[0] + 1]
    else:
        a, b = -40.0, 40.0
        if eq.ugroups:
            # u_g must stay below 1 / max D^2: m is bounded above by psi_g's pole.
            b = 60.0
        g = lambda t: _slope(eq, math.exp(t)) * math.exp(t)  # noqa: E731
        ga = g(a)
        gb = g(b)
        # far out, u_g sits on psi_g's pole and the slope loses its digits: try nearer ends (a
        # slope d log M^{-1} / d log m within 1e-12 of 0 is rounding, not a sign)
        for b_try in (30.0, 15.0, 8.0, 4.0, 2.0, 1.0, 0.0):
            if ga < -_NOISE and gb > _NOISE:
                break
            b, gb = b_try, g(b_try)
        if not (ga < -_NOISE and gb > _NOISE):
            a, b = -40.0, 60.0 if eq.ugroups else 40.0
            ts = np.linspace(a, b, 400)
            val, vals, _ = log_inverse_and_slope_vec(eq, np.exp(ts))
            vals = vals * np.exp(ts)
            idx = np.flatnonzero((vals[:-1] < -_NOISE) & (vals[1:] > _NOISE))
            if idx.size == 0:
                # M^{-1} decreases to its limit at m -> infinity (leaky ReLU with a narrowing
                # readout): the infimum is where the slope has vanished to rounding
                flat = np.flatnonzero(np.abs(vals) <= _NOISE)
                if flat.size and np.all(vals[: flat[0]] < 0) and np.isfinite(val[flat[0]]):
                    return math.exp(val[flat[0]]), math.exp(ts[flat[0]])
                raise RuntimeError("upper edge: no minimum of M^{-1} on m > 0")
            a, b = ts[idx[0]], ts[idx[0] + 1]
    g = lambda t: _slope(eq, math.exp(t)) * math.exp(t)  # noqa: E731
    t_star = optimize.brentq(g, a, b, xtol=1e-14, rtol=1e-15, maxiter=400)
    return math.exp(log_inverse_and_slope(eq, math.exp(t_star))[0]), math.exp(t_star)


_TINY_V = 1e-6  # a law of D^2 whose bulk reaches below this fraction of its top reaches 0
_TAIL_MASS = 1e-12  # weight of each of a law's tails left out of its bulk (per law: at most 1e-9 in all)


def _bulk(V: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Weights ``W`` of one law (atoms ``V``) with its positive atoms' tails, below the first and
    above the last atom where the weight summed from either end passes ``_TAIL_MASS``, moved onto
    those two atoms (atoms at 0 given weight 0: they add nothing to ``psi``). A Gaussian tail of
    weight 1e-40 at ``v = 0.01`` puts a pole of ``psi`` at ``u = 100`` that its weight makes
    invisible in double precision: the real solves stick there. The law moves by at most
    ``2 _TAIL_MASS`` in mass, and so does the spectrum (per law); its positive mass ``p`` stays."""
    W = np.where(V > 0, W, 0.0)
    order = np.argsort(V, kind="stable")
    order = order[W[order] > 0]
    if order.size == 0:
        return W
    w = W[order]
    up = np.cumsum(w)
    down = np.cumsum(w[::-1])[::-1]
    keep = (up > _TAIL_MASS) & (down > _TAIL_MASS)
    if not np.any(keep):
        return W
    first, last = np.flatnonzero(keep)[[0, -1]]
    out = np.zeros_like(W)
    out[order[keep]] = w[keep]
    out[order[first]] += float(w[:first].sum())
    out[order[last]] += float(w[last + 1:].sum())
    return out


class _Relaxed:
    """``eq`` with the laws of some groups replaced by their bulks (:func:`_bulk`) in
    :attr:`Equation.packed` and :attr:`Equation.packed_short`: with no atom at or near 0 the real
    solves follow ``psi_g``'s branch ``(1/vmin, inf) -> (-inf, -p)`` (``vmin`` is taken over the
    atoms of positive weight). Everything else is ``eq``'s."""

    def __init__(self, eq: Equation, groups: list[int]):
        self._eq = eq

        def bulk(V, W):
            W = W.copy()
            for g in groups:
                W[g] = _bulk(V[g], W[g])
            return V, W

        V, W, k, n = eq.packed
        self.packed = (*bulk(V, W), k, n)
        self.packed_short = bulk(*eq.packed_short)

    def __getattr__(self, name):
        return getattr(self._eq, name)


def _beyond_infinity(grp, b: float, m_atom: float) -> bool:
    """Whether group ``grp`` (a law of ``D^2``, positive mass ``p``; with an atom at 0 the branch
    ``(-inf, 0) -> (-p, 0)`` of ``psi`` ends at ``b = -p / k``) continues left of ``b`` through
    ``u = infinity`` onto ``(1/vmin, inf) -> (-inf, -p)``, the atoms of its tails, and any atom at
    0, left out (:func:`_bulk`).

    Near ``u = infinity`` ``psi(u) = -p - sum_v w_v / (v u) + ...`` is analytic in ``1/u`` when the
    positive atoms stay away from 0: ``1/u`` crosses 0 with ``m`` and ``M^{-1}`` stays real. That
    is the real branch of ``M`` below the support when ``b = M(0^-) = m_atom`` (the layer bounds
    the rank, ``p N_l`` least; ``b >= m_atom`` always), and whenever the atom at 0 is a lump of
    negligible mass (SiLU, GELU at small ``q``, the last layers of deep tapered nets: ``D^2`` near
    ``1/4`` and 1e-19 of lumped mass at 0; with orthogonal weights a pole of the rational part at
    each ``b`` cancels ``u_g``'s, and the lower edge lies beyond several of them). A law whose bulk
    reaches 0 (a density down to 0, ``q`` of order 1) has a branch point there instead and its
    support touches 0: the bulk must stay above ``_TINY_V`` times its top."""
    V, W = grp.values, grp.weights
    Wb = _bulk(V, W)
    kept = V[Wb > 0]
    if kept.size == 0 or not kept.min() >= _TINY_V * kept.max():
        return False
    return float(W[V <= 0].sum()) <= _TAIL_MASS or b >= m_atom - 1e-9 * abs(m_atom)


def _past_infinity(eq: Equation, m_atom: float):
    """The groups with an atom at 0 whose real branch :func:`lower_edge` follows through
    ``u_g = infinity`` (:func:`_beyond_infinity`), the ends ``-p / k`` of the others' branches,
    and the ends and multiplicities of all the groups it follows there."""
    lo = -math.inf
    relax, ends, mult = [], [], []
    for gi, grp in enumerate(eq.ugroups):
        p = float(grp.weights[grp.values > 0].sum())
        through = _beyond_infinity(grp, -p / grp.k, m_atom)
        if through:  # u_g runs on from +infinity left of -p / k
            ends.append(-p / grp.k)
            mult.append(float(grp.n))
        if float(grp.values.min()) <= 0:
            if through:
                relax.append(gi)
            else:
                lo = max(lo, -p / grp.k)
    return relax, lo, np.array(ends), np.array(mult)


def edge_past_infinity(eq: Equation, atom0: float) -> bool:
    """Whether :func:`lower_edge` follows some group with an atom at 0 through ``u_g = infinity``."""
    return bool(eq.ugroups) and bool(_past_infinity(eq, atom0 - 1.0)[0])


def lower_edge(eq: Equation, atom0: float) -> float:
    """Left end of the support of the continuous part (0 when the support touches 0)."""
    m_atom = atom0 - 1.0
    relax, lo, ends, mult = _past_infinity(eq, m_atom)
    for r in np.unique(eq.roots[eq.roots < m_atom - 1e-12 * max(1.0, abs(m_atom))]):
        # u_g^{-n_g} ~ (m - b_g)^{n_g} near a followed end b_g: a root of the rational part there
        # whose exponent they cancel is no end of the real branch (orthogonal weights: a pole at
        # each -N_l / N_0)
        at = np.abs(ends - r) <= 1e-12 * abs(r)
        if float(eq.exps[eq.roots == r].sum()) + float(mult[at].sum()) != 0.0:
            lo = max(lo, float(r))
    hi = m_atom
    if lo >= hi:
        return 0.0
    if relax:
        eq = _Relaxed(eq, relax)
    # Scan the open interval (in a variable that spreads points near both ends).
    n_scan = 600 if eq.rational else 160  # each point costs a psi solve for every group
    if math.isinf(lo):
        # offsets e^30 .. e^-30 from m_atom (hi - expm1(s) ran right of hi for s < 0 and left a
        # gap of 0.2 next to it: the lower edges of expanding nets, m within 1e-3 of -1, were missed)
        ms = hi - np.exp(np.linspace(30, -30, n_scan))
    else:
        s = np.linspace(-12, 12, n_scan)
        ms = lo + (hi - lo) * (0.5 * (1 + np.tanh(s)))
    if eq.rational:
        d = ms[:, None] - eq.roots
        sl = np.sum(eq.exps / d, axis=1)
        sg = np.prod(np.sign(d) ** eq.exps, axis=1)
    else:
        _, sl, sg = log_inverse_and_slope_vec(eq, ms)
    # Far from the roots the slope's terms cancel to rounding (|m d log M^{-1}/dm| ~ 1e-14 at
    # m ~ -1e9 for a leaky ReLU net): such signs are noise, not critical points.
    ok = np.isfinite(sl) & (sg > 0) & (np.abs(ms * sl) > _NOISE)
    # Moving left from m_atom, x = M^{-1}(m) increases from 0 to lambda_min then turns back:
    # the first critical point (a maximum) to the left of m_atom.
    cand = np.flatnonzero(ok[:-1] & ok[1:] & (sl[:-1] > 0) & (sl[1:] <= 0))
    if cand.size == 0:
        return 0.0
    j = cand[-1]
    try:
        m_star = optimize.brentq(lambda mm: _slope(eq, mm), float(ms[j]), float(ms[j + 1]), xtol=1e-15, maxiter=400)
    except ValueError:  # the scan's sign change did not survive re-evaluation: no edge found
        return 0.0
    v, _, sg = log_inverse_and_slope(eq, m_star)
    if relax and sg > 0:
        # Past u = infinity the real atoms stand for a continuous law only away from the pole
        # 1/vmin of its bulk's lowest atom (its branch point): nearer, u_g sticks at the pole (a
        # tail of weight 1e-12 is invisible there) and the branch's critical value is the
        # atoms', not the law's (SiLU at q = 0.02: 0.03 for an edge at 0.1). Such an edge is not
        # trusted: 0.
        V, W, _, _ = eq.packed
        u = _u_real_vec(eq, np.array([m_star]), V, W)[0]
        vmin = np.where(W > 0, V, np.inf).min(axis=1)
        if _DEBUG:
            print("lower_edge: m*", m_star, "u v_lo on b3", (u * vmin)[u > 0])
        if np.any((u > 0) & ~(u * vmin >= _POLE_MARGIN)):
            return 0.0
    return math.exp(v) if sg > 0 else 0.0


_POLE_MARGIN = 1.05  # past u = infinity, u_g at the lower edge at least this times 1/vmin
_DEBUG = False


def rational_edges(eq: Equation) -> np.ndarray:
    """All positive critical values of ``M^{-1}`` on the real line (rational equations).

    Between consecutive roots/poles, ``log|M^{-1}|`` is smooth; its critical points are found
    by a sign scan on a grid that clusters at both ends of each interval, then refined by
    ``brentq``. Every support edge is among the returned values.
    """
    if _fastchain._HAVE_NUMBA:
        _, vals = rational_critical_points(eq)
        return _merge(np.exp(vals))
    a = np.sort(eq.roots)
    bounds = np.concatenate([[-np.inf], a, [np.inf]])
    out = []
    s = np.linspace(-14.0, 14.0, 700)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if math.isinf(lo) and math.isinf(hi):
            continue
        if math.isinf(lo):
            ms = hi - np.exp(np.linspace(40, -40, 900))
        elif math.isinf(hi):
            ms = lo + np.exp(np.linspace(-40, 40, 900))
        else:
            ms = lo + (hi - lo) * 0.5 * (1.0 + np.tanh(s))
            ms = ms[(ms > lo) & (ms < hi)]
        d = ms[:, None] - eq.roots
        with np.errstate(divide="ignore", invalid="ignore"):
            sl = np.sum(eq.exps / d, axis=1)
        sg = np.prod(np.sign(d) ** eq.exps, axis=1)
        idx = np.flatnonzero((np.sign(sl[:-1]) != np.sign(sl[1:])) & np.isfinite(sl[:-1]) & np.isfinite(sl[1:]))
        for j in idx:
            if sg[j] <= 0:
                continue
            try:
                mc = optimize.brentq(lambda mm: _slope(eq, mm), float(ms[j]), float(ms[j + 1]), xtol=1e-15, maxiter=400)
            except ValueError:
                continue
            v, _, sgn = log_inverse_and_slope(eq, mc)
            if sgn > 0 and math.isfinite(v):
                out.append(math.exp(v))
    return _merge(np.array(out))


def _merge(vals: np.ndarray) -> np.ndarray:
    """Sorted unique values, merging those equal up to the accuracy of the critical-point search."""
    vals = np.unique(vals)
    keep = np.ones(vals.size, dtype=bool)
    keep[1:] = np.diff(vals) > 1e-8 * vals[1:]
    return vals[keep]


_N_BOUNDED = 700  # scan points per interval between two roots (tanh spacing)
_N_UNBOUNDED = 900  # scan points on each unbounded interval (exponential spacing)


def rational_critical_points(eq: Equation, near: tuple[float, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Critical points ``m_c`` of ``M^{-1}`` on the real line with ``M^{-1}(m_c) > 0`` and
    ``log M^{-1}(m_c)`` (rational equations; compiled scan of every interval between roots, as
    :func:`rational_edges`), sorted by ``m_c``. With ``near``, only the interval right of each
    of these roots (``+inf`` for the largest) and the one left of it are scanned."""
    order = np.argsort(eq.roots)
    a, e = eq.roots[order].astype(float), eq.exps[order].astype(float)
    if near is None:
        which = np.arange(a.size + 1)
    else:
        j = np.searchsorted(a, np.asarray(near, dtype=float))  # interval left of a root near[i]
        which = np.unique(np.clip(np.concatenate([j, j + 1]), 0, a.size))
    mc, vc, _ = _fastchain.scan_critical(a, e, float(eq.log_c), _N_BOUNDED, _N_UNBOUNDED, which.astype(np.int64))
    order = np.argsort(mc)
    return mc[order], vc[order]
