"""Application state of the dashboard: the controls, the current results, and how one follows from the other.

Everything here runs without a server: the state is a :class:`param.Parameterized` whose control
parameters (depth, widths, activation, ...) determine a :class:`fpcore.Network`; changing a control
recomputes :attr:`DashboardState.result` (the spectrum and the mean field), the lilypad trace for the
chosen target and, on request, a Monte Carlo sample. A failed computation leaves the last good result
in place and reports the failure through :attr:`DashboardState.error` / :attr:`DashboardState.n_errors`
(the app turns those into notifications).

Examples
--------
>>> state = DashboardState(depth=4, base_width=100)
>>> state.result.network.widths
(100, 100, 100, 100, 100)
>>> state.custom_widths = "100, 50, oops"   # ignored while the profile is not "custom"
>>> state.profile = "custom"
>>> state.error.startswith("widths:")
True
>>> state.result.network.widths          # last good result kept
(100, 100, 100, 100, 100)
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import param

import fpcore

__all__ = [
    "PROFILES",
    "LIMITS",
    "Result",
    "MonteCarlo",
    "LilypadFrame",
    "DashboardState",
    "parse_widths",
    "width_profile",
    "scaled_widths",
    "compute_spectrum",
    "compute_trace",
    "compute_basins",
    "url_overrides",
    "basin_window",
    "warm_up_kernels",
]

PROFILES = ("constant", "expanding", "contracting", "bottleneck", "custom")

# Accepted ranges (inclusive unless noted). Widgets use narrower soft bounds; values typed in
# editable widgets or read from a shared URL are checked against these before anything runs.
LIMITS = {
    "depth": (1, 200),
    "width": (1, 100_000),
    "ratio": (1.0, 64.0),
    "sigma_w2": (0.0, 100.0),  # exclusive lower bound
    "sigma_b2": (0.0, 100.0),
    "q0": (0.0, 1e6),  # exclusive lower bound
    "slope": (0.0, 1.0),  # [0, 1)
    "target_x": (0.0, math.inf),  # exclusive lower bound
}

GRAMS = {"JtJ": "JᵀJ", "JJt": "JJᵀ"}

_SPECTRUM_CACHE_SIZE = 32
_TRACE_CACHE_SIZE = 32
_BASINS_CACHE_SIZE = 256
BASIN_GRID = 256  # pixels per side of a basin frame (dashboard.basins, compiled for every activation)


def basin_grid(net) -> int:
    """Side of the basin grid for ``net`` (every activation: ``fpcore.newton_basins`` is compiled
    for rational and non-rational equations alike; ``benchmarks/bench_basins.py`` times it)."""
    return BASIN_GRID


NO_BASINS_NOTE = "Newton basins are not drawn for this frame."


# --------------------------------------------------------------------------------------------
# Widths


def parse_widths(text: str) -> list[int]:
    """Parse a comma-separated list of layer widths ``"N_0, N_1, ..., N_L"``.

    Raises
    ------
    ValueError
        With a message naming the offending entry.

    Examples
    --------
    >>> parse_widths("784, 512,256 , 10")
    [784, 512, 256, 10]
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("widths: enter at least two comma-separated positive integers, e.g. 400, 800, 400")
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    if parts and parts[-1] == "":
        parts = parts[:-1]  # tolerate a trailing comma
    widths = []
    for p in parts:
        try:
            w = int(p)
        except ValueError:
            try:
                f = float(p)
            except ValueError:
                raise ValueError(f"widths: {p!r} is not an integer (in {text!r})") from None
            if not f.is_integer():
                raise ValueError(f"widths: {p!r} is not an integer (in {text!r})") from None
            w = int(f)
        lo, hi = LIMITS["width"]
        if not lo <= w <= hi:
            raise ValueError(f"widths: {w} is out of range [{lo}, {hi}] (in {text!r})")
        widths.append(w)
    if len(widths) < 2:
        raise ValueError(f"widths: need the input width and at least one layer width, got {text!r}")
    lo, hi = LIMITS["depth"]
    if len(widths) - 1 > hi:
        raise ValueError(f"widths: at most {hi} layers, got {len(widths) - 1}")
    return widths


