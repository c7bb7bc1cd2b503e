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
import warnings
import os
import queue
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import param

import fpcore

from .pool import GATE, Dropped, FairThreadPool, Job, ProcessPool, TimedOut

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
    "warm_up_kernels",
    "RANGES",
    "X_FROM",
    "JobRunner",
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

# Ranges of the page's controls (slider ends): values from a shared link are clamped to these.
RANGES = {
    "depth": (1, 100),
    "base_width": (10, 2000),
    "ratio": (1.0, 8.0),
    "slope": (0.0, 0.9),
    "sigma_w2": (0.1, 6.0),
    "sigma_b2": (0.0, 2.0),
    "q0": (0.05, 10.0),
    "n_points": (50, 5000),
    "mc_size": (20, 1500),
    "mc_samples": (1, 10),
}

#: Left end of the log lambda axis: "auto" starts at the solver's grid; the others extend the axis
#: (the curve left of the grid is dF/d ln(lambda) of the exact CDF).
X_FROM = ("auto", "1e-12", "1e-24", "1e-48")

GRAMS = {"JtJ": "JᵀJ", "JJt": "JJᵀ"}

#: ``FPCORE_DASHBOARD_TIMING=1``: write a line ``TIMING <epoch ms> <step>`` to stderr at each step
#: of a density update (benchmarks/bench_dashboard.py --server-timing splits the latency with it).
_TIMING = os.environ.get("FPCORE_DASHBOARD_TIMING", "") not in ("", "0")


def timing_mark(step: str) -> None:
    """Record ``step`` of a density update (only with ``FPCORE_DASHBOARD_TIMING=1``)."""
    if _TIMING:
        import sys

        sys.stderr.write(f"TIMING {time.time() * 1000:.2f} {step}\n")
        sys.stderr.flush()


_SPECTRUM_CACHE_SIZE = 32
_TRACE_CACHE_SIZE = 32
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
    """One cache entry: the spectrum, the mean field and the numbers derived from them.

    Every number shown (deciles, CDF, hidden mass) comes from the :class:`fpcore.Spectrum` itself,
    never from the plotting grid. They are computed lazily and once; in the server
    :meth:`prepare` runs them in a worker thread before the page reads them.
    """

    def __init__(self, spectrum, mean_field, seconds, certified: bool = True):
        self.spectrum, self.mean_field, self.seconds = spectrum, mean_field, seconds
        self.timed_out = ""  # why the details were stopped, if they were (not asked again)
        self._lock = threading.Lock()
        self._left: dict = {}
        # False while the spectrum is only verified (``jacobian_spectrum(..., certify=False)``)
        # and its certificate is still to run (:func:`certify_computed`)
        self.certified = bool(certified)
        self.certificate_seconds = 0.0
        self._cert_lock = threading.Lock()

    @property
    def stats(self):
        """The solver statistics shown: the certified run's once it is done."""
        return self.spectrum.stats

    @functools.cached_property
    def cdf_grid(self) -> np.ndarray:
        s = self.spectrum
        return np.clip(np.asarray(s.cdf(np.asarray(s.x, float)), float), 0.0, 1.0)

    @functools.cached_property
    def deciles(self) -> np.ndarray:
        """``Spectrum.deciles``: each decile solved on the exact CDF (0 inside the atom)."""
        return np.asarray(self.spectrum.deciles, float)

    @functools.cached_property
    def fraction_above_1(self) -> float:
        return float(np.asarray(self.spectrum.fraction_above(1.0)))

    @functools.cached_property
    def mean(self) -> float:
        return float(self.spectrum.mean)

    @functools.cached_property
    def variance(self) -> float:
        """``Spectrum.variance``: a contour integral, seconds for smooth activations (about 9 s for
        a GELU net of depth 10, against 0.4 s for its deciles); computed by its own job, after the
        deciles."""
        return float(self.spectrum.variance)

    @property
    def prepared(self) -> bool:
        """True once the CDF-derived numbers are computed (reading them then costs nothing)."""
        return all(k in self.__dict__ for k in ("cdf_grid", "deciles", "fraction_above_1", "mean"))

    @property
    def variance_ready(self) -> bool:
        return "variance" in self.__dict__

    def prepare(self) -> "_Computed":
        """Compute the CDF on the grid, the deciles, ``P(lambda > 1)`` and the mean (slow for deep
        nets: call off the loop). The variance has its own job (``moments_task``)."""
        with self._lock:
            self.cdf_grid, self.deciles, self.fraction_above_1, self.mean  # noqa: B018 - computes the cached values
        return self

    def left_of(self, lo: float, x_from: float | None = None) -> dict:
        """Mass left of the log axis (atom included) and, for ``x_from < lo``, the curve ``lambda rho``
        on ``[x_from, lo]`` from finite differences of the exact CDF in ``ln lambda``.

        ``lo`` is the automatic left end (:func:`log_axis_start`); the axis starts at ``x_from`` when
        that is smaller. Returns ``dict(lo, mass, atom, x, y, uncertified)`` where ``mass`` is the
        mass left of the axis's start; cached per ``(lo, x_from)``.
        """
        key = (float(lo), None if x_from is None else float(x_from))
        with self._lock:
            if key in self._left:
                return self._left[key]
        s = self.spectrum
        lo = float(lo)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mass = float(np.asarray(s.cdf(lo))) if lo > 0 else float(s.atom)
            x = y = np.zeros(0)
            if x_from is not None and 0 < x_from < lo:
                edges = np.geomspace(float(x_from), lo, 61)
                F = np.maximum.accumulate(np.asarray(s.cdf(edges), float))
                x = np.sqrt(edges[:-1] * edges[1:])
                y = np.diff(F) / np.diff(np.log(edges))
                mass = float(F[0])  # what is still left of the extended axis
        out = dict(lo=lo, mass=min(max(mass, 0.0), 1.0), atom=float(s.atom), x=x, y=y,
                   uncertified=any("certified" in str(w.message) for w in caught))  # fmt: skip
        with self._lock:
            self._left[key] = out
        return out


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


