"""Pure view functions of the dashboard (and the Bokeh figures they feed), without a server."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

import fpcore
from dashboard import plots, views
from dashboard.state import DashboardState, MonteCarlo, compute_basins, compute_spectrum, compute_trace


@pytest.fixture(scope="module")
def result():
    return compute_spectrum(fpcore.Network([100] * 6), "JtJ", 150)


@pytest.fixture(scope="module")
def mc(result):
    ev = fpcore.sample_jacobian_eigenvalues(result.network.replace(widths=[60] * 6), seed=1)
    return MonteCarlo(result.network, (60,) * 6, "JtJ", ev, fpcore.ks_distance(result.spectrum, ev), 1, 0.1)


@pytest.fixture(scope="module")
def trace(result):
    return compute_trace(result.network, result.mode_log, "JtJ")


def _shape(d):
    """The structure of a data dict: keys, nested keys, and column names (not lengths)."""
    return {k: (sorted(v) if isinstance(v, dict) else type(v).__name__) for k, v in d.items()}


@pytest.mark.parametrize("log_x", [True, False])
def test_density_data_structure_is_fixed(result, mc, log_x):
    shapes = {repr(_shape(views.density_data(r, m, log_x, t)))
              for r, m, t in [(None, None, None), (result, None, 1.0), (result, mc, None)]}  # fmt: skip
    assert len(shapes) == 1


def test_density_on_log_axis_is_x_rho(result):
    d = views.density_data(result, log_x=True)
    x, rho = np.asarray(result.spectrum.x), np.asarray(result.spectrum.density)
    keep = x > 0
    np.testing.assert_allclose(d["curve"]["x"], x[keep])
    np.testing.assert_allclose(d["curve"]["y"], x[keep] * rho[keep])
    lo, hi = d["x_range"]
    assert 0 < lo < hi and hi >= result.spectrum.lambda_max
    lin = views.density_data(result, log_x=False)
    np.testing.assert_allclose(lin["curve"]["y"], rho[x >= 0] if x.min() >= 0 else rho)
    assert lin["x_range"][0] == 0.0


def test_density_marks_atom_lambda_max_and_target(result):
    d = views.density_data(result, log_x=False, target=2.0)
    assert d["atom"]["x"].tolist() == [0.0] and d["atom"]["y1"][0] > 0
    assert "mass 0.5" in d["atom_label"]["text"][0]
    assert d["lmax"]["x"][0] == pytest.approx(result.spectrum.lambda_max)
    assert d["lmax_label"]["text"][0].startswith("λ_max = ")
    assert d["target"]["x"].tolist() == [2.0]
    logd = views.density_data(result, log_x=True)
    assert logd["atom"]["x"][0] == pytest.approx(logd["x_range"][0]) and "off the log axis" in logd["atom_label"]["text"][0]
    assert views.density_data(result, target=None)["target"]["x"].size == 0


def test_deciles_marked_up_to_the_curve(result):
    lin = views.decile_data(result, log_x=False)
    assert lin["x"].size == views.N_DECILES
    np.testing.assert_allclose(lin["x"], result.deciles)
    assert np.all(lin["y0"] == 0) and np.all(lin["y1"] >= 0)
    log = views.decile_data(result, log_x=True)
    assert np.all(log["x"] > 0) and log["x"].size == np.sum(np.asarray(result.deciles) > 0)


def test_monte_carlo_histogram_integrates_to_nonzero_mass(result, mc):
    d = views.density_data(result, mc, log_x=False)
    h = d["mc"]
    mass = np.sum((h["right"] - h["left"]) * h["top"])
    assert mass == pytest.approx(1 - np.mean(mc.eigenvalues <= 1e-9 * d["x_range"][1]), abs=1e-9)
    dl = views.density_data(result, mc, log_x=True)
    assert np.sum(np.diff(np.log(np.r_[dl["mc"]["left"], dl["mc"]["right"][-1]])) * dl["mc"]["top"]) <= 1 + 1e-9


def test_cdf_data(result, mc):
    lin = views.cdf_data(result, mc, log_x=False)
    x, F = lin["curve"]["x"], lin["curve"]["y"]
    assert x[0] == 0 and F[0] == 0 and F[1] == pytest.approx(result.spectrum.atom)  # the jump at 0
    assert np.all(np.diff(F) >= -1e-12) and F[-1] == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(lin["deciles"]["y"], np.arange(1, 10) / 10)
    assert lin["mc"]["y"][-1] == pytest.approx(1.0) and lin["mc"]["x"].size > 0
    log = views.cdf_data(result, None, log_x=True)
    assert np.all(log["curve"]["x"] > 0) and log["mc"]["x"].size == 0
    assert _shape(views.cdf_data(None)) == _shape(lin)


def test_metrics_and_downloads(result, mc):
    m = views.metrics(result, mc)
    for key in ("mean", "variance", "lambda_max", "atom_at_0", "deciles", "fraction_above_1", "solver", "compute_seconds"):
        assert key in m
    assert m["mean"] == pytest.approx(1.0, rel=1e-6)  # ReLU at sigma_w2 = 2: E[lambda] = 1
    assert len(m["deciles"]) == 9 and m["monte_carlo"]["ks_distance"] == pytest.approx(mc.ks)
    frame = views.metrics_frame(result, mc)
    assert isinstance(frame, pd.DataFrame) and frame.shape[1] == 2
    text = " ".join(frame.iloc[:, 0])
    for word in ("mean", "variance", "λ_max", "atom", "deciles", "P(λ > 1)", "lilypads", "certified", "KS", "compute time"):
        assert word in text
    assert json.loads(views.metrics_json(result, mc)) == json.loads(json.dumps(m, default=str))
    csv = views.spectrum_csv(result)
    table = pd.read_csv(io.StringIO(csv), comment="#")
    assert list(table.columns) == ["x", "density", "cdf"] and len(table) == len(result.spectrum.x)
    np.testing.assert_allclose(table["density"], result.spectrum.density)
    assert views.metrics(None) == {} and views.spectrum_csv(None).startswith("x,density,cdf")


def test_title_describes_the_network(result):
    t = views.title(result)
    assert "relu" in t and "L = 5" in t and "σ_w² = 2" in t and "JᵀJ" in t


def test_meanfield_data(result):
    d = views.meanfield_data(result)
    assert d["q"]["layer"].tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(d["chi"]["chi"], 1.0)  # ReLU at sigma_w2 = 2 is critical
    assert _shape(views.meanfield_data(None)) == _shape(d)


def test_phase_grid_fallback_finds_relu_edge_of_chaos(monkeypatch):
    monkeypatch.delattr(fpcore, "phase_diagram", raising=False)
    views.phase_grid.cache_clear()
    sw, sb, q, chi, boundary = views.phase_grid("relu")
    assert chi.shape == (sb.size, sw.size)
    np.testing.assert_allclose(chi, np.broadcast_to(sw / 2, chi.shape))  # chi_1 = sigma_w2 / 2
    np.testing.assert_allclose(boundary[:, 0], 2.0, atol=1e-9)
    d = views.phase_data("tanh")
    assert np.isfinite(d["image"]["image"][0]).any() and d["boundary"]["x"].size > 0
    views.phase_grid.cache_clear()


def test_phase_grid_uses_fpcore_phase_diagram_when_present(monkeypatch):
    calls = []

    class PD:
        def __init__(self, sw, sb):
            self.sigma_w2, self.sigma_b2 = sw, sb
            self.q_star = np.ones((sb.size, sw.size))
            self.chi1 = np.full((sb.size, sw.size), 2.0)
            self.boundary = np.array([[1.0, 0.0], [1.5, 1.0]])

    def phase_diagram(activation, sw, sb):
        calls.append(activation)
        return PD(sw, sb)

    monkeypatch.setattr(fpcore, "phase_diagram", phase_diagram, raising=False)
    views.phase_grid.cache_clear()
    views.phase_data("erf")
    views.phase_data("erf")  # cached per activation
    assert calls == ["erf"]
    views.phase_grid.cache_clear()


def test_lilypad_frames(result, trace):
    K = len(trace.centres)
    for k in (0, K // 2, K - 1, K + 5):
        z = views.zplane_data(trace, k)
        kk = min(k, K - 1)
        assert z["path"]["x"].size == kk + 1 and z["disks"]["x"].size == kk and z["current"]["r"].size == 1
        (x0, x1), (y0, y1) = z["x_range"], z["y_range"]
        c = trace.centres[kk]
        assert x0 < c.real < x1 and y0 < c.imag < y1 and y0 < 0  # the real axis is in view
        assert x1 - x0 == pytest.approx(y1 - y0)  # square window: disks look round
        basins = compute_basins(result.network, "JtJ", trace, kk)
        m = views.mplane_data(trace, k, basins)
        img = m["basins"]["image"][0]
        assert img.shape == basins[2].shape == (256, 256) and img.dtype == np.uint32  # RGBA frame
        assert m["iterates"]["x"].size == np.asarray(trace.newton[kk]).size
        if kk > 0:
            assert m["ball"]["r"][0] == pytest.approx(trace.m_radii[kk])
            # The window shows the start, the solution and the whole Kantorovich ball.
            s0, r = m["ball"]["x"][0] + 1j * m["ball"]["y"][0], m["ball"]["r"][0]
            assert m["x_range"][0] <= s0.real - r and s0.real + r <= m["x_range"][1]
        cap = views.frame_caption(trace, k)
        assert f"Step {kk + 1} of {K}" in cap
        assert ("Arrived" in cap) == (kk == K - 1)
    assert _shape(views.zplane_data(None)) == _shape(views.zplane_data(trace, 0))
    assert _shape(views.mplane_data(None, 0, None)) == _shape(views.mplane_data(trace, 1, None))


def test_bokeh_figures_update_in_place(result, mc, trace):
    d = plots.DensityPlot(log_x=True)
    src = d.src["curve"]
    d.update(views.density_data(result, mc, True, 1.0))
    d.update_deciles(views.decile_data(result, True))
    assert d.src["curve"] is src and len(src.data["x"]) > 0 and d.figure.x_range.start > 0
    c = plots.CdfPlot(log_x=False)
    c.update(views.cdf_data(result, mc, False))
    mf = plots.MeanFieldPlots()
    mf.update(views.meanfield_data(result))
    p = plots.PhasePlot()
    p.update("relu", views.phase_data, 2.0, 0.0)
    p.update("relu", views.phase_data, 1.0, 0.0)
    assert p.point_src.data["x"] == [1.0]
    z, m = plots.ZPlanePlot(), plots.MPlanePlot()
    basins = compute_basins(result.network, "JtJ", trace, 1)
    z.update(views.zplane_data(trace, 1))
    m.update(views.mplane_data(trace, 1, basins))
    assert len(m.basin_src.data["image"]) == 1
    # Unchanged data sends nothing: the source keeps its very dict.
    before = d.src["mc"].data
    d.update(views.density_data(result, mc, True, 1.0))
    assert d.src["mc"].data is before


def test_views_from_a_live_state():
    s = DashboardState(depth=3, base_width=80, n_points=100)
    assert views.density_data(s.result, s.mc, True, s.effective_target())["target"]["x"].size == 1
    assert "Step 1" in views.frame_caption(s.lilypad.trace, s.lilypad.k)


def test_captions_claim_only_what_the_trace_says(trace):
    import dataclasses

    k = min(2, len(trace.centres) - 1)
    good = views.frame_caption(trace, k, basins_drawn=True)
    assert "chain certified" in good and "certified radius" in good and "Kantorovich test proves" in good
    bad = dataclasses.replace(trace, certified=False, verified=False)
    text = views.frame_caption(bad, k, basins_drawn=True)
    assert "**not certified**" in text and "certified radius r_k" not in text and "Kantorovich test proves" not in text
    assert "inside the basin" not in views.frame_caption(trace, k, basins_drawn=False)
    zero = dataclasses.replace(trace, radii=np.zeros_like(np.asarray(trace.radii, float)))
    assert "certified radius r_k" not in views.frame_caption(zero, k)


def test_hidden_mass_and_jjt_mean_label():
    r = compute_spectrum(fpcore.Network([200] * 21, "relu", sigma_w2=2.0), "JtJ", 120)
    from dashboard.state import log_axis_start

    left = r.computed.left_of(log_axis_start(r.spectrum))
    data = views.left_data(left, True)
    assert data["mass"] == pytest.approx(float(r.spectrum.cdf(log_axis_start(r.spectrum))))
    assert f"{data['mass']:.1%} of the mass lies left of" in data["text"] and "atom at 0: 50.0%" in data["text"]
    assert views.left_data(left, False)["text"] == ""  # nothing hidden on a linear axis
    jjt = compute_spectrum(fpcore.Network([100, 50, 100], "relu"), "JJt", 80)
    table = views.metrics_frame(jjt)
    assert "tr(JJᵀ)/N_L" in " ".join(table["quantity"]) and "tr(JᵀJ)" not in " ".join(table["quantity"])


def test_the_served_metrics_table_never_computes_the_variance_on_the_event_loop():
    """The variance is a contour integral (about 9 s for GELU at depth 10): served, the table shows
    "computing…" until its own job delivers it, and then the Spectrum's own value."""
    # a network no other test computes: a fresh cache entry
    r = compute_spectrum(fpcore.Network([70, 90, 70], "tanh", sigma_w2=1.3, sigma_b2=0.05), "JtJ", 80)
    r.computed.prepare()
    assert not r.computed.variance_ready
    m = views.metrics(r, pending=True)
    assert m["variance"] is None and m["not_computed"] == ["variance"] and not r.computed.variance_ready
    table = views.metrics_frame(r, pending=True, variance_note="")
    assert (table.iloc[:, 1] == "computing…").sum() == 1
    assert views.metrics_frame(r, pending=True, variance_note="stopped after 20 s").iloc[1, 1] == "stopped after 20 s"
    exact = float(r.spectrum.variance)
    assert views.metrics(r)["variance"] == exact and r.computed.variance_ready  # outside the server: computed
    assert views.metrics(r, pending=True)["variance"] == exact and "not_computed" not in views.metrics(r, pending=True)


