"""Basin frames of the lilypad view: the window follows the step (ball and basin boundary in view),
windows scale with tiny spectra, frames are prefetched for the Player."""

from __future__ import annotations

import numpy as np
import pytest

import fpcore
from dashboard import basins as B
from dashboard import views


@pytest.fixture(scope="module")
def relu_trace():
    net = fpcore.Network([200] * 9, "relu", sigma_w2=2.0)
    s = fpcore.jacobian_spectrum(net, n_points=60)
    return net, fpcore.lilypad_trace(net, float(s.quantile(0.7)))


def test_window_shows_the_ball_and_the_basin_boundary(relu_trace):
    net, tr = relu_trace
    K = len(tr.centres)
    for k in range(1, K):
        f = B.compute_frame(net, "JtJ", tr, k)
        half = 0.5 * (f.re[-1] - f.re[0])
        start = B._newton_start(tr, k)
        ball = float(tr.m_radii[k])
        assert f.labels.shape == (256, 256) and f.rgba.shape == (256, 256)
        # the ball is inside the window and not smaller than 1/25 of it (visible)
        assert abs(start.real - 0.5 * (f.re[0] + f.re[-1])) + ball <= half * (1 + 1e-9)
        assert ball >= half / 25 * (1 - 1e-9)
        # the start's basin is the root the chain follows; when the window is narrower than its
        # cap, another basin shows (the boundary is in view)
        centre = f.labels[128, 128]
        assert centre >= 0
        if half < ball * 25 * 0.999:
            assert np.any(f.labels != centre)


def test_a_verified_chain_shows_no_kantorovich_ball():
    """GELU's chain is verified by residuals, not Kantorovich-tested: the m-plane draws no dashed
    ball, the caption claims none, and the window still keeps the Newton step in view (its mark,
    twice the step, at least 1/25 of the half-width) and is found in the cache when asked again."""
    net = fpcore.Network([200] * 7, "gelu", sigma_w2=2.0)
    tr = fpcore.lilypad_trace(net, float(fpcore.jacobian_spectrum(net, n_points=40).quantile(0.6)))
    assert tr.verified and not tr.certified
    k = len(tr.centres) // 2
    f = B.compute_frame(net, "JtJ", tr, k)
    m = views.mplane_data(tr, k, f)
    assert m["ball"]["r"].size == 0 and m["ball"]["x"].size == 0
    cap = views.frame_caption(tr, k, basins_drawn=True)
    assert "Kantorovich ball" in cap and "not by a Kantorovich ball" in cap and "dashed ball" not in cap
    start, sol = B._newton_start(tr, k), complex(tr.solutions[k])
    half = 0.5 * (f.re[-1] - f.re[0])
    assert 1.5 * abs(sol - start) <= half * (1 + 1e-9) and 2.0 * abs(sol - start) >= half / 25 * (1 - 1e-9)
    # (a nan radius in the window's cache key would never match: the frame is cached)
    assert B.cached_frame(net, "JtJ", tr, k) is f


