"""Activations and the laws of their squared derivatives ``D^2 = phi'(sqrt(q) Z)^2``.

Each activation knows three things the rest of the core needs (MATH.md sections 1-2):

* ``second_moment(q) = E[phi(sqrt(q) Z)^2]`` for the mean-field recursion,
* ``d2_law(q)``: the law of ``phi'(sqrt(q) Z)^2`` as a :class:`D2Law`,
* ``d2_moment(q, k) = E[phi'(sqrt(q) Z)^(2k)]``.

Piecewise-linear activations (linear, ReLU, hard-tanh, leaky ReLU) have laws with one or two
atoms and closed-form moments; smooth activations have continuous laws, represented by a
quadrature rule in ``h = sqrt(q) Z``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from typing import Callable

import numpy as np
from scipy import special

from . import _fastchain, _lawkernels

__all__ = ["Activation", "D2Law", "get_activation", "ACTIVATIONS", "gauss_error_bound"]

# Gaussian expectations: composite Gauss-Legendre in z (Z ~ N(0, 1)) on panels whose ends grow
# geometrically away from 0 (2^-12, 2^-11, ..., 8, then 9; tail mass beyond 9 is 2e-19), with
# ends every 0.5 from 2.5 on (E[Z^2k] exact to 1e-15 for k <= 3). A panel
# end at 0 makes kinks of phi' there (SELU, ELU) exact, and the geometric ends resolve
# phi'(sqrt(q) z) for any q in [1e-3, 1e4]: E[phi^2] and E[phi'^2] match adaptive quadrature to
# 5e-12 relative for every built-in activation (tests/test_smooth.py), where a 160-node
# Gauss-Hermite rule was off by 70% for tanh at q = 100 and by 0.6% for SELU at q = 1.
_ZMAX = 9.0
_PANEL_NODES = 10
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_PANEL_NODES)


def _geometric_ends(first: float = 2.0**-12, ratio: float = 2.0, stop: float = _ZMAX) -> np.ndarray:
    ends = [first]
    while ends[-1] * ratio < stop:
        ends.append(ends[-1] * ratio)
    return np.array(ends)


_GEO = _geometric_ends()


def _panel_rule(ends: np.ndarray, nodes: tuple[np.ndarray, np.ndarray] = (_GL_X, _GL_W), mask=None):
    """Nodes and N(0, 1) weights of composite Gauss-Legendre on the panels between sorted ``ends``
    (only the panels selected by ``mask``, when given)."""
    gx, gw = nodes
    mid, half = 0.5 * (ends[1:] + ends[:-1]), 0.5 * (ends[1:] - ends[:-1])
    if mask is not None:
        mid, half = mid[mask], half[mask]
    z = (mid[:, None] + half[:, None] * gx).ravel()
    w = (half[:, None] * gw).ravel() * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return z, w


_TAIL = np.arange(2.5, _ZMAX, 0.5)  # the Gaussian weight itself needs these: moments to 1e-15
_Z, _W = _panel_rule(np.unique(np.r_[-_ZMAX, -_GEO[::-1], 0.0, _GEO, _ZMAX, _TAIL, -_TAIL]))
_W = _W / _W.sum()  # E[1] = 1 exactly (the rule alone is off by ~1e-13)


def gaussian_expectation(g: Callable[[np.ndarray], np.ndarray], q: np.ndarray | float) -> np.ndarray:
    """``E[g(sqrt(q) Z)]`` by the composite rule above, vectorised over ``q``.

    Examples
    --------
    >>> round(float(gaussian_expectation(lambda h: h * h, 2.5)), 12)
    2.5
    """
    q = np.asarray(q, dtype=float)
    z, wz = _Z, _W
    qmax = float(np.max(q)) if q.size else 0.0
    if qmax > 1e4 and math.isfinite(qmax):
        # g(sqrt(q) z) changes on the scale z ~ 1/sqrt(q): geometric panels further down
        first = 2.0**-12 * math.sqrt(1e4 / qmax)
        geo = _geometric_ends(first)
        z, wz = _panel_rule(np.unique(np.r_[-_ZMAX, -geo[::-1], 0.0, geo, _ZMAX, _TAIL, -_TAIL]))
        wz = wz / wz.sum()
    h = np.sqrt(q)[..., None] * z
    with np.errstate(over="ignore", under="ignore"):
        return np.sum(wz * g(h), axis=-1)


def _zeros_of(dphi, s: float) -> list[float]:
    """Zeros in ``z`` of ``phi'(s z)`` on ``[-9, 9]``: sign changes on a fine grid, then each
    bracket cut into 64 pieces per round, all brackets at once (10 rounds: below rounding)."""
    zs = np.linspace(-_ZMAX, _ZMAX, 2001)
    with np.errstate(all="ignore"):
        d = np.sign(np.asarray(dphi(s * zs), dtype=float))
    idx = np.flatnonzero(d[1:] * d[:-1] < 0)
    if idx.size == 0:
        return []
    a, b, da = zs[idx], zs[idx + 1], d[idx]
    frac = np.linspace(0.0, 1.0, 65)
    for _ in range(10):
        grid = a[:, None] + (b - a)[:, None] * frac
        with np.errstate(all="ignore"):
            dg = np.sign(np.asarray(dphi(s * grid), dtype=float))
        first = np.argmax(dg != da[:, None], axis=1)  # first piece end past the sign change
        first = np.maximum(first, 1)
        rows = np.arange(a.size)
        a, b = grid[rows, first - 1], grid[rows, first]
    return list(0.5 * (a + b))


_ZERO_NODES = np.polynomial.legendre.leggauss(3)
_LAW_NODES = np.polynomial.legendre.leggauss(8)  # fewer atoms: the solver's cost is linear in them
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(160)
_GH_W = _GH_W / math.sqrt(2.0 * math.pi)


def _merge(v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop atoms of negligible weight and merge equal values (``phi'`` even gives symmetric
    pairs; tail values ~0 merge, relative to the largest value)."""
    keep = w > 1e-18
    v, w = v[keep], w[keep]
    key = np.round(v / max(float(v.max()), 1e-300), 13)
    _, inv = np.unique(key, return_inverse=True)
    wsum = np.bincount(inv, weights=w)
    return np.bincount(inv, weights=w * v) / wsum, wsum


