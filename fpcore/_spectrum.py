"""Spectrum assembly: grid, density, atoms, exact CDF and quantiles, moments.

The CDF is exact, not a quadrature of the density: with ``U(z) = int log(z - t) mu(dt)``,
``Im U(x + i0) = pi mu((x, inf))`` and, substituting ``z = M^{-1}(m)``,

    U = sum_j e_j (m + (1 + a_j) log(m - a_j)) - sum_g n_g (log u_g - E[log(1 - u_g D_g^2)] / k_g) + const,

so ``1 - F(x)`` is read off the same solution ``m = M(x + i0)`` that gives the density. This
counts the mass near a singular edge at 0 exactly (MATH.md section 5) and makes ``quantile`` an
exact inversion of ``cdf``.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _fastchain
from ._edges import _merge, edge_past_infinity, lower_edge, rational_critical_points, rational_edges, upper_edge
from ._equation import Equation, build_equation
from ._lilypad import (_LUMP_MASS_TOL, MAX_ROUNDS, SolveResult, lump_cdf_bound, solve, solve_cluster, solve_from,
                       solve_near)
from ._network import Network, _check_gram
from ._pushforward import PushForward

__all__ = ["Spectrum", "SolverStats", "jacobian_spectrum"]

_PI = math.pi
_QUANTILE_ITERS = 80
_QUANTILE_ITERS_BELOW = 24  # evaluations for a quantile below the solver's grid
_LADDER_MAX = 48  # solves of the ladder below the solver's grid (per spectrum)
_LADDER_ROUNDS = 60  # proposals per ladder walk (a walk that needs more stops the ladder)
_QUANTILE_FTOL = 1e-12
_N_CONTOUR = 256
_N_CONTOUR_MAX = 1 << 15
_MEMO_MAX = 200_000  # points of F kept per spectrum
_TAIL_SHORT_TOL = 1e-11  # per group, of n_g E[log(1 - u D^2)] / k_g: the tail mass moves by at most G times this / pi
_MONOTONE_TOL = 1e-9  # how far a verified F may leave the bracket of the known values (round-off)


def _arg_lower(w: np.ndarray) -> np.ndarray:
    """Argument in [-pi, 0] (limit from the lower half-plane on the real axis)."""
    a = np.angle(w)
    return np.where(a > 0, np.where(w.real > 0, 0.0, -_PI), a)


def _arg_upper(w: np.ndarray) -> np.ndarray:
    """Argument in [0, pi] (limit from the upper half-plane on the real axis)."""
    a = np.angle(w)
    return np.where(a < 0, np.where(w.real > 0, 0.0, _PI), a)


def _tail_mass(eq: Equation, m: np.ndarray, u: np.ndarray | None, short: np.ndarray | None = None) -> np.ndarray:
    """``mu((x, inf))`` from ``m = M(x + i0)`` (see module docstring); ``short`` marks the points
    whose ``u`` solve the equation with the short rules of the ``D^2`` laws."""
    if eq.ugroups and _fastchain._HAVE_NUMBA:
        _, _, k, n = eq.packed
        V, W = eq.packed_complex
        args = (eq.roots.astype(float), eq.exps.astype(float))
        m = np.ascontiguousarray(m, dtype=complex)
        u = np.ascontiguousarray(u, dtype=complex)
        if short is not None and np.all(short):
            return _fastchain.tail_mass(m, u, *args, *eq.packed_short, k, n)
        out = np.empty(m.size)
        rest = np.ones(m.size, dtype=bool) if short is None else ~short
        if not np.all(rest):
            out[~rest] = _fastchain.tail_mass(m[~rest], u[~rest], *args, *eq.packed_short, k, n)
        ts = eq.tail_short
        if ts is None:
            out[rest] = _fastchain.tail_mass(m[rest], u[rest], *args, V, W, k, n)
        else:
            # solutions of the contour rules' equation: each group's log potential from its short
            # real rule where that stands for the contour rule there (40 real atoms instead of
            # up to 1800 complex ones; GELU at L = 50: 673 ms for 1000 points before)
            out[rest] = _fastchain.tail_mass_mixed(m[rest], np.ascontiguousarray(u[rest]), *args, V, W, *ts, k, n,
                                                   _TAIL_SHORT_TOL)[0]
        return out
    d = m[:, None] - eq.roots
    im = np.sum(eq.exps * (m.imag[:, None] + (1.0 + eq.roots) * _arg_lower(d)), axis=1)
    contour = eq.uses_contour
    Vc, Wc = eq.packed_complex
    for g, grp in enumerate(eq.ugroups):
        ug = u[:, g]
        if contour:
            # complex atoms: Im E[log(1 - u D^2)], arguments continued in (-pi/2, 3 pi/2)
            t = 1.0 - ug[:, None] * Vc[g]
            ang = np.angle(t)
            ang = np.where(ang < -0.5 * _PI, ang + 2.0 * _PI, ang)
            lp = np.sum(Wc[g].real * ang + Wc[g].imag * np.log(np.abs(t)), axis=1)
        else:
            lp = np.sum(grp.weights * _arg_upper(1.0 - ug[:, None] * grp.values), axis=1)
        im = im - grp.n * (_arg_lower(ug) - lp / grp.k)
    return im / _PI


def _merge_results(n: int, parts) -> SolveResult:
    """One :class:`SolveResult` for ``n`` targets from results on the disjoint ``(selection,
    result)`` parts."""
    m = np.empty(n, dtype=complex)
    cert, ver, short = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    u = None
    for sel, r in parts:
        m[sel], cert[sel], ver[sel] = r.m, r.certified, r.verified
        if r.short is not None:
            short[sel] = r.short
        if r.u is not None:
            if u is None:
                u = np.empty((n,) + r.u.shape[1:], dtype=complex)
            u[sel] = r.u
    return SolveResult(m=m, u=u, certified=cert, verified=ver, short=short,
                       n_lilypads=sum(r.n_lilypads for _, r in parts), n_newton=sum(r.n_newton for _, r in parts),
                       n_rejected=sum(r.n_rejected for _, r in parts))


@dataclass(frozen=True)
class SolverStats:
    """What the lilypad solver did for one spectrum.

    ``n_certified`` points passed the Kantorovich test at every step; ``n_verified`` were checked
    a posteriori (residual <= 1e-10, ``Im G <= 0``); ``n_uncertified`` are neither. A single
    orthogonal layer with a smooth activation is the push-forward law of ``sigma_w^2 phi'(h)^2``,
    computed from level sets (no lilypads): its points count as verified.
    """

    n_points: int
    n_lilypads: int
    n_newton_steps: int
    n_rejected: int
    n_certified: int
    n_verified: int
    n_uncertified: int
    seconds: float


@dataclass(frozen=True)
class Spectrum:
    """Limiting eigenvalue law of ``J^T J`` (or ``J J^T``) returned by :func:`jacobian_spectrum`.

    Attributes
    ----------
    x, density : ndarray
        Grid covering the support and the density of the absolutely continuous part on it.
    atom : float
        Exact mass at 0.
    atoms : tuple of (location, mass)
        All atoms (0 and, e.g. for orthogonal linear nets, ``sigma^{2L}``).
    support : tuple of (lo, hi)
        Intervals carrying the continuous part.
    lambda_max : float
        Right end of the spectrum (largest atom or edge).
    mean : float
        First moment ``prod_l sigma_l^2 E[D_l^2]`` (times ``N_L / N_0`` for ``J^T J``).
    stats : SolverStats
    """

    x: np.ndarray
    density: np.ndarray
    atom: float
    atoms: tuple[tuple[float, float], ...]
    support: tuple[tuple[float, float], ...]
    lambda_max: float
    mean: float
    stats: SolverStats
    network: Network
    gram: str
    _cdf_grid: np.ndarray = field(repr=False)
    _eq: Equation = field(repr=False)
    _m_grid: np.ndarray | None = field(default=None, repr=False)
    _u_grid: np.ndarray | None = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)
    _push: tuple[PushForward, float] | None = field(default=None, repr=False)  # (law, its mass)

    # -- exact CDF ---------------------------------------------------------------------------
    def _below_eq(self) -> Equation:
        """The equation for solves below the grid: :attr:`Equation.deep_tails` where the short
        rules' lumped tails are heavy enough to move ``F`` (:func:`lump_cdf_bound`), else the
        spectrum's own."""
        if "below_eq" not in self._cache:
            eq = self._eq
            b = lump_cdf_bound(eq) if eq.uses_contour else 0.0
            if b > _LUMP_MASS_TOL:
                deep = eq.deep_tails
                if deep is not None and lump_cdf_bound(deep) < b:
                    eq = deep
            self._cache["below_eq"] = eq
        return self._cache["below_eq"]

    def _solve(self, x: np.ndarray):
        """Solve at points inside the support, each from the nearest grid point of the same
        support interval (one short certified walk), falling back to a walk from far above;
        returns the result, the density and ``F``. Points below the grid are solved with
        :meth:`_below_eq`."""
        eqb = self._below_eq()
        if eqb is not self._eq and self._m_grid is not None:
            below = x < self.x[0]
            if np.any(below):
                parts, Fs, ds = [], np.empty(x.shape), np.empty(x.shape)
                for sel, eq in ((~below, self._eq), (below, eqb)):
                    if np.any(sel):
                        r, d = self._solve_with(x[sel], eq)
                        parts.append((sel, r))
                        Fs[sel], ds[sel] = 1.0 - _tail_mass(eq, r.m, r.u, r.short), d
                return _merge_results(x.size, parts), ds, Fs
        r, d = self._solve_with(x, self._eq)
        return r, d, 1.0 - _tail_mass(self._eq, r.m, r.u, r.short)

    def _solve_with(self, x: np.ndarray, eq: Equation):
        if self._m_grid is None:
            r = solve(eq, x.astype(complex), scale=self.lambda_max)
        else:
            g, m_start, u_start = self._starts()
            j = np.clip(np.searchsorted(g, x), 1, g.size - 1)
            j = np.where(np.abs(g[j - 1] - x) <= np.abs(g[j] - x), j - 1, j)
            # below the grid: from the ladder's rung just above, the direction it was built in
            # (a walk up from the rung below can land on another branch and still verify)
            below = x < self.x[0]
            j[below] = np.minimum(np.searchsorted(g, x[below]), g.size - 1)
            # the start must lie in the same support interval as the target
            for lo, up in self.support:
                inside = (x > lo) & (x < up)
                off = inside & ~((g[j] > lo) & (g[j] < up))
                if np.any(off):
                    cand = np.flatnonzero((g > lo) & (g < up))
                    if cand.size:
                        k = np.clip(np.searchsorted(g[cand], x[off]), 0, cand.size - 1)
                        j[off] = cand[k]
            u0 = None if u_start is None else u_start[j]
            lad = self._cache.get("ladder")
            deep = np.zeros(x.shape, dtype=bool)
            if lad and lad["x"] and lad["stop"] == "unverified" and not eq.rational:
                # below the lowest verified rung of the ladder walks fail (and would fall back to
                # walks from far above, seconds each): short walks only, unverified if they fail
                deep = x < lad["x"][-1]
            if not np.any(deep):
                r = solve_near(eq, x, self.lambda_max, g[j], m_start[j], u0)
            else:
                parts = []
                for sel, kw in ((~deep, {}), (deep, dict(max_rounds=_LADDER_ROUNDS, fallback=False))):
                    if np.any(sel):
                        parts.append((sel, solve_near(eq, x[sel], self.lambda_max, g[j[sel]], m_start[j[sel]],
                                                      None if u0 is None else u0[sel], **kw)))
                r = _merge_results(x.size, parts)
        d = np.maximum(-((1.0 + r.m) / x).imag / _PI, 0.0)
        return r, d

    def _starts(self):
        """Known solutions ``(x, m, u)`` to start walks from: the grid, and below it the ladder
        of :meth:`_ladder` built so far (sorted in ``x``)."""
        lad = self._cache.get("ladder")
        if not lad or not lad["x"]:
            return self.x, self._m_grid, self._u_grid
        n = len(lad["x"])
        x = np.r_[np.asarray(lad["x"][::-1]), self.x]
        m = np.r_[np.asarray(lad["m"][::-1]), self._m_grid]
        u = None if self._u_grid is None else np.concatenate([np.asarray(lad["u"][::-1]).reshape(n, -1), self._u_grid])
        return x, m, u

    def _ladder(self, p_min: float, lo: float, up: float) -> dict:
        """Verified solutions below the solver's grid, each walked from the one above it (short
        walks: a solve far below the grid from the grid itself is a walk over many decades),
        descending in ``log x`` until ``F < p_min``, ``x`` reaches the float floor, a point
        cannot be verified (two tries, the second at a shorter step), or :data:`_LADDER_MAX` solves are
        spent (per spectrum). Kept in the cache; :meth:`_solve` starts from it."""
        lad = self._cache.setdefault("ladder", {"x": [], "m": [], "u": [], "F": [], "d": [], "stop": None,
                                                "solves": 0, "step": 1.0})
        if self._m_grid is None:
            lad["stop"] = "no grid"
            return lad
        if not lad["x"]:
            sel = np.flatnonzero((self.x > lo) & (self.x < up) & np.isfinite(self._m_grid))
            if sel.size == 0:
                lad["stop"] = "no grid"
                return lad
            j = sel[0]
            lad["top"] = (float(self.x[j]), self._m_grid[j], None if self._u_grid is None else self._u_grid[j],
                          float(self._cdf_grid[j]))
        floor = max(1e-300 * up, lo * (1 + 1e-10), 1e-320)
        # rational equations: closed-form certified steps, cheap even from far above
        rational = self._eq.rational
        eqb = self._below_eq()
        while lad["stop"] is None or lad["stop"] == "p":
            xa, ma, ua, Fa = ((lad["x"][-1], lad["m"][-1], lad["u"][-1], lad["F"][-1]) if lad["x"] else lad["top"])
            if Fa < p_min:
                lad["stop"] = "p"
                break
            if lad["solves"] >= _LADDER_MAX:
                lad["stop"] = "budget"
                break
            if xa <= floor:
                lad["stop"] = "floor"
                break
            x = max(xa * 10.0 ** -lad["step"], floor)
            lad["solves"] += 1
            r = solve_near(eqb, np.array([x]), self.lambda_max, np.array([xa]), np.array([ma]),
                           None if ua is None else np.asarray(ua)[None, ...],
                           max_rounds=MAX_ROUNDS if rational else _LADDER_ROUNDS, fallback=rational)
            F = float(np.clip(1.0 - _tail_mass(eqb, r.m, r.u, r.short)[0], 0.0, 1.0))
            # F is non-decreasing: a solution that verifies its equation but whose F exceeds the
            # rung above (or falls below the atom) is not the law's value there (another branch,
            # or u beyond what the rule of D^2 resolves: 12-layer orthogonal softplus gave
            # F = 1.0 at 6e-141 under F = 0.52 at 6e-113), so it counts as unverified
            consistent = self.atom - _MONOTONE_TOL <= F <= Fa + _MONOTONE_TOL
            if not (r.verified[0] and consistent):
                lad["fail"] = x if lad.get("fail") is None else max(lad["fail"], x)
                lad["step"] *= 0.25
                lad["fails"] = lad.get("fails", 0) + 1
                if lad["fails"] > 1 or lad["step"] < 1e-3:
                    lad["stop"] = "unverified"
                continue
            lad["fails"] = 0
            d = float(np.maximum(-((1.0 + r.m[0]) / x).imag / _PI, 0.0))
            lad["x"].append(x)
            lad["m"].append(r.m[0])
            lad["u"].append(None if r.u is None else r.u[0])
            lad["F"].append(F)
            lad["d"].append(d)
            # the memo agrees with the ladder (F is a function)
            self._cache.setdefault("F", {}).setdefault(x, (F, d, 1.0))
            lad["step"] = min(lad["step"] * 2.0, 4.0)
            if lad["stop"] == "p":
                lad["stop"] = None
        return lad

    def _cdf_and_density(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``F`` and the density at ``x``, memoised per point: a value once computed is the value
        (a point that no walk could certify or verify may otherwise come out differently when
        solved beside other points), so that ``cdf`` is a function and ``quantile``'s guarantee
        ``cdf(quantile(p)) >= p`` holds exactly."""
        F, d, _ = self._cdf_density_ok(x)
        return F, d

    def _cdf_density_ok(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``F``, density and whether the solution there was certified or verified (memoised)."""
        x = np.asarray(x, dtype=float)
        memo = self._cache.setdefault("F", {})
        if len(memo) > _MEMO_MAX:
            memo.clear()
        keys = x.tolist()
        new = np.array([k not in memo for k in keys], dtype=bool)
        if np.any(new):
            xn = np.unique(x[new])
            Fn, dn, okn = self._cdf_and_density_raw(xn)
            memo.update(zip(xn.tolist(), zip(Fn.tolist(), dn.tolist(), okn.astype(float).tolist())))
        vals = np.array([memo[k] for k in keys], dtype=float).reshape(x.shape + (3,))
        return vals[..., 0], vals[..., 1], vals[..., 2] > 0.5

    def _cdf_and_density_raw(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=float)
        F = np.zeros_like(x)
        dens = np.zeros_like(x)
        ok = np.ones(x.shape, dtype=bool)
        F[x >= 0] = self.atom
        hi = x >= self.lambda_max
        F[hi] = 1.0
        mid = (x > 0) & ~hi
        # Outside the support intervals the CDF is a step function of the atoms and of the
        # continuous mass of the intervals below (the formula is ill-conditioned near poles).
        inside = np.zeros_like(mid)
        for lo, up in self.support:
            inside |= (x > lo) & (x < up)
        out = mid & ~inside
        if np.any(out):
            F[out] = self._step_cdf(x[out])
        mid &= inside
        if np.any(mid) and self._push is not None:
            law, scale = self._push
            Fp, dp = law.cdf_and_density(x[mid])
            F[mid] = 1.0 - scale + scale * Fp  # the zero atom of J^T J sits below the law
            dens[mid] = scale * dp
        elif np.any(mid):
            r, d, Fs = self._solve(x[mid])
            F[mid] = np.clip(Fs, 0.0, 1.0)
            dens[mid] = d
            cap = self._below_atom_caps(x[mid])
            ver = r.verified & self._monotone_with_known(x[mid], F[mid]) & (F[mid] <= cap + _MONOTONE_TOL)
            ok[mid] = ver
            if not np.all(ver):
                bad = x[mid][~ver]
                F[mid], dens[mid] = self._guard_unverified(x[mid], F[mid], dens[mid], ver)
                F[mid] = np.minimum(F[mid], cap)
                warnings.warn(
                    f"{bad.size} point(s) could not be certified or verified (e.g. x = {bad[0]:.3g}); "
                    "their CDF/density values are not guaranteed",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return F, dens, ok

    def _below_atom_caps(self, x: np.ndarray) -> np.ndarray:
        """``F(up-) = F(up) - mass`` for the points of a support piece whose top end ``up`` is an
        atom away from 0 (1 elsewhere): ``F`` inside the piece cannot exceed it."""
        cap = np.ones(x.shape)
        for lo, up in self.support:
            w = sum(mass for loc, mass in self.atoms if loc > 0 and loc == up)
            if w > 0:
                sel = (x > lo) & (x < up)
                cap[sel] = float(self._step_cdf(np.array([up]))[0]) - w
        return cap

    def _step_cdf(self, xo: np.ndarray) -> np.ndarray:
        """``F`` outside the support intervals: the atoms and the continuous masses below."""
        Fo = np.full(xo.shape, self.atom)
        for loc, mass in self.atoms:
            if loc > 0:
                Fo[xo >= loc] += mass
        for (lo, up), mass in zip(self.support, self._interval_masses()):
            Fo[xo >= up] += mass
        return Fo

    def _monotone_with_known(self, x: np.ndarray, F: np.ndarray) -> np.ndarray:
        """Whether each ``F`` lies in the bracket of the values known on either side of its
        ``x`` (:meth:`_known`), to :data:`_MONOTONE_TOL`: ``F`` is non-decreasing, so a solution
        that verifies its equation but falls outside (another branch; ``u`` beyond what the rule
        of ``D^2`` resolves, far below the grid) is not the law's value."""
        ax, aF = self._known()
        j = np.clip(np.searchsorted(ax, x, side="right"), 1, ax.size - 1)  # ax[j-1] <= x < ax[j]
        return (F >= aF[j - 1] - _MONOTONE_TOL) & (F <= aF[j] + _MONOTONE_TOL)

    def _known(self) -> tuple[np.ndarray, np.ndarray]:
        """Points whose ``F`` is known (sorted) and ``F`` there made non-decreasing: the grid's
        solved points, the memoised verified values, the ends of the support intervals (exact
        step values), ``0`` and ``lambda_max``."""
        ax, aF = [], []
        gv = np.isfinite(self._m_grid) if self._m_grid is not None else np.zeros(self.x.shape, dtype=bool)
        ax.append(self.x[gv])
        aF.append(self._cdf_grid[gv])
        memo = self._cache.get("F", {})
        if memo:
            # the memo's verified values, re-read when it has grown by a quarter (an older copy
            # only gives a wider bracket, still a true one)
            built = self._cache.get("anchors")
            if built is None or len(memo) > 1.25 * built[0] or len(memo) < built[0]:
                mk = np.fromiter(memo.keys(), dtype=float, count=len(memo))
                mv = np.array(list(memo.values()), dtype=float).reshape(-1, 3)
                keep = mv[:, 2] > 0.5
                built = (len(memo), mk[keep], mv[keep, 0])
                self._cache["anchors"] = built
            ax.append(built[1])
            aF.append(built[2])
        ends = np.array([e for iv in self.support for e in iv], dtype=float)
        if ends.size:
            # F(lo) and F(up) of each interval (the atoms sitting at an end belong to it)
            ax.append(ends)
            aF.append(self._step_cdf(ends))
            # just below an end that is an atom: F(end) without the atom
            at = [(e, sum(mass for loc, mass in self.atoms if loc > 0 and loc == e)) for e in ends]
            at = [(e, w) for e, w in at if w > 0]
            if at:
                xe = np.array([e for e, _ in at])
                ax.append(np.nextafter(xe, -np.inf))
                aF.append(self._step_cdf(xe) - np.array([w for _, w in at]))
        ax.append(np.array([0.0, self.lambda_max]))
        aF.append(np.array([self.atom, 1.0]))
        ax, aF = np.concatenate(ax), np.concatenate(aF)
        order = np.argsort(ax, kind="stable")
        return ax[order], np.maximum.accumulate(np.clip(aF[order], 0.0, 1.0))

    def _guard_unverified(self, x: np.ndarray, F: np.ndarray, d: np.ndarray, ver: np.ndarray):
        """``F`` and density at points no walk could certify or verify: a failed walk may end
        anywhere, so its ``F`` is clipped into the bracket of the nearest points known on either
        side, which holds the true value because ``F`` is non-decreasing: verified solutions (the
        grid's, the ones memoised, this batch's) and the exact step values at the ends of the
        support intervals; within one bracket the clipped values are made non-decreasing. The
        density there is the mean slope of the bracket."""
        kx, kF = self._known()
        ax, aF = np.r_[x[ver], kx], np.r_[F[ver], kF]
        order = np.argsort(ax, kind="stable")
        ax, aF = ax[order], np.maximum.accumulate(np.clip(aF[order], 0.0, 1.0))
        F, d = F.copy(), d.copy()
        bad = np.flatnonzero(~ver)
        xb = x[bad]
        j = np.clip(np.searchsorted(ax, xb, side="right"), 1, ax.size - 1)  # ax[j-1] <= x < ax[j]
        a, b, Fa, Fb = ax[j - 1], ax[j], aF[j - 1], aF[j]
        Fb_ = np.clip(F[bad], Fa, Fb)
        order = np.lexsort((xb, j))  # by bracket, then x: a running maximum within each bracket
        Fs, js = Fb_[order], j[order]
        start = np.r_[True, js[1:] != js[:-1]]
        offs = np.flatnonzero(start)
        for g0, g1 in zip(offs, np.r_[offs[1:], Fs.size]):
            Fs[g0:g1] = np.maximum.accumulate(Fs[g0:g1])
        Fb_[order] = Fs
        F[bad] = Fb_
        d[bad] = np.where(b > a, (Fb - Fa) / np.where(b > a, b - a, 1.0), 0.0)
        return F, d

    def _interval_masses(self) -> list[float]:
        """Continuous mass of each support interval, from the tail mass ``mu((x, inf))`` on
        either side of it: exact below the support (``1 - F(lo)``, ``F(lo)`` the atoms up to the
        bottom edge) and above it (the atoms above the top edge); in each gap between two
        intervals read once, where it is well conditioned: at the gap's geometric middle,
        solved by a walk from far above (in a gap ``M`` is real and the tail constant up to
        the atoms inside it), else at a verified grid point of the gap, else just inside the
        two ends. Solves near an edge are ill-conditioned: a verified solve 1e-10 inside the
        bottom edge of orthogonal leaky ReLU 300-200-300 lost 0.016 of mass, so ``F`` fell
        from 0.6667 inside the first interval to 0.6505 in the gap after it."""
        if "masses" not in self._cache:
            cont = 1.0 - sum(m for _, m in self.atoms)
            if len(self.support) <= 1:
                masses = [cont] * len(self.support)
            elif self._push is not None:
                law, scale = self._push
                masses = [float(scale * np.diff(law.cdf(np.array([lo, up])))[0]) for lo, up in self.support]
            else:
                masses = self._masses_from_gaps()
            self._cache["masses"] = masses
        return self._cache["masses"]

    def _masses_from_gaps(self) -> list[float]:
        sup = self.support
        atoms = [(loc, mass) for loc, mass in self.atoms if loc > 0]

        def atoms_in(a: float, b: float) -> float:  # mass of the atoms in (a, b]
            return sum(mass for loc, mass in atoms if a < loc <= b)

        n = len(sup)
        t_lo, t_up = np.full(n, np.nan), np.full(n, np.nan)
        # t_lo[k] = mu((e_lo[k], inf)), t_up[k] = mu((e_up[k], inf)): the piece's continuous mass
        # is their difference less the atoms in (e_lo, e_up] (an atom at a piece's end: adversarial
        # seed 7 [36], orthogonal leaky ReLU 1000 -> 1250, a piece (1.63110, 1.63152) ending at the
        # atom 1.63152 of mass 0.3 took that mass again: F = 1.3 at the atom, KS 0.375)
        e_lo, e_up = np.array([lo for lo, _ in sup], dtype=float), np.array([up for _, up in sup], dtype=float)
        t_lo[0] = 1.0 - self.atom - atoms_in(0.0, sup[0][0])
        t_up[-1] = atoms_in(sup[-1][1], math.inf)
        mids = np.array([math.sqrt(sup[k][1] * sup[k + 1][0]) for k in range(n - 1)])
        r = solve(self._eq, mids.astype(complex), scale=self.lambda_max)
        tg = _tail_mass(self._eq, r.m, r.u, r.short)
        ok = r.verified & (np.abs(r.m.imag) <= 1e-9 * np.maximum(np.abs(r.m), 1e-300))
        gv = np.isfinite(self._m_grid) if self._m_grid is not None else np.zeros(self.x.shape, dtype=bool)
        for k in range(n - 1):
            up, lo_next = sup[k][1], sup[k + 1][0]
            xg, t = float(mids[k]), float(tg[k])
            if not ok[k]:
                inside = np.flatnonzero(gv & (self.x > up) & (self.x < lo_next))
                if inside.size == 0:
                    continue
                j = inside[inside.size // 2]
                xg, t = float(self.x[j]), 1.0 - float(self._cdf_grid[j])
            t_up[k] = t + atoms_in(up, xg)
            t_lo[k + 1] = t - atoms_in(xg, lo_next)
        miss = np.flatnonzero(np.isnan(t_lo) | np.isnan(t_up))
        if miss.size:
            # no gap value known: just inside the ends (the atoms bound intervals)
            ends = np.array([[sup[k][0] * (1 + 1e-10) + 1e-300, sup[k][1] * (1 - 1e-10)] for k in miss])
            r2, _, F2 = self._solve(ends.ravel())
            t2 = (1.0 - F2).reshape(-1, 2)
            for i, k in enumerate(miss):
                if np.isnan(t_lo[k]):
                    t_lo[k], e_lo[k] = t2[i, 0], ends[i, 0]
                if np.isnan(t_up[k]):
                    t_up[k], e_up[k] = t2[i, 1], ends[i, 1]
        inside = np.array([atoms_in(float(e_lo[k]), float(e_up[k])) for k in range(n)])
        return list(np.maximum(t_lo - t_up - inside, 0.0))

    def cdf(self, x):
        """Cumulative distribution function ``F(x) = mu([0, x])`` (atoms included), exact.

        Examples
        --------
        >>> import fpcore
        >>> s = fpcore.jacobian_spectrum(fpcore.Network([100, 100], "linear", sigma_w2=1.0), n_points=50)
        >>> round(float(s.cdf(4.0)), 12)
        1.0
        """
        xa = np.asarray(x, dtype=float)
        if np.any(np.isnan(xa)):
            raise ValueError(f"x must not be nan, got {x!r}")
        F, _ = self._cdf_and_density(xa.ravel())
        F = F.reshape(xa.shape)
        return float(F) if F.ndim == 0 else F

    def _pieces(self) -> tuple[list, np.ndarray]:
        """The law as ordered pieces after the atom at 0: ``("atom", loc)`` and
        ``("interval", lo, up)``, with ``C[k] = F`` just after piece ``k`` (exact masses)."""
        if "pieces" not in self._cache:
            items = [((loc, 0), ("atom", loc), mass) for loc, mass in self.atoms if loc > 0]
            items += [((lo, 1), ("interval", lo, up), mass) for (lo, up), mass in zip(self.support, self._interval_masses())]
            items.sort(key=lambda t: t[0])
            # F just after each piece, read from cdf itself (its step formula outside the
            # support) so that quantile and cdf agree to the last bit
            ends = np.array([it[1][-1] for it in items], dtype=float)
            C = self._cdf_and_density(ends)[0] if items else np.zeros(0)
            for i, it in enumerate(items):
                if it[1][0] == "interval":  # F(up-): an atom at the end is a piece of its own
                    C[i] -= sum(mass for loc, mass in self.atoms if loc > 0 and loc == it[1][2])
            C = np.maximum.accumulate(C)
            self._cache["pieces"] = ([it[1] for it in items], C)
        return self._cache["pieces"]

    def quantile(self, p):
        """Inverse CDF: ``quantile(p) = inf{x : F(x) >= p}``, so ``cdf(quantile(p)) >= p`` always.

        The exact masses of the atoms and support intervals tell which piece of the law holds
        ``p``: an atom gives its location (``quantile`` of any ``p`` inside a jump of ``F``), an
        interval is searched by safeguarded Newton in ``log x`` (the CDF near 0 is a power of
        ``x``) inside a bracket whose upper end always has ``F >= p``; that end is returned, once
        ``F - p <= min(1e-12, 1e-6 p)`` or the bracket is ``1e-14`` relative wide (at most ``80``
        steps; ``24`` below the lowest grid point, where each solve is a long walk).
        Gaps map to their lower end. ``quantile(0)`` is 0 and ``quantile(1)`` is ``lambda_max``.
        Below the grid the search steps down until ``F < p``; a point there that no walk could
        certify or verify counts as below ``p`` (its value may be anything).

        Examples
        --------
        >>> import fpcore
        >>> s = fpcore.jacobian_spectrum(fpcore.Network([100, 100], "relu"), n_points=100)
        >>> s.quantile(0.25)  # inside the atom at 0 (mass 1/2)
        0.0
        >>> x = s.quantile(0.75)
        >>> bool(s.cdf(x) >= 0.75)
        True
        """
        pa = np.asarray(p, dtype=float)
        if np.any(~np.isfinite(pa)) or np.any((pa < 0) | (pa > 1)):
            raise ValueError(f"p must lie in [0, 1], got {p!r}")
        flat = pa.ravel()
        out = np.zeros_like(flat)
        pieces, C = self._pieces()
        rest = flat > self.atom  # F(0) = atom >= p: quantile 0
        top = rest & ((flat >= 1.0) | (flat > (C[-1] if C.size else self.atom)))
        out[top] = self.lambda_max  # F = 1 from lambda_max on (rounding of the masses' sum)
        rest &= ~top
        k = np.searchsorted(C, flat, side="left")  # first piece with F after it >= p
        jobs: dict[int, np.ndarray] = {}
        for i in np.flatnonzero(rest):
            piece = pieces[k[i]]
            if piece[0] == "atom":
                out[i] = piece[1]
            else:
                jobs.setdefault(int(k[i]), []).append(i)
        for kk, idx in jobs.items():
            idx = np.asarray(idx)
            _, lo, up = pieces[kk]
            out[idx] = self._quantile_in(flat[idx], lo, up)
        out = out.reshape(pa.shape)
        return float(out) if out.ndim == 0 else out

    def _quantile_in(self, p: np.ndarray, lo: float, up: float) -> np.ndarray:
        """``inf{x : F(x) >= p}`` for ``p`` in ``(F(lo), F(up)]`` (an interval of the support)."""
        n = p.size
        xl = np.full(n, lo)  # F(xl) < p (lo = 0: F(0) = atom < p)
        xh = np.full(n, up)  # F(xh) >= p: at up, F is the exact step value, at least p
        Fh = np.full(n, np.inf)
        # Newton's first point: the geometric middle of the bracket unless the grid gives one
        x_last = np.full(n, np.nan)
        F_last = np.full(n, np.nan)
        d_last = np.full(n, np.nan)
        # the solver's grid gives the first bracket (then checked: the returned end is evaluated)
        sel = (self.x > lo) & (self.x < up)
        gx, gF = self.x[sel], self._cdf_grid[sel]
        if gx.size:
            j = np.searchsorted(np.maximum.accumulate(gF), p, side="left")
            cand = np.concatenate([gx[np.minimum(j, gx.size - 1)], gx[np.maximum(j - 1, 0)]])
            F, d = self._cdf_and_density(cand)
            for c, Fc, dc in ((cand[:n], F[:n], d[:n]), (cand[n:], F[n:], d[n:])):
                ok = Fc >= p
                better_hi = ok & (c < xh)
                xh, Fh = np.where(better_hi, c, xh), np.where(better_hi, Fc, Fh)
                better_lo = ~ok & (c > xl)
                xl = np.where(better_lo, c, xl)
                closer = ~(np.abs(F_last - p) <= np.abs(Fc - p))
                x_last = np.where(closer, c, x_last)
                F_last = np.where(closer, Fc, F_last)
                d_last = np.where(closer, dc, d_last)
        # no point below p yet (the grid's lowest point has F >= p): the ladder of verified
        # solutions below the grid (short walks, bounded) brackets p, and later solves there
        # start from it
        down = xl <= 0.0
        if np.any(down) and gx.size:
            lad = self._ladder(float(np.min(p[down])), lo, up)
            lx, lF, ld = np.asarray(lad["x"]), np.asarray(lad["F"]), np.asarray(lad["d"])
            d = np.flatnonzero(down)
            for i in d:
                below = np.flatnonzero(lF < p[i])
                above = np.flatnonzero(lF >= p[i])
                if above.size:
                    k = above[-1]  # the ladder descends: the lowest point with F >= p
                    if lx[k] < xh[i]:
                        xh[i], Fh[i] = lx[k], lF[k]
                        x_last[i], F_last[i], d_last[i] = lx[k], lF[k], ld[k]
                if below.size:
                    xl[i] = lx[below[0]]
                    down[i] = False
            if np.any(down) and lad.get("fail") is not None and self._eq.rational:
                # rational equations (cheap closed-form walks): below the lowest certified rung
                # the float floor is a lower end whose F is not known (taken as < p); the search
                # warns at every point it cannot certify
                xl[down] = max(1e-300 * up, 1e-320)
                down[:] = False
            if np.any(down):
                bad = p[down]
                warnings.warn(
                    f"quantile: F >= {float(bad.min()):.3g} at x = {float(np.min(xh[down])):.3g}, the lowest point "
                    f"below the solver's grid that could be certified or verified ({lad['stop']}); the value "
                    "returned for these p is an upper bound of the quantile, not the quantile",
                    RuntimeWarning,
                    stacklevel=3,
                )
        ftol = np.minimum(_QUANTILE_FTOL, 1e-6 * p)  # relative for small p
        active = ~down & ~(Fh - p <= ftol)
        x_last = np.where(np.isfinite(x_last), x_last, np.sqrt(np.maximum(xl, 1e-320) * xh))
        # (below the grid each solve starts from the ladder's nearest rung: a short walk)
        for it in range(_QUANTILE_ITERS):
            a = np.flatnonzero(active)
            if a.size == 0:
                break
            sl, sh = np.log(np.maximum(xl[a], 1e-320)), np.log(xh[a])
            s0 = np.log(x_last[a])
            # safeguarded Newton in s = log x toward p + tol/2 (dF/ds = x rho(x)) from the last
            # evaluated point; bisection in s when it leaves the bracket or has no derivative
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                sn = s0 - (F_last[a] - p[a] - 0.5 * ftol[a]) / (d_last[a] * x_last[a])
            inside = np.isfinite(sn) & (sn > sl) & (sn < sh)
            sn = np.where(inside, sn, 0.5 * (sl + sh))
            x = np.clip(np.exp(sn), xl[a], xh[a])
            F, d = self._cdf_and_density(x)
            ok = F >= p[a]
            xh[a[ok]], Fh[a[ok]] = x[ok], F[ok]
            xl[a[~ok]] = x[~ok]
            x_last[a], F_last[a], d_last[a] = x, F, d
            done = (Fh[a] - p[a] <= ftol[a]) | (xh[a] - xl[a] <= 1e-14 * xh[a])
            active[a[done]] = False
        return xh

    @property
    def deciles(self) -> np.ndarray:
        """Quantiles at 0.1, ..., 0.9."""
        if "deciles" not in self._cache:
            self._cache["deciles"] = self.quantile(np.arange(1, 10) / 10.0)
        return self._cache["deciles"]

    def fraction_above(self, t: float) -> float:
        """Mass strictly above ``t`` (e.g. the fraction of squared singular values above 1).

        Raises ``ValueError`` for a ``t`` that is not a real number (``nan`` included)."""
        try:
            t = float(t)
        except (TypeError, ValueError):
            raise ValueError(f"t must be a real number, got {t!r}") from None
        if math.isnan(t):
            raise ValueError(f"t must not be nan, got {t!r}")
        return 1.0 - self.cdf(t)

    # -- moments -----------------------------------------------------------------------------
    def moment(self, k: int) -> float:
        """``k``-th moment by the Cauchy integral of ``M`` on a circle around the support, to a
        relative accuracy of ``1e-6`` or better, else ``ValueError``.

        ``m_k = R^k / (2 pi) int e^{ik th} M(R e^{ith}) dth`` by the trapezoid rule on ``N``
        points. The radius ``R = lambda_max (1 + delta)``, ``delta = min(1, 2/k)``, keeps the
        round-off ``eps R^k max|M|`` within a factor ``(1 + 2/k)^k <= e^2`` of ``m_k``; ``N``
        (at least ``60 / delta``) makes the aliasing error ``(1 + delta)^-N`` negligible. The error
        is estimated from the rule on every other point plus that round-off bound (``1e-14``
        relative for certified solutions, ``1e-10`` for verified ones); a moment whose estimate
        exceeds ``1e-6`` relative raises.

        Examples
        --------
        >>> import fpcore
        >>> s = fpcore.jacobian_spectrum(fpcore.Network([100, 100, 100], "linear", sigma_w2=1.0), n_points=50)
        >>> round(s.moment(2), 10)  # Fuss-Catalan: binom(6, 2) / 5
        3.0
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"k must be a non-negative integer, got {k!r}")
        k = int(k)
        if k == 0:
            return 1.0
        if self._push is not None:
            return _push_moment(self.network, *self._push, k)
        if self.lambda_max <= 0.0:
            return 0.0  # everything at 0
        delta = min(1.0, 2.0 / k)
        n_half = max(_N_CONTOUR // 2, 1 << math.ceil(math.log2(30.0 / delta)))
        if n_half > _N_CONTOUR_MAX // 2:
            raise ValueError(f"moment: k = {k} needs more than {_N_CONTOUR_MAX} contour points; k <= 500 is supported")
        key = ("contour", n_half, delta)
        if key not in self._cache:
            R = (1.0 + delta) * self.lambda_max
            th = np.pi * np.arange(n_half + 1) / n_half
            z = R * np.exp(1j * th)
            z[-1] = -R
            r = solve(self._eq, z, scale=self.lambda_max)
            if not np.all(r.verified):
                raise ValueError(f"moment: {int(np.sum(~r.verified))} contour point(s) of M could not be solved")
            eps = np.where(r.certified, 1e-14, 1e-10)
            self._cache[key] = (R, th, r.m, float(np.max(eps * np.abs(r.m))))
        R, th, m, err_m = self._cache[key]

        def rule(step: int) -> float:
            t, mm = th[::step], m[::step]
            w = np.ones_like(t)
            w[0] = w[-1] = 0.5
            # m_k = R^k / (2 pi) int e^{ik th} M(R e^{ith}) dth, using M(conj z) = conj M(z)
            return float(np.sum(w * (np.exp(1j * k * t) * mm).real) / (t.size - 1))

        with np.errstate(over="ignore"):
            full, half = rule(1), rule(2)
            scale = R**k
            val = scale * full
            err = scale * (abs(full - half) + err_m)
        if not (math.isfinite(val) and val > 0.0 and err <= 1e-6 * val):
            raise ValueError(
                f"moment: m_{k} cannot be computed to relative accuracy 1e-6 (value {val:.6g}, error "
                f"estimate {err:.3g}); the solutions of M on the contour are not accurate enough"
            )
        return float(val)

    @property
    def variance(self) -> float:
        """Variance of the law, ``moment(2) - mean^2`` (clamped at 0: exact isometries give
        round-off of either sign)."""
        return max(self.moment(2) - self.mean**2, 0.0)


_EDGE_GAP = 1e-4  # nearest grid point to a square-root edge, relative to the interval


def _cluster(lo: float, hi: float, n: int) -> np.ndarray:
    """``n`` points in ``(lo, hi)`` clustered at both edges like Chebyshev nodes, the outermost
    at a relative ``_EDGE_GAP`` from each edge (closer points only cost solver steps: the
    density vanishes like a square root there and the CDF is exact anyway)."""
    t0 = np.arccos(1.0 - 2.0 * _EDGE_GAP) / np.pi
    t = t0 + (1.0 - 2.0 * t0) * np.arange(n) / max(n - 1, 1)
    return lo + (hi - lo) * 0.5 * (1.0 - np.cos(np.pi * t))


def _check_float_range(net: Network, eq: Equation) -> None:
    """Refuse laws whose scale leaves the float range (deep nets far from criticality: the mean
    ``prod_l chi_l`` of depth 3000 GELU at ``sigma_w2 = 2`` is ``10^-899``), where every grid point,
    edge and atom location would underflow or overflow."""
    L = net.depth
    with np.errstate(divide="ignore"):
        log10_mean = float(np.sum(np.log10(eq.mean_field.chi)))
    if not (-280.0 < log10_mean < 280.0):
        raise ValueError(
            f"jacobian_spectrum: the law's scale leaves the float range (mean = 10^{log10_mean:.1f}, "
            f"prod_l sigma_w2_l E[D_l^2] over {L} layers); bring the net closer to criticality "
            "(sigma_w2 E[D^2] nearer 1) or make it shallower"
        )


def _grid(lo: float, hi: float, n: int, depth: float = 1e-10) -> np.ndarray:
    """Interior grid of ``(lo, hi)``: clustered at both edges, log-spaced when the range is wide
    (down to ``depth * hi``; spaced in ``log x``, so no ratio of the ends overflows)."""
    if not (math.isfinite(hi) and hi > 0.0 and hi > lo >= 0.0):
        raise ValueError(f"support interval ({lo!r}, {hi!r}) is not a finite interval of (0, inf)")
    if lo > 0 and hi < 30.0 * lo:
        return _cluster(lo, hi, n)
    n_log = n // 2
    a = max(lo * (1 + _EDGE_GAP), hi * depth, 5e-324)  # (hi * depth underflows for hi < 1e-314)
    jl = (np.arange(n_log) + 0.5) / n_log
    logs = np.exp(math.log(a) + jl * (math.log(hi) - math.log(a)))
    x = np.unique(np.concatenate([logs, _cluster(lo, hi, n - n_log)]))
    return x[(x > lo) & (x < hi)]


_FULL_SCAN_ROOTS = 128  # above this many distinct roots, inner gaps are found on the grid (O(roots^2) scan)
# An edge within a few rounding units of lambda_max from 0 is at the float floor: no eigenvalue
# computed in double precision (nor any grid point, placed relative to lambda_max) tells it from
# 0, and whether the scan of one path or another resolves a critical value there is rounding.
_FLOOR_EDGE = 8.0 * np.finfo(float).eps


def _floor_edge(lo: float, hi: float) -> float:
    """``lo``, or 0 when it lies within ``_FLOOR_EDGE * hi`` of 0 (the float floor)."""
    return 0.0 if lo <= _FLOOR_EDGE * hi else lo


_SMOOTH_DEPTH = 1e-8  # deepest grid point of a non-rational equation, relative to the top edge
_EDGE_MASS = 1e-9  # most mass (from the exact tail mass) allowed below a lower edge found on the real line


def _support_intervals(eq: Equation, atom0: float, atom_locs: list[float],
                       checked: dict[float, float] | None = None,
                       starts: list | None = None) -> list[tuple[float, float]]:
    """Intervals carrying the continuous part, from the critical values of ``M^{-1}``.

    Every edge is a critical value; consecutive candidates bound intervals that lie either
    inside the support or in a gap, which one solve at their midpoints decides. ``checked``
    (filled when given): ``{x: F(x)}`` at the points below a lower edge where ``M`` was found
    real with no mass below (verified solutions), for :func:`_warn_mass_below`. ``starts``
    (appended to when given): the solution in the upper half-plane just above those points
    that their walks shared (:attr:`SolveResult.start`), a start for the grid's first point.
    """
    if not eq.rational:
        hi = upper_edge(eq)
        lo = _floor_edge(lower_edge(eq, atom0), hi)
        if 0 < lo < _SMOOTH_DEPTH * hi and edge_past_infinity(eq, atom0):
            # below the grid's first point the edge moves nothing, and its check below costs
            # walks 1e-11 deep (Gaussian SiLU, tapered, depth 50: 0.3 s of 0.45 s); before
            # such edges were followed past u = infinity, 0 stood there
            lo = 0.0
        if lo > 0:
            # The scan follows one real branch of u with the laws' real atoms; the solver's
            # equation (contour rules) decides: 0.1 % and 0.01 % below the edge (as far as the
            # grid's first point above it) M must be real (a gap) with no mass below. Otherwise (further components, e.g. deep leaky ReLU nets;
            # GELU's real atoms put the edge of expanding nets 1e-3 too high, 2e-7 of mass below
            # it) the grid starts at 0 and gaps are found on the grid.
            # (just below the edge: one walk from far above shared by both points)
            xs = lo * np.array([0.999, 1.0 - _EDGE_GAP])
            r = solve_cluster(eq, xs + 0j, scale=hi)
            F = 1.0 - _tail_mass(eq, r.m, r.u, r.short)
            below = F - atom0
            gap = r.verified & (-r.m.imag <= 1e-9 * np.abs(r.m)) & (below <= _EDGE_MASS)
            if not np.all(gap):
                lo = 0.0
            else:
                if checked is not None:
                    checked.update(zip(xs.tolist(), F.tolist()))
                if starts is not None and r.start is not None:
                    starts.append(r.start)
        return [(lo, hi)]
    if _fastchain._HAVE_NUMBA and eq.roots.size > _FULL_SCAN_ROOTS:
        # the full scan costs O(roots^2): scan the two branches of the outer edges only and let
        # the grid find any inner gap (as for non-rational equations, see _support)
        m_atom = atom0 - 1.0
        r = eq.roots[np.argmin(np.abs(eq.roots - m_atom))]
        mc, vc = rational_critical_points(eq, near=(0.0, float(r)))
        top, bottom = _outer_edges(eq, atom0, mc, vc)
        if top is not None:
            return [(_floor_edge(bottom, top), top)]
    if _fastchain._HAVE_NUMBA:
        mc, vc = rational_critical_points(eq)
        # (critical values beyond the float range, log M^{-1} > 709, bound no interval of the grid)
        edges = _merge(np.exp(vc[vc < 709.0]))
        top, bottom = _outer_edges(eq, atom0, mc, vc)
    else:
        edges, top, bottom = rational_edges(eq), None, 0.0
    cands = [c for c in edges if all(abs(c - a) > 1e-9 * a for a in atom_locs)]
    if cands:
        # critical values at the float floor bound no interval: 0 stands for them
        cands = [c for c in cands if _floor_edge(c, max(cands)) > 0]
    if top is not None:
        bottom = _floor_edge(bottom, top)
        # no support above the top edge nor below the bottom one: only the critical values in
        # between can bound gaps, and only those need a solve
        cands = [top] + [c for c in cands if bottom * (1 + 1e-9) < c < top * (1 - 1e-9)]
        cands = np.unique(np.concatenate([[bottom], cands]))
        if cands.size == 2:
            return [(float(cands[0]), float(cands[1]))]
    cands = np.unique(np.concatenate([[0.0], cands]))
    if cands.size < 2:
        return []
    if cands.size == 2:
        return [(0.0, float(cands[1]))]  # one edge: the continuous part fills (0, edge)
    a, b = cands[:-1], cands[1:]
    mid = np.where(a > 0, np.sqrt(a * b), 0.5 * b)
    r = solve(eq, mid.astype(complex), scale=float(b[-1]))
    # (a midpoint no walk could verify says nothing: it stays in the support, where the grid and
    # the gap masses of _support / _masses_from_gaps decide, rather than dropping an interval)
    inside = (-r.m.imag > 1e-12 * np.maximum(np.abs(r.m), 1e-300)) | ~r.verified
    out: list[tuple[float, float]] = []
    for lo, hi, ins in zip(a, b, inside):
        if not ins:
            continue
        if out and out[-1][1] == lo:
            out[-1] = (out[-1][0], float(hi))  # a spurious critical value inside the support
        else:
            out.append((float(lo), float(hi)))
    return out


def _outer_edges(eq: Equation, atom0: float, mc: np.ndarray, vc: np.ndarray) -> tuple[float | None, float]:
    """Top and bottom edges of the support of a rational equation from its real critical points
    ``mc`` (sorted) and ``log M^{-1}`` there, ``vc``; ``(None, 0)`` when they are not known.

    For ``x > 0`` outside the support ``M(x)`` is real and decreases in ``x``. Above the support
    ``M(x) ~ mean / x`` follows the branch of ``M^{-1}`` that leaves the pole at ``m = 0`` to the
    right: ``M^{-1}`` decreases from ``+inf`` to its first critical point ``m_1 > 0``, so the top
    edge is ``M^{-1}(m_1)``. Below the support, if ``M^{-1}`` has a simple root at
    ``M(0) = atom0 - 1``, ``M`` is analytic at 0 (the local inverse of ``M^{-1}``) and follows the
    real branch to the left of that root up to its first critical point: the bottom edge.
    Otherwise (a multiple root: a singular density at 0) the bottom edge is 0. When
    ``M^{-1}(infinity) = C`` is finite and carries an atom, the top edge is found below ``C``.
    """
    nz = eq.roots == 0.0
    if not (np.any(nz) and eq.exps[nz][0] == -1.0):
        return None, 0.0
    if eq.degree_at_infinity == 0:
        # M^{-1}(m) -> C as m -> +-infinity: critical points far beyond every root are rounding
        # (the slope's terms cancel there), not edges
        far = 1e10 * max(1.0, float(np.max(np.abs(eq.roots))))
        keep = np.abs(mc) < far
        mc, vc = mc[keep], vc[keep]
    right = mc > 0.0
    # (C only enters when M^{-1} has a finite limit; log_c alone may leave the float range, e.g.
    # sum_l log sigma_w2 = 2079 for ReLU at depth 3000, where M^{-1} grows like m^L / m)
    # (log_c > 709: C is out of the float range, e.g. orthogonal ReLU alternating 1000/800 over
    # 1000 layers, C = 2.5^500; no atom can sit there and C is no edge)
    C = math.exp(eq.log_c) if eq.degree_at_infinity == 0 and eq.log_c < 709.0 else math.inf
    if eq.degree_at_infinity == 0 and any(abs(loc - C) <= 1e-12 * C and w > 0 for loc, w in eq.atoms):
        # An atom at C: M has a pole there and, below it, follows the branch that leaves
        # m = -infinity to the right, M^{-1} decreasing from C to its first critical point
        # (if M^{-1} < C there): the top edge of the continuous part
        if not (mc.size and mc[0] < eq.roots.min() and vc[0] < eq.log_c):
            return None, 0.0
        top = math.exp(vc[0])
    elif eq.degree_at_infinity == 0 and not np.any(right):
        if not math.isfinite(C):
            return None, 0.0
        top = C  # M^{-1} decreases from +infinity to C on m > 0: an edge where M -> infinity
    elif not np.any(right):
        return None, 0.0
    else:
        top = math.exp(vc[right][0])
    m_atom = atom0 - 1.0
    near = np.abs(eq.roots - m_atom) <= 1e-12 * max(1.0, abs(m_atom))
    bottom = 0.0
    if np.any(near) and eq.exps[near][0] == 1.0:
        r = eq.roots[near][0]
        below = eq.roots[eq.roots < r]
        left = max(below.max(), -np.inf) if below.size else -np.inf
        inside = (mc < r) & (mc > left)
        if np.any(inside):
            bottom = math.exp(vc[inside][-1])
    if not bottom < top:
        return None, 0.0
    return top, bottom


def _support(x: np.ndarray, m: np.ndarray, intervals, verified: np.ndarray | None = None,
             F: np.ndarray | None = None, F0: float | None = None) -> tuple[tuple[float, float], ...]:
    """Support intervals, split further where the grid finds ``M(x + i0)`` real (a gap).

    Only verified solutions decide: a point no walk could certify or verify (``verified``
    false) says nothing about ``M`` there, so it stays inside the support, unless verified gap
    points on both sides (or the bottom of the first interval, where ``F = F0``) have the same
    ``F`` (no mass between them, ``F`` being non-decreasing)."""
    pos = -m.imag > 1e-12 * np.maximum(np.abs(m), 1e-300)
    if verified is None:
        verified = np.ones(x.shape, dtype=bool)
    out = []
    for k, (lo, hi) in enumerate(intervals):
        sel = (x > lo) & (x < hi)
        xs, ps, vs = x[sel], pos[sel].copy(), verified[sel]
        if not np.all(vs):
            Fs = F[sel] if F is not None else None
            ps[~vs] = True
            # runs of unverified points between two verified gap points without mass between
            i = 0
            while i < xs.size:
                if vs[i]:
                    i += 1
                    continue
                j = i
                while j < xs.size and not vs[j]:
                    j += 1
                left = (Fs[i - 1] if i > 0 and not ps[i - 1] else None) if Fs is not None else None
                if i == 0 and k == 0 and F0 is not None:
                    left = F0
                right = Fs[j] if Fs is not None and j < xs.size and not ps[j] else None
                if left is not None and right is not None and abs(right - left) <= 1e-10:
                    ps[i:j] = False
                i = j
        start = lo
        for i in range(xs.size):
            if not ps[i] and start is not None:
                end = 0.5 * (xs[i - 1] + xs[i]) if i > 0 else lo
                if end > start:
                    out.append((start, end))
                start = None
            elif ps[i] and start is None:
                start = 0.5 * (xs[i - 1] + xs[i])
        if start is not None:
            out.append((start, hi))
    return tuple((float(a), float(b)) for a, b in out)


def _drop_atom_slivers(support, x: np.ndarray, m: np.ndarray, verified: np.ndarray, atom_locs: list[float]):
    """``support`` without the pieces that reach an atom away from 0 and hold no verified grid
    point with ``Im M < 0``: ``M`` has a pole at the atom, the walks next to it fail, and the
    unverified points (kept in the support by :func:`_support`) made a sliver that took the
    atom's mass (orthogonal leaky ReLU 1000-1250, J^T J: a piece (3.8919, 3.9045) of mass 0.375
    under the atom 3.9045). The atom's mass is exact, so the pieces' masses from the gaps stay
    right without the sliver."""
    pos = (-m.imag > 1e-12 * np.maximum(np.abs(m), 1e-300)) & verified
    out = []
    for lo, hi in support:
        near = any(lo * (1 - 1e-6) <= a <= hi * (1 + 1e-6) + 1e-300 for a in atom_locs)
        if near and not np.any(pos & (x > lo) & (x < hi)):
            continue
        # an end within rounding of an atom is the atom (ELU's law of D^2 has its atom at the
        # top of the continuous part; the edge search lands 1e-12 past it)
        hi = next((a for a in atom_locs if abs(hi - a) <= 1e-9 * a), hi)
        lo = next((a for a in atom_locs if abs(lo - a) <= 1e-9 * a), lo)
        out.append((lo, hi))
    return tuple(out)


def jacobian_spectrum(net: Network, gram: str = "JtJ", n_points: int = 1000, *, certify: bool = True) -> Spectrum:
    """Limiting spectral law of ``J^T J`` (or ``J J^T``) of a random network.

    Parameters
    ----------
    net : Network
    gram : {"JtJ", "JJt"}
        ``"JtJ"`` is the ``N_0 x N_0`` matrix ``J^T J``; ``"JJt"`` the ``N_L x N_L`` ``J J^T``.
    n_points : int
        Number of grid points for the density (at least 8).
    certify : bool
        ``True`` (default): the grid solutions of a non-rational equation (smooth activations,
        orthogonal weights) go through the joint Kantorovich certificate. ``False`` skips it: the
        solutions are the same (the certificate only checks them), verified a posteriori
        (residual and sign checks), and ``stats`` counts them as verified, none as certified.
        The density, CDF and every other value are those of the certified call; only the
        certificate's cost (often most of the time) and its guarantee are left out. Rational
        equations (ReLU-like activations, Gaussian weights) are certified by their continuation
        either way.

    Returns
    -------
    Spectrum

    Warns
    -----
    RuntimeWarning
        When grid points could be neither certified nor verified (``stats.n_uncertified > 0``):
        their density and CDF values are not guaranteed.

    Examples
    --------
    >>> import fpcore
    >>> s = fpcore.jacobian_spectrum(fpcore.Network([500] * 6, activation="relu", sigma_w2=2.0))
    >>> s.atom, round(s.mean, 12)
    (0.5, 1.0)
    >>> tanh = fpcore.Network([400] * 4, activation="tanh", sigma_w2=1.5)
    >>> fast = fpcore.jacobian_spectrum(tanh, n_points=64, certify=False)
    >>> fast.stats.n_certified, fast.stats.n_verified > 0
    (0, True)
    """
    _check_gram(gram)
    if not isinstance(certify, (bool, np.bool_)):
        raise ValueError(f"certify must be True or False, got {certify!r}")
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 8:
        raise ValueError(f"n_points must be an integer >= 8, got {n_points!r}")
    if not isinstance(net, Network):
        raise ValueError(f"net must be an fpcore.Network, got {type(net).__name__}")
    t0 = time.perf_counter()
    eq = build_equation(net, gram)
    N = net.widths
    _check_float_range(net, eq)
    if net.depth == 1 and net.init == "orthogonal" and N[1] <= N[0] and eq.mean_field.laws[0].kind == "continuous":
        return _pushforward_spectrum(net, gram, eq, int(n_points), t0)
    atom0 = eq.atoms[0][1] if eq.atoms and eq.atoms[0][0] == 0.0 else 0.0
    other_atoms = [a for a in eq.atoms if a[0] != 0.0]
    cont_mass = 1.0 - sum(m for _, m in eq.atoms)
    checked: dict[float, float] = {}  # F at the points below the lower edge checked there
    starts: list = []  # (z, m, u) above them, reached from far above
    if cont_mass > 1e-12:
        try:
            intervals = _support_intervals(eq, atom0, [a for a, _ in other_atoms], checked, starts)
        except RuntimeError as exc:
            # (huge variances: the laws of D^2 put all but a sliver of mass ~ 1/sqrt(q) at 0)
            q = eq.mean_field.q
            raise ValueError(
                f"jacobian_spectrum: the support of this law cannot be computed ({exc}); the "
                f"pre-activation variances reach q = {float(np.max(q)):.3g} (layer {int(np.argmax(q)) + 1}) "
                f"from sigma_w2 = {list(net.sigma_w2)}, sigma_b2 = {list(net.sigma_b2)}, q0 = {net.q0!r}: "
                "make sigma_w2 (or q0, sigma_b2) smaller"
            ) from exc
    else:
        intervals = []
    hi = max((b for _, b in intervals), default=0.0)
    lam_max = max([hi] + [a[0] for a in other_atoms])
    if intervals:
        share = [max(8, int(n_points) // len(intervals))] * len(intervals)
        # the verified (non-rational) path loses accuracy far below the bulk: stop at 1e-8
        depth = 1e-10 if eq.rational else _SMOOTH_DEPTH
        # ... unless a lower edge was located (and checked: no mass below) deeper than that: the
        # grid goes down to it (orthogonal leaky ReLU, 3 tapered layers, J J^T: a component at
        # alpha^6 ~ 1e-11..1e-8 of 42 % of the mass lay below 1e-8 * lambda_max; the grid stopped
        # above it, the support started at 3.6e-7 and cdf / quantile returned 0 / that edge there)
        pieces = [_grid(a, b, k, depth if eq.rational or not a > 0 else min(depth, a / b))
                  for (a, b), k in zip(intervals, share)]
        x = np.concatenate(pieces)
        groups = np.concatenate([np.full(p.size, i) for i, p in enumerate(pieces)])
        order = np.argsort(x, kind="stable")
        x, groups = x[order], groups[order]
        keep = np.r_[True, np.diff(x) > 0]
        x, groups = x[keep], groups[keep]
        # (the grid's first point lies just above the lower edge checked: it walks from the
        # checks' shared point instead of from far above)
        r = solve(eq, x.astype(complex), scale=lam_max, groups=groups, certify=bool(certify),
                  start=starts[0] if starts else None)
        density = np.maximum(-((1.0 + r.m) / x).imag / _PI, 0.0)
        cdf_grid = np.clip(1.0 - _tail_mass(eq, r.m, r.u, r.short), 0.0, 1.0)
        stats = dict(n_lilypads=r.n_lilypads, n_newton_steps=r.n_newton, n_rejected=r.n_rejected,
                     n_certified=int(r.certified.sum()), n_verified=int((r.verified & ~r.certified).sum()),
                     n_uncertified=int((~r.verified).sum()))
        if stats["n_uncertified"]:
            bad = x[~r.verified]
            warnings.warn(
                f"jacobian_spectrum: {stats['n_uncertified']} of {x.size} grid points could not be certified "
                f"or verified (x from {bad.min():.3g} to {bad.max():.3g}); their density and CDF values are not "
                "guaranteed (counted in stats.n_uncertified)",
                RuntimeWarning,
                stacklevel=2,
            )
        F0 = atom0 + sum(mass for loc, mass in other_atoms if loc <= intervals[0][0])
        support = _support(x, r.m, intervals, r.verified, cdf_grid, F0)
        if not eq.rational and support and support[0][0] > 0:
            _warn_mass_below(eq, float(support[0][0]), atom0, other_atoms, lam_max, checked,
                             starts[0] if starts else None)
        if other_atoms:
            support = _drop_atom_slivers(support, x, r.m, r.verified, [a for a, _ in other_atoms])
            # F inside a piece lies between the atoms below it and 1 minus the atoms from its top
            # end on; next to an atom (M has a pole there) the formula failed that by 0.25 at
            # 1e-7 below ELU's atom, with verified solutions: those points are not verified
            bad = np.zeros(x.shape, dtype=bool)
            for lo_, up_ in support:
                sel = (x > lo_) & (x < up_)
                f_lo = atom0 + sum(w for loc, w in other_atoms if loc <= lo_)
                f_up = 1.0 - sum(w for loc, w in other_atoms if loc >= up_)
                bad |= sel & ((cdf_grid < f_lo - _MONOTONE_TOL) | (cdf_grid > f_up + _MONOTONE_TOL))
            if np.any(bad & r.verified):
                stats["n_uncertified"] += int(np.count_nonzero(bad & r.verified))
                stats["n_verified"] -= int(np.count_nonzero(bad & r.verified & ~r.certified))
                stats["n_certified"] -= int(np.count_nonzero(bad & r.certified))
                warnings.warn(
                    f"jacobian_spectrum: {int(np.count_nonzero(bad & r.verified))} grid points next to the atoms "
                    "could not be verified (their CDF left the bracket of the exact atom masses)",
                    RuntimeWarning, stacklevel=2)
                r.verified[bad] = False
                r.certified[bad] = False
        # keep the grid solutions as starting points for cdf/quantile (certified ones only)
        m_grid = np.where(r.verified, r.m, np.nan + 0j)
        u_grid = r.u
    else:
        x = np.linspace(0.0, 1.5 * max(lam_max, 1e-300), int(n_points) + 1)[1:]
        density = np.zeros_like(x)
        cdf_grid = np.array([atom0 + sum(m for loc, m in other_atoms if loc <= xi) for xi in x])
        stats = dict(n_lilypads=0, n_newton_steps=0, n_rejected=0, n_certified=0, n_verified=0, n_uncertified=0)
        support = ()
        m_grid = u_grid = None
    seconds = time.perf_counter() - t0
    return Spectrum(
        x=x,
        density=density,
        atom=float(atom0),
        atoms=tuple((float(a), float(b)) for a, b in eq.atoms),
        support=support,
        lambda_max=float(lam_max),
        mean=float(eq.mean),
        stats=SolverStats(n_points=int(x.size), seconds=seconds, **stats),
        network=net,
        gram=gram,
        _cdf_grid=cdf_grid,
        _eq=eq,
        _m_grid=m_grid,
        _u_grid=u_grid,
    )


# mass found below the lowest located piece that makes jacobian_spectrum warn: a lost component,
# not the sliver between a true edge and the grid point that located it (1.3e-5 for expanding
# orthogonal GELU, L = 2, below 1.03e-5; 3.6e-5 for orthogonal leaky ReLU 64-16-10, J J^T, below
# 4.5e-8: both under the suite's KS tolerances)
_BELOW_MASS = 1e-4


def _warn_mass_below(eq: Equation, lo: float, atom0: float, other_atoms, lam_max: float,
                     checked: dict[float, float] | None = None, start: tuple | None = None) -> None:
    """Warn when the law carries mass below the lowest located piece of a non-rational equation.

    ``Spectrum.cdf`` returns the exact atoms below the support and ``quantile`` its lowest edge
    for the ``p`` under it: a component the grid missed (a leaky ReLU component deeper than the
    grid once went: 41 % of the mass below 3.6e-7, with F = 0 returned there) would be a silent
    wrong value. One solve 0.1 % below the edge: ``F`` there must be the atoms below it.
    ``checked``: ``F`` at points already solved and verified (:func:`_support_intervals` checks
    the same point below the edge it located: the walk from far above is not repeated).
    ``start``: a solution in the upper half-plane near the edge (:attr:`SolveResult.start`),
    from which the point is walked to (:func:`solve_from`) where it was not checked (a gap the
    grid found above the located edge moves the piece's lower end)."""
    x = lo * 0.999
    if checked and x in checked:
        F = checked[x]
    else:
        t = np.array([x + 0j])
        r = solve(eq, t, scale=lam_max) if start is None else solve_from(eq, t, start, lam_max)
        if not bool(r.verified[0]):
            return
        F = float(1.0 - _tail_mass(eq, r.m, r.u, r.short)[0])
    known = atom0 + sum(w for loc, w in other_atoms if loc <= x)
    if F - known > _BELOW_MASS:
        warnings.warn(
            f"jacobian_spectrum: a mass of {F - known:.3g} lies below the lowest located support "
            f"interval (which starts at {lo:.3g}); cdf returns {known:.3g} and quantile that edge "
            f"below it: for p < {F:.3g} the value returned by quantile is an upper bound and "
            "cdf a lower bound",
            RuntimeWarning, stacklevel=3)


def _push_moment(net: Network, law: PushForward, scale: float, k: int) -> float:
    """``k``-th moment of the push-forward law (mass ``scale``): ``c^k E[phi'^(2k)]``."""
    return float(scale * law.c**k * net.activations[0].d2_moment(law.q, k))


def _pushforward_spectrum(net: Network, gram: str, eq: Equation, n_points: int, t0: float) -> Spectrum:
    """One orthogonal layer with orthonormal rows: ``J J^T = sigma_w^2 D^2`` exactly, so the law
    is the push-forward of ``N(0, q_1)`` by ``sigma_w^2 phi'^2`` (see :mod:`fpcore._pushforward`)."""
    N = net.widths
    law = PushForward(net.activations[0].dphi, float(eq.mean_field.q[0]), float(net.sigma_w2[0]))
    scale = 1.0 if gram == "JJt" else N[1] / N[0]
    own = law.atoms()
    zero = next((m for a, m in own if a == 0.0), 0.0)
    atom0 = (N[0] - N[1]) / N[0] + scale * zero if gram == "JtJ" else zero  # the rational (N_0 - N_1) / N_0 exactly
    atoms = ([(0.0, atom0)] if atom0 > 1e-15 else []) + [(a, scale * m) for a, m in own if a > 0.0]
    f_min, f_max = law.range()
    lo = max(f_min, 0.0)
    x = _grid(lo, f_max, n_points, 1e-10)
    F, density = law.cdf_and_density(x)
    cdf_grid = 1.0 - scale + scale * F
    mean = _push_moment(net, law, scale, 1)  # exact, not the atoms' mean
    stats = SolverStats(n_points=int(x.size), n_lilypads=0, n_newton_steps=0, n_rejected=0, n_certified=0,
                        n_verified=int(x.size), n_uncertified=0, seconds=time.perf_counter() - t0)
    return Spectrum(
        x=x,
        density=scale * density,
        atom=float(atom0),
        atoms=tuple((float(a), float(b)) for a, b in atoms),
        support=((float(lo), float(f_max)),) if f_max > lo else (),
        lambda_max=float(f_max),
        mean=mean,
        stats=stats,
        network=net,
        gram=gram,
        _cdf_grid=cdf_grid,
        _eq=eq,
        _push=(law, scale),
    )