class _LRU:
    """A small thread-safe LRU cache that can be asked whether it holds a key (``peek``)."""

    def __init__(self, size: int):
        self.size, self._data, self._lock = size, {}, threading.Lock()
        self.hits = self.misses = 0

    def peek(self, key):
        with self._lock:
            value = self._data.pop(key, None)
            if value is not None:
                self._data[key] = value  # most recent last
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._data.pop(key, None)
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.pop(next(iter(self._data)))


_SPECTRA = _LRU(_SPECTRUM_CACHE_SIZE)


def _spectrum_cached(net, gram, n_points, certify: bool = True) -> tuple[_Computed, bool]:
    """The cache entry of ``(net, gram, n_points)`` and whether it was cached. ``certify=False``
    computes a missing entry without the joint certificate (``jacobian_spectrum(...,
    certify=False)``: a non-rational network's density in a fraction of the time); the entry is
    then marked uncertified until :func:`certify_computed` runs. ``certify=True`` certifies an
    uncertified cached entry first."""
    key = (net, gram, int(n_points))
    c = _SPECTRA.peek(key)
    if c is not None:
        _SPECTRA.hits += 1
        if certify and not c.certified:
            certify_computed(c)
        return c, True
    _SPECTRA.misses += 1
    t0 = time.perf_counter()
    spectrum = fpcore.jacobian_spectrum(net, gram=gram, n_points=int(n_points), certify=bool(certify))
    mf = fpcore.mean_field(net)
    st = spectrum.stats
    # the certificate can add something only where points are verified and none certified
    # (non-rational equations; rational ones are certified by their continuation either way)
    c = _Computed(spectrum, mf, time.perf_counter() - t0,
                  certified=certify or not (st.n_certified == 0 and st.n_verified > 0))
    c.n_points = int(n_points)  # what rebuilds it in a worker process (details_task)
    _SPECTRA.put(key, c)
    return c, False


def certify_computed(c: _Computed) -> bool:
    """Run the joint certificate for the uncertified cache entry ``c`` (in a worker: the
    certificate is most of a smooth network's solve time) and put the certified spectrum in it.

    The certificate only checks the solutions, so the density and CDF are the verified call's
    (to rounding). Returns True when the certified density differs from the one shown (by more
    than 1e-12 relative): the caller then draws the new one. Each entry is certified once (a second
    caller waits for the first).
    """
    with c._cert_lock:
        if c.certified:
            return False
        old = c.spectrum
        t0 = time.perf_counter()
        new = fpcore.jacobian_spectrum(old.network, gram=old.gram, n_points=int(c.n_points))
        c.certificate_seconds = time.perf_counter() - t0
        a, b = np.asarray(old.density, float), np.asarray(new.density, float)
        differs = a.shape != b.shape or not np.allclose(a, b, rtol=1e-12, atol=1e-12 * float(np.max(np.abs(b), initial=0.0)))
        differs = differs or old.atom != new.atom or old.lambda_max != new.lambda_max
        with c._lock:
            if differs:  # (values derived from the verified spectrum are recomputed from the new one)
                for name in ("cdf_grid", "deciles", "fraction_above_1", "mean", "variance"):
                    c.__dict__.pop(name, None)
                c._left.clear()
            c.spectrum = new
            c.certified = True
        return differs


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
        """``Spectrum.deciles`` (computed once per spectrum)."""
        return self.computed.deciles if self.computed is not None else np.asarray(self.spectrum.deciles, float)

    @property
    def fraction_above_1(self) -> float:
        """``P(lambda > 1)`` of the spectrum (computed once per spectrum)."""
        if self.computed is not None:
            return self.computed.fraction_above_1
        return float(np.asarray(self.spectrum.fraction_above(1.0)))

    @property
    def prepared(self) -> bool:
        """True when the CDF-derived numbers are ready (see :meth:`_Computed.prepare`)."""
        return self.computed is None or self.computed.prepared

    @property
    def certificate_pending(self) -> bool:
        """True while the spectrum is verified but its joint certificate has not run yet."""
        return self.computed is not None and not self.computed.certified

    @property
    def stats(self):
        """The solver statistics to show: the certified run's once its certificate is done."""
        return self.computed.stats if self.computed is not None else self.spectrum.stats

    @property
    def mode_log(self) -> float:
        """Where ``x rho(x)`` peaks: the most likely scale of an eigenvalue (a point inside the bulk)."""
        x, rho = np.asarray(self.spectrum.x, float), np.asarray(self.spectrum.density, float)
        w = np.where((x > 0) & np.isfinite(rho), x * rho, -np.inf)
        return float(x[int(np.argmax(w))]) if x.size else math.nan


def compute_spectrum(net, gram: str = "JtJ", n_points: int = 250, certify: bool = True) -> Result:
    """Spectrum and mean field of ``net`` (LRU-cached per ``(network, gram, n_points)``);
    ``certify=False``: see :func:`_spectrum_cached` (``Result.certificate_pending`` says so)."""
    c, hit = _spectrum_cached(net, gram, n_points, certify)
    return Result(net, gram, c.spectrum, c.mean_field, c.seconds, hit, c)


def cached_spectrum(net, gram: str = "JtJ", n_points: int = 250) -> Result | None:
    """The cached :class:`Result` of ``(net, gram, n_points)``, or None (computes nothing)."""
    c = _SPECTRA.peek((net, gram, int(n_points)))
    return None if c is None else Result(net, gram, c.spectrum, c.mean_field, c.seconds, True, c)


def log_axis_start(spectrum) -> float:
    """Left end of the automatic log lambda axis: below the smallest grid point with positive density."""
    x = np.asarray(spectrum.x, float)
    lmax = float(spectrum.lambda_max)
    hi = lmax if math.isfinite(lmax) and lmax > 0 else (float(x.max()) if x.size else 1.0)
    pos = x[(x > 0) & (np.asarray(spectrum.density, float) > 0)]
    lo = float(pos.min()) if pos.size else hi * 1e-6
    return max(lo, hi * 1e-14) / 1.5


@functools.lru_cache(maxsize=_TRACE_CACHE_SIZE)
def compute_trace(net, x: float, gram: str = "JtJ"):
    """The recorded lilypad chain toward ``x + 0i`` (LRU-cached)."""
    return fpcore.lilypad_trace(net, float(x), gram=gram)


