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
    B.prefetch(net, "JtJ", tr).join(timeout=120)
    hits = B._frame_cached.cache_info().hits
    for k in range(1, len(tr.centres)):
        B.compute_frame(net, "JtJ", tr, k)
    assert B._frame_cached.cache_info().hits - hits == len(tr.centres) - 1
