"""Newton-basin frames of the lilypad view: window, classic Newton-fractal colouring, PNG export.

One frame is the m-plane of lilypad step ``k``: :func:`fpcore.newton_basins` (compiled) for
``f_{z_k}`` on a ``BASIN_PIXELS x BASIN_PIXELS`` grid, coloured by root (Tableau 10 without its grey for the first nine
roots, then hues spaced by the golden angle, so dozens of roots stay distinguishable) and shaded by the number of Newton steps (darker
= slower), non-converged starts in dark grey. The window follows the step: it is centred on the
Newton start ``m_0`` and sized from the step itself (iterates, Kantorovich ball) and from a coarse
first pass that finds how far the basin boundary around ``m_0`` lies, so that the ball and the
boundary of its basin are both in view.

:func:`frame_png` renders a frame, with the ball, the iterates and the roots drawn into it, to PNG
bytes in pure Python (``zlib`` + ``struct``): no browser and no plotting library on the server.
"""

from __future__ import annotations

import collections
import colorsys
import functools
import itertools
import math
import os
import struct
import threading
import time
import zlib
import numpy as np

from fpcore._basins import basins_of_equation, nearest_other_start
from fpcore._equation import build_equation

from .pool import GATE

__all__ = ["BASIN_PIXELS", "PREVIEW_PIXELS", "BasinFrame", "basin_window", "compute_frame", "cached_frame", "basin_rgba", "frame_png",
           "png_bytes", "prefetch", "prefetch_hint", "cancel_prefetch", "frame_pending",
           "preview_worthwhile"]  # fmt: skip

BASIN_PIXELS = 256  # pixels per side of a frame
PREVIEW_PIXELS = 64  # pixels per side of the preview drawn first when a frame is not cached (every
# pixel is Newton from its own centre, block 1: the same checked rules, so the same colours, coarser)
PREVIEW_AFTER_S = 0.3  # ... and only for a network whose last full frame took longer than this
# (most frames take tens of ms: a preview would only delay them by its own work and round trip)
BASIN_BLOCK = 4  # preview blocks (see fpcore._basins.basins_of_equation)
MAX_ITER = 24  # Newton steps per pixel in the live view (slower starts are drawn as not converged)
ATOMS = 16  # short Gauss rules of laws of D^2 in the live view, used where their error bound allows
# (1e-10 relative; the full law elsewhere: the picture is the full law's, several times faster)
_PROBE = 48  # pixels per side of the coarse pass that locates the basin boundary
_BALL_FRACTION = 1.0 / 25.0  # the ball's radius is at least this fraction of the half-width
_CACHE = 256
THREADS = min(2, os.cpu_count() or 1)  # row slabs per frame (the kernels release the GIL)


class BasinFrame(tuple):
    """A computed frame, unpacking as ``(re, im, labels, roots)`` like ``newton_basins``' callers
    expect: pixel centres ``re``, ``im``; ``labels`` (ny, nx; -1: no convergence); ``roots``; and
    the attributes ``its`` (Newton steps per pixel) and ``rgba`` (ny, nx, uint32, row 0 at ``im[0]``)."""

    def __new__(cls, re, im, labels, roots, its, rgba, source: str = "computed"):
        self = super().__new__(cls, (re, im, labels, roots))
        self.its = its
        self.rgba = rgba
        self.source = source  # "computed" when asked for, "prefetch" when the background prefetch computed it
        return self

    re = property(lambda self: self[0])
    im = property(lambda self: self[1])
    labels = property(lambda self: self[2])
    roots = property(lambda self: self[3])


@functools.lru_cache(maxsize=16)
def _equation(net, gram: str):
    return build_equation(net, gram)


def _newton_start(trace, k: int) -> complex:
    it = np.asarray(trace.newton[k], complex).ravel()
    if it.size:
        return complex(it[0])
    return complex(trace.solutions[k - 1]) if k > 0 else complex(trace.solutions[0])