def compute_basins(net, gram: str, trace, k: int, n: int | None = None):
    """The basin frame of lilypad step ``k`` (:func:`dashboard.basins.compute_frame`): a
    ``BasinFrame`` whose first four fields are ``(re, im, labels, roots)``, or None for ``n = 0``."""
    n = basin_grid(net) if n is None else n
    if n <= 0:
        return None
    from . import basins as _basins  # dash-views: compiled basins, RGBA frames, PNG export

    return _basins.compute_frame(net, gram, trace, k, n=int(n))


PREVIEW_NOTE = "Basins: a coarse preview; the full frame follows."


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
# Off the event loop


# Workers shared by every session of a server process (dashboard.pool). fpcore's compiled kernels
# release the GIL (numba ``nogil=True``), so worker threads compute in parallel on the cores while
# the event loop keeps serving every session. The pools run the most urgent job first (a density
# before a lilypad chain before the Evidence marker), so in a classroom every student's density
# comes before anyone's secondary views; among equally urgent jobs the session served longest ago
# goes first, and one session never runs more than one job per lane: a slow network occupies at
# most one worker thread for its density and one for its chain, never the whole pool. The slow
# kinds of job (exact deciles and CDF, the Evidence metrics: quantiles can take minutes on an
# awkward network) run in worker processes from picklable inputs (the network's parameters), so
# a job past its time limit, superseded, or of a closed session is really stopped.
PRIORITY = {"spectrum": 0, "certificate": 1, "basins": 1, "trace": 1, "tune": 1, "details": 2, "phase": 2, "variance": 3, "pin": 3,
            "evidence": 3}

_THREADS = FairThreadPool(max(3, min(4, (os.cpu_count() or 2) + 1)))
_PROCESSES = ProcessPool(max(2, min(4, os.cpu_count() or 2)), preload=("dashboard._worker_preload",))
_POOL = _THREADS  # (name kept for callers that wait on the pool)


def pools_idle() -> bool:
    """True when no job waits or runs in the shared pools."""
    return _THREADS.idle() and _PROCESSES.idle()


def network_args(net) -> dict:
    """Keyword arguments rebuilding ``net`` (picklable: ``fpcore.Network`` itself holds lambdas).

    Examples
    --------
    >>> net = fpcore.Network([20, 30, 20], "leaky_relu:0.1", sigma_w2=2.0, q0="fixed_point")
    >>> fpcore.Network(**network_args(net)) == net
    True
    """
    specs = [a.spec for a in net.activations]
    if not all(isinstance(x, str) for x in specs):
        raise ValueError("network_args: every activation must be named by a string spec")
    return dict(widths=list(net.widths), activation=specs, sigma_w2=list(net.sigma_w2), sigma_b2=list(net.sigma_b2),
                init=net.init, q0=net.q0)  # fmt: skip


def details_task(args: dict, gram: str, n_points: int, lo: float | None, x_from: float | None) -> dict:
    """In a worker process: the CDF-derived numbers of the spectrum of ``Network(**args)`` (see
    :meth:`_Computed.prepare` and :meth:`_Computed.left_of`); ``lo=None`` skips the axis mass."""
    c, _ = _spectrum_cached(fpcore.Network(**args), gram, n_points)
    c.prepare()
    left = c.left_of(lo, x_from) if lo is not None else None
    return dict(cdf_grid=c.cdf_grid, deciles=c.deciles, fraction_above_1=c.fraction_above_1, mean=c.mean, left=left,
                key=None if lo is None else (float(lo), None if x_from is None else float(x_from)))  # fmt: skip


def _apply_details(c: "_Computed", out: dict) -> None:
    """Store what :func:`details_task` computed in the server's cache entry ``c``."""
    with c._lock:
        for name in ("cdf_grid", "deciles", "fraction_above_1", "mean"):
            c.__dict__.setdefault(name, out[name])
        if out["key"] is not None:
            c._left.setdefault(out["key"], out["left"])


def variance_task(args: dict, gram: str, n_points: int) -> float:
    """In a worker process: ``Spectrum.variance`` of the spectrum of ``Network(**args)``."""
    c, _ = _spectrum_cached(fpcore.Network(**args), gram, n_points)
    return c.variance


#: Jobs of these kinds start only after the session has been quiet this long (seconds): nobody
#: waits for them, and during a burst of slider moves they would only take the cores.
DELAYED = {"evidence": 1.5}

#: Seconds after which a computation is reported as overdue (the page keeps the last good result).
TIME_LIMIT = 20.0


class _Job:
    __slots__ = ("seq", "kind", "fn", "task", "done", "fail", "slow", "label", "t0", "timer", "overdue", "waited")

    def __init__(self, seq, kind, fn, done, fail, slow, label, task=None):
        self.seq, self.kind, self.fn, self.done, self.fail, self.slow, self.label = seq, kind, fn, done, fail, slow, label
        self.task = task
        self.t0, self.timer, self.overdue, self.waited = 0.0, None, False, False


