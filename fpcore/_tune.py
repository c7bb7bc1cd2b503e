"""Initialisation tuning: choose ``sigma_w2`` (and ``sigma_b2``) to hit a target before training.

Targets (MATH.md sections 1, 3 and 6):

* ``"criticality"``: ``chi_1 = sigma_w2 E[phi'(sqrt(q*) Z)^2] = 1`` at the mean-field fixed point
  (the edge of chaos; for a square net the spectrum mean per layer is 1). With several layers,
  the geometric mean of the ``chi_l`` (each at its own fixed point) is set to 1.
* ``{"lambda_max": v}``, ``{"variance": v}``, ``{"spread": v}`` (variance / mean^2) and
  ``{"quantile_ratio": (p_hi, p_lo, v)}`` (``quantile(p_hi) / quantile(p_lo)``) of the limiting
  law of ``J^T J``, each read off :func:`fpcore.jacobian_spectrum`.

The search variable is one common multiplier ``c`` of every layer's ``sigma_w2`` (the ratios
between layers are kept), on a log scale: a bounded bracket expansion from ``c = 1`` then
:func:`scipy.optimize.brentq`. With ``tune_bias=True`` the network is kept critical (``c`` solves
the criticality equation for each bias) and the search variable is one common ``sigma_b2`` of all
layers, again on a log scale: the edge of chaos is a curve, and moving along it changes ``q*``
and hence the shape of the spectrum (e.g. its spread).

**The ``q* = 0`` limit.** With ``sigma_b2 = 0`` and an activation with ``phi(0) = 0`` whose
second moment stays below its linearisation, ``E[phi(sqrt(q) Z)^2] <= phi'(0)^2 q`` (tanh, erf,
hard-tanh, SELU; at a kink ``phi'(0)^2`` stands for the mean of the two one-sided values), the
recursion decays to ``q* = 0`` in the ordered phase, where ``D^2 = phi'(0)^2`` almost surely and
``chi_1 = sigma_w2 phi'(0)^2``; on the chaotic side ``chi_1 - 1`` is only second order in the
distance to the edge, and at the edge itself the recursion converges algebraically (no finite
iteration count reaches it). So the edge of chaos is taken in closed form,
``sigma_w2 = 1 / phi'(0)^2`` (geometric mean over layers), and ``chi_1`` on that branch from the
limit, not from the iteration.

**Bounded cost.** Every search evaluates its target at most ``max_evaluations`` times and stops
after ``max_seconds``; a quantile target is evaluated only where both quantiles lie inside the
range the spectrum resolves (at most 12 decades below its grid, with ``cdf(quantile(p)) = p``
checked), so no search step extrapolates the CDF hundreds of decades below the support.

When every layer's law of ``D^2`` is independent of ``q`` (linear, ReLU, leaky ReLU), multiplying
``sigma_w2`` by ``c`` multiplies ``J^T J`` by ``c^L`` and ``sigma_b2`` changes nothing: the spread
and the quantile ratios are scale-invariant, and a target for them is reported unreachable unless
it already holds.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
from scipy import optimize

from ._meanfield import mean_field
from ._network import Network, _check_gram
from ._spectrum import Spectrum, jacobian_spectrum

__all__ = ["TuneResult", "tune_init", "criticality_measure"]

_SPECTRUM_TARGETS = ("lambda_max", "variance", "spread", "quantile_ratio")
_SEARCH_POINTS = 32  # grid size of the spectra computed during the search (targets do not use the grid)
_XTOL = 1e-14  # brentq tolerance on log-multipliers
_FIRST_STEP = 0.25  # first bracket step in log scale
_EDGE_BISECT = 8  # bisections toward the edge of the domain where the target becomes undefined
_MAX_EVALUATIONS = 60  # default cap on target evaluations per search
_MAX_SECONDS = 20.0  # default wall-clock budget of a search (checked between evaluations)
_CONTRACT_Q = np.logspace(-6.0, 6.0, 49)  # where E[phi(sqrt(q) Z)^2] <= E[D^2 at q=0] q is checked
_QUANTILE_CHECK = 1e-6  # |cdf(quantile(p)) - p| accepted for a quantile used by the search
_QUANTILE_FLOOR = 1e-12  # quantiles more than 12 decades below the spectrum's grid are not searched


@dataclass(frozen=True)
class TuneResult:
    """Outcome of :func:`tune_init`.

    Attributes
    ----------
    network : Network
        The tuned network (only ``sigma_w2`` and, with ``tune_bias``, ``sigma_b2`` changed). When
        the target is unreachable: the network with the closest value found.
    sigma_w2, sigma_b2 : tuple of float
        Per-layer variances of ``network``.
    achieved : float
        The target quantity of ``network`` (``nan`` if it could not be evaluated).
    target : str or dict
        The target, normalised: ``"criticality"`` or a one-key dict with float values.
    reachable : bool
        Whether ``achieved`` matches the target within ``rtol`` (and, for spectrum targets, the
        final spectrum is fully certified).
    message : str
        What happened, in words (why the target is unreachable, when it is).
    spectrum : Spectrum or None
        Spectrum of ``network`` for spectrum targets; None for ``"criticality"``.
    multiplier : float
        Common factor applied to the input network's ``sigma_w2``.
    n_uncertified : int or None
        ``spectrum.stats.n_uncertified`` (grid points the engine could neither certify nor verify).
    n_evaluations : int
        Number of evaluations of the target quantity during the search.
    """

    network: Network
    sigma_w2: tuple[float, ...]
    sigma_b2: tuple[float, ...]
    achieved: float
    target: Any
    reachable: bool
    message: str
    spectrum: Spectrum | None = field(repr=False)
    multiplier: float
    n_uncertified: int | None
    n_evaluations: int


def _positive(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"target: {name} must be a positive finite float, got {v!r}")
    return float(v)


def _parse_target(target) -> tuple[str, Any, float]:
    """``(name, normalised target, goal value)``."""
    if isinstance(target, str):
        if target != "criticality":
            raise ValueError(
                f"target must be 'criticality' or a dict with one key of {_SPECTRUM_TARGETS}, got {target!r}"
            )
        return "criticality", "criticality", 1.0
    if not isinstance(target, Mapping) or len(target) != 1:
        raise ValueError(f"target must be 'criticality' or a dict with one key of {_SPECTRUM_TARGETS}, got {target!r}")
    (name, value), = target.items()
    if name not in _SPECTRUM_TARGETS:
        raise ValueError(f"target: unknown quantity {name!r}; choose one of {_SPECTRUM_TARGETS}")
    if name != "quantile_ratio":
        v = _positive(name, value)
        return name, {name: v}, v
    if isinstance(value, (str, bytes)) or np.ndim(value) != 1 or len(value) != 3:
        raise ValueError(f"target: quantile_ratio must be a triple (p_hi, p_lo, value), got {value!r}")
    p_hi, p_lo, v = value
    for label, p in (("p_hi", p_hi), ("p_lo", p_lo)):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not (0.0 < p <= 1.0):
            raise ValueError(f"target: quantile_ratio {label} must lie in (0, 1], got {p!r}")
    if not p_lo < p_hi:
        raise ValueError(f"target: quantile_ratio needs p_lo < p_hi, got p_hi={p_hi!r}, p_lo={p_lo!r}")
    v = _positive("quantile_ratio value", v)
    if v < 1.0:
        raise ValueError(f"target: quantile(p_hi) / quantile(p_lo) >= 1 for any law, got value {v!r}")
    return name, {name: (float(p_hi), float(p_lo), v)}, v


def _spectrum_value(name: str, target: dict, s: Spectrum) -> float:
    if name == "lambda_max":
        return float(s.lambda_max)
    if name == "variance":
        return float(s.variance)
    if name == "spread":
        return float(s.variance / s.mean**2)
    p_hi, p_lo, _ = target[name]
    lo = _resolved_quantile(s, p_lo)
    hi = _resolved_quantile(s, p_hi)
    return hi / lo if lo > 0 else math.nan


def _resolved_quantile(s: Spectrum, p: float) -> float:
    """``s.quantile(p)`` where it lies inside the range the spectrum resolves, else ``nan``.

    Far below the smallest grid point (more than ``1 / _QUANTILE_FLOOR`` times below it) the
    exact CDF is solved where the engine cannot certify it (for deep chaotic tanh nets the
    p = 0.1 quantile would land near 1e-300, after minutes of uncertified solves): the search
    treats such a network as outside the target's domain. The quantile is also refused
    when ``cdf`` does not confirm it (``F(q) >= p >= F(q^-)`` within ``_QUANTILE_CHECK``) or when
    the engine warns that a point it used could not be certified.
    """
    if p <= float(s.atom):
        return 0.0
    pos = np.asarray(s.x, dtype=float)
    pos = pos[pos > 0]
    if pos.size == 0:
        return math.nan
    floor = float(pos[0]) * _QUANTILE_FLOOR
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a pre-filter only: the quantile itself is checked below
        if float(s.cdf(floor)) >= p:
            return math.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = float(s.quantile(p))
        if not (math.isfinite(q) and q >= floor):
            return math.nan
        F_at, F_below = (float(v) for v in s.cdf(np.array([q, q * (1.0 - 1e-9)])))
    if any("certified" in str(w.message) for w in caught):
        return math.nan
    if F_at < p - _QUANTILE_CHECK or F_below > p + _QUANTILE_CHECK:
        return math.nan
    return q


def criticality_measure(net: Network) -> float:
    """Geometric mean of the ``chi_l`` of ``net``, each at the mean-field fixed point.

    For a network with one activation and one ``(sigma_w2, sigma_b2)`` this is ``chi_1``.

    Examples
    --------
    >>> from fpcore import Network
    >>> criticality_measure(Network([10, 10, 10], activation="relu", sigma_w2=3.0))
    1.5
    """
    slopes = _zero_branch_slopes(net)
    if slopes is not None:
        chi = np.asarray(net.sigma_w2) * slopes
        if np.all(chi <= 1.0 + 1e-12):
            # q* = 0 (the recursion's limit; at chi_1 = 1 it converges only algebraically)
            return float(np.exp(np.mean(np.log(chi))))
    chi = mean_field(net.replace(q0="fixed_point")).chi
    return float(np.exp(np.mean(np.log(chi))))


def _zero_branch_slopes(net: Network) -> np.ndarray | None:
    """``E[D_l^2]`` in the limit ``q -> 0`` per layer, ``(phi_l'(0-)^2 + phi_l'(0+)^2) / 2`` (a
    kink at 0, as in SELU, gives both sides half the mass), when every layer has ``sigma_b2 = 0``
    and an activation with ``phi(0) = 0`` whose second moment stays below its linearisation,
    ``E[phi(sqrt(q) Z)^2] <= a q`` (checked on ``q`` from 1e-6 to 1e6), so that the recursion
    ``q -> sigma_w2 E[phi(sqrt(q) Z)^2]`` decays to ``q* = 0`` whenever ``sigma_w2 a <= 1``;
    None otherwise."""
    if any(sb != 0.0 for sb in net.sigma_b2):
        return None
    out = []
    for act in net.activations:
        if not act.d2_depends_on_q:
            return None
        with np.errstate(all="ignore"):
            phi0 = float(np.asarray(act.phi(np.zeros(1)), dtype=float)[0])
            sides = np.asarray(act.dphi(np.array([-1e-12, 1e-12])), dtype=float)
            a = float(np.mean(sides**2))
            if phi0 != 0.0 or not (math.isfinite(a) and a > 0.0):
                return None
            V = np.asarray(act.second_moment(_CONTRACT_Q), dtype=float)
        if not np.all(V <= a * _CONTRACT_Q * (1.0 + 1e-9)):
            return None
        out.append(a)
    return np.array(out)


def _zero_branch_edge(net: Network) -> float | None:
    """Log-multiplier ``x`` of ``sigma_w2`` at the edge of chaos on the ``q* = 0`` branch:
    ``exp(x) sigma_w2_l phi_l'(0)^2`` has geometric mean 1 and none exceeds 1 (else some layer
    would leave the branch); None when that branch does not apply."""
    slopes = _zero_branch_slopes(net)
    if slopes is None:
        return None
    g = np.log(np.asarray(net.sigma_w2) * slopes)
    x = -float(np.mean(g))
    if np.any(g + x > 1e-12):
        return None
    return x


class _BudgetSpent(Exception):
    """The search used its evaluations or its time."""


class _Search:
    """Bounded bracket expansion on a log scale, then brentq; remembers every evaluation.

    At most ``max_evaluations`` evaluations, and none started after ``max_seconds``.
    """

    def __init__(
        self, f: Callable[[float], float], max_evaluations: int = _MAX_EVALUATIONS, max_seconds: float = _MAX_SECONDS
    ) -> None:
        self._f = f
        self.seen: dict[float, float] = {}
        self.max_evaluations = int(max_evaluations)
        self.deadline = time.monotonic() + float(max_seconds)
        self.max_seconds = float(max_seconds)
        self.spent = False  # True once the budget stopped the search

    def __call__(self, x: float) -> float:
        x = float(x)
        if x not in self.seen:
            if len(self.seen) >= self.max_evaluations or time.monotonic() > self.deadline:
                self.spent = True
                raise _BudgetSpent
            try:
                v = float(self._f(x))
            except (ValueError, ArithmeticError):
                v = math.nan  # outside the domain (e.g. no finite fixed point)
            self.seen[x] = v if math.isfinite(v) else math.nan
        return self.seen[x]

    def closest(self) -> tuple[float, float] | None:
        fin = [(abs(v), x) for x, v in self.seen.items() if math.isfinite(v)]
        if not fin:
            return None
        _, x = min(fin)
        return x, self.seen[x]

    def solve(self, x0: float, lo: float, hi: float) -> float | None:
        """A root of ``f`` in ``[lo, hi]`` near ``x0``, or None if no sign change was found.

        Steps of 0.25, 0.5, 1, 2, 3, ... on each side (at most 1 apart in log scale once past 1,
        so that a non-monotone value is not jumped over), the side that came closer to 0 first;
        where ``f`` becomes undefined, bisection locates the edge of its domain. None as well
        when the budget runs out (``spent``).
        """
        try:
            return self._solve(x0, lo, hi)
        except _BudgetSpent:
            return None

    def _solve(self, x0: float, lo: float, hi: float) -> float | None:
        f0 = self(x0)
        if f0 == 0.0:
            return x0
        if not math.isfinite(f0):
            return None
        sides = []
        for sign, bound in ((1.0, hi), (-1.0, lo)):
            if bound == x0:
                continue
            x = x0 + sign * min(_FIRST_STEP, abs(bound - x0))
            done, out = self._advance(x0, f0, x)
            if done and out is not None:
                return out
            fx = self.seen[x]
            sides.append((abs(fx) if math.isfinite(fx) else math.inf, sign, bound, done, out))
        for _, sign, bound, done, out in sorted(sides, key=lambda t: t[0]):
            if done:
                continue
            xp, fp = out
            while xp != bound:
                step = abs(xp - x0)
                step = 2.0 * step if step < 1.0 else step + 1.0
                x = min(x0 + step, bound) if sign > 0 else max(x0 - step, bound)
                done, out = self._advance(xp, fp, x)
                if done:
                    if out is not None:
                        return out
                    break
                xp, fp = out
        return None

    def _advance(self, xp: float, fp: float, x: float):
        """Step from ``(xp, fp)`` (``fp`` finite) to ``x``: ``(True, root)`` on a sign change,
        ``(False, (x, f(x)))`` to go on, ``(True, None)`` at the edge of the domain."""
        fx = self(x)
        if math.isfinite(fx):
            if fx * fp <= 0:
                return True, self._brent(xp, x, fp, fx)
            return False, (x, fx)
        for _ in range(_EDGE_BISECT):
            mid = 0.5 * (xp + x)
            fm = self(mid)
            if math.isfinite(fm):
                if fm * fp <= 0:
                    return True, self._brent(xp, mid, fp, fm)
                xp, fp = mid, fm
            else:
                x = mid
        return True, None

    def _brent(self, a: float, b: float, fa: float, fb: float) -> float | None:
        if fa == 0.0:
            return a
        if fb == 0.0:
            return b
        try:
            return float(optimize.brentq(self, min(a, b), max(a, b), xtol=_XTOL, maxiter=200))
        except (ValueError, RuntimeError):
            return None


def _check_number(name: str, v, lo: float) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= lo:
        raise ValueError(f"{name} must be a finite float > {lo}, got {v!r}")
    return float(v)


def tune_init(
    net: Network,
    target: str | Mapping[str, Any] = "criticality",
    tune_bias: bool = False,
    *,
    gram: str = "JtJ",
    rtol: float = 1e-8,
    max_factor: float = 1e3,
    n_points: int = 200,
    max_evaluations: int = _MAX_EVALUATIONS,
    max_seconds: float = _MAX_SECONDS,
) -> TuneResult:
    """Tune the initialisation variances of ``net`` to reach a target.

    Parameters
    ----------
    net : Network
        The network to tune. Its widths, activations, ``init`` and ``q0`` are kept.
    target : "criticality" or dict
        ``"criticality"`` (``chi_1 = 1`` at the fixed point, see :func:`criticality_measure`),
        ``{"lambda_max": v}``, ``{"variance": v}``, ``{"spread": v}`` (variance / mean^2) or
        ``{"quantile_ratio": (p_hi, p_lo, v)}`` of the limiting law of ``J^T J`` (``J J^T`` with
        ``gram="JJt"``).
    tune_bias : bool
        False: search one common multiplier of all layers' ``sigma_w2`` (``sigma_b2`` kept).
        True: keep the network critical and search one common ``sigma_b2`` for all layers (its
        start is the largest ``sigma_b2`` of ``net``, or 0.01 if all are 0); spectrum targets only.
    gram : {"JtJ", "JJt"}
        Which Gram matrix the spectrum targets refer to.
    rtol : float
        Relative tolerance on the achieved value for ``reachable``.
    max_factor : float
        The search stays within ``[1 / max_factor, max_factor]`` times the starting value
        (of the ``sigma_w2`` multiplier, or of ``sigma_b2``).
    n_points : int
        Grid size of the returned spectrum.
    max_evaluations : int
        Cap on the evaluations of the target quantity per search (default 60).
    max_seconds : float
        Wall-clock budget of a search (default 20 s), checked before each evaluation; when it
        runs out the result is ``reachable=False`` with the closest point found.

    Returns
    -------
    TuneResult

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it). An unreachable target is not an
        error: it gives ``reachable=False`` and a ``message``.

    Notes
    -----
    Spectrum targets are evaluated by :func:`fpcore.jacobian_spectrum`; the result is refused
    (``reachable=False``) when the final spectrum has points the lilypad solver could neither
    certify nor verify (``n_uncertified > 0``). For square networks at criticality MATH.md section 6
    gives ``spread = L (mu_2 / mu_1^2 - 1 - s_1)`` with ``mu_k = E[D^{2k}]`` and ``s_1 = -1``
    (Gaussian) or 0 (orthogonal): Gaussian ReLU nets have spread ``2 L`` whatever ``sigma_w2``.

    Examples
    --------
    >>> from fpcore import Network
    >>> r = tune_init(Network([100] * 4, "tanh", sigma_w2=1.0, sigma_b2=0.05, q0="fixed_point"))
    >>> r.reachable, round(r.achieved, 10), round(r.sigma_w2[0], 6)
    (True, 1.0, 1.760955)
    >>> r = tune_init(Network([100] * 3, "relu"), {"lambda_max": 20.0})
    >>> r.reachable, round(r.achieved, 8)
    (True, 20.0)
    >>> tune_init(Network([100] * 3, "relu"), {"spread": 1.0}).reachable  # ReLU spread is 2L
    False
    """
    if not isinstance(net, Network):
        raise ValueError(f"net must be an fpcore.Network, got {type(net).__name__}")
    name, norm_target, goal = _parse_target(target)
    if not isinstance(tune_bias, (bool, np.bool_)):
        raise ValueError(f"tune_bias must be a bool, got {tune_bias!r}")
    _check_gram(gram)
    rtol = _check_number("rtol", rtol, 0.0)
    if rtol >= 1.0:
        raise ValueError(f"rtol must be in (0, 1), got {rtol!r}")
    max_factor = _check_number("max_factor", max_factor, 1.0)
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 8:
        raise ValueError(f"n_points must be an integer >= 8, got {n_points!r}")
    if tune_bias and name == "criticality":
        raise ValueError(
            "tune_bias=True keeps the network critical and tunes sigma_b2 for a spectrum target; "
            "target='criticality' alone is reached by sigma_w2 (use tune_bias=False)"
        )

    if isinstance(max_evaluations, bool) or not isinstance(max_evaluations, (int, np.integer)) or max_evaluations < 4:
        raise ValueError(f"max_evaluations must be an integer >= 4, got {max_evaluations!r}")
    max_seconds = _check_number("max_seconds", max_seconds, 0.0)

    sw0 = np.array(net.sigma_w2)
    bound = math.log(max_factor)
    scale_free = all(not a.d2_depends_on_q for a in net.activations)
    log_goal = math.log(goal)
    label = _LABELS.get(name, name)

    def with_params(x: float, sb: float | None = None) -> Network:
        kw = {"sigma_w2": tuple(float(v) for v in sw0 * math.exp(x))}
        if sb is not None:
            kw["sigma_b2"] = float(sb)
        return net.replace(**kw)

    def spec(n: Network, points: int = _SEARCH_POINTS) -> Spectrum:
        return jacobian_spectrum(n, gram=gram, n_points=points)

    def new_search(f: Callable[[float], float]) -> _Search:
        return _Search(f, max_evaluations, max_seconds)

    def crit_search(sb: float | None) -> _Search:
        return new_search(lambda x: math.log(criticality_measure(with_params(x, sb))))

    n_eval = 0
    x_best, sb_best = 0.0, None
    found = True
    note = ""
    zero_branch = False

    if name == "criticality":
        edge = _zero_branch_edge(net)
        if edge is not None and abs(edge) <= bound:
            x_best, zero_branch = edge, True
        else:
            search = crit_search(None)
            found, x_best = _root_or_closest(search, 0.0, -bound, bound)
            n_eval = len(search.seen)
            if not found:
                note = _range_note(search, "chi_1 = 1 (the edge of chaos)", max_factor, sw0, "sigma_w2")
    elif scale_free and (name in ("spread", "quantile_ratio") or tune_bias):
        n_eval = 1
        if tune_bias:
            # sigma_b2 changes nothing; criticality fixes the scale (chi does not depend on q).
            search = crit_search(None)
            x_best = search.solve(0.0, -bound, bound) or 0.0
        v = _safe_value(name, norm_target, spec(with_params(x_best)))
        if not (math.isfinite(v) and abs(v / goal - 1.0) <= rtol):
            found = False
            acts = sorted({a.name for a in net.activations})
            what = "sigma_b2" if tune_bias else "sigma_w2"
            note = (
                f"{label} is unreachable by tuning {what}: every layer's D^2 law ({', '.join(acts)}) is "
                f"independent of q, so sigma_w2 only rescales J^T J by a constant and sigma_b2 does not "
                f"change it; {name} is scale-invariant and stays {v:.6g} (target {goal:.6g})"
            )
    elif not tune_bias:
        search = new_search(lambda x: math.log(_safe_value(name, norm_target, spec(with_params(x)))) - log_goal)
        found, x_best = _root_or_closest(search, 0.0, -bound, bound)
        n_eval = len(search.seen)
        if not found:
            note = _range_note(search, f"{label} = {goal:.6g}", max_factor, sw0, "sigma_w2", log_goal)
    else:
        sb_start = max(net.sigma_b2) if max(net.sigma_b2) > 0 else 0.01
        y0 = math.log(sb_start)
        crit_x: dict[float, float] = {}
        warm = [0.0]

        def critical_x(y: float) -> float:
            s = crit_search(math.exp(y))
            x = s.solve(warm[0], -bound, bound)  # warm start from the previous critical point
            if x is None:
                raise ValueError("criticality not reachable at this sigma_b2")
            warm[0] = x
            crit_x[y] = x
            return x

        def outer(y: float) -> float:
            x = critical_x(y)
            return math.log(_safe_value(name, norm_target, spec(with_params(x, math.exp(y))))) - log_goal

        search = new_search(outer)
        root = search.solve(y0, y0 - bound, y0 + bound)
        n_eval = len(search.seen)
        if root is None:
            found = False
            closest = search.closest()
            if closest is None:
                y_best = y0
                x_best = 0.0
            else:
                y_best = closest[0]
                x_best = crit_x.get(y_best, 0.0)
            note = _range_note(
                search, f"{label} = {goal:.6g} at the edge of chaos", max_factor, np.array([sb_start]), "sigma_b2",
                log_goal,
            )
        else:
            y_best = root
            x_best = crit_x.get(root)
            if x_best is None:
                x_best = critical_x(root)
        sb_best = math.exp(y_best)

    tuned = with_params(x_best, sb_best)
    spectrum = None
    n_unc = None
    if name == "criticality":
        try:
            achieved = criticality_measure(tuned)
        except ValueError:
            achieved = math.nan
    else:
        spectrum = spec(tuned, int(n_points))
        n_unc = int(spectrum.stats.n_uncertified)
        achieved = _safe_value(name, norm_target, spectrum)
    rel = abs(achieved / goal - 1.0) if math.isfinite(achieved) else math.inf
    reachable = found and rel <= rtol
    if found and not reachable:
        note = (
            f"the search converged but {label} = {achieved:.6g} misses the target {goal:.6g} "
            f"(relative error {rel:.1e})"
        )
    if reachable and n_unc:
        reachable = False
        note = (
            f"refused: {n_unc} of {spectrum.stats.n_points} points of the final spectrum could be neither "
            f"certified nor verified; {label} = {achieved:.6g} there"
        )
    if reachable:
        where = f"sigma_w2 = {_fmt_values(tuned.sigma_w2)}"
        if sb_best is not None:
            where += f", sigma_b2 = {sb_best:.6g}"
        if name == "criticality":
            note = f"edge of chaos: chi_1 = 1 at {where}"
            if zero_branch:
                note += (
                    " (with sigma_b2 = 0 the signal variance q* decays to 0, so chi_1 = sigma_w2 phi'(0)^2 and "
                    "the edge is sigma_w2 = 1/phi'(0)^2)"
                )
        else:
            note = f"{label} = {achieved:.6g} at {where}"
    return TuneResult(
        network=tuned,
        sigma_w2=tuned.sigma_w2,
        sigma_b2=tuned.sigma_b2,
        achieved=float(achieved),
        target=norm_target,
        reachable=bool(reachable),
        message=note,
        spectrum=spectrum,
        multiplier=math.exp(x_best),
        n_uncertified=n_unc,
        n_evaluations=n_eval,
    )


_LABELS = {
    "criticality": "chi_1",
    "lambda_max": "lambda_max",
    "variance": "the variance",
    "spread": "the spread (variance / mean^2)",
    "quantile_ratio": "the quantile ratio",
}


def _fmt_values(v) -> str:
    """``1.5`` for equal per-layer values, ``1.5, 2, 1.5`` otherwise."""
    vals = [float(x) for x in v]
    if max(vals) - min(vals) <= 1e-12 * max(abs(x) for x in vals):
        return f"{vals[0]:.6g}"
    return ", ".join(f"{x:.6g}" for x in vals)


def _safe_value(name: str, target: dict, s: Spectrum) -> float:
    v = _spectrum_value(name, target, s)
    return v if math.isfinite(v) and v > 0 else math.nan


def _root_or_closest(search: "_Search", start: float, lo: float, hi: float) -> tuple[bool, float]:
    """``(True, root)`` in ``[lo, hi]``, else ``(False, x)`` at the evaluated point closest to the
    target (``start`` if nothing finite was seen)."""
    root = search.solve(start, lo, hi)
    if root is not None:
        return True, root
    closest = search.closest()
    return False, closest[0] if closest else start


def _range_note(
    search: _Search, what: str, max_factor: float, base: np.ndarray, var: str, log_goal: float = 0.0
) -> str:
    """Why no root was found, in the user's variables: the range of ``var`` searched (per layer:
    the first layer's) and the values the target took there."""
    vals = [(x, v) for x, v in search.seen.items() if math.isfinite(v)]
    b = float(np.ravel(base)[0])
    lo_v, hi_v = b / max_factor, b * max_factor
    stop = (
        f" (search stopped after {len(search.seen)} evaluations / {search.max_seconds:.3g} s)"
        if search.spent else ""
    )
    if not vals:
        why = (
            " (the mean-field recursion has no finite fixed point q* there)" if what.startswith("chi_1")
            else " (the network is outside the range the spectrum resolves there)"
        )
        return f"{what}: could not be evaluated for any {var} tried between {lo_v:.3g} and {hi_v:.3g}{why}{stop}"
    got = [math.exp(v + log_goal) for _, v in vals]
    xs = [b * math.exp(x) for x, _ in vals]
    return (
        f"no {var} between {lo_v:.3g} and {hi_v:.3g} reaches {what}{stop}: {var} from {min(xs):.3g} to "
        f"{max(xs):.3g} gives values from {min(got):.6g} to {max(got):.6g}"
    )