def _gh_rule(dphi, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Atoms of the 160-node Gauss-Hermite rule in ``z`` (merged)."""
    with np.errstate(all="ignore"):
        v = np.asarray(dphi(math.sqrt(q) * _GH_X), dtype=float) ** 2
    return _merge(v, _GH_W)


_N_GAUSS = 40


def _gauss_rule(values: np.ndarray, weights: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n``-point Gauss rule of the discrete law ``(values, weights)`` (Lanczos with full
    reorthogonalisation on ``diag(values)``, then Golub-Welsch): exact for polynomials of degree
    ``2 n - 1``; the law itself when it has at most ``n`` atoms."""
    K = values.size
    if K <= n:
        return values, weights
    Q = np.zeros((K, n))
    alpha, beta = np.zeros(n), np.zeros(n)
    Q[:, 0] = np.sqrt(weights / weights.sum())
    size = n
    for j in range(n):
        v = values * Q[:, j]
        alpha[j] = Q[:, j] @ v
        for _ in range(2):
            v -= Q[:, : j + 1] @ (Q[:, : j + 1].T @ v)
        if j + 1 < n:
            beta[j] = np.linalg.norm(v)
            if beta[j] <= 1e-14 * float(values.max()):
                size = j + 1
                break
            Q[:, j + 1] = v / beta[j]
    T = np.diag(alpha[:size]) + np.diag(beta[: size - 1], 1) + np.diag(beta[: size - 1], -1)
    lam, U = np.linalg.eigh(T)
    return np.clip(lam, 0.0, None), U[0] ** 2 * weights.sum()


N_SHORT = 40


def short_rule(values: np.ndarray, weights: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n``-point Gauss rule of a discrete law: the compiled three-term recurrence (Stieltjes),
    checked there against the law's moments up to degree ``2n - 1`` (else reorthogonalised), and
    here (positive weights, atoms inside the law's hull, mass and first two moments to 1e-12),
    else Lanczos with full reorthogonalisation in numpy."""
    if _fastchain._HAVE_NUMBA:
        x, w = _fastchain.gauss_rule(values, weights, n)
        lo, hi = float(values.min()), float(values.max())
        ok = np.all(w > 0) and np.all((x >= lo - 1e-14 * hi) & (x <= hi * (1 + 1e-14)))
        for k in range(3):
            exact = float(np.dot(weights, values**k))
            ok = ok and abs(float(np.dot(w, x**k)) - exact) <= 1e-12 * abs(exact)
        if ok:
            return x, w
    return _gauss_rule(values, weights, n)


def gauss_error_bound(u, vmax, n: int) -> np.ndarray:
    """Bound on ``|psi_n(u) - psi(u)|`` for the ``n``-point Gauss rule ``psi_n`` of a law on
    ``[0, vmax]`` of mass 1, ``psi(u) = E[u D^2 / (1 - u D^2)]``, from the Bernstein ellipse
    through the integrand's pole ``t = 1/u`` (:func:`fpcore._fastchain._gauss_error`); ``inf`` on
    the cut ``u >= 1 / vmax``. ``u`` and ``vmax`` broadcast.

    Examples
    --------
    >>> float(gauss_error_bound(-1.0, 1.0, 40)) < 1e-40   # far from the cut
    True
    >>> float(gauss_error_bound(1.5, 1.0, 40))            # on it
    inf
    """
    u, vm = np.broadcast_arrays(np.asarray(u, dtype=complex), np.asarray(vmax, dtype=float))
    flat = _fastchain.gauss_error_flat(np.ascontiguousarray(u).ravel(), np.ascontiguousarray(vm).ravel(), int(n))
    return flat.reshape(u.shape)


_D2_BASE = np.r_[-_ZMAX, -_GEO[::-1], 0.0, _GEO, _ZMAX]  # the panel ends of _d2_rule away from zeros


def _d2_rule(dphi, q: float, zeros: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Atoms standing for the law of ``phi'(sqrt(q) Z)^2``: the composite rule of
    :func:`gaussian_expectation`, plus panels shrinking geometrically onto each zero of ``phi'``
    (``zeros``, from :func:`_zeros_of`; there the law has a ``t^(-1/2)`` singularity at 0 that
    coarse nodes miss; GELU and SiLU spectra depend on it), with equal values merged (``phi'``
    even gives symmetric pairs)."""
    s = math.sqrt(q)
    base = _D2_BASE
    zeros = [z0 for z0 in zeros if abs(z0) < _ZMAX - 0.5]
    if zeros:
        # the window around a zero shrinks with 1/sqrt(q): phi'(sqrt(q) z) changes on that scale
        near = _GEO[_GEO < min(0.25, 0.5 / s)]
        if near.size == 0:  # huge q: the window is narrower than the finest geometric panel
            near = (0.5 / s) * 2.0 ** -np.arange(11.0)[::-1]
        near = near[-11:]
        ends = np.unique(np.concatenate([base] + [np.concatenate([z0 - near, [z0], z0 + near]) for z0 in zeros]))
        mid = 0.5 * (ends[1:] + ends[:-1])
        fine = np.zeros(mid.size, dtype=bool)
        for z0 in zeros:
            fine |= np.abs(mid - z0) < near[-1]
        # runs of panels: few nodes on the many small panels near a zero, the full rule elsewhere
        z1, w1 = _panel_rule(ends, _LAW_NODES, ~fine)
        z2, w2 = _panel_rule(ends, _ZERO_NODES, fine)
        z, w = np.concatenate([z1, z2]), np.concatenate([w1, w2])
    else:
        z, w = _panel_rule(base, _LAW_NODES)
    w = w / w.sum()
    with np.errstate(all="ignore"):
        v = np.asarray(dphi(s * z), dtype=float) ** 2
    return _merge(v, w)


_FINE_NODES = np.polynomial.legendre.leggauss(16)


def _fine_rule(dphi, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Atoms of ``phi'(h)^2``, ``h ~ N(0, q)``, for polynomial integrands: 16-node Gauss-Legendre
    on equal panels of width ``min(1/2, sqrt(q)/2)`` over ``|h| <= 9 sqrt(q)`` (``phi'`` smooth
    on the scale 1: GELU, SiLU, softplus). Its moments match the contour rule's to about 1e-13
    (the contour rule's own accuracy); it is the source of their short Gauss rules."""
    s = math.sqrt(q)
    H = _ZMAX * s
    width = min(0.5, 0.5 * s)
    ends = np.linspace(-H, H, int(math.ceil(2.0 * H / width)) + 1)
    mid, half = 0.5 * (ends[1:] + ends[:-1]), 0.5 * (ends[1:] - ends[:-1])
    h = (mid[:, None] + half[:, None] * _FINE_NODES[0]).ravel()
    w = (half[:, None] * _FINE_NODES[1]).ravel() * np.exp(-0.5 * (h / s) ** 2)
    with np.errstate(all="ignore"):
        v = np.asarray(dphi(h), dtype=float) ** 2
    return v, w / w.sum()


def _fine_short(dphi, q: float) -> tuple[np.ndarray, np.ndarray]:
    """The short Gauss rule of :func:`_fine_rule` (the ``D2Law.short`` of GELU, SiLU, softplus).

    Runs of equal values (``phi'^2`` is 1 or 0 to rounding far out in the tails: 97 % of the
    57600 nodes at ``q = 10^4``) are merged first, and so are the values below ``1e-30`` of the
    largest (one atom at their mean: every moment of degree ``k >= 1`` moves by less than
    ``1e-30`` of the law's, far below the Gauss rule's rounding): a Gauss rule over the
    distinct values only."""
    v, w = _fine_rule(dphi, q)
    step = np.empty(v.size, dtype=bool)
    step[0] = True
    np.not_equal(v[1:], v[:-1], out=step[1:])
    start = np.flatnonzero(step)
    if start.size < v.size:
        v, w = v[start], np.add.reduceat(w, start)
    tiny = v < 1e-30 * float(v.max())
    if np.count_nonzero(tiny) > 1:
        wt = float(w[tiny].sum())
        v, w = np.r_[np.dot(w[tiny], v[tiny]) / wt, v[~tiny]], np.r_[wt, w[~tiny]]
    return short_rule(v, w, N_SHORT)


def _atom_plus_short(values: np.ndarray, weights: np.ndarray, atom: float, mass: float) -> tuple[np.ndarray, np.ndarray]:
    """The atom ``atom`` (mass ``mass``, kept exact) and the ``N_SHORT``-point Gauss rule of the
    rest of the law, ``(values, weights)`` (the ``D2Law.short`` of ELU and SELU: a Gauss rule of
    the whole law would spend its nodes on the atom and stand for it only approximately)."""
    sv, sw = short_rule(values, weights, N_SHORT)
    return np.r_[sv, atom], np.r_[sw, mass]


# -- the contour rule: continuous laws of D^2 in the complex plane ------------------------------
# psi(u) = E[u f(h) / (1 - u f(h))], f = phi'(h)^2, h ~ N(0, q), is a Gaussian integral in h whose
# integrand has poles where f(h) = 1/u; as u nears the cut they reach the real h axis and any
# real atomic rule fails there (and below the smallest atom, near 0). Deform the path to
# h + i Y(h) with Y = -2 theta g g' / (4 g'^2 + g^2) (g = phi'): then Im log f ~ -theta wherever
# log f changes fast, Y vanishes linearly at turning points and zeros of f, so the path's image
# under f lies in the lower half-plane, and for 1/u on the physical side (upper half-plane, and
# a wedge beyond the real axis) psi is the same analytic function (Cortinovis and Ying 2023).
# The path is sampled by the trapezoidal rule in a variable sigma with d sigma / dh at least
# |d log f / dh| / _H_TAU (every decade of f resolved) and clustered like asinh onto each zero and
# turning point of f (so |f - f_c| is resolved down to _T_REL f_c); f below _T_MIN f_max is
# lumped into real atoms (exact Gaussian mass), valid while |u| _T_MIN f_max << 1.
_THETA = 0.8
_H_TAU = 0.25
_H_X = 0.25
_SAT_REFINE = 0.4
_T_MIN = 1e-18
_T_REL = 1e-6
# GELU, SiLU, softplus: below this q, one atom at the mean where the relative spread of D^2
# is at most _NEAR_ATOM_SPREAD (Activation._near_point_mass), else the contour rule
_Q_NEAR_ATOM = 1e-12
_NEAR_ATOM_SPREAD = 1.5e-7
_NCAUCHY = 24
_CROOTS = np.exp(2j * np.pi * np.arange(_NCAUCHY) / _NCAUCHY)
_CRAD = 0.25


def _csig(h):
    pos = h.real >= 0
    e = np.exp(np.where(pos, -h, h))
    return np.where(pos, 1.0 / (1.0 + e), e / (1.0 + e))


def _cdtanh(h):
    e = np.exp(-2.0 * h * np.where(h.real >= 0, 1.0, -1.0))
    return 4.0 * e / (1.0 + e) ** 2


def _cdsigmoid(h):
    e = np.exp(-h * np.where(h.real >= 0, 1.0, -1.0))
    return e / (1.0 + e) ** 2


def _cdgelu(h):
    return 0.5 * special.erfc(-h / math.sqrt(2.0)) + h * np.exp(-h * h / 2.0) / math.sqrt(2.0 * math.pi)


def _cdsilu(h):
    sg = _csig(h)
    return sg * (1.0 + h * (1.0 - sg))


def _lgelu_m1(h):
    # g - 1 = h phi(h) - Phi(-h), g' = phi(h) (2 - h^2): the ratio with the Mills ratio (no underflow)
    return (2.0 - h * h) / (h - math.sqrt(0.5 * math.pi) * special.erfcx(h / math.sqrt(2.0)))


def _lsilu_m1(h):
    # g - 1 = sigma(-h) (h sigma(h) - 1)
    sg = special.expit(h)
    return -sg + (sg + h * sg * special.expit(-h)) / (h * sg - 1.0)


def _lsoftplus_m1(h):
    return -special.expit(h)  # g - 1 = -sigma(-h)


_EVEN = {"tanh": True, "sigmoid": True, "erf": True}
# d/dh log|phi'(h) - 1| (real h, no underflow) for the activations whose phi' -> 1 as h -> +inf:
# their law of D^2 also accumulates at 1 (the contour rule's ``lg1``)
# with the last turning point of phi' (beyond it phi' tends monotonically to 1: GELU's phi'' =
# phi(h) (2 - h^2) vanishes at sqrt(2), SiLU's phi'' = s (1 - s) (2 + h (1 - 2 s)) (s = sigma(h))
# at 2.39935728..., softplus's sigma' > 0 nowhere) and the sign of (phi'^2)' beyond it
_LOG_MINUS_ONE = {"gelu": (_lgelu_m1, math.sqrt(2.0), -1.0), "silu": (_lsilu_m1, 2.3993572805154675, -1.0),
                  "softplus": (_lsoftplus_m1, -math.inf, 1.0)}


# ``g, g', g''`` (g = phi') at real ``h`` in closed form (vectorised, no overflow): what the
# contour rule needs on the real line (probe grid, turning points, path nodes), where complex
# evaluations (a complex-step derivative, a 24-point Cauchy integral) cost 10-50 times more
# and agree with these to rounding
def _rsig_parts(h):
    """``sigma(h)``, ``sigma(h) (1 - sigma(h))`` and ``1 - 2 sigma(h)``, without cancellation."""
    e = np.exp(-np.abs(h))
    pos = h >= 0
    sg = np.where(pos, 1.0 / (1.0 + e), e / (1.0 + e))
    t = (1.0 - e) / (1.0 + e)  # tanh(|h| / 2)
    return sg, e / (1.0 + e) ** 2, np.where(pos, -t, t)


def _r3tanh(h):
    e = np.exp(-2.0 * np.abs(h))
    g = 4.0 * e / (1.0 + e) ** 2
    t = np.sign(h) * (1.0 - e) / (1.0 + e)  # tanh(h)
    return g, -2.0 * t * g, g * (4.0 * t * t - 2.0 * g)


def _r3sigmoid(h):
    _, g, d = _rsig_parts(h)
    return g, g * d, g * (d * d - 2.0 * g)


def _r3softplus(h):
    sg, p, d = _rsig_parts(h)
    return sg, p, p * d


def _r3gelu(h):
    ph = np.exp(-0.5 * h * h) / math.sqrt(2.0 * math.pi)
    g = 0.5 * special.erfc(-h / math.sqrt(2.0)) + h * ph
    return g, ph * (2.0 - h * h), ph * h * (h * h - 4.0)


def _r3silu(h):
    sg, p, d = _rsig_parts(h)
    g = sg * (1.0 + h * (1.0 - sg))
    return g, p * (2.0 + h * d), p * (d * (3.0 + h * d) - 2.0 * h * p)


class _Analytic:
    """``phi'`` of a built-in smooth activation: called, an analytic function of a complex
    argument (vectorised); :meth:`real3` gives ``phi'``, ``phi''`` and ``phi'''`` at real
    arguments."""

    __slots__ = ("_c", "_r3", "name", "kind", "scale", "_fast")

    def __init__(self, c, r3, name: str, kind: int | None = None, scale: float = 1.0):
        self._c, self._r3, self.name = c, r3, name
        # the index in :data:`fpcore._lawkernels.KINDS` (erf's ``scale``): the closed forms
        # there are compiled, and taken where numba is there (the numpy ones above otherwise)
        self.kind, self.scale = kind, float(scale)
        self._fast = kind is not None and _fastchain._HAVE_NUMBA

    def __call__(self, h):
        if self._fast and self.kind != _KIND_GELU:
            z = np.asarray(h)
            if z.dtype == complex:
                return _lawkernels.complex_dphi(self.kind, self.scale, z.ravel()).reshape(z.shape)
        return self._c(h)

    def real3(self, h) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._fast:
            x = np.asarray(h, dtype=float)
            g0, g1, g2 = _lawkernels.real3(self.kind, self.scale, np.ascontiguousarray(x).ravel())
            return g0.reshape(x.shape), g1.reshape(x.shape), g2.reshape(x.shape)
        with np.errstate(all="ignore"):
            return self._r3(np.asarray(h, dtype=float))


def _erf_pair(a: float):
    c = 2.0 * a / math.sqrt(math.pi)
    a2 = a * a

    def cplx(h):
        return c * np.exp(-((a * h) ** 2))

    def r3(h):
        g = c * np.exp(-((a * h) ** 2))
        return g, -2.0 * a2 * h * g, (4.0 * a2 * a2 * h * h - 2.0 * a2) * g

    return cplx, r3


_KIND_GELU = _lawkernels.KINDS.index("gelu")
_R3 = {"tanh": (_cdtanh, _r3tanh), "sigmoid": (_cdsigmoid, _r3sigmoid), "gelu": (_cdgelu, _r3gelu),
       "silu": (_cdsilu, _r3silu), "softplus": (_csig, _r3softplus)}


def _analytic_dphi(act: "Activation"):
    """``phi'`` as an analytic function of a complex argument (vectorised: an :class:`_Analytic`,
    which also gives ``phi'``, ``phi''``, ``phi'''`` at real arguments), for the built-in smooth
    activations whose derivative is analytic near the real line; ``None`` otherwise (custom
    activations, the kinks of SELU and ELU)."""
    if act.family == "erf":
        a = float(act.params[0])
        return _Analytic(*_erf_pair(a), f"erf:{a!r}", _lawkernels.KINDS.index("erf"), a)
    pair = _R3.get(act.name)
    return None if pair is None else _Analytic(*pair, act.name, _lawkernels.KINDS.index(act.name))


def _real3(g, h):
    """``g, g', g''`` at real ``h``: in closed form for an :class:`_Analytic`, else from complex
    evaluations of ``g`` (``g'`` by a complex step, ``g''`` by the Cauchy integral of
    :func:`_cauchy_derivs`)."""
    r3 = getattr(g, "real3", None)
    if r3 is not None:
        return r3(h)
    h = np.asarray(h, dtype=float)
    with np.errstate(all="ignore"):
        g0 = g(h.astype(complex)).real
        g1 = g(h + 1e-30j).imag / 1e-30
    return g0, g1, _cauchy_derivs(g, h.ravel())[2].reshape(h.shape)


def _cauchy_derivs(g, h: np.ndarray):
    """``g, g', g''`` at real ``h`` from the Cauchy integral on circles of radius at most
    ``_CRAD`` and ``1 / |g'/g|`` (the trapezoidal rule's aliasing error stays at rounding where
    ``g`` changes fast, e.g. ``erf``'s Gaussian tails); ``g`` itself is evaluated directly."""
    with np.errstate(all="ignore"):
        g0 = g(h.astype(complex)).real
        rate = np.abs(g(h + 1e-30j).imag / 1e-30 / g0)
    r = np.minimum(_CRAD, 1.0 / np.where(np.isfinite(rate) & (rate > 0), rate, 1.0 / _CRAD))[:, None]
    c = np.fft.fft(g(h[:, None] + r * _CROOTS), axis=1) / _NCAUCHY
    return g0, (c[:, 1] / r[:, 0]).real, (2.0 * c[:, 2] / r[:, 0] ** 2).real


_CUT64 = np.linspace(0.0, 1.0, 65)
_PROBE80 = np.linspace(-80.0, 80.0, 16001)
_SINH40 = np.sinh(np.linspace(-40.0, 40.0, 801))


def _union_sorted(*runs: np.ndarray) -> np.ndarray:
    """``np.unique(np.r_[*runs])`` for sorted arrays ``runs`` (a stable sort of a few sorted
    runs is a merge)."""
    c = np.sort(np.concatenate(runs), kind="stable")
    keep = np.empty(c.size, dtype=bool)
    keep[0] = True
    np.not_equal(c[1:], c[:-1], out=keep[1:])
    return c[keep]


def _contour_rule(g, q: float, even: bool, zeros_z: list[float], lg1=None, t_min: float = _T_MIN):
    """Complex atoms ``(cv, cw)`` whose ``sum cw u cv / (1 - u cv)`` is ``psi(u)`` of the law of
    ``g(sqrt(q) Z)^2`` for ``1/u`` on the physical side (see the comment above), and the real
    rule ``(rv, rw)`` on the same nodes (moments, edges, short rules); ``None`` if ``g`` is not
    finite where it matters.

    ``lg1``: ``(d/dh log|g - 1|, h_c, sign)`` (real ``h``, without underflow; the last turning
    point of ``g``; the sign of ``f'`` beyond it) where ``g -> 1`` as ``h -> +inf`` (GELU, SiLU,
    softplus, :data:`_LOG_MINUS_ONE`). The law then also accumulates at 1 (``|f - 1|`` falls
    over many decades in the right tail): beyond the last turning point of ``f`` the path also
    keeps ``Im log (f - 1)`` near ``-theta`` (through a smooth switch ``w``), and ``log|f - 1|``
    is resolved like ``log f``."""
    sat = lg1 is not None
    s = math.sqrt(q)
    H = _ZMAX * s
    if not (math.isfinite(H) and H > 0):
        return None
    # the probe grid: np.linspace(-H, H, 4001) and _PROBE80 clipped to [-H, H]; the clipped
    # points are -H and H (the linspace's own ends, exactly) and those strictly inside, so the
    # merge takes only these (at small q nearly all of the 16001 points clip: the merge was 16 %
    # of the rule's cost)
    inner = _PROBE80[int(np.searchsorted(_PROBE80, -H, side="right")):int(np.searchsorted(_PROBE80, H, side="left"))]
    hp = _lawkernels.union_sorted2(np.linspace(-H, H, 4001), inner)
    gp, d1, _ = _real3(g, hp)
    # the range of the path: where f >= t_min f_max on the probe grid (t_min < _T_MIN: the
    # deep-tail rule of D2Law.deep_tails), one point wider (compiled: :mod:`fpcore._lawkernels`)
    fine, vmax, h_lo, h_hi = _lawkernels.probe_range(hp, gp, d1, float(t_min), bool(even))
    if not fine:
        return None
    f = gp * gp
    zeros_h = [z0 * s for z0 in zeros_z if h_lo < z0 * s < h_hi]
    if sat:
        # the path's switch onto the accumulation at 1 starts after h_c; f' has the sign
        # tail_sign there; it ends where |f - 1| < _T_MIN: past the last probe point beyond h_c
        # where |f - 1| is above rounding, extrapolated with lg1 (|g - 1| falls by e^-7 more)
        lg1, h_c, tail_sign = lg1
        j_c = int(np.searchsorted(hp, h_c, side="right"))
        with np.errstate(all="ignore"):
            lg_on = np.asarray(lg1(hp[j_c:]), dtype=float)

        def wsw(h):
            """The switch ``w = exp(-1 / (h - h_c))``: 0 up to h_c, C-infinity."""
            x = np.asarray(h, dtype=float) - h_c
            with np.errstate(all="ignore"):
                return np.where(x > 0, np.exp(-1.0 / np.where(x > 0, x, 1.0)), 0.0)

    else:
        h_c, j_c, lg_on = 0.0, hp.size, np.zeros(0)
    # the path's resolution: |(log f)'| (and sqrt(w) |(log|f - 1|)'|) largest on |h| <= 1
    # (alpha) and its growth beyond (beta), away from the zeros of f; and the brackets of the
    # turning points of f
    with np.errstate(all="ignore"):
        alpha, beta, h_hi, turn = _lawkernels.probe_slopes(hp, gp, d1, t_min * vmax, h_hi,
                                                            np.array(zeros_h, dtype=float), sat, float(h_c),
                                                            j_c, lg_on, H)
    # laws that accumulate at 1 too: the path stays nearer the axis there (Y <= theta / 2 where
    # log|f - 1| changes slowly), so the nodes are denser. All laws: where the cap |Y| <= s / 2
    # binds (small q), the spacing hx s must stay well below it: |Y| / dh <= 1 / (2 hx) = 5 with
    # hx = 0.1 (2 with 0.25: the trapezoid's error exp(-2 pi |Y| / dh) ~ 4e-6 near the axis)
    tau, hx = (_H_TAU * _SAT_REFINE, _H_X * _SAT_REFINE) if sat else (_H_TAU, _H_X * _SAT_REFINE)
    A = max(alpha / tau, 1.0 / tau, 1.0 / (hx * s))
    B = beta / tau
    kap = 2.0 / _H_TAU
    cl, ce = [], []  # cluster points and their inner scales
    for h0 in zeros_h:  # f ~ c (h - h0)^2: resolve f down to _T_MIN f_max
        c = 0.5 * (np.interp(h0 + 0.01, hp, f) + np.interp(h0 - 0.01, hp, f)) / 1e-4
        cl.append(h0)
        ce.append(math.sqrt(_T_MIN * vmax / max(c, 1e-300)))
    if turn.size and getattr(g, "kind", None) is not None:
        # the sign change of g' in each bracket: each round cuts the bracket into 64 pieces and
        # keeps the first piece whose end has left the sign at its start (3 rounds: 18
        # halvings), then Newton on g' = 0 (g'' in closed form) inside the bracket to rounding
        hcs, g0cs, g2cs = _lawkernels.refine_turns(g.kind, g.scale, hp, d1, turn)
    elif turn.size:
        # (the same, all brackets at once in numpy, for a g without compiled closed forms)
        sg = np.where(d1 >= 0, 1.0, -1.0)
        a, b, sa = hp[turn], np.where(d1[turn] == 0.0, hp[turn], hp[turn + 1]), sg[turn]
        rows = np.arange(turn.size)
        for _ in range(3):
            grid = a[:, None] + (b - a)[:, None] * _CUT64
            left = np.sign(_real3(g, grid)[1]) == sa[:, None]
            left[:, 0] = True
            first = np.argmin(left, axis=1)  # the first piece end past the sign change
            first = np.where(left[rows, first], _CUT64.size, first)  # none: b itself
            a = grid[rows, first - 1]
            b = np.where(first < _CUT64.size, grid[rows, np.minimum(first, _CUT64.size - 1)], b)
        hcs = 0.5 * (a + b)
        for _ in range(3):
            _, g1c, g2c = _real3(g, hcs)
            with np.errstate(all="ignore"):
                hn = hcs - g1c / g2c
            hcs = np.where((hn >= a) & (hn <= b), hn, hcs)
        g0cs, _, g2cs = _real3(g, hcs)
    # the path's slope at each turning point h_c of f is theta |(log f)''(h_c)| / m2 (Y0 in
    # _lawkernels.path_heights): m2 = max(1, theta |(log f)''|) keeps it at least min(1, theta
    # |(log f)''|) for every q, so the poles of 1/(w - f) near h_c (real h for w just below the
    # edge f_c, the normal for w just beyond it) stay a fixed angle off the path, which the
    # cluster there resolves (|Y| / dh ~ kap * angle >= 3). (Was Y0 = -2 theta g g' / (4 g'^2 +
    # g^2 / min(1, s)^2): for s < 1 the slope theta q |(log f)''| -> 0, the poles came within a
    # fraction of a node spacing of the path and the trapezoidal rule lost digits near the real
    # axis, 6e-3 relative at tanh q = 0.01, w = 0.9 vmax; for q >= 1 it was 3.2 (tanh): 4e-7 just
    # beyond vmax.)
    m2 = 1.0
    if turn.size:
        for hc, g0c, g2c in zip(hcs.tolist(), g0cs.tolist(), g2cs.tolist()):
            if any(abs(hc - h0) < 1e-9 * max(1.0, abs(h0)) for h0 in cl):
                continue
            curv = abs(g0c * g2c)
            if not (curv > 0 and g0c != 0):
                continue
            e0 = math.sqrt(_T_REL * g0c**2 / curv)
            if not math.isfinite(e0):  # g'' underflows (a sign change of g' = 0 far out): no cluster
                continue
            cl.append(hc)
            ce.append(e0)
            m2 = max(m2, _THETA * 2.0 * abs(g2c / g0c))

    # sigma(h) = int sqrt(A^2 + B^2 h^2) dh + kap sum asinh((h - h_0) / e_0) and its nodes
    # (compiled: :mod:`fpcore._lawkernels`)
    cla, cea = np.array(cl, dtype=float), np.array(ce, dtype=float)
    s_lo, s_hi = (float(x) for x in _lawkernels.sigma_values(np.array([h_lo, h_hi]), A, B, kap, cla, cea)[0])
    if not (s_hi - s_lo < 20000):
        return None
    k = np.arange(0.0 if even else math.ceil(s_lo), math.floor(s_hi) + 1.0)
    # start from the inverse of sigma interpolated on a grid that resolves its clusters
    hg = _union_sorted(np.linspace(h_lo, h_hi, 2001), *(h0 + e0 * _SINH40 for h0, e0 in zip(cl, ce)))
    hg = hg[(hg >= h_lo) & (hg <= h_hi)]
    # safeguarded Newton on the monotone sigma(h) = k, then every node to rounding (the
    # trapezoidal rule's nodes must be uniform in sigma)
    hk, dh, conv = _lawkernels.sigma_nodes(k, float(h_lo), float(h_hi), float(A), float(B), float(kap), cla, cea, hg)
    if not conv:
        return None
    g0, g1, g2 = _real3(g, hk)
    if not sat:
        Y, Yp = _lawkernels.path_heights(g0, g1, g2, s, _THETA, False, g0, hk.size, g0, g0, 0.0, hk, 1.0, m2)
    else:
        # Y0 = -theta N / (N^2 + 1), N = sign(f') sqrt((log f)'^2 + w (log|f - 1|)'^2): as
        # above (m2 = 1) where w = 0, ~ -theta / (log|f - 1|)' deep in the right tail. For
        # small q the cap below (|Y| <= s / 2), not a length l = s, bounds it: the law is then
        # narrow and Y ~ s / 2 keeps its poles a fraction of its width off the path. Y0' from
        # g, g', g'' (closed forms), the switch's w' = w / (h - h_c)^2 and (log|g - 1|)''
        # by a fourth-order central difference of the real lg1 (cheap; 1e-13 relative); the
        # switch is on past j_on (w increases with h, the nodes too)
        w = wsw(hk)
        on = np.flatnonzero(w > 0)
        j_on = int(on[0]) if on.size else hk.size
        hs = hk[j_on:]
        dd = 1e-3 * np.maximum(1.0, np.abs(hs))
        with np.errstate(all="ignore"):
            lg_on = np.asarray(lg1(hs), dtype=float)
            lg1p = (lg1(hs - 2 * dd) - 8.0 * lg1(hs - dd) + 8.0 * lg1(hs + dd) - lg1(hs + 2 * dd)) / (12.0 * dd)
            Y, Yp = _lawkernels.path_heights(g0, g1, g2, s, _THETA, True, w, j_on, lg_on, np.asarray(lg1p, dtype=float),
                                             float(h_c), hk, float(tail_sign), 1.0)
    zc = hk + 1j * Y
    norm = 1.0 / (math.sqrt(2.0 * math.pi) * s)
    with np.errstate(all="ignore"):
        wc = norm * np.exp(-0.5 * (zc / s) ** 2) * (1.0 + 1j * Yp) * dh
        vc = g(zc) ** 2
    wr = norm * np.exp(-0.5 * (hk / s) ** 2) * dh
    vr = g0 * g0
    if even:
        wc = np.where(k > 0, 2.0 * wc, wc)
        wr = np.where(k > 0, 2.0 * wr, wr)
    if not (np.all(np.isfinite(wc)) and np.all(np.isfinite(vc))):
        return None
    covered = float(special.ndtr(h_hi / s) - special.ndtr(h_lo / s))
    t_lo, t_hi = float(special.ndtr(h_lo / s)), float(special.ndtr(-h_hi / s))
    # lumped tails (real atoms: exact mass, mean from the probe grid) and one atom at 0 carrying
    # the rule's mass defect (so that E[1] = 1; it adds nothing to psi)
    # (on the probe points beyond the path's ends only: hp <= h_lo is a prefix, hp >= h_hi a suffix)
    def tail_value(sel, mass):
        hs, fs = hp[sel], f[sel]
        if mass <= 0 or hs.size < 2:
            return 0.0
        phis = np.exp(-0.5 * (hs / s) ** 2) * norm * fs
        return min(float(np.trapezoid(phis, hs)) / mass, float(fs.max()))

    ev = np.array([tail_value(slice(0, int(np.searchsorted(hp, h_lo, side="right"))), t_lo),
                   tail_value(slice(int(np.searchsorted(hp, h_hi, side="left")), hp.size), t_hi), 0.0])
    cv = np.concatenate([vc, ev])
    cw = np.concatenate([wc, [t_lo, t_hi, covered - wc.sum()]])
    if sat:
        # the path ends where f = 1, not where the Gaussian weight vanishes: the rule integrates
        # F(f) - F(1) psi_m (F(f) = u f / (1 - u f), psi_m = (1 + erf((z - h_m) / delta)) / 2,
        # ~0 at the path's left end, ~1 at its right end), which vanishes at both ends, and
        # F(1) E[psi_m(h)] = F(1) Phi(-h_m / sqrt(q + delta^2 / 2)) exactly: one more atom at 1
        h_m, delta = 0.5 * (h_lo + h_hi), (h_hi - h_lo) / 12.0
        with np.errstate(all="ignore"):
            psi_m = 0.5 * (1.0 + special.erf((zc - h_m) / delta))
        c1 = float(special.ndtr(-h_m / math.sqrt(q + 0.5 * delta * delta))) - np.sum(wc * psi_m)
        cv = np.concatenate([vc, [ev[0], 1.0, 0.0]])
        cw = np.concatenate([wc, [t_lo, c1, 1.0 - t_lo - wc.sum() - c1]])
    rv = np.concatenate([vr, ev])
    rw = np.concatenate([wr, [t_lo, t_hi, covered - wr.sum()]])
    # the real rule's defect goes onto the lumped tails when they can carry it (weights stay
    # positive; their first moments are kept)
    for j in (-3, -2):
        share = 0.5 * rw[-1]
        if rw[j] + share > 0.5 * rw[j] > 0:
            rv[j] *= rw[j] / (rw[j] + share)
            rw[j] += share
            rw[-1] -= share
    keep = np.abs(rw) > 0
    cv, cw, rv, rw = cv[keep], cw[keep], rv[keep], rw[keep]
    if np.any(rw < 0):  # the real rule must be a law (short Gauss rules, edges)
        neg = rw < 0
        rw = rw.copy()
        rw[neg] = 0.0
        rw /= rw.sum()
    return cv, cw, np.clip(rv, 0.0, None), rw


# -- ELU and SELU: an atom and an exponential branch ----------------------------------------------
# phi'(h) = a_+ for h > 0 and c_- e^h for h < 0 (ELU: a_+ = 1, c_- = alpha; SELU: lambda and
# lambda alpha), so D^2 is the atom a_+^2 with mass 1/2 plus the law of c_-^2 e^(2h), h < 0: a
# log-normal law cut at c_-^2, where its density jumps (psi has a log singularity there) and which
# spreads over decades towards 0. Its psi is the integral over h < 0 of an analytic integrand;
# the path h + i Y(h) keeps Im log f = 2 Y near -theta away from h = 0 and returns to the real
# axis linearly at the end point h = 0, and h = -ell softplus(y) with y uniform turns the end
# point into an exponentially decaying tail of the trapezoidal rule (relative resolution near
# h = 0, so 1/u within any relative distance of c_-^2 is resolved alike).
_EXP_DY = 0.125
_EXP_Y_LO = -40.0


def _exp_branch_rule(a_pos: float, c_neg: float, q: float):
    """Complex and real atoms ``(cv, cw, rv, rw)`` (as :func:`_contour_rule`) of the law of
    ``phi'(sqrt(q) Z)^2`` for ``phi' = a_pos`` on ``h > 0`` and ``c_neg e^h`` on ``h < 0``
    (ELU, SELU); ``None`` for a degenerate ``q``."""
    s = math.sqrt(q)
    if not (math.isfinite(s) and s > 0):
        return None
    ell = min(0.5, 0.5 * s)
    # the path ends where the Gaussian mass is spent (h = -_ZMAX s) or where f < _T_MIN c_-^2
    # (h = log(_T_MIN) / 2): the rest is lumped into one real atom (exact mass and mean), valid
    # while |u| _T_MIN c_-^2 << 1, as the lumped tails of :func:`_contour_rule`
    h_end = min(_ZMAX * s, -0.5 * math.log(_T_MIN))
    # y where -ell softplus(y) = -h_end
    y_hi = math.log(math.expm1(h_end / ell)) if h_end / ell < 700 else h_end / ell
    if not (y_hi - _EXP_Y_LO) / _EXP_DY < 20000:
        return None
    y = np.arange(_EXP_Y_LO, y_hi + _EXP_DY, _EXP_DY)
    h = -ell * np.logaddexp(0.0, y)
    dh = ell * special.expit(y) * _EXP_DY  # |dh/dy| dy
    y0 = 0.5 * _THETA * np.tanh(h / ell)
    y0p = 0.5 * _THETA / ell / np.cosh(h / ell) ** 2
    with np.errstate(over="ignore"):  # tiny q: cap overflows and Y' -> 0
        cap = 1.0 + (y0 / (0.5 * s)) ** 2
        Y, Yp = y0 / np.sqrt(cap), y0p / cap**1.5
    z = h + 1j * Y
    norm = 1.0 / (math.sqrt(2.0 * math.pi) * s)
    c2 = c_neg * c_neg
    with np.errstate(all="ignore"):
        wc = norm * np.exp(-0.5 * (z / s) ** 2) * (1.0 + 1j * Yp) * dh
        vc = c2 * np.exp(2.0 * z)
    wr = norm * np.exp(-0.5 * (h / s) ** 2) * dh
    vr = c2 * np.exp(2.0 * h)
    if not (np.all(np.isfinite(wc)) and np.all(np.isfinite(vc))):
        return None
    a2 = a_pos * a_pos
    # the lumped tail h < -h_end: mass Phi(-h_end / s), mean c_-^2 E[e^(2h); h < -h_end] / mass,
    # E[e^(2h); h < -H] = e^(2q) Phi(-(H + 2q) / s) = exp(-H^2 / 2q - 2H) erfcx((H + 2q) / s / sqrt 2) / 2
    # (no cancellation between e^(2q) and Phi at large q)
    t_lo = float(special.ndtr(-h_end / s))
    ev = 0.0
    if t_lo > 0:
        part = 0.5 * math.exp(-h_end * h_end / (2.0 * q) - 2.0 * h_end) * float(special.erfcx((h_end + 2.0 * q) / (s * math.sqrt(2.0))))
        ev = min(c2 * part / t_lo, c2 * math.exp(-2.0 * h_end))
    # the atom a_+^2 (mass 1/2 exactly), the tail, and an atom at 0 carrying the rule's mass
    # defect (it adds nothing to psi)
    cv = np.r_[vc, a2, ev, 0.0]
    cw = np.r_[wc, 0.5, t_lo, 0.5 - t_lo - wc.sum()]
    rv = np.r_[vr, a2, ev]
    rw = np.r_[wr, 0.5, t_lo]
    rw_defect = 1.0 - rw.sum()
    if rw_defect > 0:
        rv, rw = np.r_[rv, 0.0], np.r_[rw, rw_defect]
    elif t_lo > -rw_defect:
        # the last nodes reach past h = -h_end and count part of the lumped tail again (3e-6 of
        # the mass at q = 30): take it off the tail atom (values below _T_MIN c_-^2), not off
        # every atom (scaling them moved every moment by as much)
        rw[-1] += rw_defect
    else:
        rw = rw / rw.sum()
    keep = rw > 0
    return cv, cw, rv[keep], rw[keep]


@dataclass(frozen=True)
class D2Law:
    """Law of ``D^2`` as weighted atoms (``values``, ``weights``).

    ``kind`` is ``"bernoulli"`` for ``(1-p) delta_0 + p delta_c`` (rational S-transform),
    ``"discrete"`` for finitely many atoms, ``"continuous"`` for a quadrature rule standing for a
    continuous law.
    """

    kind: str
    values: np.ndarray
    weights: np.ndarray
    p_nonzero: float
    # the contour rule (complex atoms and weights) standing for a continuous law in the complex
    # plane: its psi is accurate up to the real axis and down to 0 (:func:`_contour_rule`); built
    # at once, or on first use from ``_src = (g, q, zeros)``
    _cv: np.ndarray | None = field(default=None, repr=False, compare=False)
    _cw: np.ndarray | None = field(default=None, repr=False, compare=False)
    # False where the real atoms are accurate enough for nets with Gaussian weights
    contour_needed: bool = field(default=True, repr=False, compare=False)
    _src: tuple | None = field(default=None, repr=False, compare=False)
    # what builds :attr:`short` when it is not the Gauss rule of the atoms themselves (a callable
    # with no arguments): the Gauss rule of :func:`_fine_rule` for GELU, SiLU, softplus (their
    # atoms miss moments by 1e-10), the atom a_+^2 plus the Gauss rule of the rest for ELU, SELU
    # (:func:`_atom_plus_short`); such laws are swept with their short rules where
    # :attr:`short_check` shows they stand for the contour rule
    _short_src: Callable[[], tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False, compare=False)
    # the law's own atoms away from 0 when it is "continuous" (ELU, SELU: a_+^2 with mass 1/2);
    # see :attr:`point_masses`
    _point: tuple[tuple[float, float], ...] = field(default=(), repr=False, compare=False)
    # the arguments of :func:`_contour_rule` that built the contour rule (for :meth:`deep_tails`)
    _rule_args: tuple | None = field(default=None, repr=False, compare=False)

    def deep_tails(self) -> "D2Law | None":
        """The law with a contour rule whose path runs on below ``_T_MIN f_max`` until the lumped
        tails hold at most ``1e-13`` of the mass (``f`` down to ``1e-100`` or ``1e-250`` of its
        maximum), or ``None`` when that rule cannot be built (more nodes: used only where the
        short lumps do not stand for the law, far below the grid)."""
        if self._rule_args is None:
            return None
        if "_deep" in self.__dict__:
            return self.__dict__["_deep"]
        out = None
        for t in (1e-100, 1e-250):
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                try:
                    rule = _contour_rule(*self._rule_args, t_min=t)
                except (FloatingPointError, ValueError, ZeroDivisionError, OverflowError):
                    rule = None
            if rule is None:
                break
            cv, cw = rule[0], rule[1]
            vmax = float(np.max(np.abs(cv)))
            lump = (cv.imag == 0) & (cv.real > 0) & (cv.real <= t * vmax * (1 + 1e-9))
            out = replace(self, _cv=cv, _cw=cw, _src=None, _rule_args=None)
            if float(np.sum(cw[lump].real)) <= 1e-13:
                break
        self.__dict__["_deep"] = out
        return out

    @property
    def point_masses(self) -> tuple[tuple[float, float], ...]:
        """The law's atoms away from 0, ``((value, mass), ...)``: every atom of a Bernoulli or
        discrete law, the atom ``a_+^2`` (mass 1/2) of ELU and SELU, none for the other
        continuous laws (their real atoms are a quadrature rule, not atoms of the law)."""
        if self.kind in ("bernoulli", "discrete"):
            return tuple((float(v), float(w)) for v, w in zip(self.values, self.weights) if v > 0 and w > 0)
        return self._point

    @property
    def has_contour(self) -> bool:
        return self._cv is not None or self._src is not None

    def _contour(self):
        if self._cv is None and self._src is not None:
            rule = _contour_rule(*self._src)
            if rule is not None:
                object.__setattr__(self, "_cv", rule[0])
                object.__setattr__(self, "_cw", rule[1])
            object.__setattr__(self, "_src", None)
        return self._cv, self._cw

    @property
    def cvalues(self) -> np.ndarray | None:
        return self._contour()[0]

    @property
    def cweights(self) -> np.ndarray | None:
        return self._contour()[1]

    @property
    def mean(self) -> float:
        return self.moment(1)

    def moment(self, k: int) -> float:
        if self.contour_needed and self._cv is not None:  # the contour rule: exact to rounding
            return float(np.dot(self._cw, self._cv**k).real)
        return float(np.dot(self.weights, self.values**k))

    @property
    def scale(self) -> float:
        """Non-zero atom of a Bernoulli law (1 for ReLU, linear and hard-tanh)."""
        if self.kind != "bernoulli":
            raise AttributeError("scale is defined for Bernoulli laws only")
        return float(self.values[-1])

    def key(self) -> tuple:
        """Equal for laws whose atoms and weights agree to 15 decimals (how ``build_equation``
        groups equal laws). The rounded arrays' bytes (``-0.0`` made ``0.0``) stand for the tuples
        of their floats, which cost 0.3 ms for a law of 1800 atoms (GELU, SiLU: 10 % of the build
        at L = 50); with a NaN (unequal to itself) the tuples as before."""
        v = np.round(self.values, 15) + 0.0
        w = np.round(self.weights, 15) + 0.0
        if np.isnan(v).any() or np.isnan(w).any():
            return (self.kind, tuple(v), tuple(w))
        return (self.kind, v.dtype.str, v.shape, w.dtype.str, w.shape, v.tobytes(), w.tobytes())

    @cached_property
    def short(self) -> tuple[np.ndarray, np.ndarray]:
        """The law's ``N_SHORT``-point Gauss rule (atoms, weights), or the law itself when it has
        no more atoms. The solver's cost is linear in the atoms; where the Stieltjes transform is
        evaluated away from the law's support the short rule agrees with the full one to the
        bound of :func:`gauss_error_bound`."""
        if self._short_src is not None:
            return self._short_src()
        if self.values.size <= N_SHORT:
            return self.values, self.weights
        return short_rule(self.values, self.weights, N_SHORT)


    @cached_property
    def short_check(self) -> tuple[float, np.ndarray, np.ndarray]:
        """How far the short rule (:attr:`short`) stands for the law's contour rule: ``(vmax,
        rhos, e_psi)``, the largest differences of ``psi(u) / u`` outside each Bernstein ellipse
        ``E_rho`` (foci 0 and ``vmax``, above the law's support) in ``1/u``
        (:func:`fpcore._lawkernels.short_rule_errors`; times 2 for the sampling, non-increasing in
        ``rho``); the difference of ``E[log(1 - u D^2)]`` is bounded from it
        (:func:`fpcore._fastchain._lp_bound`). ``None`` without a contour rule."""
        if self.cvalues is None:
            return None
        sv, sw = self.short
        cv = np.ascontiguousarray(self.cvalues, dtype=complex)
        vmax = 1.001 * max(float(np.max(np.abs(cv))), float(np.max(self.values)), float(np.max(sv)))
        e_psi = _lawkernels.short_rule_errors(cv, np.ascontiguousarray(self.cweights, dtype=complex),
                                             np.ascontiguousarray(sv, dtype=float),
                                             np.ascontiguousarray(sw, dtype=float), vmax, _CHECK_RHOS, 48)
        # outside a larger ellipse the difference is at most its largest value outside a smaller one
        e_psi = np.maximum.accumulate((2.0 * e_psi)[::-1])[::-1]
        return vmax, _CHECK_RHOS, e_psi


_CHECK_RHOS = np.array([1.1, 1.2, 1.3, 1.45, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0, 6.0])


def _bernoulli(p: float, c: float = 1.0) -> D2Law:
    return D2Law("bernoulli", np.array([0.0, c]), np.array([1.0 - p, p]), float(p))


@dataclass(frozen=True)
class Activation:
    """A scalar activation ``phi`` with its derivative ``dphi``.

    Use :func:`get_activation` to build one by name, or pass ``(phi, dphi)`` (two vectorised
    callables) wherever an activation is accepted.
    """

    name: str
    phi: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False)
    dphi: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False)
    params: tuple = ()
    family: str = "smooth"  # "linear", "relu", "leaky_relu", "hard_tanh", "erf", "smooth"

    @property
    def spec(self) -> str:
        """The name that rebuilds this activation with :func:`get_activation` (``"erf:2"``,
        ``"leaky_relu:0.2"``; the plain name at the default parameter)."""
        default = {"leaky_relu": 0.01, "erf": 1.0, "elu": 1.0}.get(self.name)
        if self.params and default is not None and self.params[0] != default:
            return f"{self.name}:{self.params[0]!r}"
        return self.name

    @property
    def d2_depends_on_q(self) -> bool:
        """Whether the law of ``D^2`` changes with the pre-activation variance."""
        return self.family not in ("linear", "relu", "leaky_relu")

    @property
    def is_piecewise_linear(self) -> bool:
        return self.family in ("linear", "relu", "leaky_relu", "hard_tanh")

    def _zeros_in_z(self, s: float) -> list[float]:
        """Zeros in ``z`` of ``phi'(s z)`` on ``[-9, 9]``: the zeros of ``phi'`` itself on
        ``[-H, H]`` (``H = 9 * 2^k >= 9 s``, found once per ``H`` and kept on the instance),
        divided by ``s``."""
        H = 9.0 * 2.0 ** max(0, math.ceil(math.log2(max(s, 1e-300))))
        cache = self.__dict__.setdefault("_dphi_zeros", {})  # frozen: no attribute assignment
        if H not in cache:
            # built-in activations share them across instances (every network builds its own
            # activations; the zeros of phi' do not depend on the variances)
            key = (self.name, self.params, self.family, H) if self.__dict__.get("_builtin", False) else None
            zeros = _ZEROS_CACHE.get(key) if key is not None else None
            if zeros is None:
                zeros = [H / _ZMAX * z0 for z0 in _zeros_of(self.dphi, H / _ZMAX)]
                if key is not None:
                    _ZEROS_CACHE[key] = zeros
            cache[H] = zeros
        return [h0 / s for h0 in cache[H] if abs(h0) <= _ZMAX * s]

    # -- mean field -------------------------------------------------------------------------
    def second_moment(self, q: np.ndarray | float) -> np.ndarray:
        """``E[phi(sqrt(q) Z)^2]`` (closed form where one exists)."""
        q = np.asarray(q, dtype=float)
        f = self.family
        if f == "linear":
            return q.copy()
        if f == "relu":
            return q / 2.0
        if f == "leaky_relu":
            a = self.params[0]
            return q * (1.0 + a * a) / 2.0
        if f == "hard_tanh":
            # E[clip(h,-1,1)^2] = q P(|h|<1) - 2 sqrt(q) phi(1/sqrt q) ... in closed form
            s = np.sqrt(q)
            t = 1.0 / s
            inside = q * (special.erf(t / math.sqrt(2.0)) - 2.0 * t * np.exp(-t * t / 2.0) / math.sqrt(2.0 * math.pi))
            outside = special.erfc(t / math.sqrt(2.0))
            return inside + outside
        if f == "erf":
            a = self.params[0]
            return (2.0 / math.pi) * np.arcsin(2.0 * a * a * q / (1.0 + 2.0 * a * a * q))
        return gaussian_expectation(lambda h: self.phi(h) ** 2, q)

    def d2_moment(self, q: np.ndarray | float, k: int = 1) -> np.ndarray:
        """``E[phi'(sqrt(q) Z)^(2k)]``."""
        q = np.asarray(q, dtype=float)
        f = self.family
        if f == "linear":
            return np.ones_like(q)
        if f == "relu":
            return np.full_like(q, 0.5)
        if f == "leaky_relu":
            a = self.params[0]
            return np.full_like(q, 0.5 * (1.0 + a ** (2 * k)))
        if f == "hard_tanh":
            return special.erf(1.0 / np.sqrt(2.0 * q))
        if f == "erf":
            a = self.params[0]
            return (4.0 * a * a / math.pi) ** k * (1.0 + 4.0 * k * a * a * q) ** -0.5
        return gaussian_expectation(lambda h: self.dphi(h) ** (2 * k), q)

    def d2_law(self, q: float) -> D2Law:
        """The law of ``phi'(sqrt(q) Z)^2``.

        Laws of the built-in activations are kept (:data:`_LAW_CACHE`, the last
        ``_LAW_CACHE_SIZE`` pairs ``(activation, q)``): a contour rule costs tens of milliseconds
        to build and every spectrum of a network with the same mean field needs the same laws."""
        if not self.__dict__.get("_builtin", False):
            return self._d2_law(q)
        key = (self.name, self.params, self.family, float(q))
        law = _LAW_CACHE.get(key)
        if law is None:
            law = self._d2_law(q)
            while len(_LAW_CACHE) >= _LAW_CACHE_SIZE:
                _LAW_CACHE.pop(next(iter(_LAW_CACHE)), None)  # the oldest entry
            _LAW_CACHE[key] = law
        return law

    def _point_mass(self, q: float) -> float | None:
        """``phi'(0)^2`` where the law of ``phi'(sqrt(q) Z)^2`` is the point mass there to
        rounding, else ``None``.

        At a fixed point ``q* = 0`` (tanh, erf, GELU, SiLU, softplus, sigmoid below their edge
        of chaos with ``sigma_b2 = 0``; the mean field floors ``q`` at ``1e-300``) every ``D_l^2``
        is ``phi'(0)^2 I`` to rounding: an orthogonal net is then an exact isometry times a
        constant (one atom), which the continuous rules (all atoms at one value) cannot express
        (orthogonal SiLU [1000]*4 at its fixed point: KS 0.5 with 106 of 300 points
        uncertified). ``phi'^2`` is sampled on both sides of 0 out to ``|h| = 40 sqrt(q)``
        (Gaussian mass beyond: ``e^{-800}``); a jump of ``phi'`` at 0 (SELU, ``elu:a`` with
        ``a != 1``) or any variation above ``2^-50`` relative keeps the continuous law."""
        s = math.sqrt(q)
        if not 0.0 < s <= 1e-16:
            return None
        h = s * np.array([-40.0, -20.0, -10.0, -5.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0])
        with np.errstate(all="ignore"):
            v = np.asarray(self.dphi(h), dtype=float) ** 2
        if v.shape != h.shape or not np.all(np.isfinite(v)):
            return None
        c = float(v[7])
        if c <= 0.0 or np.max(np.abs(v - c)) > 2.0**-50 * c:
            return None
        return c

    def _near_point_mass(self, q: float) -> float | None:
        """``E[phi'(sqrt(q) Z)^2]`` where ``phi'^2`` varies by at most ``_NEAR_ATOM_SPREAD``
        relative on ``|h| <= 10 sqrt(q)`` (Gaussian mass beyond: ``1.5e-23``), else ``None``.

        The law of ``D^2`` is then taken as one atom at its mean (first moment exact): every
        eigenvalue moves by a factor within ``(1 +- _NEAR_ATOM_SPREAD)`` per such layer (the
        precedent of :meth:`_two_point_masses`, whose contour rule is less accurate there than
        the atoms). Used for GELU, SiLU and softplus (GELU: ``q <= 2e-17``, relative spread
        ``32 sqrt(q)``), where the contour rule loses digits like ``eps / spread`` (``1e-7``
        relative in ``psi`` at ``q = 1e-18``) and real atoms would send orthogonal
        nets to the slow numpy continuation (L = 1000: about 50 such layers between
        ``q = 1e-16`` and the exact point mass of :meth:`_point_mass`)."""
        s = math.sqrt(q)
        if not 0.0 < s:
            return None
        h = s * np.linspace(-10.0, 10.0, 41)
        with np.errstate(all="ignore"):
            v = np.asarray(self.dphi(h), dtype=float) ** 2
        if v.shape != h.shape or not np.all(np.isfinite(v)):
            return None
        c = float(v[20])
        if c <= 0.0 or np.max(np.abs(v - c)) > _NEAR_ATOM_SPREAD * c:
            return None
        m = float(self.d2_moment(q, 1))
        if not (math.isfinite(m) and abs(m - c) <= _NEAR_ATOM_SPREAD * c):
            return None
        return m

    def _two_point_masses(self, q: float) -> tuple[float, float] | None:
        """``(phi'(0-)^2, phi'(0+)^2)`` where ``phi'^2`` is nearly constant on each side of 0
        but jumps there (SELU, ``elu:a`` with ``a != 1`` at ``q`` below about ``4e-18``), else
        ``None``.

        The law of ``D^2`` is then taken as the two atoms with mass 1/2 each
        (``P(h < 0) = P(h > 0)``), like leaky ReLU's. The exponential branch's contour rule
        collapses onto one point as ``q -> 0``: its error in ``F`` grows like ``1/sqrt(q)``
        (``elu:0.5`` ``[1000] * 3`` against ``leaky_relu:0.5``, whose law it tends to: ``5e-10`` at
        ``q0 = 1e-18``, ``5e-9`` at ``1e-20``, ``5e-7`` at ``1e-24``; all 300 points uncertified
        after 10 s at ``1e-31`` and ``1e-40``: seed-3 adversarial draw [129], a 24-layer mixed
        net at its fixed point ``q* = 0``, timed out), while the two atoms' own error shrinks
        like ``sqrt(q)``: the relative spread ``delta`` of ``phi'^2`` on either side within
        ``|h| <= 40 sqrt(q)`` (Gaussian mass beyond: ``e^{-800}``) moves every eigenvalue by a
        factor within ``(1 +- delta)^L``. They cross near ``delta = 1.5e-7`` (ELU: ``delta =
        80 sqrt(q)``), where both are about ``3e-10`` in ``F``; below it, the atoms."""
        s = math.sqrt(q)
        if not 0.0 < s <= 1e-8:
            return None
        t = np.array([0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0])
        with np.errstate(all="ignore"):
            vm = np.asarray(self.dphi(-s * t), dtype=float) ** 2
            vp = np.asarray(self.dphi(s * t), dtype=float) ** 2
        if vm.shape != t.shape or vp.shape != t.shape or not (np.all(np.isfinite(vm)) and np.all(np.isfinite(vp))):
            return None
        cm, cp = float(vm[0]), float(vp[0])
        if cm <= 0.0 or cp <= 0.0 or abs(cp - cm) <= 1e-6 * max(cm, cp):
            return None  # no jump at 0: the continuous law (or the one-atom law) stands
        if np.max(np.abs(vm - cm)) > 1.5e-7 * cm or np.max(np.abs(vp - cp)) > 1.5e-7 * cp:
            return None
        return cm, cp

    def _d2_law(self, q: float) -> D2Law:
        f = self.family
        if f == "linear":
            return _bernoulli(1.0)
        if f == "relu":
            return _bernoulli(0.5)
        if f == "hard_tanh":
            return _bernoulli(float(special.erf(1.0 / math.sqrt(2.0 * q))))
        if f == "leaky_relu":
            a = self.params[0]
            if a == 0.0:
                return _bernoulli(0.5)
            return D2Law("discrete", np.array([a * a, 1.0]), np.array([0.5, 0.5]), 1.0)
        c = self._point_mass(q)
        if c is not None:
            return _bernoulli(1.0, c)
        two = self._two_point_masses(q)
        if two is not None:
            return D2Law("discrete", np.array(sorted(two)), np.array([0.5, 0.5]), 1.0)
        if self.name in ("elu", "selu"):
            a_pos, c_neg = (_SELU_L, _SELU_L * _SELU_A) if self.name == "selu" else (1.0, float(self.params[0]))
            rule = _exp_branch_rule(a_pos, c_neg, float(q))
            if rule is not None:
                cv, cw, rv, rw = rule
                # the short real rule: the atom a_+^2 exact, the Gauss rule of the path's real
                # nodes for the rest (rv is the nodes, the atom, the tail, then the mass defect)
                i = cv.size - 3
                src = None
                if rv.size > i and rv[i] == a_pos * a_pos:
                    rest = np.arange(rv.size) != i
                    src = partial(_atom_plus_short, rv[rest], rw[rest], float(rv[i]), float(rw[i]))
                return D2Law("continuous", rv, rw, float(np.sum(rw[rv > 0])), cv, cw, _short_src=src,
                             _point=((a_pos * a_pos, 0.5),))
        g = _analytic_dphi(self)
        # The saturating activations (phi' -> 0 on both sides) get the contour rule; so do GELU,
        # SiLU and softplus (phi' -> 1 as h -> +inf: the path also follows log|f - 1|), for
        # every net: their laws spread over decades near 0 (zeros of phi', or phi' -> 0 as
        # h -> -inf) and near 1, where real atoms miss mass even with Gaussian weights (deep
        # SiLU lost half its mass, softplus KS 0.087, issue #10).
        lg1 = _LOG_MINUS_ONE.get(self.name)
        # q -> 0: the law tends to an atom at phi'(0)^2 with a spread of order sqrt(q), which the
        # path resolves (its |Y| <= s / 2 cap and nodes scale with s): psi agrees with a
        # 9600-node real quadrature to 1e-9 relative at q = 1e-15, 1e-8 at 1e-16 (both sides
        # lose digits like eps / spread). Orthogonal GELU / SiLU nets with sigma_w2 = 2 reach
        # q = 1e-11 by depth 50: with real atoms there (no contour rule) they took the numpy
        # continuation, 78 s a spectrum. Where D^2 spreads by at most _NEAR_ATOM_SPREAD (GELU:
        # q <= 2e-17) the law is its mean as one atom (:meth:`_near_point_mass`): no gap between
        # the two, where real atoms would send orthogonal nets to the numpy continuation again.
        if g is not None and lg1 is not None and q < _Q_NEAR_ATOM:
            c = self._near_point_mass(q)
            if c is not None:
                return _bernoulli(1.0, c)
        if g is not None and lg1 is not None:
            zeros = self._zeros_in_z(math.sqrt(q))
            rule_args = (g, float(q), False, zeros, lg1)
            rule = _contour_rule(*rule_args)
            if rule is not None:
                cv, cw, rv, rw = rule
                cv2 = cv * cv
                exact = [complex(np.dot(cw, c)).real for c in (cv, cv2, cv2 * cv)]
                alt = short_rule(*_d2_rule(self.dphi, q, zeros), _N_GAUSS)

                def err(r):
                    return max(abs(float(np.dot(r[1], r[0] ** j)) / e - 1.0) for j, e in zip((1, 2, 3), exact))

                if np.all(np.isfinite(alt[0])) and err(alt) < err((rv, rw)):
                    rv, rw = alt
                return D2Law("continuous", rv, rw, float(np.sum(rw[rv > 0])), cv, cw,
                             _short_src=partial(_fine_short, self.dphi, float(q)) if q <= 1e4 else None,
                             _rule_args=rule_args)
        if g is not None and _EVEN.get(self.name, False):
            # Where the 160-node Gauss-Hermite atoms reproduce E[D^2] and E[D^4] (moderate q),
            # nets with Gaussian weights keep them: their Marchenko-Pastur factors hold every
            # u_g away from the cut, and they are 3-10 times shorter. Orthogonal nets take the
            # contour rule, built on first use.
            src = (g, float(q), True, self._zeros_in_z(math.sqrt(q)))
            gv, gw = _gh_rule(self.dphi, q)
            # (d2_moment's composite rule is the reference only for q <= 1000)
            if q <= 1000.0 and np.all(np.isfinite(gv)) and all(
                    abs(float(np.dot(gw, gv**j)) - float(self.d2_moment(q, j))) <= 1e-9 * float(self.d2_moment(q, j))
                    for j in (1, 2)):
                return D2Law("continuous", gv, gw, 1.0, contour_needed=False, _src=src, _rule_args=src)
            rule = _contour_rule(*src)
            if rule is not None:
                cv, cw, rv, rw = rule
                # the real atoms (moments, edges, short rules): those on the path's nodes or the
                # Gauss rule of the composite rule, whichever matches the contour rule's moments
                # E[D^2k], k = 1..3 (exact to rounding) best
                exact = [complex(np.dot(cw, cv**j)).real for j in (1, 2, 3)]
                alt = short_rule(*_d2_rule(self.dphi, q, []), _N_GAUSS)

                def err(r):
                    return max(abs(float(np.dot(r[1], r[0] ** j)) / e - 1.0) for j, e in zip((1, 2, 3), exact))

                if np.all(np.isfinite(alt[0])) and err(alt) < err((rv, rw)):
                    rv, rw = alt
                return D2Law("continuous", rv, rw, 1.0, cv, cw, _rule_args=src)
        vals, wts = _gh_rule(self.dphi, q)
        if not np.all(np.isfinite(vals)):
            raise ValueError(
                f"activation: dphi of {self.name!r} returned non-finite values on N(0, q = {q:.4g}) "
                "pre-activations; it must be finite on the whole real line"
            )
        # The short rule (about 35 atoms, what keeps the solver fast) unless it misses the first
        # two moments (tanh at q >= 2, SELU and ELU at any q): then the Gauss rule of the law
        # itself (40 atoms); or phi' has zeros (GELU, SiLU: their spectra near 0 need the
        # t^(-1/2) edge of the law resolved): then the composite rule (about 320 atoms).
        def misses(k: int) -> bool:
            exact = float(self.d2_moment(q, k))
            return abs(float(np.dot(wts, vals**k)) - exact) > 1e-9 * abs(exact)

        zeros = self._zeros_in_z(math.sqrt(q))
        if zeros:
            vals, wts = _d2_rule(self.dphi, q, zeros)
        elif misses(1) or misses(2):
            # the composite rule's own Gauss rule: as short as Gauss-Hermite, exact to degree 79
            vals, wts = short_rule(*_d2_rule(self.dphi, q, zeros), _N_GAUSS)
        return D2Law("continuous", vals, wts, float(np.sum(wts[vals > 0])))


def _dtanh(x):
    e = np.exp(-2.0 * np.abs(x))  # sech^2 without overflow
    return 4.0 * e / (1.0 + e) ** 2


def _sigmoid(x):
    return special.expit(x)


def _dsigmoid(x):
    s = special.expit(x)
    return s * (1.0 - s)


_SELU_L = 1.0507009873554804934193349852946
_SELU_A = 1.6732632423543772848170429916717


_PARAM = {"leaky_relu": "slope", "erf": "scale", "elu": "alpha"}  # the one parameter of each family


# laws of D^2 of the built-in activations by (name, params, family, q), oldest first (dicts keep
# insertion order); custom activations are never cached (two callables may share a name)
_LAW_CACHE: dict = {}
_LAW_CACHE_SIZE = 1024  # (tanh at L = 1000 near criticality has 602 distinct laws: 256 rebuilt them all per call)
# zeros of phi' of the built-in activations on [-H, H] by (name, params, family, H) (a few
# entries: H = 9 2^k)
_ZEROS_CACHE: dict = {}


def _make(name: str, **kw) -> Activation:
    act = _make_raw(name, **kw)
    act.__dict__["_builtin"] = True  # frozen: no attribute assignment (as _zeros_in_z's cache)
    return act


def _make_raw(name: str, **kw) -> Activation:
    allowed = {_PARAM[name]} if name in _PARAM else set()
    extra = set(kw) - allowed
    if extra:
        raise ValueError(
            f"activation: {name!r} takes "
            + (f"only the parameter {sorted(allowed)[0]!r}" if allowed else "no parameter")
            + f", got {sorted(extra)}"
        )
    for key, v in kw.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"activation: {name} {key} must be a real number, got {v!r}")
    if name == "linear":
        return Activation("linear", lambda x: x, lambda x: np.ones_like(x), (), "linear")
    if name == "relu":
        return Activation("relu", lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float), (), "relu")
    if name == "leaky_relu":
        a = float(kw.get("slope", 0.01))
        if not (math.isfinite(a) and 0.0 <= a < 1.0):
            raise ValueError(f"activation: leaky_relu slope must be in [0, 1), got {a!r}")
        return Activation(
            "leaky_relu",
            lambda x: np.where(x > 0, x, a * x),
            lambda x: np.where(x > 0, 1.0, a),
            (a,),
            "leaky_relu",
        )
    if name == "hard_tanh":
        return Activation(
            "hard_tanh", lambda x: np.clip(x, -1.0, 1.0), lambda x: (np.abs(x) < 1).astype(float), (), "hard_tanh"
        )
    if name == "tanh":
        return Activation("tanh", np.tanh, _dtanh)
    if name == "erf":
        # erf(x), as torch.erf, jax.scipy.special.erf and neural-tangents' stax.Erf(); "erf:a" is
        # erf(a x) (a = sqrt(pi)/2 gives the slope-1 erf of some papers)
        a = float(kw.get("scale", 1.0))
        if not (math.isfinite(a) and a > 0):
            raise ValueError(f"activation: erf scale must be a positive finite float, got {a!r}")
        return Activation(
            "erf",
            lambda x: special.erf(a * x),
            lambda x: 2.0 * a / math.sqrt(math.pi) * np.exp(-((a * x) ** 2)),
            (a,),
            "erf",
        )
    if name == "sigmoid":
        return Activation("sigmoid", _sigmoid, _dsigmoid)
    if name == "gelu":
        return Activation(
            "gelu",
            lambda x: x * special.ndtr(x),
            lambda x: special.ndtr(x) + x * np.exp(-x * x / 2.0) / math.sqrt(2.0 * math.pi),
        )
    if name in ("silu", "swish"):
        return Activation("silu", lambda x: x * special.expit(x), lambda x: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))))
    if name == "selu":
        return Activation(
            "selu",
            lambda x: _SELU_L * np.where(x > 0, x, _SELU_A * np.expm1(np.minimum(x, 0.0))),
            lambda x: _SELU_L * np.where(x > 0, 1.0, _SELU_A * np.exp(np.minimum(x, 0.0))),
        )
    if name == "elu":
        al = float(kw.get("alpha", 1.0))
        if not (math.isfinite(al) and al > 0.0):
            raise ValueError(f"activation: elu alpha must be a positive finite float, got {al!r}")
        return Activation(
            "elu",
            lambda x: np.where(x > 0, x, al * np.expm1(np.minimum(x, 0.0))),
            lambda x: np.where(x > 0, 1.0, al * np.exp(np.minimum(x, 0.0))),
            (al,),
        )
    if name == "softplus":
        return Activation("softplus", lambda x: np.logaddexp(0.0, x), _sigmoid)
    raise ValueError(f"activation: unknown name {name!r}; choose one of {sorted(ACTIVATIONS)}")