def basin_window(net, gram: str, trace, k: int) -> tuple[complex, float]:
    """Centre and half-width of the m-plane window of frame ``k``.

    Centre: the Newton start ``m_0``. The step's mark is its Kantorovich ball, or for a step
    without one (a verified chain's) the disk of twice the Newton step about ``m_0``. Half-width:
    at least 1.5 times the extent of the iterates and of the mark; beyond that, up to 1.3 times the
    distance from ``m_0`` to the nearest start that converges elsewhere (found on a coarse
    ``_PROBE`` grid), but never so wide that the mark's radius falls below 1/25 of the
    half-width (it must stay visible).
    """
    start = _newton_start(trace, k)
    sol = complex(trace.solutions[k])
    pts = np.concatenate([[start, sol], np.asarray(trace.newton[k], complex).ravel()])
    pts = pts[np.isfinite(pts)]
    spread = float(np.max(np.abs(pts - start))) if pts.size else 0.0
    ball = float(trace.m_radii[k]) if np.isfinite(trace.m_radii[k]) else 0.0
    # what must stay visible: the ball, or where the step has none (a verified chain's steps) a
    # disk twice the Newton step about the start
    mark = ball if ball > 0 else 2.0 * abs(sol - start)
    floor = 1e-12 * max(abs(start), 1e-300)
    inner = max(1.5 * spread, 1.5 * mark, floor)
    # nothing to mark (the chain's first lilypad): a window on the scale of the solution itself,
    # which is small far above the axis (m ~ mean / z)
    cap = mark / _BALL_FRACTION if mark > 0 else max(2.0 * abs(start), 1e-300)
    cap = max(cap, inner)
    # coarse pass on the widest window allowed: distance to the nearest start with another fate
    # than the root the chain follows (Newton's limit from the solution), the starts run from the
    # centre outwards and stopped at the first such one (fpcore._basins.nearest_other_start)
    eq = _equation(net, gram)
    z = complex(trace.centres[k])
    grid = np.linspace(-cap, cap, _PROBE)
    lab, roots, _ = basins_of_equation(eq, z, np.array([sol.real]), np.array([sol.imag]), MAX_ITER, 1, ATOMS)
    if lab[0, 0] >= 0:
        near = nearest_other_start(eq, z, roots[0], start.real + grid, start.imag + grid, start, MAX_ITER, ATOMS)
        boundary = min(near, cap)
    else:  # (Newton from the solution does not converge: the root nearest to it over the whole grid)
        lab, roots, _ = basins_of_equation(eq, z, start.real + grid, start.imag + grid, MAX_ITER, 1, ATOMS)
        centre_lab = int(np.argmin(np.abs(roots - sol))) if roots.size else lab[_PROBE // 2, _PROBE // 2]
        X, Y = np.meshgrid(grid, grid)
        other = lab != centre_lab
        boundary = float(np.min(np.hypot(X[other], Y[other]))) if np.any(other) else cap
    half = min(cap, max(inner, 1.3 * boundary))
    return complex(start), float(half)


_FRAMES: "collections.OrderedDict" = collections.OrderedDict()  # LRU of computed frames
_WINDOWS: "collections.OrderedDict" = collections.OrderedDict()  # LRU of windows (their coarse probe)
_CACHE_LOCK = threading.Lock()


def _lru_get(cache, key):
    with _CACHE_LOCK:
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
        return hit


def _lru_put(cache, key, value) -> None:
    with _CACHE_LOCK:
        cache[key] = value
        while len(cache) > _CACHE:
            cache.popitem(last=False)


_FRAME_SECONDS: dict = {}  # (net, gram) -> wall seconds of its last full frame (oldest first)


def preview_worthwhile(net, gram: str) -> bool:
    """Whether a frame of ``net`` not cached yet should be drawn as a coarse preview first: only
    where this network's last full frame took longer than ``PREVIEW_AFTER_S`` (a busy server, a
    deep net). Its other frames come at once, without the preview's extra work and round trip."""
    with _CACHE_LOCK:
        return _FRAME_SECONDS.get((net, gram), 0.0) > PREVIEW_AFTER_S


_ON_DEMAND = threading.Condition()  # .count: frames being computed for a page that waits for them
_ON_DEMAND.count = 0
_ON_DEMAND_WAIT_S = 2.0  # the longest a prefetch waits for them before its next frame


def _wait_for_on_demand_frames() -> None:
    """Block (at most ``_ON_DEMAND_WAIT_S``) while frames asked for by a page are computed: on two
    cores a prefetch frame beside them would take a third of their time."""
    with _ON_DEMAND:
        _ON_DEMAND.wait_for(lambda: _ON_DEMAND.count == 0, timeout=_ON_DEMAND_WAIT_S)


_IN_FLIGHT: dict = {}  # frame key -> threading.Event set when the thread computing it is done
_PREFETCH_THREAD = threading.local()  # .active: this thread is a prefetch


def _frame_cached(net, gram: str, z: complex, centre: complex, half: float, n: int, block: int) -> BasinFrame:
    """The frame of a window, from the cache, or from the thread already computing it (waited
    for: a frame asked for while the prefetch computes it is not computed twice), or computed."""
    key = (net, gram, z, centre, half, n, block)

    def compute() -> BasinFrame:
        if getattr(_PREFETCH_THREAD, "active", False):
            return _compute()
        with _ON_DEMAND:  # (the prefetch starts no new frame while a frame someone waits for is computed)
            _ON_DEMAND.count += 1
        try:
            return _compute()
        finally:
            with _ON_DEMAND:
                _ON_DEMAND.count -= 1
                _ON_DEMAND.notify_all()

    def _compute() -> BasinFrame:
        t0 = time.perf_counter()
        re = np.linspace(centre.real - half, centre.real + half, n)
        im = np.linspace(centre.imag - half, centre.imag + half, n)
        labels, roots, its = basins_of_equation(_equation(net, gram), z, re, im, MAX_ITER, block, ATOMS, THREADS)
        source = "prefetch" if getattr(_PREFETCH_THREAD, "active", False) else "computed"
        frame = BasinFrame(re, im, labels, roots, its, basin_rgba(labels, its, MAX_ITER), source)
        if n >= BASIN_PIXELS:
            with _CACHE_LOCK:
                _FRAME_SECONDS.pop((net, gram), None)
                _FRAME_SECONDS[(net, gram)] = time.perf_counter() - t0
                while len(_FRAME_SECONDS) > _CACHE:
                    del _FRAME_SECONDS[next(iter(_FRAME_SECONDS))]
        return frame

    return _once(_FRAMES, "frame", key, compute)


def _once(cache, tag: str, key, compute):
    """``cache[key]``, else the value of the thread already computing it (waited for), else
    ``compute()`` stored in ``cache``: one computation per key at a time across threads."""
    flight = (tag, key)
    mine = None
    for _ in range(3):  # (the other thread failed or its value left the cache: compute it here)
        hit = _lru_get(cache, key)
        if hit is not None:
            return hit
        with _CACHE_LOCK:
            busy = _IN_FLIGHT.get(flight)
            if busy is None:
                mine = _IN_FLIGHT[flight] = threading.Event()
                break
        busy.wait(60.0)
    try:
        value = compute()
        _lru_put(cache, key, value)
        return value
    finally:
        if mine is not None:
            with _CACHE_LOCK:
                _IN_FLIGHT.pop(flight, None)
            mine.set()


def _clear_caches() -> None:
    with _CACHE_LOCK:
        _FRAMES.clear()
        _WINDOWS.clear()


_frame_cached.cache_clear = _clear_caches  # (as functools' caches: benchmarks time uncached frames)


def _window_key(net, gram: str, trace, k: int) -> tuple:
    it = np.asarray(trace.newton[k], complex).ravel()
    ball = float(trace.m_radii[k])  # (nan: no ball; a nan in a key never equals another nan)
    return (net, gram, complex(trace.centres[k]), _newton_start(trace, k), complex(trace.solutions[k]),
            ball if math.isfinite(ball) else -1.0, tuple(complex(v) for v in it))  # fmt: skip


def _frame_key(net, gram: str, trace, k: int, n: int, block: int, compute: bool = True):
    """The frame cache's key of step ``k`` (its window computed, or None where it is not known
    yet and ``compute`` is False)."""
    wkey = _window_key(net, gram, trace, k)
    window = _lru_get(_WINDOWS, wkey)
    if window is None:
        if not compute:
            return None
        window = _once(_WINDOWS, "window", wkey, lambda: basin_window(net, gram, trace, k))
    centre, half = window
    centre = complex(float(f"{centre.real:.12g}"), float(f"{centre.imag:.12g}"))
    return (net, gram, complex(trace.centres[k]), centre, float(f"{half:.6g}"), int(n), int(block))


def compute_frame(net, gram: str, trace, k: int, n: int = BASIN_PIXELS, block: int = BASIN_BLOCK) -> BasinFrame:
    """The basin frame of lilypad step ``k`` of ``trace`` (LRU-cached per window; the window,
    found by a coarse probe, is cached too, so frames of one step at other sizes share it)."""
    k = int(min(max(int(k), 0), len(trace.centres) - 1))
    return _frame_cached(*_frame_key(net, gram, trace, k, n, block))


def cached_frame(net, gram: str, trace, k: int, n: int = BASIN_PIXELS, block: int = BASIN_BLOCK) -> BasinFrame | None:
    """The frame :func:`compute_frame` would return if it is cached already, else None (computes nothing)."""
    k = int(min(max(int(k), 0), len(trace.centres) - 1))
    key = _frame_key(net, gram, trace, k, n, block, compute=False)
    return None if key is None else _lru_get(_FRAMES, key)


def frame_pending(net, gram: str, trace, k: int, n: int = BASIN_PIXELS, block: int = BASIN_BLOCK) -> bool:
    """Whether the frame of step ``k`` is cached or being computed by another thread (the
    prefetch): :func:`compute_frame` then returns it without computing it again."""
    k = int(min(max(int(k), 0), len(trace.centres) - 1))
    key = _frame_key(net, gram, trace, k, n, block, compute=False)
    with _CACHE_LOCK:
        if key is None:  # the window is not known yet: pending where a thread computes it (the frame follows)
            return ("window", _window_key(net, gram, trace, k)) in _IN_FLIGHT
        return key in _FRAMES or ("frame", key) in _IN_FLIGHT


# --------------------------------------------------------------------------------------------
# Colours


# a qualitative palette (Tableau 10, lightened a little) for the first roots, golden-angle hues beyond
_QUALITATIVE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7",
                "#9c755f")  # fmt: skip (no grey: grey means "did not converge")