def width_profile(profile: str, depth: int, base_width: int, ratio: float = 2.0, custom: str = "") -> list[int]:
    """Widths ``[N_0, ..., N_L]`` of a width profile.

    Parameters
    ----------
    profile : {"constant", "expanding", "contracting", "bottleneck", "custom"}
        ``constant``: every width is ``base_width``. ``expanding``: geometric growth from
        ``base_width`` to ``ratio * base_width``. ``contracting``: geometric decay from
        ``base_width`` to ``base_width / ratio``. ``bottleneck``: ``base_width`` at both ends and
        ``base_width / ratio`` in the middle (geometric in between). ``custom``: the list in
        ``custom`` (which then sets the depth).
    depth : int
        Number of layers ``L`` (ignored for ``custom``).
    base_width : int
        ``N_0``.
    ratio : float
        Largest-to-smallest width ratio of the profile (>= 1).
    custom : str
        Comma-separated widths for the ``custom`` profile.

    Examples
    --------
    >>> width_profile("constant", 3, 100)
    [100, 100, 100, 100]
    >>> width_profile("expanding", 2, 100, 4.0)
    [100, 200, 400]
    >>> width_profile("bottleneck", 4, 100, 4.0)
    [100, 50, 25, 50, 100]
    """
    if profile == "custom":
        return parse_widths(custom)
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    lo, hi = LIMITS["depth"]
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or not lo <= depth <= hi:
        raise ValueError(f"depth must be an integer in [{lo}, {hi}], got {depth!r}")
    lo, hi = LIMITS["width"]
    if isinstance(base_width, bool) or not isinstance(base_width, (int, np.integer)) or not lo <= base_width <= hi:
        raise ValueError(f"base width must be an integer in [{lo}, {hi}], got {base_width!r}")
    lo, hi = LIMITS["ratio"]
    if not (isinstance(ratio, (int, float, np.floating)) and math.isfinite(ratio) and lo <= ratio <= hi):
        raise ValueError(f"ratio must be in [{lo:g}, {hi:g}], got {ratio!r}")
    t = np.arange(depth + 1) / depth  # position of each layer, 0 .. 1
    if profile == "constant":
        log_scale = np.zeros_like(t)
    elif profile == "expanding":
        log_scale = t
    elif profile == "contracting":
        log_scale = -t
    else:  # bottleneck
        log_scale = -(1.0 - np.abs(2.0 * t - 1.0))
    widths = np.rint(base_width * float(ratio) ** log_scale).astype(int)
    return [max(1, int(w)) for w in widths]


def scaled_widths(widths, size: int) -> list[int]:
    """Scale ``widths`` so that the largest equals ``size`` (ratios kept, each width >= 1).

    Examples
    --------
    >>> scaled_widths([400, 800, 200], 100)
    [50, 100, 25]
    """
    s = size / max(widths)
    return [max(1, int(round(w * s))) for w in widths]


# --------------------------------------------------------------------------------------------
# Cached computations (keyed on hashable networks and scalars, never on arrays)


class _Computed:
    """One cache entry: the spectrum, the mean field and what the views derive from them (lazily)."""

    def __init__(self, spectrum, mean_field, seconds):
        self.spectrum, self.mean_field, self.seconds = spectrum, mean_field, seconds

    @functools.cached_property
    def cdf_grid(self) -> np.ndarray:
        s = self.spectrum
        return np.clip(np.asarray(s.cdf(np.asarray(s.x, float)), float), 0.0, 1.0)

    @functools.cached_property
    def deciles(self) -> np.ndarray:
        # Inverse of the CDF on the solver's grid. (Spectrum.deciles solves for each quantile and
        # costs 20-600 ms for deep nets; the grid is fine enough to draw and tabulate deciles.)
        return grid_quantile(self.spectrum, self.cdf_grid, np.arange(1, 10) / 10)


def grid_quantile(spectrum, cdf_grid, p) -> np.ndarray:
    """Quantiles ``F^-1(p)`` by monotone interpolation of the CDF on the spectrum's grid (0 inside the atom).

    Examples
    --------
    >>> import types
    >>> s = types.SimpleNamespace(x=np.array([1.0, 2.0, 3.0]), atom=0.5)
    >>> grid_quantile(s, np.array([0.5, 0.75, 1.0]), [0.25, 0.625, 0.875]).tolist()
    [0.0, 1.5, 2.5]
    """
    p = np.asarray(p, float)
    x = np.asarray(spectrum.x, float)
    F = np.maximum.accumulate(np.asarray(cdf_grid, float))
    q = np.interp(p, F, x)
    return np.where(p <= float(spectrum.atom), 0.0, q)


