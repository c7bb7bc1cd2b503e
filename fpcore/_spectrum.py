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
from ._edges import lower_edge, rational_edges, upper_edge
from ._equation import Equation, build_equation
from ._lilypad import solve, solve_near
from ._network import Network, _check_gram
from ._pushforward import PushForward

__all__ = ["Spectrum", "SolverStats", "jacobian_spectrum"]

_PI = math.pi
_QUANTILE_ITERS = 100
_N_CONTOUR = 256


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
        if short is None or not np.any(short):
            return _fastchain.tail_mass(m, u, *args, V, W, k, n)
        out = _fastchain.tail_mass(m, u, *args, *eq.packed_short, k, n)
        if not np.all(short):
            rest = ~short
            out[rest] = _fastchain.tail_mass(m[rest], u[rest], *args, V, W, k, n)
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
    def _solve(self, x: np.ndarray):
        """Solve at points inside the support, each from the nearest grid point of the same
        support interval (one short certified walk), falling back to a walk from far above."""
        if self._m_grid is None:
            r = solve(self._eq, x.astype(complex), scale=self.lambda_max)
        else:
            g = self.x
            j = np.clip(np.searchsorted(g, x), 1, g.size - 1)
            j = np.where(np.abs(g[j - 1] - x) <= np.abs(g[j] - x), j - 1, j)
            # the start must lie in the same support interval as the target
            for lo, up in self.support:
                inside = (x > lo) & (x < up)
                off = inside & ~((g[j] > lo) & (g[j] < up))
                if np.any(off):
                    cand = np.flatnonzero((g > lo) & (g < up))
                    if cand.size:
                        k = np.clip(np.searchsorted(g[cand], x[off]), 0, cand.size - 1)
                        j[off] = cand[k]
            u0 = None if self._u_grid is None else self._u_grid[j]
            r = solve_near(self._eq, x, self.lambda_max, g[j], self._m_grid[j], u0)
        d = np.maximum(-((1.0 + r.m) / x).imag / _PI, 0.0)
        return r, d

    def _cdf_and_density(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=float)
        F = np.zeros_like(x)
        dens = np.zeros_like(x)
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
            xo = x[out]
            Fo = np.full(xo.shape, self.atom)
            for loc, mass in self.atoms:
                if loc > 0:
                    Fo[xo >= loc] += mass
            for (lo, up), mass in zip(self.support, self._interval_masses()):
                Fo[xo >= up] += mass
            F[out] = Fo
        mid &= inside
        if np.any(mid) and self._push is not None:
            law, scale = self._push
            Fp, dp = law.cdf_and_density(x[mid])
            F[mid] = 1.0 - scale + scale * Fp  # the zero atom of J^T J sits below the law
            dens[mid] = scale * dp
        elif np.any(mid):
            r, d = self._solve(x[mid])
            F[mid] = np.clip(1.0 - _tail_mass(self._eq, r.m, r.u, r.short), 0.0, 1.0)
            dens[mid] = d
            if not np.all(r.verified):
                bad = x[mid][~r.verified]
                warnings.warn(
                    f"{bad.size} point(s) could not be certified or verified (e.g. x = {bad[0]:.3g}); "
                    "their CDF/density values are not guaranteed",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return F, dens

    def _interval_masses(self) -> list[float]:
        """Continuous mass of each support interval (exact CDF just inside its ends)."""
        if "masses" not in self._cache:
            cont = 1.0 - sum(m for _, m in self.atoms)
            if len(self.support) <= 1:
                masses = [cont] * len(self.support)
            elif self._push is not None:
                law, scale = self._push
                masses = [float(scale * np.diff(law.cdf(np.array([lo, up])))[0]) for lo, up in self.support]
            else:
                ends = np.array([[lo * (1 + 1e-10) + 1e-300, up * (1 - 1e-10)] for lo, up in self.support])
                r, _ = self._solve(ends.ravel())
                tail = _tail_mass(self._eq, r.m, r.u, r.short).reshape(-1, 2)
                # mass in (lo, up) minus the atoms sitting inside it (none: atoms bound intervals)
                masses = list(np.maximum(tail[:, 0] - tail[:, 1], 0.0))
            self._cache["masses"] = masses
        return self._cache["masses"]

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
        F, _ = self._cdf_and_density(xa.ravel())
        F = F.reshape(xa.shape)
        return float(F) if F.ndim == 0 else F

    def quantile(self, p):
        """Inverse CDF: the smallest ``x`` with ``F(x) >= p``, by safeguarded Newton on the exact CDF.

        Examples
        --------
        >>> import fpcore
        >>> s = fpcore.jacobian_spectrum(fpcore.Network([100, 100], "relu"), n_points=100)
        >>> s.quantile(0.25)  # inside the atom at 0 (mass 1/2)
        0.0
        """
        pa = np.asarray(p, dtype=float)
        if np.any(~np.isfinite(pa)) or np.any((pa < 0) | (pa > 1)):
            raise ValueError(f"p must lie in [0, 1], got {p!r}")
        flat = pa.ravel()
        out = np.zeros_like(flat)
        # atoms: F jumps at each atom location
        grid_x = np.concatenate([[0.0], self.x, [self.lambda_max]])
        grid_F = np.concatenate([[self.atom], self._cdf_grid, [1.0]])
        order = np.argsort(grid_x, kind="stable")
        grid_x, grid_F = grid_x[order], np.maximum.accumulate(grid_F[order])
        todo = (flat > self.atom) & (flat < 1.0)
        out[~todo] = 0.0
        out[flat >= 1.0] = self.lambda_max
        idx = np.flatnonzero(todo)
        if idx.size:
            pt = flat[idx]
            j = np.clip(np.searchsorted(grid_F, pt, side="left"), 1, grid_x.size - 1)
            # in s = log x: the CDF near 0 is a power of x (Fuss-Catalan: x^(1/(L+1))), where
            # steps in x would halve a bracket [0, 1e-9] a hundred times
            hi = np.log(grid_x[j])
            lo = np.where(grid_x[j - 1] > 0, np.log(np.maximum(grid_x[j - 1], 1e-300)), hi - 700.0)
            sk = np.where(grid_x[j - 1] > 0, 0.5 * (lo + hi), hi - 2.0)
            active = np.ones(idx.size, dtype=bool)
            for _ in range(_QUANTILE_ITERS):
                a = np.flatnonzero(active)
                if a.size == 0:
                    break
                x = np.exp(sk[a])
                F, d = self._cdf_and_density(x)
                g = F - pt[a]
                below = g < 0
                lo[a] = np.where(below, sk[a], lo[a])
                hi[a] = np.where(below, hi[a], sk[a])
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    newton = sk[a] - g / (d * x)  # dF/ds = x rho(x)
                inside = np.isfinite(newton) & (newton > lo[a]) & (newton < hi[a])
                sn = np.where(inside, newton, 0.5 * (lo[a] + hi[a]))
                conv = (np.abs(g) <= 1e-13) | (hi[a] - lo[a] <= 1e-15)
                sk[a] = np.where(conv, sk[a], sn)
                active[a[conv]] = False
            out[idx] = np.exp(sk)
        out = out.reshape(pa.shape)
        return float(out) if out.ndim == 0 else out

    @property
    def deciles(self) -> np.ndarray:
        """Quantiles at 0.1, ..., 0.9."""
        if "deciles" not in self._cache:
            self._cache["deciles"] = self.quantile(np.arange(1, 10) / 10.0)
        return self._cache["deciles"]

    def fraction_above(self, t: float) -> float:
        """Mass strictly above ``t`` (e.g. the fraction of squared singular values above 1)."""
        return 1.0 - self.cdf(float(t))

    # -- moments -----------------------------------------------------------------------------
    def moment(self, k: int) -> float:
        """``k``-th moment, exactly, by the Cauchy integral of ``M`` on a circle around the support.

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
        if "contour" not in self._cache:
            R = 2.0 * self.lambda_max
            th = np.pi * np.arange(_N_CONTOUR // 2 + 1) / (_N_CONTOUR // 2)
            z = R * np.exp(1j * th)
            z[-1] = -R
            r = solve(self._eq, z, scale=self.lambda_max)
            self._cache["contour"] = (R, th, r.m)
        R, th, m = self._cache["contour"]
        w = np.ones_like(th)
        w[0] = w[-1] = 0.5
        # m_k = R^k / (2 pi) int e^{ik th} M(R e^{ith}) dth, using M(conj z) = conj M(z)
        val = np.sum(w * (np.exp(1j * k * th) * m).real) / (th.size - 1)
        return float(R**k * val)

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


def _grid(lo: float, hi: float, n: int, depth: float = 1e-10) -> np.ndarray:
    """Interior grid of ``(lo, hi)``: clustered at both edges, log-spaced when the range is wide
    (down to ``depth * hi``)."""
    if lo > 0 and hi / lo < 30.0:
        return _cluster(lo, hi, n)
    n_log = n // 2
    a = max(lo * (1 + _EDGE_GAP), hi * depth)
    jl = (np.arange(n_log) + 0.5) / n_log
    logs = a * (hi / a) ** jl
    x = np.unique(np.concatenate([logs, _cluster(lo, hi, n - n_log)]))
    return x[(x > lo) & (x < hi)]


def _support_intervals(eq: Equation, atom0: float, atom_locs: list[float]) -> list[tuple[float, float]]:
    """Intervals carrying the continuous part, from the critical values of ``M^{-1}``.

    Every edge is a critical value; consecutive candidates bound intervals that lie either
    inside the support or in a gap, which one solve at their midpoints decides.
    """
    if not eq.rational:
        hi = upper_edge(eq)
        lo = lower_edge(eq, atom0)
        if lo > 0:
            # The scan follows one real branch of u: if mass remains below its edge (further
            # components, e.g. deep leaky ReLU nets), let the grid start at 0 instead; gaps are
            # then found on the grid.
            r = solve(eq, np.array([lo * 0.999 + 0j]), scale=hi)  # just below the edge
            if r.verified[0] and 1.0 - _tail_mass(eq, r.m, r.u, r.short)[0] - atom0 > 1e-8:
                lo = 0.0
        return [(lo, hi)]
    cands = [c for c in rational_edges(eq) if all(abs(c - a) > 1e-9 * a for a in atom_locs)]
    cands = np.unique(np.concatenate([[0.0], cands]))
    if cands.size < 2:
        return []
    if cands.size == 2:
        return [(0.0, float(cands[1]))]  # one edge: the continuous part fills (0, edge)
    a, b = cands[:-1], cands[1:]
    mid = np.where(a > 0, np.sqrt(a * b), 0.5 * b)
    r = solve(eq, mid.astype(complex), scale=float(b[-1]))
    inside = -r.m.imag > 1e-12 * np.maximum(np.abs(r.m), 1e-300)
    out: list[tuple[float, float]] = []
    for lo, hi, ins in zip(a, b, inside):
        if not ins:
            continue
        if out and out[-1][1] == lo:
            out[-1] = (out[-1][0], float(hi))  # a spurious critical value inside the support
        else:
            out.append((float(lo), float(hi)))
    return out


def _support(x: np.ndarray, m: np.ndarray, intervals) -> tuple[tuple[float, float], ...]:
    """Support intervals, split further where the grid finds ``M(x + i0)`` real (a gap)."""
    pos = -m.imag > 1e-12 * np.maximum(np.abs(m), 1e-300)
    out = []
    for lo, hi in intervals:
        sel = (x > lo) & (x < hi)
        xs, ps = x[sel], pos[sel]
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


def jacobian_spectrum(net: Network, gram: str = "JtJ", n_points: int = 1000) -> Spectrum:
    """Limiting spectral law of ``J^T J`` (or ``J J^T``) of a random network.

    Parameters
    ----------
    net : Network
    gram : {"JtJ", "JJt"}
        ``"JtJ"`` is the ``N_0 x N_0`` matrix ``J^T J``; ``"JJt"`` the ``N_L x N_L`` ``J J^T``.
    n_points : int
        Number of grid points for the density (at least 8).

    Returns
    -------
    Spectrum

    Examples
    --------
    >>> import fpcore
    >>> s = fpcore.jacobian_spectrum(fpcore.Network([500] * 6, activation="relu", sigma_w2=2.0))
    >>> s.atom, round(s.mean, 12)
    (0.5, 1.0)
    """
    _check_gram(gram)
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 8:
        raise ValueError(f"n_points must be an integer >= 8, got {n_points!r}")
    if not isinstance(net, Network):
        raise ValueError(f"net must be an fpcore.Network, got {type(net).__name__}")
    t0 = time.perf_counter()
    eq = build_equation(net, gram)
    N = net.widths
    if net.depth == 1 and net.init == "orthogonal" and N[1] <= N[0] and eq.mean_field.laws[0].kind == "continuous":
        return _pushforward_spectrum(net, gram, eq, int(n_points), t0)
    atom0 = eq.atoms[0][1] if eq.atoms and eq.atoms[0][0] == 0.0 else 0.0
    other_atoms = [a for a in eq.atoms if a[0] != 0.0]
    cont_mass = 1.0 - sum(m for _, m in eq.atoms)
    if cont_mass > 1e-12:
        intervals = _support_intervals(eq, atom0, [a for a, _ in other_atoms])
    else:
        intervals = []
    hi = max((b for _, b in intervals), default=0.0)
    lam_max = max([hi] + [a[0] for a in other_atoms])
    if intervals:
        share = [max(8, int(n_points) // len(intervals))] * len(intervals)
        # the verified (non-rational) path loses accuracy far below the bulk: stop at 1e-8
        depth = 1e-10 if eq.rational else 1e-8
        pieces = [_grid(a, b, k, depth) for (a, b), k in zip(intervals, share)]
        x = np.concatenate(pieces)
        groups = np.concatenate([np.full(p.size, i) for i, p in enumerate(pieces)])
        order = np.argsort(x, kind="stable")
        x, groups = x[order], groups[order]
        keep = np.r_[True, np.diff(x) > 0]
        x, groups = x[keep], groups[keep]
        r = solve(eq, x.astype(complex), scale=lam_max, groups=groups)
        density = np.maximum(-((1.0 + r.m) / x).imag / _PI, 0.0)
        cdf_grid = np.clip(1.0 - _tail_mass(eq, r.m, r.u, r.short), 0.0, 1.0)
        stats = dict(n_lilypads=r.n_lilypads, n_newton_steps=r.n_newton, n_rejected=r.n_rejected,
                     n_certified=int(r.certified.sum()), n_verified=int((r.verified & ~r.certified).sum()),
                     n_uncertified=int((~r.verified).sum()))
        support = _support(x, r.m, intervals)
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
    atom0 = (1.0 - scale) + scale * zero
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