def _hue_rgb(label: int) -> tuple[float, float, float]:
    if label < len(_QUALITATIVE):
        c = _QUALITATIVE[label]
        return tuple(int(c[i: i + 2], 16) / 255.0 for i in (1, 3, 5))
    h = (0.58 + 0.381966 * label) % 1.0  # golden-angle hues: neighbours in rank differ most
    return colorsys.hsv_to_rgb(h, 0.72, 1.0)


@functools.lru_cache(maxsize=4)
def _palette(n: int) -> np.ndarray:
    return np.array([_hue_rgb(i) for i in range(n)], dtype=float)


def basin_rgba(labels: np.ndarray, its: np.ndarray, max_iter: int) -> np.ndarray:
    """Classic Newton-fractal colouring: hue by root, brightness falling with the Newton steps.

    Returns a (ny, nx) ``uint32`` array of little-endian RGBA (Bokeh's ``image_rgba`` layout).
    """
    labels = np.asarray(labels)
    nroots = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    lut = _rgba_table(nroots, int(max_iter))
    steps = np.clip(np.asarray(its), 0, int(max_iter))
    # one look-up per pixel: row nroots holds the non-converged grey (label -1)
    return lut[np.where(labels >= 0, labels, nroots), steps]


@functools.lru_cache(maxsize=64)
def _rgba_table(nroots: int, max_iter: int) -> np.ndarray:
    """``(nroots + 1, max_iter + 1)`` ``uint32`` RGBA: root ``r`` after ``s`` Newton steps (shade
    ``1 - 0.75 sqrt(s / max_iter)``), and in the last row the grey of starts that did not converge."""
    pal = _palette(max(nroots, 1))[:nroots]
    t = np.arange(max_iter + 1, dtype=float) / float(max(max_iter, 1))
    shade = 1.0 - 0.75 * np.sqrt(np.clip(t, 0.0, 1.0))
    rgb = np.empty((nroots + 1, max_iter + 1, 3), dtype=float)
    rgb[:nroots] = pal[:, None, :] * shade[None, :, None]
    rgb[nroots] = (0.25, 0.25, 0.27)
    out = np.empty((nroots + 1, max_iter + 1, 4), dtype=np.uint8)
    out[..., :3] = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
    out[..., 3] = 255
    out.setflags(write=False)
    return out.view(np.uint32).reshape(nroots + 1, max_iter + 1)