ACTIVATIONS = (
    "linear",
    "relu",
    "leaky_relu",
    "hard_tanh",
    "tanh",
    "erf",
    "sigmoid",
    "gelu",
    "silu",
    "selu",
    "elu",
    "softplus",
)


def _custom(phi, dphi) -> Activation:
    if not (callable(phi) and callable(dphi)):
        raise ValueError(f"activation: a custom activation must be a pair of callables (phi, dphi), got {(phi, dphi)!r}")
    probe = np.linspace(-3.0, 3.0, 7)
    for label, fn in (("phi", phi), ("dphi", dphi)):
        try:
            raw = np.asarray(fn(probe))
        except Exception as exc:  # noqa: BLE001 - report any failure of user code clearly
            raise ValueError(f"activation: {label} failed on a numpy array ({exc!r}); it must be vectorised") from exc
        if raw.dtype.kind not in "biuf":
            # a complex (or object) result would lose its imaginary part in every float cast below
            raise ValueError(f"activation: {label} must return real floats, got dtype {raw.dtype} on [-3, 3]")
        out = raw.astype(float)
        if out.shape != probe.shape:
            raise ValueError(
                f"activation: {label} must be vectorised (array in, same-shape array out); "
                f"got shape {out.shape} for input shape {probe.shape}"
            )
        if not np.all(np.isfinite(out)):
            raise ValueError(f"activation: {label} returned non-finite values on [-3, 3]")
    name = getattr(phi, "__name__", "custom")
    return Activation(f"custom:{name}", phi, dphi)