@functools.lru_cache(maxsize=_SPECTRUM_CACHE_SIZE)
def _spectrum_cached(net, gram, n_points):
    t0 = time.perf_counter()
    spectrum = fpcore.jacobian_spectrum(net, gram=gram, n_points=n_points)
    mf = fpcore.mean_field(net)
    return _Computed(spectrum, mf, time.perf_counter() - t0)


@dataclass(frozen=True)
class Result:
    """A computed spectrum with what the views need next to it."""

    network: object
    gram: str
    spectrum: object
    mean_field: object
    seconds: float  # wall time of the computation (spectrum + mean field), when it was computed
    cached: bool  # True when served from the LRU cache
    computed: _Computed | None = field(default=None, compare=False, repr=False)

    @property
    def cdf_grid(self) -> np.ndarray:
        """``F`` on ``spectrum.x`` (computed once per spectrum)."""
        return self.computed.cdf_grid if self.computed is not None else _Computed(self.spectrum, None, 0).cdf_grid

    @property
    def deciles(self) -> np.ndarray:
        """Deciles from :attr:`cdf_grid` (computed once per spectrum)."""
        return self.computed.deciles if self.computed is not None else _Computed(self.spectrum, None, 0).deciles

    @property
    def mode_log(self) -> float:
        """Where ``x rho(x)`` peaks: the most likely scale of an eigenvalue (a point inside the bulk)."""
        x, rho = np.asarray(self.spectrum.x, float), np.asarray(self.spectrum.density, float)
        w = np.where((x > 0) & np.isfinite(rho), x * rho, -np.inf)
        return float(x[int(np.argmax(w))]) if x.size else math.nan


def compute_spectrum(net, gram: str = "JtJ", n_points: int = 250) -> Result:
    """Spectrum and mean field of ``net`` (LRU-cached per ``(network, gram, n_points)``)."""
    hits = _spectrum_cached.cache_info().hits
    c = _spectrum_cached(net, gram, int(n_points))
    return Result(net, gram, c.spectrum, c.mean_field, c.seconds, _spectrum_cached.cache_info().hits > hits, c)


@functools.lru_cache(maxsize=_TRACE_CACHE_SIZE)
def compute_trace(net, x: float, gram: str = "JtJ"):
    """The recorded lilypad chain toward ``x + 0i`` (LRU-cached)."""
    return fpcore.lilypad_trace(net, float(x), gram=gram)


def basin_window(trace, k: int) -> tuple[complex, float]:
    """Centre and half-width of the m-plane window for frame ``k``.

    The window holds the Newton start, its iterates, the new solution and the Kantorovich ball,
    with room around them so the neighbouring basins show.
    """
    start = _newton_start(trace, k)
    pts = np.concatenate([[start, trace.solutions[k]], np.asarray(trace.newton[k], complex).ravel()])
    pts = pts[np.isfinite(pts)]
    spread = float(np.max(np.abs(pts - start))) if pts.size else 0.0
    ball = float(trace.m_radii[k]) if np.isfinite(trace.m_radii[k]) else 0.0
    # At least +-1.2 (or +-1.2 |m|): wide enough to show the neighbouring roots' basins, so one sees
    # that the Kantorovich ball sits well inside the basin of the root the chain follows.
    half = max(2.5 * ball, 1.5 * spread, 1.2 * max(1.0, abs(start)))
    return complex(start), half


def _newton_start(trace, k: int) -> complex:
    it = np.asarray(trace.newton[k], complex).ravel()
    if it.size:
        return complex(it[0])
    return complex(trace.solutions[k - 1]) if k > 0 else 0j


@functools.lru_cache(maxsize=_BASINS_CACHE_SIZE)
def _basins_cached(net, gram, z: complex, centre: complex, half: float, n: int):
    re = np.linspace(centre.real - half, centre.real + half, n)
    im = np.linspace(centre.imag - half, centre.imag + half, n)
    labels, roots = fpcore.newton_basins(net, z, re, im, gram=gram)
    return re, im, np.asarray(labels), np.asarray(roots)


def compute_basins(net, gram: str, trace, k: int, n: int | None = None):
    """The basin frame of lilypad step ``k`` (:func:`dashboard.basins.compute_frame`): a
    ``BasinFrame`` whose first four fields are ``(re, im, labels, roots)``, or None for ``n = 0``."""
    n = basin_grid(net) if n is None else n
    if n <= 0:
        return None
    from . import basins as _basins  # dash-views: compiled basins, RGBA frames, PNG export

    return _basins.compute_frame(net, gram, trace, k, n=int(n))