class JobRunner:
    """Runs one session's computations in the shared workers, "latest wins".

    Per kind of job (``"spectrum"``, ``"details"``, ``"trace"``, ...) at most one runs; a newer
    request waits and replaces any older waiting one, and only the result of the newest request of
    a kind is delivered (older ones still fill the caches). A request superseded before a worker
    reaches it is dropped unrun. Results and errors come back through ``call_soon(fn)``, which must
    run ``fn`` on the session's event loop (thread-safe).

    A job given as a picklable ``task = (function, args)`` runs in a worker process: past
    ``time_limit`` seconds it is stopped and fails with :class:`dashboard.pool.TimedOut`, and it is
    stopped as soon as it is superseded or the session closes (:meth:`close`). A job given only as
    a callable runs in a worker thread, which cannot be stopped: still running ``time_limit``
    seconds after it started, it calls ``on_overdue(label, seconds)`` once.

    Parameters
    ----------
    call_soon : callable
        ``call_soon(fn)`` schedules ``fn()`` on the session's loop; callable from any thread.
    call_later : callable, optional
        ``call_later(seconds, fn)`` on the loop (for time limits); None: no time limit.
    on_busy : callable, optional
        ``on_busy(n)`` with the number of jobs running or waiting, on the loop.
    on_overdue : callable, optional
        ``on_overdue(label, seconds)`` when a thread job passes its time limit.
    gone : callable, optional
        ``gone()`` is True once nobody looks at the session any more (its page closed: the server
        keeps the session some seconds longer). Its waiting jobs are then dropped and its running
        worker-process jobs stopped, as by :meth:`close`; callable from any thread.

    Examples
    --------
    >>> got = threading.Event()
    >>> runner = JobRunner(call_soon=lambda fn: fn())   # a real app passes the session's loop
    >>> runner.submit("spectrum", lambda: 6 * 7, done=lambda v: got.set(), fail=print)
    >>> got.wait(5)
    True
    """

    def __init__(self, call_soon, call_later=None, on_busy=None, on_overdue=None, time_limit: float = TIME_LIMIT,
                 gone=None):  # fmt: skip
        self._call_soon, self._call_later = call_soon, call_later
        self._gone = gone
        self._on_busy, self._on_overdue = on_busy, on_overdue
        self.time_limit = float(time_limit)
        self._lock = threading.Lock()
        self._running: dict = {}
        self._waiting: dict = {}
        self._latest: dict = {}
        self._seq = 0
        self.closed = False
        self._held: frozenset = frozenset()
        self._on_hold: list = []

    def hold(self, kinds) -> None:
        """Start no job of these kinds until :meth:`release` (queued, latest wins as ever): a new
        page holds its secondary views' work while the browser draws the spectrum."""
        self._held = frozenset(kinds)

    def release(self) -> None:
        """Start the jobs held back by :meth:`hold` (on the loop)."""
        self._held, jobs, self._on_hold = frozenset(), self._on_hold, []
        for job in jobs:
            self._start(job)

    @property
    def n_pending(self) -> int:
        return len(self._running) + len(self._waiting)

    def submit(self, kind: str, fn, done, fail, slow: bool = False, label: str = "", task: tuple | None = None) -> None:
        """Run ``fn()`` in a worker thread, or ``task`` in a worker process; ``done(value)`` or
        ``fail(exc)`` later on the loop, if still the newest."""
        if self.closed:
            return
        with self._lock:
            self._seq += 1
            job = _Job(self._seq, kind, fn, done, fail, slow, label or kind, task)
            self._latest[kind] = job.seq
            start = kind not in self._running
            if start:
                self._running[kind] = job
            else:
                self._waiting[kind] = job  # replaces an older waiting request: it will never run
        if kind == "spectrum":
            GATE.set(self, True)  # other sessions' secondary work waits for this density
        if start and kind == "spectrum":
            # The density is what the user waits for: into the pool at once (a next-tick hop cost
            # about 25 ms on a loaded machine; the worker's solver releases the GIL).
            self._start(job)
        elif start:
            # Started on the loop's next tick: what the current callback changed (the density of
            # the previous job, say) goes out to the browser before a worker competes for the GIL.
            self._deliver(lambda: self._start(job))
        self._busy()

    def supersede(self, kind: str) -> None:
        """Drop the waiting request of ``kind`` and ignore (or stop) the running one."""
        with self._lock:
            self._seq += 1
            self._latest[kind] = self._seq
            self._waiting.pop(kind, None)
        self._busy()

    def close(self) -> None:
        """The session is gone: drop its waiting jobs and stop its running worker-process jobs."""
        self.closed = True
        with self._lock:
            self._waiting.clear()
        GATE.set(self, False)
        _THREADS.forget(self)
        _PROCESSES.forget(self)

    def is_latest(self, kind: str, seq: int) -> bool:
        return self._latest.get(kind) == seq

    def _live(self, job: _Job) -> bool:
        return not self.closed and self.is_latest(job.kind, job.seq) and not self.abandoned()

    def abandoned(self) -> bool:
        """Whether the session's page is gone (see ``gone``); its jobs are then no longer wanted."""
        if self._gone is None:
            return False
        try:
            return bool(self._gone())
        except Exception:  # noqa: BLE001 - a session being torn down
            return False

    def _start(self, job: _Job) -> None:
        if not self._live(job):  # superseded while it waited for this tick
            self._skip(job)
            return
        if job.kind in self._held:
            self._on_hold.append(job)
            return
        delay = DELAYED.get(job.kind, 0.0)
        if delay > 0 and self._call_later is not None and not getattr(job, "waited", False):
            job.waited = True
            try:
                self._call_later(delay, lambda: self._start(job))
                return
            except Exception:  # noqa: BLE001 - no timer: start now
                pass
        job.t0 = time.monotonic()
        timing_mark(f"job-start:{job.kind}")
        priority = PRIORITY.get(job.kind, 3 if job.slow else 1)
        live = functools.partial(self._live, job)
        if job.task is not None:
            fut = _PROCESSES.submit(Job(self, priority, task=job.task, live=live, time_limit=self.time_limit))
        else:
            lane = "spectrum" if job.kind == "spectrum" else "main"
            fut = _THREADS.submit(Job(self, priority, fn=job.fn, lane=lane, live=live))
            if self._call_later is not None and self.time_limit > 0:
                try:
                    job.timer = self._call_later(self.time_limit, lambda: self._check_overdue(job))
                except Exception:  # noqa: BLE001 - a session being torn down: no timer
                    job.timer = None
        fut.add_done_callback(lambda f: self._deliver(lambda: self._finished(job, f)))

    def _skip(self, job: _Job) -> None:
        """A job superseded before it started: finish it without running it."""
        fut: Future = Future()
        fut.set_exception(Dropped())
        self._finished(job, fut)

    def _deliver(self, fn) -> None:
        if self.closed:
            return
        try:
            self._call_soon(fn)
        except Exception:  # noqa: BLE001 - the session is gone: nobody to deliver to
            self.closed = True

    def _check_overdue(self, job: _Job) -> None:
        with self._lock:
            running = self._running.get(job.kind) is job
        if running and self.is_latest(job.kind, job.seq) and not job.overdue:
            job.overdue = True
            if self._on_overdue is not None:
                self._on_overdue(job.label, time.monotonic() - job.t0)

    def _finished(self, job: _Job, fut) -> None:
        with self._lock:
            if self._running.get(job.kind) is job:
                del self._running[job.kind]
            nxt = self._waiting.pop(job.kind, None)
            if nxt is not None:
                self._running[job.kind] = nxt
        if nxt is not None:
            self._deliver(lambda: self._start(nxt))
        exc = fut.exception()
        if _TIMING and job.t0:
            timing_mark(f"job-end:{job.kind}:{time.monotonic() - job.t0:.2f}s:{type(exc).__name__ if exc else 'ok'}")
        try:
            if self.is_latest(job.kind, job.seq) and not isinstance(exc, Dropped):
                try:
                    if exc is not None:
                        job.fail(exc)
                    else:
                        job.done(fut.result())
                finally:
                    self._busy()
            else:
                self._busy()
        finally:
            if job.kind == "spectrum":
                with self._lock:
                    more = "spectrum" in self._running or "spectrum" in self._waiting
                if not more:  # (after the density is drawn: its patch goes out as this callback returns)
                    GATE.set(self, False)

    def _busy(self) -> None:
        if _TIMING:
            with self._lock:
                timing_mark(f"busy:{id(self):x}:" + (",".join(sorted(set(self._running) | set(self._waiting))) or "-"))
        if self._on_busy is not None:
            self._on_busy(self.n_pending)


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
URL_PARAMETERS = _CONTROLS + ("x_scale", "x_from", "target_x", "mc_size", "mc_samples")