def get_activation(activation, **params) -> Activation:
    """Build an :class:`Activation`.

    Parameters
    ----------
    activation : str, Activation or (callable, callable)
        A name from ``fpcore.ACTIVATIONS`` (``"leaky_relu:0.2"`` sets the slope), an existing
        activation, or a pair ``(phi, dphi)`` of vectorised callables.
    **params
        ``slope`` for leaky ReLU (default 0.01), ``scale`` for ``erf(scale * x)`` (default 1:
        ``"erf"`` is ``erf(x)``, as ``torch.erf``), ``alpha`` for ELU (default 1). Each also
        written after a colon: ``"erf:2"`` is ``erf(2 x)``. A parameter out of range, or one the
        activation does not take, raises ``ValueError``.

    Examples
    --------
    >>> get_activation("leaky_relu", slope=0.2).params
    (0.2,)
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, tuple) and len(activation) == 2:
        return _custom(*activation)
    if isinstance(activation, str):
        name, _, arg = activation.partition(":")
        if arg:
            key = _PARAM.get(name)
            if key is None:
                raise ValueError(f"activation: {activation!r} takes no parameter")
            try:
                params[key] = float(arg)
            except ValueError:
                raise ValueError(f"activation: bad parameter in {activation!r}") from None
        return _make(name, **params)
    raise ValueError(f"activation: expected a name, an Activation or a (phi, dphi) pair, got {activation!r}")
