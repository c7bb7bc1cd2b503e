"""Teacher's tools: presets (each checked against what its sentence claims), default variances,
download names, the CSV with the Monte Carlo sample, pin-and-compare, depth animation, basin PNG."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

import fpcore
from dashboard import basins as B
from dashboard import compare, presets
from dashboard.state import DashboardState, MonteCarlo, compute_spectrum


@pytest.fixture()
def state():
    return DashboardState(depth=3, base_width=60, n_points=60)


@pytest.mark.parametrize("key", list(presets.PRESETS))
def test_each_preset_sets_the_network_its_sentence_describes(state, key):
    p = presets.PRESETS[key]
    text = presets.apply_preset(state, key)
    assert text == p.sentence and len(text) > 40 and state.error == ""
    net = state.result.network
    assert {a.name for a in net.activations} == {p.params["activation"]}
    s = state.result.spectrum
    if key == "he_relu":
        assert net.sigma_w2[0] == 2.0 and s.mean == pytest.approx(1.0, rel=1e-9)  # sigma_w2 E[D^2] = 1
    if key == "orthogonal_tanh_edge":
        assert net.init == "orthogonal" and net.q0 == "fixed_point"
        np.testing.assert_allclose(fpcore.mean_field(net).chi, 1.0, atol=1e-5)
    if key == "selu":
        assert fpcore.mean_field(net.replace(q0="fixed_point")).q[0] == pytest.approx(1.0, abs=1e-3)
    if key == "tapered_mlp":
        assert net.widths == (784, 512, 256, 128, 64, 10)
        assert s.atom >= 1 - 10 / 784 - 1e-12
    if key == "bottleneck":
        assert min(net.widths) == pytest.approx(net.widths[0] / 4, rel=0.05)
    if key == "deep_linear":
        L = net.depth  # Fuss-Catalan edge (L+1)^(L+1) / L^L (MATH.md section 6)
        assert s.lambda_max == pytest.approx((L + 1) ** (L + 1) / L**L, rel=1e-6)
        assert s.lambda_max == pytest.approx(math.e * (L + 1), rel=0.02)


def test_choosing_an_activation_sets_its_usual_variance_in_one_update(state):
    calls = []
    state.param.watch(lambda e: calls.append(e.new), "result")
    presets.choose_activation(state, "tanh")
    assert state.activation == "tanh" and state.sigma_w2 == 1.0 and len(calls) == 1
    presets.choose_activation(state, "relu")
    assert state.sigma_w2 == 2.0
    state.slope = 0.2
    presets.choose_activation(state, "leaky_relu")
    assert state.sigma_w2 == pytest.approx(2 / 1.04, abs=0.01)
    for act in fpcore.ACTIVATIONS:
        v = presets.default_sigma_w2(act)
        lo, hi = state.param.sigma_w2.softbounds
        assert lo <= v <= hi, act


def test_download_names_carry_the_configuration():
    net = fpcore.Network([400] * 11, "relu", sigma_w2=2.0)
    assert presets.download_name(net, "spectrum", "csv") == "spectrum_relu_L10_w400_sw2-2.0.csv"
    net = fpcore.Network([784, 512, 10], "leaky_relu:0.2", sigma_w2=1.5, sigma_b2=0.1, q0="fixed_point")
    name = presets.download_name(net, "metrics", "json", gram="JJt")
    assert name == "metrics_leaky_relu0.2_L2_w784-512-10_sw2-1.5_sb2-0.1_qstar_JJt.json"
    long = fpcore.Network([100 + i for i in range(40)], "tanh", sigma_w2=1.0)
    assert len(presets.download_name(long, "spectrum", "csv")) < 80


def test_csv_keeps_the_monte_carlo_sample(state):
    r = state.result
    ev = np.linspace(0.0, 3.0, 1000)
    mc = MonteCarlo(r.network, tuple(r.network.widths), r.gram, ev, 0.01, 2, 0.1)
    text = presets.spectrum_csv_with_sample(r, mc)
    lines = text.splitlines()
    assert lines[1] == "x,density,cdf,mc_eigenvalue" and "1000 eigenvalues" in lines[0]
    rows = [ln.split(",") for ln in lines[2:]]
    assert len(rows) == max(len(r.spectrum.x), 1000) and all(len(row) == 4 for row in rows)
    np.testing.assert_allclose(sorted(float(row[3]) for row in rows if row[3]), ev)
    # a sample of another network is not attached
    other = MonteCarlo(r.network.replace(sigma_w2=1.0), (), r.gram, ev, 0.0, 1, 0.0)
    assert "mc_eigenvalue" in presets.spectrum_csv_with_sample(r, other)
    assert all(ln.endswith(",") for ln in presets.spectrum_csv_with_sample(r, other).splitlines()[2:])


def test_pin_and_compare_up_to_four(state):
    panel = compare.ComparePanel(state)
    labels = []
    for sw in (1.5, 2.0, 2.5, 3.0, 3.5):
        state.sigma_w2 = sw
        assert panel.pin()
        labels.append(panel.pins[-1].label)
    assert len(panel.pins) == compare.MAX_PINS and [p.label for p in panel.pins] == labels[1:]
    p = panel.pins[-1]
    s = state.result.spectrum
    assert p.metrics["mean"] == pytest.approx(s.mean) and p.metrics["median"] == pytest.approx(s.quantile(0.5))
    assert p.metrics["λ_max"] == pytest.approx(s.lambda_max)
    assert all(len(panel.srcd[i].data["x"]) > 0 for i in range(4))
    table = panel.table.object
    assert table.count("\n") == 1 + len(p.metrics) and "sw2-3.5" in table
    panel.pin()  # pinning the same network again does not duplicate it
    assert len(panel.pins) == 4 and len({q.label for q in panel.pins}) == 4
    panel.clear()
    assert panel.pins == [] and len(panel.srcd[0].data["x"]) == 0


def test_depth_animation_frames_follow_depth(state):
    anim = compare.DepthAnimation(state, lambda net, gram: compute_spectrum(net, gram, 60), max_depth=6)
    for L in (2, 4, 6):
        anim.player.value = L
        r = anim.frame(L)
        assert r.network.depth == L and len(set(r.network.widths)) == 1
        assert len(anim.src.data["x"]) > 0 and f"L = {L}" in anim.status.object
    # ReLU, sigma_w2 = 2: the mean stays 1 at every depth while lambda_max grows
    lm = [anim.frame(L).spectrum.lambda_max for L in (1, 3, 6)]
    assert np.all(np.diff(lm) > 0)
    anim.precompute()
    anim._thread.join(timeout=60)
    assert not anim._thread.is_alive()


def test_basin_png_is_a_valid_image_with_several_colours(state):
    state.frame = 1
    f = state.lilypad
    frame = f.basins
    assert frame.rgba.shape == (256, 256) and frame.labels.shape == (256, 256)
    png = B.frame_png(frame, f.trace, f.k)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    PIL = pytest.importorskip("PIL.Image")
    img = PIL.open(io.BytesIO(png))
    assert img.size == (512, 512) and img.mode == "RGBA"
    # colour by root: labels with distinct hues
    lab = np.array([[0, 1], [2, -1]])
    rgba = B.basin_rgba(lab, np.zeros((2, 2), int), 24).view(np.uint8).reshape(2, 2, 4)
    colours = {tuple(rgba[i, j, :3]) for i in range(2) for j in range(2)}
    assert len(colours) == 4
    # shading: more Newton steps, darker
    dark = B.basin_rgba(np.zeros((1, 2), int), np.array([[1, 20]]), 24).view(np.uint8).reshape(1, 2, 4)
    assert dark[0, 1, :3].sum() < dark[0, 0, :3].sum()