_LABELS = {
    "depth": "depth L", "base_width": "base width N₀", "ratio": "profile ratio", "slope": "leaky ReLU slope",
    "sigma_w2": "σ_w²", "sigma_b2": "σ_b²", "q0": "input variance q₀", "n_points": "grid points",
    "mc_size": "Monte Carlo width", "mc_samples": "networks sampled", "custom_widths": "custom widths",
    "target_x": "target x",
}  # fmt: skip


def url_overrides(query: dict) -> tuple[dict, list[str]]:
    """Control values from a URL query (``{"depth": 30, ...}``), validated and clamped to the controls.

    Returns ``(params, changes)``: values that can be set (numbers clamped to :data:`RANGES`, the
    slider ends), and one message per value that was changed or dropped (unknown names are
    ignored). Applying them when the state is built avoids computing the default network first
    and the shared one after.

    Examples
    --------
    >>> url_overrides({"depth": "201", "sigma_w2": "-1", "activation": "nope", "other": 1})
    ({'depth': 100, 'sigma_w2': 0.1}, ['depth L 201 → 100 (range 1–100)', 'σ_w² -1 → 0.1 (range 0.1–6)', "activation 'nope' is not one of the choices: kept relu"])
    """
    params, changes = {}, []
    for name, value in query.items():
        if name not in URL_PARAMETERS:
            continue
        p = DashboardState.param[name]
        label = _LABELS.get(name, name)
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = value[0]
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if value is None and p.allow_None:
            params[name] = None
            continue
        if isinstance(p, param.Selector):
            if value in p.objects:
                params[name] = value
            else:
                changes.append(f"{label} {value!r} is not one of the choices: kept {p.default}")
            continue
        if name == "custom_widths":
            try:
                parse_widths(str(value))
                params[name] = str(value)
            except ValueError as exc:
                changes.append(f"{_message(exc)}: kept {p.default}")
            continue
        if isinstance(p, (param.Integer, param.Number)):
            try:
                v = float(json.loads(value) if isinstance(value, str) else value)
            except (TypeError, ValueError):
                v = math.nan
            if not math.isfinite(v):
                changes.append(f"{label} {value!r} is not a number: kept {p.default if p.default is not None else 'the default'}")
                continue
            if name == "target_x":
                if v > 0:
                    params[name] = v
                else:
                    changes.append(f"{label} {value!r} must be positive: the default target is used")
                continue
            new = v
            if name in RANGES:
                lo, hi = RANGES[name]
                new = min(max(v, lo), hi)
            if isinstance(p, param.Integer):
                new = int(round(new))
            if new != v:
                lo, hi = RANGES.get(name, (None, None))
                where = f" (range {lo:g}–{hi:g})" if lo is not None else ""
                changes.append(f"{label} {_fmt_number(value)} → {new:g}{where}")
            try:
                p._validate(new)
            except Exception:  # noqa: BLE001 - reported, not raised
                changes.append(f"{label} {value!r} is not a valid value")
                continue
            params[name] = new
            continue
        changes.append(f"{label} {value!r} is not a valid value")
    return params, changes


def _fmt_number(value) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return repr(value)


def _message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, NotImplementedError):
        return f"not supported by fpcore yet: {text}"
    if isinstance(exc, ValueError):
        return text
    return f"{type(exc).__name__}: {text}"