def test_zplane_window_scales_with_tiny_spectra():
    """GELU L = 100 puts the target near 1e-41: the window follows the chain, not +-1e-9."""
    net = fpcore.Network([200] * 101, "gelu", sigma_w2=2.0)
    x = float(fpcore.jacobian_spectrum(net, n_points=60).quantile(0.75))
    assert x < 1e-20
    tr = fpcore.lilypad_trace(net, x)
    for k in (len(tr.centres) // 2, len(tr.centres) - 1):
        x0, y0, x1, y1 = views.zplane_window(tr, k)
        c = complex(tr.centres[k])
        assert x0 < c.real < x1 and y0 < c.imag < y1
        assert x1 - x0 <= 4 * max(abs(c.imag), float(tr.radii[k]), x) * 1.2  # not a fixed 2e-9 window
        assert x1 - x0 >= x  # and the target is not a dot in an empty plane


def test_prefetch_fills_the_frame_cache(relu_trace):
    net, tr = relu_trace
    B._frame_cached.cache_clear()
    assert B.cached_frame(net, "JtJ", tr, 1) is None  # (asking computes nothing)
    B.prefetch(net, "JtJ", tr).join(timeout=120)
    for k in range(1, len(tr.centres)):
        hit = B.cached_frame(net, "JtJ", tr, k)
        assert hit is not None and B.compute_frame(net, "JtJ", tr, k) is hit
        assert hit.source == "prefetch" and B.frame_pending(net, "JtJ", tr, k)
    B._frame_cached.cache_clear()
    assert B.compute_frame(net, "JtJ", tr, 0).source == "computed"


def test_prefetch_goes_on_after_the_step_shown(relu_trace):
    """After prefetch_hint(k) the prefetch computes the frames after k first (the Player steps
    forward), then the ones it skipped."""
    net, tr = relu_trace
    K = len(tr.centres)
    assert K >= 4
    B._frame_cached.cache_clear()
    order = []
    real = B.compute_frame

    def spy(net_, gram, trace, k, *a, **kw):
        order.append(k)
        return real(net_, gram, trace, k, *a, **kw)

    B.compute_frame = spy
    try:
        B.prefetch(net, "JtJ", tr, owner="spy", shown=K - 3).join(timeout=120)
    finally:
        B.compute_frame = real
        B.cancel_prefetch("spy")
    assert order[:2] == [K - 2, K - 1] and sorted(order) == list(range(1, K))


def test_a_value_in_flight_is_waited_for_not_computed_twice():
    """A frame (or window) asked for while another thread (the prefetch) computes it is taken
    from that thread: computed once."""
    import collections
    import threading
    import time

    cache, calls, out = collections.OrderedDict(), [], []
    gate = threading.Event()

    def slow():
        calls.append(1)
        gate.wait(10)
        return object()

    first = threading.Thread(target=lambda: out.append(B._once(cache, "test", "key", slow)))
    first.start()
    deadline = time.monotonic() + 10
    while ("test", "key") not in B._IN_FLIGHT and time.monotonic() < deadline:
        time.sleep(0.005)
    second = threading.Thread(target=lambda: out.append(B._once(cache, "test", "key", slow)))
    second.start()
    time.sleep(0.05)
    gate.set()
    first.join(10)
    second.join(10)
    assert len(calls) == 1 and len(out) == 2 and out[0] is out[1]
    assert ("test", "key") not in B._IN_FLIGHT


def test_preview_is_the_same_window_with_the_full_law_s_colours():
    """The preview drawn first (PREVIEW_PIXELS per side, every pixel Newton from its own centre)
    covers the frame's window, and every preview pixel has the root that Newton with the full laws
    (no short rules) reaches from that point: the same colours as the 256 x 256 frame, coarser.
    GELU (laws of over a thousand atoms), at an early step (the slow frames) and the last."""
    net = fpcore.Network([300] * 11, "gelu", sigma_w2=2.0)
    tr = fpcore.lilypad_trace(net, float(fpcore.jacobian_spectrum(net, n_points=60).quantile(0.5)))
    eq = B._equation(net, "JtJ")
    for k in (1, len(tr.centres) - 1):
        small = B.compute_frame(net, "JtJ", tr, k, n=B.PREVIEW_PIXELS, block=1)
        full = B.compute_frame(net, "JtJ", tr, k)
        assert small.labels.shape == (B.PREVIEW_PIXELS, B.PREVIEW_PIXELS)
        assert (small.re[0], small.re[-1], small.im[0], small.im[-1]) == (full.re[0], full.re[-1], full.im[0],
                                                                          full.im[-1])  # fmt: skip
        lab, roots, _ = B.basins_of_equation(eq, complex(tr.centres[k]), small.re, small.im, B.MAX_ITER, 1, 0)
        want = np.full(lab.shape, np.nan + 0j)
        want[lab >= 0] = roots[lab[lab >= 0]]
        got = np.full(lab.shape, np.nan + 0j)
        got[small.labels >= 0] = small.roots[small.labels[small.labels >= 0]]
        same = (np.isnan(want) & np.isnan(got)) | (np.abs(want - got) <= 1e-6 * np.abs(want))
        assert np.all(same), k
        assert np.mean(small.labels >= 0) > 0.5
        for i, j in ((0, 0), (-1, -1), (0, -1), (-1, 0)):  # pixels both grids share: the same root
            a, b = small.labels[i, j], full.labels[i, j]
            assert (a < 0) == (b < 0) and (a < 0 or abs(small.roots[a] - full.roots[b]) <= 1e-6 * abs(full.roots[b]))


def test_rgba_table_gives_the_classic_colouring():
    """The per-(root, steps) colour table equals the colouring written out: the root's hue times
    ``1 - 0.75 sqrt(steps / max_iter)``, rounded to bytes; grey where Newton did not converge."""
    rng = np.random.default_rng(3)
    for nroots in (0, 1, 4, 30):
        labels = rng.integers(-1, nroots, (40, 50)) if nroots else np.full((40, 50), -1)
        its = rng.integers(0, 25, (40, 50))
        got = B.basin_rgba(labels, its, 24).view(np.uint8).reshape(40, 50, 4)
        pal = B._palette(max(nroots, 1))
        rgb = np.where((labels >= 0)[..., None], pal[np.maximum(labels, 0)], (0.25, 0.25, 0.27))
        shade = np.where(labels >= 0, 1.0 - 0.75 * np.sqrt(its / 24.0), 1.0)
        want = np.clip(np.round(rgb * shade[..., None] * 255.0), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(got[..., :3], want)
        assert np.all(got[..., 3] == 255)


def test_preview_only_after_a_slow_full_frame(relu_trace):
    """A frame not cached goes straight to the full frame unless this network's last full frame
    took longer than PREVIEW_AFTER_S (then a coarse preview is drawn first)."""
    net, tr = relu_trace
    other = fpcore.Network([100] * 4, "tanh")
    B._frame_cached.cache_clear()
    B.compute_frame(net, "JtJ", tr, 1)
    assert (net, "JtJ") in B._FRAME_SECONDS
    assert B.preview_worthwhile(net, "JtJ") == (B._FRAME_SECONDS[(net, "JtJ")] > B.PREVIEW_AFTER_S)
    assert not B.preview_worthwhile(other, "JtJ")  # (no frame of it yet)
    B._FRAME_SECONDS[(other, "JtJ")] = 2 * B.PREVIEW_AFTER_S
    assert B.preview_worthwhile(other, "JtJ") and not B.preview_worthwhile(other, "JJt")
    del B._FRAME_SECONDS[(other, "JtJ")]


def test_prefetch_waits_while_a_frame_asked_for_is_computed(relu_trace, monkeypatch):
    """The prefetch starts no frame while a page waits for one being computed (on two cores it
    would take a third of that frame's time); it goes on once that frame is done."""
    import time

    net, tr = relu_trace
    B._frame_cached.cache_clear()
    monkeypatch.setattr(B, "_ON_DEMAND_WAIT_S", 30.0)
    with B._ON_DEMAND:
        B._ON_DEMAND.count += 1  # (a frame asked for, being computed)
    try:
        t = B.prefetch(net, "JtJ", tr, owner="waits")
        time.sleep(0.5)
        assert all(B.cached_frame(net, "JtJ", tr, k) is None for k in range(1, len(tr.centres)))
    finally:
        with B._ON_DEMAND:
            B._ON_DEMAND.count -= 1
            B._ON_DEMAND.notify_all()
    t.join(timeout=120)
    B.cancel_prefetch("waits")
    assert all(B.cached_frame(net, "JtJ", tr, k) is not None for k in range(1, len(tr.centres)))
    assert B._ON_DEMAND.count == 0
    B.compute_frame(net, "JtJ", tr, 0)  # (an on-demand frame leaves the count as it found it)
    assert B._ON_DEMAND.count == 0


def test_the_legend_lists_the_ball_only_while_one_is_drawn(relu_trace):
    """The m-plane's legend entry *Kantorovich ball* shows with ReLU's certified chain and is
    hidden with GELU's verified one (no ball drawn there)."""
    from dashboard.plots import MPlanePlot

    plot = MPlanePlot()
    net, tr = relu_trace
    plot.update(views.mplane_data(tr, 1, B.compute_frame(net, "JtJ", tr, 1)))
    assert plot.ball_item.visible and len(plot.ball_src.data["r"]) == 1
    g = fpcore.Network([200] * 7, "gelu", sigma_w2=2.0)
    gt = fpcore.lilypad_trace(g, float(fpcore.jacobian_spectrum(g, n_points=40).quantile(0.6)))
    plot.update(views.mplane_data(gt, 1, B.compute_frame(g, "JtJ", gt, 1)))
    assert not plot.ball_item.visible and len(plot.ball_src.data["r"]) == 0
    plot.update(views.mplane_data(tr, 2, B.compute_frame(net, "JtJ", tr, 2)))
    assert plot.ball_item.visible
