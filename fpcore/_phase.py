"""Order/chaos phase diagram of the mean-field recursion (MATH.md section 1).

For each ``(sigma_w2, sigma_b2)`` on a grid: the fixed point ``q*`` of

    q -> sigma_w2 E[phi(sqrt(q) Z)^2] + sigma_b2,

``chi_1 = sigma_w2 E[phi'(sqrt(q*) Z)^2]`` and the boundary ``chi_1 = 1`` between the ordered
(``chi_1 < 1``) and the chaotic (``chi_1 > 1``) phases.

The whole grid is solved at once. ``q*`` is the fixed point the recursion reaches from ``q = 1``
(the start of ``fixed_point`` in ``_meanfield``); it is bracketed for every cell from one table of
``V(q) = E[phi(sqrt(q) Z)^2]`` on a log-spaced grid of ``q`` (the first sign change of
``sigma_w2 V(q) + sigma_b2 - q`` from ``q = 1`` in the direction the recursion moves, found by a
running maximum/minimum per row of ``sigma_b2`` and a vectorised binary search per cell), then
refined inside its bracket by Illinois regula falsi on ``log(sigma_w2 V(q) + sigma_b2) - log q``. The boundary is located
between grid columns where ``chi_1 - 1`` changes sign and refined by the same regula falsi on the
exact ``chi_1(sigma_w2)`` of the row (``chi_1`` can have a kink there: for tanh at
``sigma_b2 = 0`` it is ``sigma_w2`` on the ordered side only). Activations with closed forms
(erf, hard-tanh) are evaluated exactly; those that the activation integrates by Gauss-Hermite
quadrature (tanh, GELU, custom...) are evaluated through quintic splines of ``log V`` and
``log E[phi'^2]`` in ``log q`` fitted to that quadrature on the table (relative interpolation
error about 1e-13), so the cost does not grow with the number of quadrature nodes times cells.
Linear, ReLU and leaky ReLU have ``V(q) = c q``: everything is in closed form.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.interpolate import PPoly, make_interp_spline

from ._activations import Activation, get_activation

__all__ = ["PhaseDiagram", "phase_diagram"]

_LOG_STEP = 0.025  # table spacing in log q: quintic-spline error ~1e-13 relative (measured)
_Q_MIN = 1e-20  # fixed points below this are solved without the table
_Q_CAP = 1e30  # fixed points above this are reported as q* = inf
_PAD = 8  # extra table nodes beyond the search range (spline end effects)
_MAX_ITER = 100


@dataclass(frozen=True)
class PhaseDiagram:
    """Mean-field fixed point and order/chaos phase on a ``(sigma_b2, sigma_w2)`` grid.

    Arrays are indexed ``[i, j]`` = ``(sigma_b2[i], sigma_w2[j])``: rows follow ``sigma_b2``,
    columns ``sigma_w2`` (the layout of ``np.meshgrid(sigma_w2, sigma_b2)``, ready for an image
    with ``sigma_w2`` on the horizontal axis).

    Attributes
    ----------
    activation : str
        Name of the activation.
    sigma_w2 : ndarray, shape (n,)
    sigma_b2 : ndarray, shape (m,)
    q_star : ndarray, shape (m, n)
        Fixed point reached by the recursion from ``q = 1``. ``inf`` where ``q`` grows without
        bound (ReLU with ``sigma_w2 > 2``, or ``= 2`` and ``sigma_b2 > 0``; fixed points above
        1e30); ``nan`` where every ``q`` is a fixed point (linear family with
        ``sigma_w2 E[D^2] = 1`` and ``sigma_b2 = 0``) or, for a custom activation, where the
        search failed. ``0`` where the recursion decays to ``q = 0`` (``sigma_b2 = 0`` in the
        ordered phase of an odd activation).
    chi1 : ndarray, shape (m, n)
        ``sigma_w2 E[phi'(sqrt(q*) Z)^2]``. Defined wherever the law of ``D^2`` does not depend
        on ``q`` (linear, ReLU, leaky ReLU: ``chi1 = sigma_w2 E[D^2]`` even where ``q* = inf``);
        ``nan`` where ``q*`` is ``inf`` or ``nan`` and the law depends on ``q``.
    boundary : ndarray, shape (K, 2)
        Points ``(sigma_w2, sigma_b2)`` with ``chi1 = 1``: along each row, every grid point with
        ``chi1 == 1`` and one point between each pair of neighbours on opposite sides of 1,
        found by regula falsi on the exact ``chi1(sigma_w2)`` of that row (to about 1e-15
        relative; linear interpolation where that fails, and for the linear family, whose
        ``chi1`` is linear in ``sigma_w2``). Crossings between grid columns are all found; two
        crossings between the same neighbours are not. Sorted by ``sigma_b2``, then ``sigma_w2``.
    """

    activation: str
    sigma_w2: np.ndarray
    sigma_b2: np.ndarray
    q_star: np.ndarray
    chi1: np.ndarray
    boundary: np.ndarray

    @property
    def ordered(self) -> np.ndarray:
        """Boolean mask of the ordered cells, ``chi1 < 1`` (gradients vanish)."""
        return self.chi1 < 1.0

    @property
    def chaotic(self) -> np.ndarray:
        """Boolean mask of the chaotic cells, ``chi1 > 1`` (gradients explode)."""
        return self.chi1 > 1.0

    @property
    def phase(self) -> np.ndarray:
        """Per-cell label: ``"ordered"``, ``"chaotic"``, ``"critical"`` (``chi1 == 1``) or ``"undefined"``.

        Examples
        --------
        >>> d = phase_diagram("relu", [1.0, 2.0, 3.0], [0.0])
        >>> d.phase.tolist()
        [['ordered', 'critical', 'chaotic']]
        """
        out = np.full(self.chi1.shape, "undefined", dtype=object)
        out[self.chi1 < 1.0] = "ordered"
        out[self.chi1 > 1.0] = "chaotic"
        out[self.chi1 == 1.0] = "critical"
        return out.astype(str)


def _grid(name: str, values, positive: bool) -> np.ndarray:
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
        raise ValueError(f"{name} must be a 1-D sequence of floats, got {values!r}")
    try:
        arr = np.array(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must contain real numbers, got {values!r}") from None
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) for v in values):
        raise ValueError(f"{name} must contain real numbers, got {values!r}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0 if positive else arr < 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must contain finite {kind} values, got {values!r}")
    if arr.size > 1 and np.any(np.diff(arr) <= 0):
        raise ValueError(f"{name} must be strictly increasing")
    return arr


def _illinois(F: Callable[[np.ndarray, np.ndarray], np.ndarray], a, b, Fa, Fb, tol: float) -> np.ndarray:
    """Vectorised Illinois regula falsi: a root of ``F(x, idx)`` in each bracket ``[a, b]``.

    ``F`` receives the points and the indices of the brackets still active (so it can pick the
    matching parameters). ``Fa`` and ``Fb`` have opposite signs (or one is 0).
    """
    a, b, Fa, Fb = (np.array(v, dtype=float) for v in (a, b, Fa, Fb))
    x = np.where(Fa == 0, a, b)
    active = (Fa != 0) & (Fb != 0)
    for _ in range(_MAX_ITER):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        ai, bi, fa, fb = a[idx], b[idx], Fa[idx], Fb[idx]
        c = bi - fb * (bi - ai) / (fb - fa)
        bad = ~((c > np.minimum(ai, bi)) & (c < np.maximum(ai, bi)))
        c = np.where(bad, 0.5 * (ai + bi), c)
        fc = F(c, idx)
        flip = np.sign(fc) != np.sign(fb)
        a[idx] = np.where(flip, bi, ai)
        Fa[idx] = np.where(flip, fb, 0.5 * fa)  # Illinois: halve the stale end
        b[idx], Fb[idx] = c, fc
        x[idx] = c
        done = (fc == 0) | ~np.isfinite(fc) | (np.abs(b[idx] - a[idx]) <= tol * np.maximum(1.0, np.abs(c)))
        x[idx[~np.isfinite(fc)]] = np.nan
        active[idx[done]] = False
    x[active] = np.nan  # not converged within _MAX_ITER (not seen for the built-in activations)
    return x


class _Moments:
    """``V(q) = E[phi(sqrt q Z)^2]`` and ``mu1(q) = E[phi'(sqrt q Z)^2]`` on a log-``q`` table.

    For quadrature-based activations the values off the table come from quintic splines of the
    logarithms in ``s = log q``; closed forms are evaluated directly.
    """

    def __init__(self, act: Activation, q_hi: float) -> None:
        self.act = act
        k_lo = math.floor(math.log(_Q_MIN) / _LOG_STEP) - _PAD
        k_hi = math.ceil(math.log(q_hi) / _LOG_STEP) + _PAD
        self.k0 = -k_lo  # index of q = 1 (s = 0 exactly)
        self.s = np.arange(k_lo, k_hi + 1) * _LOG_STEP
        self.q = np.exp(self.s)
        self.q[self.k0] = 1.0
        with np.errstate(all="ignore"):
            self.V = np.asarray(act.second_moment(self.q), dtype=float)
        self.spline = act.family == "smooth"
        if self.spline:
            with np.errstate(all="ignore"):
                mu = np.asarray(act.d2_moment(self.q), dtype=float)
            ok = np.all(np.isfinite(self.V) & (self.V > 0)) and np.all(np.isfinite(mu) & (mu > 0))
            if ok:
                self._lv = PPoly.from_spline(make_interp_spline(self.s, np.log(self.V), k=5))
                self._lmu = PPoly.from_spline(make_interp_spline(self.s, np.log(mu), k=5))
            else:  # the quadrature failed somewhere on the table: evaluate it directly instead
                self.spline = False

    def V_of_s(self, s: np.ndarray) -> np.ndarray:
        if self.spline:
            return np.exp(self._lv(s))
        with np.errstate(all="ignore"):
            return np.asarray(self.act.second_moment(np.exp(s)), dtype=float)

    def mu1(self, q: np.ndarray) -> np.ndarray:
        # q* = 0 (ordered, no bias): chi_1 is the limit q -> 0+ of E[phi'(sqrt q Z)^2], the mean
        # of phi'(0-)^2 and phi'(0+)^2 (a kink at 0, SELU/ELU, makes them differ), not phi'(0)^2
        q = np.asarray(q, dtype=float)
        q = np.where(q == 0.0, 1e-300, q)
        out = np.full(q.shape, np.nan)
        fin = np.isfinite(q)
        in_table = fin & (q >= self.q[0]) & (q <= self.q[-1])
        with np.errstate(all="ignore"):
            if self.spline:
                out[in_table] = np.exp(self._lmu(np.log(q[in_table])))
                rest = fin & ~in_table
            else:
                rest = fin
            if np.any(rest):
                out[rest] = np.asarray(self.act.d2_moment(q[rest]), dtype=float)
        return out


def _search_top(act: Activation, sw_max: float, sb_max: float) -> float:
    """A ``q`` above every cell's fixed point (``sigma_w2 V(q) + sigma_b2 - q`` grows with both
    variances, so the corner ``(sw_max, sb_max)`` decides), capped at ``_Q_CAP``."""
    q = max(10.0, 10.0 * sb_max)
    while q < _Q_CAP:
        with np.errstate(all="ignore"):
            g = sw_max * float(act.second_moment(q)) + sb_max - q
        if g < 0:
            break
        q *= 10.0
    return min(q, _Q_CAP)


def _lower_bound(A: np.ndarray, rows: np.ndarray, v: np.ndarray) -> np.ndarray:
    """First ``t`` with ``A[rows, t] >= v`` (``A.shape[1]`` if none); rows of ``A`` non-decreasing.

    ``np.searchsorted`` for one row per query, as a vectorised binary search.
    """
    n = A.shape[1]
    lo = np.zeros(v.shape, dtype=np.intp)
    hi = np.full(v.shape, n, dtype=np.intp)
    while True:
        open_ = lo < hi
        if not np.any(open_):
            return lo
        mid = (lo + hi) // 2
        less = open_ & (A[rows, np.minimum(mid, n - 1)] < v)
        lo = np.where(less, mid + 1, lo)
        hi = np.where(open_ & ~less, mid, hi)


class _FixedPoints:
    """``q*`` for pairs ``(sigma_w2, sigma_b2)`` whose ``sigma_b2`` is one of ``rows``.

    Per row the table gives ``H(Q) = (Q - sigma_b2) / V(Q)``, so that
    ``sign(sigma_w2 V(Q) + sigma_b2 - Q) = sign(sigma_w2 - H(Q))``; running maxima (upward from
    ``Q = 1``) and minima (downward) turn "first sign change in the direction the recursion
    moves" into one binary search per cell.
    """

    def __init__(self, act: Activation, tab: _Moments, rows: np.ndarray) -> None:
        self.act, self.tab, self.rows = act, tab, rows
        self.lo = _PAD  # search range: table indices [lo, hi] = [_Q_MIN, q_top]
        self.hi = tab.s.size - 1 - _PAD
        k0 = tab.k0
        with np.errstate(divide="ignore", invalid="ignore"):
            self.H0 = (1.0 - rows) / tab.V[k0]
            H = (tab.q[None, :] - rows[:, None]) / tab.V[None, :]
        self.up = np.fmax.accumulate(H[:, k0 : self.hi + 1], axis=1)
        self.down = -np.fmin.accumulate(H[:, k0 : self.lo - 1 : -1], axis=1)  # increasing

    def __call__(self, w: np.ndarray, row: np.ndarray) -> np.ndarray:
        tab, k0 = self.tab, self.tab.k0
        b = self.rows[row]
        q_star = np.full(w.shape, np.nan)
        k_a = np.full(w.shape, -1)  # bracket [Q[k_a], Q[k_a + 1]] in the table
        below = np.zeros(w.shape, dtype=bool)  # fixed point under _Q_MIN
        h0 = self.H0[row]
        q_star[w == h0] = 1.0
        up = w > h0  # g(1) > 0: q increases to the first root above 1
        t = _lower_bound(self.up, row[up], w[up])
        c = np.flatnonzero(up)
        found = t < self.up.shape[1]
        q_star[c[~found]] = np.inf
        k_a[c[found]] = k0 + t[found] - 1
        down = w < h0  # g(1) < 0: q decreases to the first root below 1
        t = _lower_bound(self.down, row[down], -w[down])
        c = np.flatnonzero(down)
        found = t < self.down.shape[1]
        below[c[~found]] = True
        k_a[c[found]] = k0 - t[found]
        cells = np.flatnonzero(k_a >= 0)
        if cells.size:
            ka = k_a[cells]
            wc, bc = w[cells], b[cells]
            sa, sb = tab.s[ka], tab.s[ka + 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                Fa = np.log(wc * tab.V[ka] + bc) - sa
                Fb = np.log(wc * tab.V[ka + 1] + bc) - sb

                def F(s, idx):
                    return np.log(wc[idx] * tab.V_of_s(s) + bc[idx]) - s

                q_star[cells] = np.exp(_illinois(F, sa, sb, Fa, Fb, tol=4e-16))
        low = np.flatnonzero(below)
        if low.size:
            q_star[low] = _solve_small(self.act, w[low], b[low], tab.q[self.lo])
        return q_star


def _solve_small(act: Activation, sw: np.ndarray, sb: np.ndarray, q_min: float) -> np.ndarray:
    """Fixed points in ``[0, q_min]`` with the activation's own functions (few cells)."""
    phi0 = float(np.asarray(act.phi(np.zeros(1)), dtype=float)[0])
    g0 = sw * phi0 * phi0 + sb
    with np.errstate(all="ignore"):
        gm = sw * np.asarray(act.second_moment(np.full(sw.shape, q_min)), dtype=float) + sb - q_min
    out = np.zeros(sw.shape)
    todo = np.flatnonzero(g0 > 0)
    if todo.size:

        def g(q, idx):
            with np.errstate(all="ignore"):
                return sw[todo][idx] * np.asarray(act.second_moment(q), dtype=float) + sb[todo][idx] - q

        out[todo] = _illinois(g, np.zeros(todo.size), np.full(todo.size, q_min), g0[todo], gm[todo], tol=1e-15 * q_min)
    return out


def _linear_family(act: Activation, sw: np.ndarray, sb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``V(q) = c q`` and ``E[D^2] = c``: closed forms."""
    c = float(act.second_moment(1.0))
    mu1 = float(act.d2_moment(1.0))
    SW, SB = np.meshgrid(sw, sb)
    r = SW * c  # slope of the q map
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(r < 1.0, SB / (1.0 - r), np.inf)
    q = np.where((r == 1.0) & (SB == 0.0), np.nan, q)
    return q, SW * mu1


def _boundary(sw: np.ndarray, sb: np.ndarray, chi1: np.ndarray, chi_of=None) -> np.ndarray:
    """Points with ``chi1 = 1``: grid points where it holds exactly, and one point per sign change
    of ``chi1 - 1`` between neighbours along ``sigma_w2``, refined by regula falsi on
    ``chi_of(sigma_w2, row index)`` when given (linear interpolation otherwise or where it fails)."""
    d = chi1 - 1.0
    pts = []
    zi, zj = np.nonzero(d == 0.0)
    pts.append(np.column_stack([sw[zj], sb[zi]]))
    if sw.size > 1:
        left, right = d[:, :-1], d[:, 1:]
        ci, cj = np.nonzero(left * right < 0)  # nan compares false: skipped
        dl, dr = left[ci, cj], right[ci, cj]
        x = sw[cj] + (sw[cj + 1] - sw[cj]) * dl / (dl - dr)
        if chi_of is not None and x.size:
            def F(w, idx):
                return chi_of(w, ci[idx]) - 1.0

            refined = _illinois(F, sw[cj], sw[cj + 1], dl, dr, tol=1e-15)
            x = np.where(np.isfinite(refined), refined, x)
        pts.append(np.column_stack([x, sb[ci]]))
    out = np.concatenate(pts, axis=0)
    order = np.lexsort((out[:, 0], out[:, 1]))
    return out[order]


def phase_diagram(activation, sigma_w2_grid, sigma_b2_grid) -> PhaseDiagram:
    """Mean-field fixed point ``q*``, ``chi_1`` and the order/chaos boundary on a grid.

    Parameters
    ----------
    activation : str, Activation or (callable, callable)
        See :func:`fpcore.get_activation`.
    sigma_w2_grid : sequence of float
        Strictly increasing positive weight variances (fan-in convention).
    sigma_b2_grid : sequence of float
        Strictly increasing non-negative bias variances.

    Returns
    -------
    PhaseDiagram
        Arrays of shape ``(len(sigma_b2_grid), len(sigma_w2_grid))``; see :class:`PhaseDiagram`
        for the meaning of ``inf`` and ``nan`` cells.

    Raises
    ------
    ValueError
        If an argument is invalid; the message names it.

    Notes
    -----
    ``q*`` is the fixed point of ``q -> sigma_w2 E[phi(sqrt(q) Z)^2] + sigma_b2`` reached from
    ``q = 1``, and ``chi1 = sigma_w2 E[phi'(sqrt(q*) Z)^2]`` (MATH.md section 1). The whole grid
    is solved at once (see the module docstring); a 200 x 200 tanh grid takes well under a
    second.

    Examples
    --------
    >>> import numpy as np
    >>> d = phase_diagram("tanh", np.linspace(0.5, 3.0, 11), [0.0, 0.05])
    >>> d.chi1.shape
    (2, 11)
    >>> [round(float(v), 6) for v in d.boundary[0]]  # sigma_b2 = 0: the edge of chaos is sigma_w2 = 1
    [1.0, 0.0]
    >>> phase_diagram("relu", [1.0, 3.0], [0.1]).q_star.tolist()  # q grows without bound at sigma_w2 > 2
    [[0.2, inf]]
    """
    act = get_activation(activation)
    sw = _grid("sigma_w2_grid", sigma_w2_grid, positive=True)
    sb = _grid("sigma_b2_grid", sigma_b2_grid, positive=False)
    if not act.d2_depends_on_q:
        q_star, chi1 = _linear_family(act, sw, sb)
        chi_of = None  # chi1 is linear in sigma_w2: interpolation is exact
    else:
        tab = _Moments(act, _search_top(act, float(sw[-1]), float(sb[-1])))
        solver = _FixedPoints(act, tab, sb)
        rows = np.repeat(np.arange(sb.size), sw.size)
        q_star = solver(np.tile(sw, sb.size), rows).reshape(sb.size, sw.size)
        chi1 = sw[None, :] * tab.mu1(q_star)

        def chi_of(w, row):
            return w * tab.mu1(solver(w, row))

    boundary = _boundary(sw, sb, chi1, chi_of)
    return PhaseDiagram(
        activation=act.name,
        sigma_w2=sw,
        sigma_b2=sb,
        q_star=q_star,
        chi1=chi1,
        boundary=boundary,
    )