class DashboardState(param.Parameterized):
    """Controls and results of the Jacobian-spectrum explorer.

    Set any control and :attr:`result` follows (at once without a runner; with a
    :class:`JobRunner`, as in the served app, from a worker thread, newest request wins);
    :attr:`details` (exact deciles, CDF, hidden mass), :attr:`trace` (the lilypad chain toward
    ``target_x``) and :attr:`basins` (the m-plane picture of :attr:`frame`) follow :attr:`result`. A failure keeps the previous values, sets :attr:`error` and increments
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
    solver_visible = param.Boolean(True, doc="Whether the lilypad views are shown. While False no chain or basin "
                                   "frame is computed (a served page's solver tab is closed); set True, the chain "
                                   "of the current result is computed then.")
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
    # -- off the event loop ------------------------------------------------------------------
    busy = param.Integer(0, doc="Computations running or waiting for this session (the page shows a spinner).")
    x_from = param.Selector(objects=list(X_FROM), default="auto", label="Log λ axis from")
    details = param.Parameter(None, doc="The Result whose CDF-derived numbers (deciles, ...) are ready, or None.")
    left = param.Parameter(None, doc="Mass left of the log axis (dict from _Computed.left_of), or None.")
    details_note = param.String("", doc="Why the current result's details are missing (e.g. stopped at the time limit).")
    variance = param.Parameter(None, doc="The Result whose variance is ready, or None.")
    variance_note = param.String("", doc="Why the current result's variance is missing (e.g. stopped at the time limit).")
    certified = param.Parameter(None, doc="The Result whose joint certificate has run (its stats are the certified "
                                "run's), or None. A served page first shows a smooth network's density verified "
                                "only (``Result.certificate_pending``) and certifies it in the background.")

    def __init__(
        self,
        scheduler: Callable[[Callable[[], None]], None] | None = None,
        runner: JobRunner | None = None,
        **params,
    ):
        # runner: computations go to worker threads (the served app); None computes at once.
        # scheduler(fn) runs fn later (defers the lilypad work when there is no runner); None: at once.
        self._scheduler = scheduler
        self._runner = runner
        self._mc_request = 0
        self._trace_pending = False
        self._frame_guard = False
        self._trace_net = None
        self._trace_stale = False
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
    def run(self, kind: str, fn, done, fail=None, slow: bool = False, label: str = "", task: tuple | None = None) -> None:
        """Compute ``fn()`` and hand the value to ``done`` (or the exception to ``fail``).

        With a :class:`JobRunner` (the served app) ``fn`` runs in a worker thread, at most one job
        per ``kind`` at a time, and only the newest request's outcome is delivered, on the
        session's event loop; without one it runs at once. ``fail`` defaults to reporting the
        error under ``label`` (the last good values stay). ``task = (function, args)``, picklable
        and computing the same as ``fn``, runs in a worker process instead (stopped at the time limit).
        """
        label = label or kind
        if fail is None:
            def fail(exc):
                self._fail(label, exc)
        if self._runner is None:
            try:
                value = fn()
            except Exception as exc:  # noqa: BLE001 - any failure becomes a message
                fail(exc)
                return
            done(value)
            return
        self._runner.submit(kind, fn, done, fail, slow=slow, label=label, task=task)

    @param.depends(*_CONTROLS, watch=True)
    def update(self) -> bool:
        """Recompute :attr:`result` from the controls; False (and :attr:`error` set) on failure.

        A cached spectrum is applied at once; otherwise, in the served app, it is computed in a
        worker thread and True means "requested".
        """
        if getattr(self, "_depth_only", False):
            return True
        timing_mark("event")
        try:
            net = self.build_network()
        except Exception as exc:  # noqa: BLE001 - any bad input becomes a message, never a crash
            self._fail("", exc)
            return False
        gram, n_points = self.gram, int(self.n_points)
        hit = cached_spectrum(net, gram, n_points)
        if hit is not None and self._runner is not None:
            self._runner.supersede("spectrum")  # an older request still running must not land after this
        if hit is not None or self._runner is None:
            try:
                result = hit if hit is not None else compute_spectrum(net, gram, n_points)
                _check_result(result)
            except Exception as exc:  # noqa: BLE001 - solver failures are reported, the last plot stays
                self._fail("spectrum", exc)
                return False
            self._set_result(result)
            return True

        def job():
            timing_mark("compute-start")
            # the density first, verified; its certificate is a job of its own (_set_result)
            result = compute_spectrum(net, gram, n_points, certify=False)
            _check_result(result)
            timing_mark("compute-end")
            return result

        self.run("spectrum", job, self._set_result, label="spectrum")
        return True

    def show_depth(self, depth: int) -> None:
        """Set :attr:`depth` to the custom width list's L (for display) without recomputing."""
        self._depth_only = True
        try:
            self.depth = int(depth)
        finally:
            self._depth_only = False

    def _set_result(self, result: Result) -> None:
        timing_mark("deliver")
        net, gram = result.network, result.gram
        mc = self.mc if self.mc is not None and self.mc.network == net and self.mc.gram == gram else None
        # (the notes were about the previous result's details)
        pending = result.certificate_pending
        self.param.update(result=result, error="", mc=mc, details_note="", variance_note="",
                          certified=None if pending else result)
        if pending:
            self._certify(result)
        elif self._runner is not None and "certificate" in self._runner._latest:
            self._runner.supersede("certificate")  # (an older result's certificate must not land)

    def _certify(self, r: Result) -> None:
        """Certify ``r``'s spectrum in a worker (after every session's density: priority of the
        secondary views) and set :attr:`certified`; should the certified density differ from the
        verified one shown, the new spectrum becomes :attr:`result`."""
        c = r.computed

        def done(differs):
            if self.result is not r:
                return
            if differs:
                self._set_result(Result(r.network, r.gram, c.spectrum, r.mean_field, r.seconds, r.cached, c))
            else:
                self.certified = r

        def fail(exc):
            self._fail("certificate", exc)

        self.run("certificate", lambda: certify_computed(c), done, fail, label="certificate")

    @param.depends("result", "x_scale", "x_from", watch=True)
    def update_details(self) -> None:
        """Compute what needs the exact CDF (deciles, ``P(lambda > 1)``, mass left of the log axis)
        and set :attr:`details` (and :attr:`left`) when it is ready."""
        r = self.result
        if r is None:
            return
        log_x = self.x_scale == "log"
        x_from = None if self.x_from == "auto" else float(self.x_from)

        c = r.computed if r.computed is not None else _Computed(r.spectrum, r.mean_field, r.seconds)
        lo = float(log_axis_start(r.spectrum)) if log_x else None

        def job():
            c.prepare()
            return c.left_of(lo, x_from) if log_x else None

        def done(left):
            if self.result is r:
                self.param.update(details=r, left=left, details_note="")

        def done_task(out):
            _apply_details(c, out)
            done(c.left_of(lo, x_from) if log_x else None)

        def fail(exc):
            if isinstance(exc, TimedOut):
                c.timed_out = str(exc)
            if self.result is r:
                self.details_note = f"Deciles and CDF: {_message(exc)}."
            self._fail("deciles and CDF", exc)

        if self._runner is not None and c.prepared:
            key = (lo, x_from)
            if not log_x or key in c._left:  # all computed already (a cache hit): no round trip
                self._runner.supersede("details")
                done(c._left[key] if log_x else None)
                return
        if self._runner is not None and getattr(c, "timed_out", ""):  # stopped before: not again
            self._runner.supersede("details")
            self.details_note = f"Deciles and CDF: {c.timed_out}."
            return
        try:
            task = (details_task, (network_args(r.network), r.gram, c.n_points, lo, x_from))
        except (ValueError, AttributeError):
            task = None
        if task is not None and self._runner is not None:
            self.run("details", job, done_task, fail, label="deciles and CDF", task=task)
        else:
            self.run("details", job, done, fail, label="deciles and CDF")

    @param.depends("result", watch=True)
    def update_variance(self) -> None:
        """Compute ``Spectrum.variance`` (its own job, after the deciles: seconds for smooth
        activations) and set :attr:`variance` when it is ready."""
        r = self.result
        if r is None:
            return
        c = r.computed
        if c is None or c.variance_ready:
            if self._runner is not None:
                self._runner.supersede("variance")
            self.param.update(variance=r, variance_note="")
            return
        if self._runner is not None and getattr(c, "variance_stopped", ""):  # stopped before: not again
            self._runner.supersede("variance")
            self.variance_note = c.variance_stopped
            return

        def done(_value):
            if self.result is r:
                self.param.update(variance=r, variance_note="")

        def done_task(value):
            c.__dict__.setdefault("variance", float(value))
            done(value)

        def fail(exc):
            if isinstance(exc, TimedOut):
                c.variance_stopped = str(exc)
            if self.result is r:
                self.variance_note = _message(exc)
            self._fail("variance", exc)

        try:
            task = (variance_task, (network_args(r.network), r.gram, c.n_points)) if self._runner is not None else None
        except (ValueError, AttributeError):
            task = None
        if task is not None:
            self.run("variance", lambda: c.variance, done_task, fail, label="variance", task=task)
        else:
            self.run("variance", lambda: c.variance, done, fail, label="variance")

    @param.depends("result", "target_x", watch=True)
    def _result_changed(self) -> None:
        if not self.solver_visible:  # nobody looks at the chain: computed when the view is shown
            self._trace_stale = True
            if self._runner is not None:
                self._runner.supersede("trace")
                self._runner.supersede("basins")
            return
        if self._scheduler is None or self._runner is not None:
            self.update_trace()
        elif not self._trace_pending:
            self._trace_pending = True
            self._scheduler(self._deferred_trace)

    @param.depends("solver_visible", watch=True)
    def _solver_shown(self) -> None:
        if not self.solver_visible:
            return
        if self._trace_stale or self.trace is None:
            self._trace_stale = False
            self._result_changed()
        elif self.lilypad is None or self.lilypad.trace is not self.trace or self.lilypad.k != self.frame:
            self.update_basins()

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

        def job():
            trace = compute_trace(net, x, gram)
            if len(trace.centres) == 0:
                raise ValueError("the solver returned an empty chain")
            return trace

        ok = []

        def done(trace):
            self._trace_net = (net, gram)
            self._frame_guard = True
            try:
                self.param.update(trace=trace, frame=0)
            finally:
                self._frame_guard = False
            ok.append(self.update_basins())

        self.run("trace", job, done, label="lilypad trace")
        return bool(ok and ok[0]) if self._runner is None else True

    @param.depends("frame", watch=True)
    def _frame_changed(self) -> None:
        if not self._frame_guard and self.solver_visible:
            self.update_basins()

    def update_basins(self) -> bool:
        """Recompute :attr:`basins` and :attr:`lilypad` for the current :attr:`frame` of :attr:`trace`."""
        if self.trace is None:
            return False
        trace = self.trace
        k = int(min(max(self.frame, 0), len(trace.centres) - 1))
        net, gram = self._trace_net
        ok = []

        def done(basins):
            note = NO_BASINS_NOTE if basins is None else ""
            # (bench_dashboard: computed when asked for, or by the prefetch: ready, or waited for)
            src = getattr(basins, "source", "none")
            timing_mark(f"basin-frame-{src}" + ("" if src != "prefetch" else "-ready" if ready else "-waited"))
            self.param.update(basins=basins, lilypad=LilypadFrame(trace, k, basins, note))
            ok.append(basins is not None)

        def fail(exc):  # the frame is still shown, without basins
            self._fail("Newton basins", exc)
            note = "Newton basins could not be computed for this frame."
            self.param.update(basins=None, lilypad=LilypadFrame(trace, k, None, note))

        n = basin_grid(net)
        if n <= 0:  # nothing to compute: show the frame at once
            done(None)
            return False
        from . import basins as _basins

        preview = _basins.PREVIEW_PIXELS
        _basins.prefetch_hint(id(self), k)  # (the session's prefetch goes on after this step)
        ready = _basins.cached_frame(net, gram, trace, k, n=n) is not None
        if (self._runner is not None and n > preview and not _basins._equation(net, gram).rational
                and not _basins.frame_pending(net, gram, trace, k, n=n)
                and _basins.preview_worthwhile(net, gram)):  # fmt: skip
            # Served, not cached, not being prefetched and this network's last full frame slow
            # (dashboard.basins.PREVIEW_AFTER_S): a PREVIEW_PIXELS preview first (every pixel its
            # own Newton run, the same checked rules: the same colours, coarser), then the full
            # frame as the next job of the same kind (a newer step supersedes it). Otherwise (most
            # frames: tens of ms; rational equations always) straight to the full frame.
            def done_preview(basins):
                self.param.update(basins=basins, lilypad=LilypadFrame(trace, k, basins, PREVIEW_NOTE))
                self.run("basins", lambda: compute_basins(net, gram, trace, k), done, fail, label="Newton basins")

            self.run("basins", lambda: _basins.compute_frame(net, gram, trace, k, n=preview, block=1), done_preview,
                     fail, label="Newton basins")  # fmt: skip
        else:
            self.run("basins", lambda: compute_basins(net, gram, trace, k), done, fail, label="Newton basins")
        return bool(ok and ok[0])

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
        loop = asyncio.get_running_loop()
        steps = n * (sampled.depth + 1)  # each weight matrix, and each network's SVD

        def show(done: int) -> None:  # on the loop; at most ~100 updates per run
            if request == self._mc_request and (done == steps or done / steps >= self.mc_progress + 0.01):
                self.mc_progress = done / steps

        try:
            for i in range(n):
                # Progress per matrix, not per network: the sampler reports each layer from its
                # worker thread; the bar moves on the loop (to_thread copies this task's context).
                def tick(k: int, _total: int, base: int = i * (sampled.depth + 1)) -> None:
                    loop.call_soon_threadsafe(show, base + k)

                ev.append(
                    await asyncio.to_thread(fpcore.sample_jacobian_eigenvalues, sampled, gram=gram, seed=seed + i,
                                            progress=tick)  # fmt: skip
                )
                if request != self._mc_request:
                    return False
            if self.result is None or self.result.network != net or self.result.gram != gram:
                self._inform("Monte Carlo result discarded: the network changed while sampling")
                return False
            spectrum = self.result.spectrum
            ks = await asyncio.to_thread(_ks, spectrum, ev)  # the exact CDF at every eigenvalue: off the loop
            if request != self._mc_request:
                return False
            if self.result is None or self.result.network != net or self.result.gram != gram:
                self._inform("Monte Carlo result discarded: the network changed while sampling")
                return False
            self._finish_mc(net, sampled, gram, ev, n, time.perf_counter() - t0, ks=ks)
            return True
        except Exception as exc:  # noqa: BLE001
            self._fail("Monte Carlo", exc)
            return False
        finally:
            if request == self._mc_request:
                self.mc_running = False

    def _finish_mc(self, net, sampled, gram, eigenvalues, n, seconds, ks: float | None = None) -> None:
        ev = np.concatenate([np.asarray(e, float).ravel() for e in eigenvalues])
        ks = _ks(self.result.spectrum, eigenvalues) if ks is None else ks
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
            net = self.build_network()
        except Exception as exc:  # noqa: BLE001
            self._fail("tuner", exc)
            return False
        ok = []

        def done(tuned):
            (lo, hi), (lo_b, hi_b) = self.param.sigma_w2.softbounds, self.param.sigma_b2.softbounds
            move, msg = tune_message(tuned, lo, hi, lo_b, hi_b)
            if not move:
                self._fail("", ValueError(msg))
                return
            self.param.update(sigma_w2=round(_first(tuned.sigma_w2), 6), sigma_b2=round(_first(tuned.sigma_b2), 6))
            self._inform(msg)
            ok.append(True)

        self.run("tune", lambda: fpcore.tune_init(net, target="criticality"), done, label="tuner")
        return bool(ok) if self._runner is None else True