@dataclass(frozen=True)
class LilypadFrame:
    """What the lilypad views show: frame ``k`` of ``trace`` with the Newton basins of that frame."""

    trace: object
    k: int
    basins: tuple | None
    note: str = ""


# --------------------------------------------------------------------------------------------
# Monte Carlo


@dataclass(frozen=True)
class MonteCarlo:
    """Eigenvalues of sampled networks of the current architecture, with the KS distance to theory."""

    network: object  # the network of the theory it is compared with
    sampled_widths: tuple
    gram: str
    eigenvalues: np.ndarray
    ks: float
    n_samples: int
    seconds: float


# --------------------------------------------------------------------------------------------
# The state


_CONTROLS = (
    "depth",
    "profile",
    "base_width",
    "ratio",
    "custom_widths",
    "activation",
    "slope",
    "init",
    "sigma_w2",
    "sigma_b2",
    "input_mode",
    "q0",
    "gram",
    "n_points",
)

#: Parameters mirrored in the URL so a view can be shared as a link.
URL_PARAMETERS = _CONTROLS + ("x_scale", "target_x", "mc_size", "mc_samples")


def url_overrides(query: dict) -> tuple[dict, list[str]]:
    """Control values from a URL query (``{"depth": 30, ...}``), checked against the parameters.

    Returns ``(params, problems)``: the values that can be set, and a message per value that
    cannot (unknown names are ignored). Applying them when the state is built avoids computing
    the default network first and the shared one after.

    Examples
    --------
    >>> url_overrides({"depth": "30", "activation": "nope", "other": 1})
    ({'depth': 30}, ["activation='nope' is not one of the choices"])
    """
    params, problems = {}, []
    for name, value in query.items():
        if name not in URL_PARAMETERS:
            continue
        p = DashboardState.param[name]
        if isinstance(value, str) and not isinstance(p, (param.String, param.Selector)):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        if isinstance(p, param.Integer) and isinstance(value, float) and value.is_integer():
            value = int(value)
        try:
            p._validate(value)
        except Exception:  # noqa: BLE001 - reported, not raised
            if isinstance(p, param.Selector):
                problems.append(f"{name}={value!r} is not one of the choices")
            else:
                problems.append(f"{name}={value!r} is not a valid value")
            continue
        params[name] = value
    return params, problems


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, NotImplementedError):
        return f"not supported by fpcore yet: {text}"
    if isinstance(exc, ValueError):
        return text
    return f"{type(exc).__name__}: {text}"


