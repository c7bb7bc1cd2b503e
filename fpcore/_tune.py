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

When every layer's law of ``D^2`` is independent of ``q`` (linear, ReLU, leaky ReLU), multiplying
``sigma_w2`` by ``c`` multiplies ``J^T J`` by ``c^L`` and ``sigma_b2`` changes nothing: the spread
and the quantile ratios are scale-invariant, and a target for them is reported unreachable unless
it already holds.
"""

from __future__ import annotations

import math
import numbers
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
    lo = float(s.quantile(p_lo))
    return float(s.quantile(p_hi)) / lo if lo > 0 else math.inf


def criticality_measure(net: Network) -> float:
    """Geometric mean of the ``chi_l`` of ``net``, each at the mean-field fixed point.

    For a network with one activation and one ``(sigma_w2, sigma_b2)`` this is ``chi_1``.

    Examples
    --------
    >>> from fpcore import Network
    >>> criticality_measure(Network([10, 10, 10], activation="relu", sigma_w2=3.0))
    1.5
    """
    chi = mean_field(net.replace(q0="fixed_point")).chi
    return float(np.exp(np.mean(np.log(chi))))


class _Search:
    """Bounded bracket expansion on a log scale, then brentq; remembers every evaluation."""

    def __init__(self, f: Callable[[float], float]) -> None:
        self._f = f
        self.seen: dict[float, float] = {}

    def __call__(self, x: float) -> float:
        x = float(x)
        if x not in self.seen:
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
        where ``f`` becomes undefined, bisection locates the edge of its domain.
        """
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

    sw0 = np.array(net.sigma_w2)
    bound = math.log(max_factor)
    scale_free = all(not a.d2_depends_on_q for a in net.activations)
    log_goal = math.log(goal)

    def with_params(x: float, sb: float | None = None) -> Network:
        kw = {"sigma_w2": tuple(float(v) for v in sw0 * math.exp(x))}
        if sb is not None:
            kw["sigma_b2"] = float(sb)
        return net.replace(**kw)

    def spec(n: Network, points: int = _SEARCH_POINTS) -> Spectrum:
        return jacobian_spectrum(n, gram=gram, n_points=points)

    def crit_search(sb: float | None) -> _Search:
        return _Search(lambda x: math.log(criticality_measure(with_params(x, sb))))

    n_eval = 0
    x_best, sb_best = 0.0, None
    found = True
    note = ""

    if name == "criticality":
        search = crit_search(None)
        found, x_best = _root_or_closest(search, 0.0, -bound, bound)
        n_eval = len(search.seen)
        if not found:
            note = _range_note(search, "chi_1 (geometric mean)", max_factor, "sigma_w2 multiplier")
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
                f"{name} is unreachable by tuning {what}: every layer's D^2 law ({', '.join(acts)}) is "
                f"independent of q, so sigma_w2 only rescales J^T J by a constant and sigma_b2 does not "
                f"change it; {name} is scale-invariant and stays {v:.12g} (target {goal:.12g})"
            )
    elif not tune_bias:
        search = _Search(lambda x: math.log(_safe_value(name, norm_target, spec(with_params(x)))) - log_goal)
        found, x_best = _root_or_closest(search, 0.0, -bound, bound)
        n_eval = len(search.seen)
        if not found:
            note = _range_note(search, name, max_factor, "sigma_w2 multiplier", log_goal)
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

        search = _Search(outer)
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
            note = _range_note(search, f"{name} at criticality", max_factor, "sigma_b2", log_goal, base=sb_start)
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
            f"the search converged but {name} = {achieved:.15g} misses the target {goal:.15g} "
            f"(relative error {rel:.2e} > rtol)"
        )
    if reachable and n_unc:
        reachable = False
        note = (
            f"refused: the spectrum engine left {n_unc} of {spectrum.stats.n_points} grid points uncertified "
            f"(neither certified by the Kantorovich test nor verified); {name} = {achieved:.15g}"
        )
    if reachable:
        label = "chi_1" if name == "criticality" else name
        note = (
            f"reached {label} = {achieved:.15g} (target {goal:.15g}, relative error {rel:.1e}) with sigma_w2 "
            f"multiplier {math.exp(x_best):.12g}"
            + (f" and sigma_b2 = {sb_best:.12g}" if sb_best is not None else "")
            + f" after {n_eval} evaluations"
        )
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
    search: _Search, what: str, max_factor: float, var: str, log_goal: float = 0.0, base: float = 1.0
) -> str:
    """Why no root was found: the range of values the search saw."""
    vals = [(x, v) for x, v in search.seen.items() if math.isfinite(v)]
    lo_v, hi_v = base / max_factor, base * max_factor
    if not vals:
        return f"{what} could not be evaluated for any {var} tried in [{lo_v:.3g}, {hi_v:.3g}]"
    got = [math.exp(v + log_goal) for _, v in vals]
    return (
        f"no {var} in [{lo_v:.3g}, {hi_v:.3g}] reaches {what} = {math.exp(log_goal):.12g}: "
        f"the values found range over [{min(got):.6g}, {max(got):.6g}]"
    )
