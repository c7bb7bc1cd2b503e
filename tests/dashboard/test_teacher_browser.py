"""The teacher's tools and the basin view in a real Chromium: basins for ReLU, tanh and GELU,
the tuner at the textbook edge, pin-and-compare, every preset. Few page loads: one per case."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dashboard import presets

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

# The m-plane image: (rows, cols, distinct colours) of the image_rgba glyph's data.
IMAGE_JS = """() => {
  for (const m of Bokeh.documents[0].all_models) {
    const t = m.title && m.title.text;
    if (t && String(t).startsWith('m-plane') && m.renderers) {
      for (const r of m.renderers) {
        const ds = r.data_source;
        if (!ds || !ds.data || !ds.data.image || !ds.data.image.length) continue;
        const img = ds.data.image[0];
        const shape = img.shape || [img.length, (img[0] && img[0].length) || 0];
        const flat = img.shape ? img : [].concat(...img);
        const seen = new Set();
        for (let i = 0; i < flat.length; i += 7) seen.add(flat[i]);
        return [shape[0], shape[1], seen.size];
      }
    }
  }
  return null;
}"""


def _image(app_page):
    return app_page.page.evaluate(IMAGE_JS)


@pytest.mark.parametrize(
    "app_page",
    ["?activation=relu&sigma_w2=2", "?activation=tanh&sigma_w2=1", "?activation=gelu&sigma_w2=2"],
    indirect=True,
    ids=["relu", "tanh", "gelu"],
)
def test_basins_are_drawn_for_every_activation(app_page):
    page = app_page.page
    app_page.open_solver()
    page.wait_for_function(f"(() => {{ const r = ({IMAGE_JS})(); return r && r[0] >= 256 && r[1] >= 256; }})",
                           timeout=90_000)  # fmt: skip
    page.locator(".w-player .next").first.click()  # step 2: a Newton step, its ball and iterates
    page.get_by_text(re.compile(r"Step 2 of \d+")).first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    app_page.wait_idle()
    # (a frame not computed yet shows a coarse preview first, then the full frame)
    page.get_by_text("coarse preview").wait_for(state="hidden", timeout=60_000)
    page.wait_for_function(f"(() => {{ const r = ({IMAGE_JS})(); return r && r[0] >= 256 && r[1] >= 256; }})",
                           timeout=60_000)  # fmt: skip
    rows, cols, colours = _image(app_page)
    assert rows >= 256 and cols >= 256
    assert colours >= 3  # several roots (hues) and shading by Newton steps
    # the Kantorovich ball where the chain is Kantorovich-certified (ReLU's); the smooth
    # activations' chains are verified by residuals: no ball is drawn, none is claimed
    relu = "activation=relu" in page.url
    status = "chain certified" if relu else "chain verified a posteriori"
    assert page.get_by_text(re.compile(status)).count() >= 1
    assert app_page.column_length("m-plane", "r") == (1 if relu else 0)
    assert app_page.column_length("m-plane", "x") >= 3  # roots, iterates, start, solution
    page.wait_for_timeout(1000)
    assert app_page.errors == []


# The m-plane image's pixels (uint32 RGBA, row 0 at the bottom), or null before it is drawn.
PIXELS_JS = """() => {
  for (const m of Bokeh.documents[0].all_models) {
    const t = m.title && m.title.text;
    if (t && String(t).startsWith('m-plane') && m.renderers) {
      for (const r of m.renderers) {
        const ds = r.data_source;
        if (ds && ds.data && ds.data.image && ds.data.image.length) return Array.from(ds.data.image[0]);
      }
    }
  }
  return null;
}"""


@pytest.mark.parametrize("app_page", ["?activation=tanh&sigma_w2=1&depth=10&base_width=356"], indirect=True)
def test_a_closed_solver_tab_draws_nothing_and_shows_the_current_networks_basins_when_opened(app_page):
    from dashboard.browser_probe import SOLVER_LOADED_JS
    from dashboard.state import DashboardState

    page = app_page.page
    assert not page.evaluate(SOLVER_LOADED_JS)  # closed: its planes are not even built
    before = app_page.signature()
    page.locator(".w-depth .noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")  # a move while the tab is closed (no chain computed for it)
    app_page.wait_signature_change(before)
    page.get_by_text(re.compile(r"of tanh network: L = 11\b")).first.wait_for(timeout=60_000)
    app_page.wait_idle()
    assert not page.evaluate(SOLVER_LOADED_JS)
    app_page.open_solver()
    page.get_by_text(re.compile(r"Step 1 of \d+")).first.wait_for(timeout=60_000)
    page.wait_for_function(f"(() => {{ const r = ({IMAGE_JS})(); return r && r[0] >= 256 && r[1] >= 256; }})",
                           timeout=90_000)  # fmt: skip
    app_page.wait_idle()
    # the basins of the network shown (L = 11), step 1: the same pixels as a state that always
    # showed its solver computes for that network
    shown = DashboardState(activation="tanh", sigma_w2=1.0, depth=11, base_width=356)
    want = np.asarray(shown.lilypad.basins.rgba, dtype=np.uint32).ravel()
    got = np.asarray(page.evaluate(PIXELS_JS), dtype=np.float64)
    assert got.size == want.size and np.array_equal(got.astype(np.uint32), want)
    assert len(np.unique(want)) >= 3
    assert app_page.errors == []


@pytest.mark.parametrize("app_page", ["?activation=tanh&sigma_w2=3&sigma_b2=0"], indirect=True)
def test_tuner_lands_tanh_at_the_textbook_edge(app_page):
    page = app_page.page
    page.get_by_role("button", name=re.compile("Tune")).click()
    toast = page.locator(".notyf__toast").first
    toast.wait_for(timeout=30_000)
    assert "Edge of chaos" in toast.inner_text() and "multiplier" not in toast.inner_text()
    page.wait_for_function("/sigma_w2=1(\\.0*)?(&|$)/.test(window.location.search)", timeout=15_000)
    # let the new spectrum and chain arrive before the page closes (a session closed while the
    # server is still sending makes Bokeh log a traceback at teardown)
    page.get_by_text(re.compile(r"of tanh network: L = \d+.*σ_w² = 1\b")).first.wait_for(timeout=60_000)
    app_page.wait_idle()
    page.wait_for_timeout(1000)
    assert app_page.errors == []


def test_pin_compare_and_presets(shared_page):
    app_page = shared_page
    page = app_page.page
    card = page.locator(".teacher-tools").first
    card.scroll_into_view_if_needed()
    # pin two spectra (two depths) and compare them
    page.locator(".w-pin button").first.click()
    app_page.wait_column_filled("Pinned spectra: density", "x")
    before = app_page.signature()
    page.locator(".w-depth .noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")
    app_page.wait_signature_change(before)
    app_page.wait_idle()
    page.locator(".w-pin button").first.click()
    page.wait_for_function(
        """() => { for (const m of Bokeh.documents[0].all_models) { const t = m.title && m.title.text;
          if (t && String(t).startsWith('Pinned spectra: CDF')) { let k = 0;
            for (const r of m.renderers) if (r.data_source.data.x.length) k++; return k == 2; } } return false; }""",
        timeout=30_000,
    )
    # the metrics table, one column per pin (labels carry the configuration)
    for text in ("2. relu L11 w400 sw2-2.0", "1. relu L10 w400 sw2-2.0", "λ at p = 0.9"):
        page.get_by_text(text).first.wait_for(timeout=15_000)
    # every preset: one click sets the network and shows its sentence
    for key, p in presets.PRESETS.items():
        before = app_page.signature()
        page.locator(f".w-preset-{key} button").first.click()
        page.locator(".preset-sentence").get_by_text(p.label).first.wait_for(timeout=60_000)
        app_page.wait_signature_change(before, timeout=60_000)  # every preset changes the network
        act = p.params["activation"]
        page.get_by_text(re.compile(rf"of {act} network: L = ")).first.wait_for(timeout=60_000)
    assert app_page.errors == []