def test_legends_point_at_proxies_that_no_update_touches():
    # BokehJS rebuilds a legend whenever anything its items refer to changes: the items must refer
    # to renderers whose sources stay empty, however the plots are updated.
    from dashboard import plots

    m = plots.MPlanePlot()
    z = plots.ZPlanePlot()
    d = plots.DensityPlot()
    for fig in (m.figure, z.figure, d.figure):
        items = fig.legend[0].items
        assert items
        for item in items:
            for r in item.renderers:
                assert r in fig.renderers and all(len(v) == 0 for v in r.data_source.data.values())
    real = {id(s) for s in (*m.src.values(), m.ball_src, m.basin_src, *z.src.values(), *d.src.values(), d.left_src)}
    proxies = {id(r.data_source) for fig in (m.figure, z.figure, d.figure) for i in fig.legend[0].items for r in i.renderers}
    assert not real & proxies
    # a click on a density legend entry hides the real renderer (the proxy's visibility is linked,
    # by the renderer's id: no model the legend reaches refers to a real renderer or its source,
    # else BokehJS rebuilds the legend on every data change)
    line = next(r for r in d.figure.renderers if r.data_source is d.src["curve"] and type(r.glyph).__name__ == "Line")
    item = next(i for i in d.figure.legend[0].items if "theory" in str(i.label))
    links = item.renderers[0].js_property_callbacks.get("change:visible", [])
    assert any(f"'{line.id}'" in cb.code and not cb.args for cb in links)
    for fig in (m.figure, z.figure, d.figure):
        reached = {id(x) for x in fig.legend[0].references()}
        assert not real & reached


def test_short_columns_cross_as_lists_long_ones_as_arrays():
    from bokeh.models import ColumnDataSource

    from dashboard import plots

    src = ColumnDataSource(data={"x": [], "y": []})
    short = np.linspace(0.0, 1.0, plots.INLINE_MAX)
    plots._assign(src, {"x": short, "y": short * 2})
    assert isinstance(src.data["x"], list) and src.data["y"] == (short * 2).tolist()
    long = np.linspace(0.0, 1.0, plots.INLINE_MAX + 1)
    plots._assign(src, {"x": long, "y": long})
    assert isinstance(src.data["x"], np.ndarray) and np.array_equal(src.data["x"], long)
    before = src.data
    plots._assign(src, {"x": long.copy(), "y": long.copy()})  # unchanged: no new message
    assert src.data is before
    img = {"image": [np.zeros((4, 4), dtype=np.uint32)], "x": [0.0], "y": [0.0], "dw": [1.0], "dh": [1.0]}
    plots._assign(src, img)
    assert isinstance(src.data["image"][0], np.ndarray)