class DashboardState(param.Parameterized):
    """Controls and results of the Jacobian-spectrum explorer.

    Set any control and :attr:`result` follows (synchronously); :attr:`trace` (the lilypad chain
    toward ``target_x``) and :attr:`basins` (the m-plane picture of :attr:`frame`) follow
    :attr:`result`. A failure keeps the previous values, sets :attr:`error` and increments
    :attr:`n_errors`.
    """

    # -- architecture ---------------------------------------------------------------------
    depth = param.Integer(10, softbounds=(1, 100), label="Depth L")
    profile = param.Selector(objects=list(PROFILES), default="constant", label="Width profile")
    base_width = param.Integer(400, softbounds=(10, 2000), label="Base width N₀")
    ratio = param.Number(2.0, softbounds=(1.0, 8.0), label="Profile ratio (largest/smallest)")
    custom_widths = param.String("400, 800, 800, 200, 400", label="Custom widths N₀, …, N_L")
    # -- activation and initialisation -------------------------------------------------------
    activation = param.Selector(objects=list(fpcore.ACTIVATIONS), default="relu", label="Activation φ")
    slope = param.Number(0.1, softbounds=(0.0, 0.9), label="Leaky ReLU slope α")
    init = param.Selector(objects=["gaussian", "orthogonal"], default="gaussian", label="Weight init")
    sigma_w2 = param.Number(2.0, softbounds=(0.1, 6.0), label="Weight variance σ_w²")
    sigma_b2 = param.Number(0.0, softbounds=(0.0, 2.0), label="Bias variance σ_b²")
    input_mode = param.Selector(objects=["variance q0", "fixed point q*"], default="variance q0", label="Input")
    q0 = param.Number(1.0, softbounds=(0.05, 10.0), label="Input variance q₀")
    # -- view --------------------------------------------------------------------------------
    gram = param.Selector(objects=list(GRAMS), default="JtJ", label="Matrix")
    x_scale = param.Selector(objects=["log", "linear"], default="log", label="λ axis")
    n_points = param.Integer(250, bounds=(50, 5000), label="Grid points")
    # -- lilypad animation ---------------------------------------------------------------------
    target_x = param.Number(None, allow_None=True, label="Target x (lilypad chain toward x + 0i)")
    frame = param.Integer(0, bounds=(0, None), label="Lilypad step k")
    # -- Monte Carlo -------------------------------------------------------------------------
    mc_size = param.Integer(300, bounds=(8, 4000), softbounds=(20, 1500), label="Monte Carlo width (largest layer)")
    mc_samples = param.Integer(2, bounds=(1, 50), softbounds=(1, 10), label="Networks sampled")
    mc_seed = param.Integer(0, label="Monte Carlo seed")
    mc_progress = param.Number(0.0, bounds=(0.0, 1.0), label="Monte Carlo progress")
    mc_running = param.Boolean(False)
    # -- outputs -----------------------------------------------------------------------------
    result = param.Parameter(None, doc="Last good Result.")
    trace = param.Parameter(None, doc="Last good LilypadTrace toward target_x.")
    basins = param.Parameter(None, doc="(re, im, labels, roots) of frame, or None.")
    lilypad = param.Parameter(None, doc="LilypadFrame shown by the lilypad views (one event per frame).")
    mc = param.Parameter(None, doc="MonteCarlo of the current network, or None.")
    error = param.String("", doc="Message of the last failure; '' after a success.")
    n_errors = param.Integer(0, doc="Number of failures so far (watch it to notify).")
    info = param.String("", doc="Last informational message.")
    n_infos = param.Integer(0)

    def __init__(self, scheduler: Callable[[Callable[[], None]], None] | None = None, **params):
        # scheduler(fn) runs fn later (the app defers the lilypad work to the next tick so the
        # spectrum reaches the browser first); None runs it at once.
        self._scheduler = scheduler
        self._mc_request = 0
        self._trace_pending = False
        self._frame_guard = False
        self._trace_net = None
        super().__init__(**params)
        self.update()

    # -- building the network ------------------------------------------------------------------
    def widths(self) -> list[int]:
        """Widths of the current profile (raises ValueError on bad input)."""
        return width_profile(self.profile, self.depth, self.base_width, self.ratio, self.custom_widths)

    def activation_spec(self) -> str:
        if self.activation == "leaky_relu":
            lo, hi = LIMITS["slope"]
            if not (self.slope is not None and lo <= self.slope < hi):
                raise ValueError(f"leaky ReLU slope must be in [{lo:g}, {hi:g}), got {self.slope!r}")
            return f"leaky_relu:{self.slope:g}"
        return self.activation

    def build_network(self):
        """The :class:`fpcore.Network` described by the controls (raises ValueError on bad input)."""
        widths = self.widths()
        checks = (("sigma_w2", self.sigma_w2, "σ_w²", True), ("sigma_b2", self.sigma_b2, "σ_b²", False))
        for key, value, label, strict in checks:
            lo, hi = LIMITS[key]
            ok = value is not None and math.isfinite(value) and (value > lo if strict else value >= lo) and value <= hi
            if not ok:
                bracket = "(" if strict else "["
                raise ValueError(f"{label} = {value!r} is out of range {bracket}{lo:g}, {hi:g}]")
        if self.input_mode == "fixed point q*":
            q0 = "fixed_point"
        else:
            lo, hi = LIMITS["q0"]
            if self.q0 is None or not (math.isfinite(self.q0) and lo < self.q0 <= hi):
                raise ValueError(f"q₀ = {self.q0!r} is out of range ({lo:g}, {hi:g}]")
            q0 = float(self.q0)
        return fpcore.Network(
            widths,
            activation=self.activation_spec(),
            sigma_w2=float(self.sigma_w2),
            sigma_b2=float(self.sigma_b2),
            init=self.init,
            q0=q0,
        )

    # -- reporting -----------------------------------------------------------------------------
    def _fail(self, what: str, exc: BaseException) -> None:
        msg = _message(exc)
        if what and not msg.lower().startswith(what.lower()):
            msg = f"{what}: {msg}"
        self.param.update(error=msg, n_errors=self.n_errors + 1)

    def _inform(self, msg: str) -> None:
        self.param.update(info=msg, n_infos=self.n_infos + 1)

    # -- recomputation -------------------------------------------------------------------------
    @param.depends(*_CONTROLS, watch=True)
    def update(self) -> bool:
        """Recompute :attr:`result` from the controls; False (and :attr:`error` set) on failure."""
        try:
            net = self.build_network()
        except Exception as exc:  # noqa: BLE001 - any bad input becomes a message, never a crash
            self._fail("", exc)
            return False
        try:
            result = compute_spectrum(net, self.gram, self.n_points)
            _check_result(result)
        except Exception as exc:  # noqa: BLE001 - solver failures are reported, the last plot stays
            self._fail("spectrum", exc)
            return False
        mc = self.mc if self.mc is not None and self.mc.network == net and self.mc.gram == self.gram else None
        self.param.update(result=result, error="", mc=mc)
        return True

    @param.depends("result", "target_x", watch=True)
    def _result_changed(self) -> None:
        if self._scheduler is None:
            self.update_trace()
        elif not self._trace_pending:
            self._trace_pending = True
            self._scheduler(self._deferred_trace)

    def _deferred_trace(self) -> None:
        self._trace_pending = False
        self.update_trace()

    def default_target(self) -> float | None:
        """Where ``x rho(x)`` peaks: the bulk of the spectrum on a log scale (cheap: no extra solve)."""
        if self.result is None:
            return None
        x = self.result.mode_log
        if not (math.isfinite(x) and x > 0):
            x = 0.5 * float(self.result.spectrum.lambda_max)
        return x

    def effective_target(self) -> float | None:
        """``target_x`` when it is inside ``(0, 1.5 lambda_max]``, else the default target."""
        if self.result is None:
            return None
        x = self.target_x
        if x is None or not math.isfinite(x) or x <= 0 or x > 1.5 * float(self.result.spectrum.lambda_max):
            return self.default_target()
        return float(x)

    def update_trace(self) -> bool:
        """Recompute :attr:`trace` toward :meth:`effective_target` and reset :attr:`frame` to 0."""
        if self.result is None:
            return False
        x = self.effective_target()
        if x is None:
            return False
        net, gram = self.result.network, self.result.gram
        try:
            trace = compute_trace(net, x, gram)
            if len(trace.centres) == 0:
                raise ValueError("the solver returned an empty chain")
        except Exception as exc:  # noqa: BLE001
            self._fail("lilypad trace", exc)
            return False
        self._trace_net = (net, gram)
        self._frame_guard = True
        try:
            self.param.update(trace=trace, frame=0)
        finally:
            self._frame_guard = False
        return self.update_basins()

    @param.depends("frame", watch=True)
    def _frame_changed(self) -> None:
        if not self._frame_guard:
            self.update_basins()

    def update_basins(self) -> bool:
        """Recompute :attr:`basins` and :attr:`lilypad` for the current :attr:`frame` of :attr:`trace`."""
        if self.trace is None:
            return False
        k = int(min(max(self.frame, 0), len(self.trace.centres) - 1))
        net, gram = self._trace_net
        note = ""
        try:
            basins = compute_basins(net, gram, self.trace, k)
            if basins is None:
                note = NO_BASINS_NOTE
        except Exception as exc:  # noqa: BLE001 - the frame is still shown, without basins
            self._fail("Newton basins", exc)
            basins, note = None, "Newton basins could not be computed for this frame."
        self.param.update(basins=basins, lilypad=LilypadFrame(self.trace, k, basins, note))
        return basins is not None

    # -- Monte Carlo -----------------------------------------------------------------------------
    def _mc_plan(self):
        if self.result is None:
            raise ValueError("no spectrum to compare with yet")
        net = self.result.network
        sampled = net.replace(widths=scaled_widths(net.widths, self.mc_size))
        return net, sampled, self.result.gram, int(self.mc_samples), int(self.mc_seed)

    def run_monte_carlo(self) -> bool:
        """Sample networks of the current architecture (largest width ``mc_size``) synchronously."""
        try:
            net, sampled, gram, n, seed = self._mc_plan()
            t0 = time.perf_counter()
            ev = [fpcore.sample_jacobian_eigenvalues(sampled, gram=gram, seed=seed + i) for i in range(n)]
            self.mc_progress = 1.0
            self._finish_mc(net, sampled, gram, ev, n, time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001
            self._fail("Monte Carlo", exc)
            return False
        return True

    async def arun_monte_carlo(self) -> bool:
        """Like :meth:`run_monte_carlo`, one network per worker-thread call, updating :attr:`mc_progress`.

        A newer request, or a change of network while sampling, discards this one's result.
        """
        self._mc_request += 1
        request = self._mc_request
        try:
            net, sampled, gram, n, seed = self._mc_plan()
        except Exception as exc:  # noqa: BLE001
            self._fail("Monte Carlo", exc)
            return False
        self.param.update(mc_running=True, mc_progress=0.0)
        t0 = time.perf_counter()
        ev = []
        try:
            for i in range(n):
                ev.append(
                    await asyncio.to_thread(fpcore.sample_jacobian_eigenvalues, sampled, gram=gram, seed=seed + i)
                )
                if request != self._mc_request:
                    return False
                self.mc_progress = (i + 1) / n
            if self.result is None or self.result.network != net or self.result.gram != gram:
                self._inform("Monte Carlo result discarded: the network changed while sampling")
                return False
            self._finish_mc(net, sampled, gram, ev, n, time.perf_counter() - t0)
            return True
        except Exception as exc:  # noqa: BLE001
            self._fail("Monte Carlo", exc)
            return False
        finally:
            if request == self._mc_request:
                self.mc_running = False

    def _finish_mc(self, net, sampled, gram, eigenvalues, n, seconds) -> None:
        ev = np.concatenate([np.asarray(e, float).ravel() for e in eigenvalues])
        ks = float(fpcore.ks_distance(self.result.spectrum, ev))
        self.mc = MonteCarlo(net, tuple(sampled.widths), gram, ev, ks, n, seconds)

    # -- tuner (issue 3) -------------------------------------------------------------------------
    @property
    def can_tune(self) -> bool:
        return hasattr(fpcore, "tune_init")

    def tune_to_criticality(self) -> bool:
        """Set ``sigma_w2`` by :func:`fpcore.tune_init` (edge of chaos, ``sigma_b2`` kept), only when
        the target is reached and the result lies within the sliders' ranges (the params'
        soft bounds); otherwise nothing moves and the message says why (dashboard.presets)."""
        if not self.can_tune:
            self._fail("tuner", NotImplementedError("fpcore.tune_init is not available"))
            return False
        from .presets import tune_message  # dash-views: the tuner's messages and range checks

        try:
            tuned = fpcore.tune_init(self.build_network(), target="criticality")
        except Exception as exc:  # noqa: BLE001
            self._fail("tuner", exc)
            return False
        (lo, hi), (lo_b, hi_b) = self.param.sigma_w2.softbounds, self.param.sigma_b2.softbounds
        move, msg = tune_message(tuned, lo, hi, lo_b, hi_b)
        if not move:
            self._fail("", ValueError(msg))
            return False
        self.param.update(sigma_w2=round(_first(tuned.sigma_w2), 6), sigma_b2=round(_first(tuned.sigma_b2), 6))
        self._inform(msg)
        return True


def _first(v) -> float:
    return float(np.ravel(v)[0])


def _check_result(result: Result) -> None:
    s = result.spectrum
    x, rho = np.asarray(s.x, float), np.asarray(s.density, float)
    if x.size == 0 or x.shape != rho.shape:
        raise ValueError("the solver returned an empty or malformed density")
    if not (np.all(np.isfinite(rho)) and math.isfinite(float(s.atom)) and math.isfinite(float(s.lambda_max))):
        raise ValueError("the solver returned non-finite values")


_warm_up_started = threading.Event()


def warm_up_kernels() -> None:
    """Compile, or load from numba's cache, the kernels of the smooth-activation solver in a
    background thread, once per server process: in a fresh environment numba needs several
    seconds for them, which would otherwise fall on the first switch to tanh or GELU."""
    if _warm_up_started.is_set():
        return
    _warm_up_started.set()

    def run() -> None:
        try:
            fpcore.jacobian_spectrum(fpcore.Network([20, 20, 20], "gelu", sigma_w2=2.0), n_points=40)
        except Exception:  # a failed warm-up only costs time later; the app reports real errors
            logging.getLogger(__name__).warning("fpcore kernel warm-up failed", exc_info=True)

    threading.Thread(target=run, name="fpcore-warm-up", daemon=True).start()