def _ks(spectrum, eigenvalues) -> float:
    ev = np.concatenate([np.asarray(e, float).ravel() for e in eigenvalues])
    return float(fpcore.ks_distance(spectrum, ev))


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
_warm_up_done = threading.Event()


def _warm_up() -> None:
    """One small instance of every computation the page runs, so numba compiles its kernels (or
    loads them from its cache next to the sources) and every import happens now."""
    log = logging.getLogger(__name__)
    t0 = time.perf_counter()
    try:  # the worker processes load their kernels (in the fork server) while this process does
        _PROCESSES.start()
    except Exception:  # noqa: BLE001 - retried on the first task
        log.warning("dashboard worker processes did not start", exc_info=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny warm-up nets: uncertified points do not matter here
        _warm_up_nets(log)
        try:
            DashboardState()  # the default page: spectrum, deciles and chain cached for the first visitor
        except Exception:  # noqa: BLE001
            log.warning("dashboard warm-up of the default page failed", exc_info=True)
    if not _PROCESSES.ready(120.0):
        log.warning("dashboard worker processes are not ready after the warm-up")
    log.info("fpcore kernels ready in %.1f s", time.perf_counter() - t0)


def _warm_up_nets(log) -> None:
    # a tapered net too: rectangular layers take kernels (and signatures) square ones never call,
    # which compiled inside a user's first slider move (2.9 s for the tapered tanh MLP at σ_w² 1.05)
    for net in (fpcore.Network([20, 20, 20], "relu", sigma_w2=2.0), fpcore.Network([20, 20, 20], "gelu", sigma_w2=2.0),
                fpcore.Network([20, 20, 20], "tanh", sigma_w2=1.0, init="orthogonal"),
                fpcore.Network([60, 50, 40, 30, 20, 10], "tanh", sigma_w2=1.05),
                # leaky ReLU solves on sheets (its own kernels): 10 s of compiling in a first move
                fpcore.Network([20, 20, 20], "leaky_relu", sigma_w2=2.0),
                fpcore.Network([60, 50, 40, 30, 20, 10], "leaky_relu", sigma_w2=2.0)):  # fmt: skip
        try:
            r = compute_spectrum(net, "JtJ", 40)
            r.computed.prepare()
            r.computed.left_of(log_axis_start(r.spectrum), 1e-12)
            trace = compute_trace(net, r.mode_log, "JtJ")  # (inside the bulk: a tapered net's atom holds 3/4 of the mass)
            if basin_grid(net) > 0:
                compute_basins(net, "JtJ", trace, min(1, len(trace.centres) - 1))
        except Exception:  # a failed warm-up only costs time later; the app reports real errors
            log.warning("fpcore kernel warm-up failed for %r", net, exc_info=True)
    # The compiled walk from far above on a tapered net's contour rules (complex nodes): none of
    # the nets above takes it, a point just below the lower edge of some tapered nets does (the
    # mass-below-the-grid check of the tanh MLP 300-200-120-80-40-10 at σ_w² 1 compiled it inside
    # its first request). Two points walked with those rules compile it.
    try:
        from fpcore import _lilypad
        from fpcore._equation import build_equation

        eq = build_equation(fpcore.Network([60, 50, 40, 30, 20, 10], "tanh", sigma_w2=1.05), "JtJ")
        _lilypad._solve_general_rules(eq, np.array([0.3, 0.6]) * eq.mean + 0j, 1.0, False, 200, short_rules=False)
    except Exception:  # noqa: BLE001
        log.warning("fpcore kernel warm-up of the contour-rule walk failed", exc_info=True)


def warm_up_kernels(wait: bool = False, timeout: float = 600.0) -> bool:
    """Compile, or load from numba's cache, every kernel the page uses, once per process.

    The served app calls this with ``wait=True`` from ``panel serve --setup dashboard/warmup.py``
    (the ``fpcore-dashboard`` command does), which runs before the server accepts requests: the
    first page is then as fast as the tenth. With ``wait=False`` it runs in a background thread.
    Returns True when the warm-up has finished.
    """
    if not _warm_up_started.is_set():
        _warm_up_started.set()

        def run() -> None:
            try:
                _warm_up()
            finally:
                _warm_up_done.set()

        threading.Thread(target=run, name="fpcore-warm-up", daemon=True).start()
    if wait:
        _warm_up_done.wait(timeout)
    return _warm_up_done.is_set()
