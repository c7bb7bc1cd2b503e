"""The served dashboard in a real Chromium (Playwright): load, slider, Player, bad input, Monte Carlo."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


# Records, at the first animation frame whose lilypad caption reads "Step 1 of n", [n, the Player's end].
PLAYER_AT_CAPTION_JS = """() => {
  window.__playerAtCaption = null;
  const poll = () => {
    if (window.Bokeh && Bokeh.documents.length) {
      let n = null, end = null;
      for (const m of Bokeh.documents[0].all_models) {
        const t = typeof m.text === 'string' ? m.text : '';
        const hit = t.match(/Step 1 of (\\d+)/);
        if (hit) n = +hit[1];
        if ((m.css_classes || []).includes('w-player') && m.end !== undefined) end = m.end;
      }
      if (n !== null) { window.__playerAtCaption = [n, end]; return; }
    }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
}"""


SETTLED_JS = """() => window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].is_idle &&
  !Array.from(Bokeh.documents[0].all_models).some(m => (m.css_classes || []).includes('w-busy') &&
                                                     String(m.text).includes('computing'))"""


def test_app_loads_without_js_errors(shared_page):
    app_page = shared_page
    page = app_page.page
    page.get_by_text("What am I looking at?").first.wait_for()
    assert app_page.column_length("Spectral density", "y") > 10  # the density is drawn
    app_page.open_solver()
    app_page.wait_column_filled("z-plane", "r")
    assert app_page.column_length("z-plane", "r") >= 1  # and the first lilypad
    page.get_by_text("of relu network: L = 10").first.wait_for()
    assert app_page.errors == []


def test_depth_slider_changes_the_density_and_the_url(shared_page):
    app_page = shared_page
    page = app_page.page
    title = page.get_by_text(re.compile(r"network: L = \d+")).first.inner_text()
    depth = int(re.search(r"L = (\d+)", title).group(1))
    before = app_page.signature()
    handle = page.locator(".w-depth .noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    app_page.wait_signature_change(before)
    page.get_by_text(f"of relu network: L = {depth + 1}").first.wait_for()
    page.wait_for_function(f"window.location.search.includes('depth={depth + 1}')", timeout=10_000)
    assert app_page.errors == []


CURVE_VISIBLE_JS = """() => { for (const m of Bokeh.documents[0].all_models)
  if (m.data_source && m.data_source.name === 'density-curve' && m.glyph && m.glyph.type === 'Line') return m.visible;
  return null; }"""


def test_legend_click_hides_and_shows_the_curve(shared_page):
    # The legends are drawn from proxy renderers (dashboard.plots._static_legend); a click on an
    # entry must still hide the real curve, and a second click show it again.
    app_page = shared_page
    page = app_page.page
    assert page.evaluate(CURVE_VISIBLE_JS) is True
    entry = page.get_by_text("theory (N → ∞)").first
    entry.click()
    page.wait_for_function(f"({CURVE_VISIBLE_JS})() === false", timeout=10_000)
    entry.click()
    page.wait_for_function(f"({CURVE_VISIBLE_JS})() === true", timeout=10_000)
    assert app_page.errors == []


def test_player_advances_the_lilypad_frames(shared_page):
    app_page = shared_page
    page = app_page.page
    # At the first frame whose caption says "Step 1 of n", the Player must already have its range
    # (end = n - 1): the caption used to reach the page just before the range, and a "next"
    # clicked in between was lost (1 run in 5, and one clean-clone CI run).
    page.evaluate(PLAYER_AT_CAPTION_JS)
    app_page.open_solver()
    page.get_by_text(re.compile(r"Step 1 of \d+")).first.wait_for()
    page.wait_for_function("window.__playerAtCaption !== null", timeout=10_000)
    n, end = page.evaluate("window.__playerAtCaption")
    assert end == n - 1, f"the caption said 'Step 1 of {n}' while the Player's range ended at {end}"
    # (no newer chain on its way, which would rightly reset the Player: the page says it is up to date)
    page.wait_for_function(SETTLED_JS, timeout=60_000)
    page.wait_for_timeout(400)  # (the busy indicator shows only after 0.25 s of work)
    page.wait_for_function(SETTLED_JS, timeout=60_000)
    zplane = app_page.signature("z-plane")
    page.locator(".w-player .next").first.click()  # one click: not lost
    page.get_by_text(re.compile(r"Step ([2-9]|\d\d) of \d+")).first.wait_for(timeout=10_000)
    zplane = app_page.wait_signature_change(zplane, "z-plane")
    page.locator(".w-player .play").first.click()  # plays on by itself
    page.get_by_text(re.compile(r"Step [4-9] of \d+|Step \d\d of \d+")).first.wait_for(timeout=30_000)
    app_page.wait_signature_change(zplane, "z-plane")
    page.locator(".w-player .pause").first.click()
    assert app_page.column_length("m-plane", "image") == 1 and app_page.errors == []


def test_bad_width_list_shows_an_error_and_keeps_the_plot(shared_page):
    app_page = shared_page
    page = app_page.page
    page.locator(".w-profile select").first.select_option("custom")
    page.get_by_text("(min 200, max 800)").first.wait_for()  # the default custom list is shown
    app_page.wait_idle()
    page.wait_for_timeout(300)
    good = app_page.signature()
    box = page.locator(".w-custom input").first
    box.fill("400, 800, abc")
    box.press("Enter")
    toast = page.locator(".notyf__toast--error").first
    toast.wait_for(timeout=15_000)
    assert "abc" in toast.inner_text()
    page.wait_for_timeout(500)
    assert app_page.signature() == good  # the last good plot stays
    box.fill("400, 200, 400")
    box.press("Enter")
    app_page.wait_signature_change(good)  # and the app still works
    assert app_page.errors == []


@pytest.mark.parametrize("app_page", ["?mc_size=40&mc_samples=2"], indirect=True)
def test_monte_carlo_overlay(app_page):
    page = app_page.page
    assert app_page.column_length("Spectral density", "left") == 0
    page.get_by_role("button", name="Sample real networks").click()
    app_page.wait_column_filled("Spectral density", "left")  # the histogram is drawn
    page.get_by_text("KS distance").first.wait_for(timeout=30_000)
    assert app_page.errors == []