# --------------------------------------------------------------------------------------------
# PNG


def png_bytes(rgba: np.ndarray) -> bytes:
    """Encode an (h, w, 4) ``uint8`` array (row 0 at the top) as PNG (``zlib`` + ``struct``)."""
    a = np.ascontiguousarray(rgba, dtype=np.uint8)
    if a.ndim != 3 or a.shape[2] != 4:
        raise ValueError(f"rgba must have shape (h, w, 4), got {a.shape}")
    h, w = a.shape[:2]
    raw = np.concatenate([np.zeros((h, 1), np.uint8), a.reshape(h, w * 4)], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))  # fmt: skip


def _plot(img: np.ndarray, xs, ys, colour, radius: int = 0) -> None:
    h, w = img.shape[:2]
    xs = np.round(np.asarray(xs, float)).astype(np.int64)
    ys = np.round(np.asarray(ys, float)).astype(np.int64)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy > radius * radius + radius:
                continue
            x, y = xs + dx, ys + dy
            ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            img[y[ok], x[ok], :3] = colour


def frame_png(frame: BasinFrame, trace=None, k: int = 0, scale: int = 2) -> bytes:
    """PNG of a basin frame (``scale`` x upsampled), with the roots (white dots), the Kantorovich
    ball of step ``k`` (dashed white circle), the Newton iterates (black path) and the solution
    (yellow) drawn into it."""
    base = frame.rgba.view(np.uint8).reshape(frame.rgba.shape + (4,))
    img = np.repeat(np.repeat(base, scale, axis=0), scale, axis=1)[::-1].copy()  # row 0 at the top
    h, w = img.shape[:2]
    x0, x1, y0, y1 = frame.re[0], frame.re[-1], frame.im[0], frame.im[-1]

    def px(m):
        m = np.asarray(m, complex).ravel()
        return (m.real - x0) / (x1 - x0) * (w - 1), (y1 - m.imag) / (y1 - y0) * (h - 1)

    rx, ry = px(frame.roots)
    _plot(img, rx, ry, (0, 0, 0), 4)
    _plot(img, rx, ry, (255, 255, 255), 2)
    if trace is not None:
        k = int(min(max(int(k), 0), len(trace.centres) - 1))
        its = np.asarray(trace.newton[k], complex).ravel()
        start = _newton_start(trace, k)
        r = float(trace.m_radii[k])
        if math.isfinite(r) and r > 0:
            t = np.linspace(0.0, 2.0 * math.pi, 2000)
            circle = start + r * np.exp(1j * t)
            dashed = (np.floor(t / (2 * math.pi) * 48) % 2) == 0
            cx, cy = px(circle[dashed])
            _plot(img, cx, cy, (0, 0, 0), 2)
            _plot(img, cx, cy, (255, 255, 255), 1)
        if its.size > 1:
            seg = np.concatenate([np.linspace(a, b, 200) for a, b in zip(its[:-1], its[1:])])
            sx, sy = px(seg)
            _plot(img, sx, sy, (0, 0, 0), 1)
        ix, iy = px(its)
        _plot(img, ix, iy, (0, 0, 0), 3)
        sx, sy = px([complex(trace.solutions[k])])
        _plot(img, sx, sy, (0, 0, 0), 6)
        _plot(img, sx, sy, (255, 215, 0), 4)
    return png_bytes(img)


# --------------------------------------------------------------------------------------------
# Prefetch: the Player then only reads cached frames

_prefetch_lock = threading.Lock()
_prefetch_tokens: dict = {}  # owner -> the token of its newest prefetch
_prefetch_counter = itertools.count(1)


_prefetch_shown: dict = {}  # owner -> the step its Player shows (prefetch_hint)


def prefetch_hint(owner, k: int) -> None:
    """``owner``'s Player now shows step ``k``: its prefetch goes on with the first frame after
    ``k`` not computed yet (the Player steps forward), not with frames already passed."""
    with _prefetch_lock:
        _prefetch_shown[owner] = int(k)


def prefetch(net, gram: str, trace, start: int = 1, owner=None, shown: int | None = None) -> threading.Thread:
    """Compute the frames of ``trace`` from ``start`` on in a daemon thread (filling the frame
    cache), so that playing the chain only reads cached frames: always the first frame after the
    step shown (:func:`prefetch_hint`) that is not cached, until every frame is. A newer call of
    the same ``owner`` (a session) supersedes an older one, as does :func:`cancel_prefetch`: the
    older thread stops at its next frame. (Other owners' prefetches go on.) Frames it computes
    carry ``source == "prefetch"``. ``shown``: the step the Player shows now (default ``start - 1``)."""
    with _prefetch_lock:
        token = next(_prefetch_counter)
        _prefetch_tokens[owner] = token
        _prefetch_shown[owner] = int(start) - 1 if shown is None else int(shown)
    nk = len(trace.centres)

    def run() -> None:
        _PREFETCH_THREAD.active = True
        done = np.zeros(nk, dtype=bool)
        done[: max(int(start), 0)] = True  # (frames before start are not asked for)
        for _ in range(nk):
            GATE.wait()  # every session's density first (dashboard.pool.DensityFirst)
            with _prefetch_lock:
                if _prefetch_tokens.get(owner) != token:
                    return
                shown = _prefetch_shown.get(owner, int(start) - 1)
            ahead = [j for j in range(shown + 1, nk) if not done[j]]
            todo = ahead or [j for j in range(nk) if not done[j]]
            if not todo:
                return
            k = todo[0]
            done[k] = True
            _wait_for_on_demand_frames()
            try:
                compute_frame(net, gram, trace, k)
            except Exception:  # noqa: BLE001 - the frame reports its own failure when shown
                return

    t = threading.Thread(target=run, name="basin-prefetch", daemon=True)
    t.start()
    return t


def cancel_prefetch(owner=None) -> None:
    """Stop ``owner``'s prefetch at its next frame (its solver view was closed, or it left)."""
    with _prefetch_lock:
        _prefetch_tokens.pop(owner, None)
        _prefetch_shown.pop(owner, None)
