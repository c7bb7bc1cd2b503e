"""The served page in Chromium: first page after start, sessions that do not wait for each other,
true deciles, bad links, and a layout that fits a projector (issue 13, items 1, 2, 5, 6).

The first test of this module gets the first page of a freshly started server (module-scoped
fixture), so keep it first.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

import fpcore
from dashboard import views

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # (the chromium fixture skips, or fails under CI=true)
    PlaywrightTimeout = TimeoutError
from dashboard.browser_probe import REST_LOADED_JS, SOLVER_LOADED_JS, open_tab, server_busy_marks
from dashboard.state import log_axis_start

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

# True once the density curve's own data source holds a curve.
CURVE_DRAWN_JS = """() => {
  if (!(window.Bokeh && Bokeh.documents.length)) return false;
  const s = Bokeh.documents[0].get_model_by_name('density-curve');
  return !!(s && s.data.x && s.data.x.length > 10);
}"""

CURVE_SIGNATURE_JS = """() => {
  const s = Bokeh.documents[0].get_model_by_name('density-curve');
  if (!s) return null;
  let acc = 0; const y = s.data.y;
  for (let i = 0; i < y.length; i++) acc += (+y[i]) * (1 + (i % 7));
  return y.length + ':' + acc.toPrecision(12);
}"""

HIDDEN_MASS_JS = """(pattern) => Array.from(Bokeh.documents[0].all_models)
  .some(m => typeof m.text === 'string' && new RegExp(pattern).test(m.text))"""

# Every canvas (Bokeh draws each plot into one), through the shadow roots: its right edge in the
# viewport, and the widths that would show clipping.
LAYOUT_JS = """() => {
  const all = (root) => { const out = []; for (const e of root.querySelectorAll('*')) { out.push(e);
      if (e.shadowRoot) out.push(...all(e.shadowRoot)); } return out; };
  const canvases = all(document).filter(e => e.tagName === 'CANVAS')
      .map(e => e.getBoundingClientRect()).filter(r => r.width > 0 && r.height > 0);
  const main = document.querySelector('#main');
  return {inner: window.innerWidth, doc: document.documentElement.scrollWidth,
          main: main ? [main.scrollWidth, main.clientWidth] : null,
          rights: canvases.map(r => r.right), lefts: canvases.map(r => r.left), n: canvases.length};
}"""


def _open(browser, url: str, viewport=(1600, 1000)):
    """A page that records requests to other hosts (none may happen) and toasts."""
    outside: list[str] = []
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def route(r):
        if r.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return page, outside, errors


def _time_to_spectrum(page, url: str) -> float:
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function(CURVE_DRAWN_JS, timeout=60_000, polling=50)
    return time.perf_counter() - t0


# True while the page's "computing…" indicator shows (searched through the shadow roots).
BUSY_JS = """() => { const find = (root) => { if (root.querySelector('span.busy')) return true;
  for (const e of root.querySelectorAll('*')) if (e.shadowRoot && find(e.shadowRoot)) return true;
  return false; }; return find(document); }"""

#: A network that is slow by design: an orthogonal SiLU net, depth 100, contracting by 8 from width
#: 400, sigma_w2 = 4, sigma_b2 = 0.1, on a 5000-point grid. Its verified density (the dashboard's
#: density job; the certificate comes after it) takes about 7.5 s of CPU on the quiet 2-core machine
#: at stop 27, in a worker thread that cannot be stopped: the test checks only that it is still
#: computing when the other session's update arrives. Session A opens on the same net with Gaussian
#: weights (about 0.5 s) and switches to orthogonal ones once its page is loaded and idle, so that its
#: slow job starts at a known moment: opened directly on the slow net, A's page (3-8 s to build on
#: the server under load) and its density raced, and a clean CI run at stop 26 saw the density first.
#: The earlier choices became fast as the solver did: the same net at depth 60, sigma_w2 = 2, 3000
#: points (8.9 s at stop 16, 1.6 s at stop 17), orthogonal SiLU at depth 50 (11.9 s at stop 15, 2.8 s
#: at stop 16), orthogonal GELU at depth 30 (stop 15) and orthogonal tanh at depth 50 (stop 14);
#: the slowest of the page's other orthogonal nets tried at stop 27 (GELU, softplus, ELU at depth
#: 100) take 1.6-4.7 s.
SLOW_QUERY = ("?activation=silu&init=gaussian&depth=100&profile=contracting&ratio=8.0&sigma_w2=4.0"
              "&sigma_b2=0.1&n_points=5000")

#: The classroom budget (issue 13): a second session sees its update within this many seconds.
SECOND_SESSION_BUDGET = 1.5
FIRST_PAGE_BUDGET = 5.0


def test_first_page_after_start_is_as_fast_as_a_later_one_and_fetches_nothing_outside(chromium, served_app):
    # Budget (issue 13): the first page after `panel serve` shows a spectrum within 5 s, i.e. the
    # kernels are ready before the server accepts requests. Asserted as such whenever a later page
    # of the same server (timed right after) loads within half that budget; a machine so loaded
    # that it cannot is checked on the ratio (the first page no slower than 1.5 later ones).
    page, outside, errors = _open(chromium, served_app)
    first = _time_to_spectrum(page, served_app)
    page.wait_for_timeout(1000)  # late requests (fonts) would show here
    page.close()
    page, outside2, errors2 = _open(chromium, served_app)
    later = _time_to_spectrum(page, served_app)
    page.close()
    print(f"first page {first:.2f} s, a later one {later:.2f} s")
    if later <= FIRST_PAGE_BUDGET / 2:
        assert first <= FIRST_PAGE_BUDGET, f"first page {first:.1f} s (a later one {later:.1f} s)"
    else:
        assert first <= 1.5 * later, f"first page {first:.1f} s, a later one {later:.1f} s (loaded machine)"
    assert outside == outside2 == [] and errors == errors2 == []


def _wait_settled(page, timeout_ms: float = 60_000) -> None:
    """Wait until the page's "computing…" indicator is off; if it stays on, fail quoting the
    server's last busy marks per session and job starts and ends (what the page waits for)."""
    try:
        page.wait_for_function(f"() => !({BUSY_JS})()", timeout=timeout_ms)
    except PlaywrightTimeout:
        pytest.fail(f"{page.url}: still computing after {timeout_ms / 1000:.0f} s\n{server_busy_marks(page.url)}")


def _depth_key_to_curve(page) -> float:
    """Seconds from an ArrowRight on the Depth slider (once the page's own jobs are done) until the
    density curve's data change."""
    _wait_settled(page)
    before = page.evaluate(CURVE_SIGNATURE_JS)
    t0 = time.perf_counter()
    page.locator(".w-depth .noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => ({CURVE_SIGNATURE_JS})() !== {before!r}", timeout=30_000, polling=20)
    return time.perf_counter() - t0


def test_a_slow_network_in_one_session_does_not_delay_another(chromium, served_app, page_class):
    # Session A asks for a network that takes the solver many seconds; session B then moves its
    # Depth slider and must see its new density while A's job still runs, within the classroom
    # budget (1.5 s). The budget is asserted as such whenever B alone (measured just before) takes
    # at most a third of it; on a machine too loaded for that (other jobs on the 2 cores), B next
    # to A may take at most twice its own time alone (A's solver holds one of the 2 cores).
    fast = page_class(chromium, served_app + "?depth=12&base_width=390")
    slow = None
    try:
        fast.page.wait_for_function(CURVE_DRAWN_JS, timeout=60_000)

        def move() -> float:
            fast.wait_idle()
            return _depth_key_to_curve(fast.page)  # after B's own jobs are done

        alone = min(move(), move())
        slow = page_class(chromium, served_app + SLOW_QUERY)
        slow.page.wait_for_function(CURVE_DRAWN_JS, timeout=60_000)
        _wait_settled(slow.page)  # A's own jobs are done
        before = slow.page.evaluate(CURVE_SIGNATURE_JS)
        slow.page.get_by_role("button", name="orthogonal", exact=True).click()  # A's slow job starts
        slow.page.wait_for_function(BUSY_JS, timeout=10_000)
        with_a = move()
        assert slow.page.evaluate(CURVE_SIGNATURE_JS) == before, "A finished before B updated: choose a slower network"
        assert slow.page.evaluate(BUSY_JS), "A is no longer computing: choose a slower network"
        slow.page.wait_for_function(f"() => ({CURVE_SIGNATURE_JS})() !== {before!r}", timeout=60_000)  # A's arrives
        print(f"B alone {alone:.3f} s, next to A {with_a:.3f} s")
        if alone <= SECOND_SESSION_BUDGET / 3:
            assert with_a <= SECOND_SESSION_BUDGET, f"B took {with_a:.2f} s next to A ({alone:.2f} s alone)"
        else:
            assert with_a <= 2 * alone, f"B took {with_a:.2f} s next to A ({alone:.2f} s alone; loaded machine)"
        assert fast.errors == [] and slow.errors == []
    finally:
        if slow is not None:
            slow.page.close()
        fast.page.close()


@pytest.mark.parametrize("app_page", ["?depth=50"], indirect=True)
def test_deciles_shown_are_the_spectrums_own(app_page):
    page = app_page.page
    row = page.locator(".p-metrics tr", has_text="deciles").first
    row.wait_for(timeout=60_000)
    spectrum = fpcore.jacobian_spectrum(fpcore.Network([400] * 51, "relu", sigma_w2=2.0), n_points=250)
    exact = np.asarray(spectrum.deciles)
    page.locator(".p-metrics tr", has_text=views._fmt(exact[-2])).first.wait_for(timeout=60_000)
    text = row.inner_text()
    assert ", ".join(views._fmt(v) for v in exact) in text  # e.g. ... 1.744e-35, 3.052e-20, 3.329e-11, 1.309e-04
    marks = page.evaluate("Array.from(Bokeh.documents[0].get_model_by_name('density-deciles').data.x)")
    np.testing.assert_allclose(sorted(marks), exact[exact > 0], rtol=1e-9)
    # The log axis says how much mass lies left of it (84 % for ReLU L = 50, atom included), in a
    # title under the plot (drawn on the canvas: read from the document's models).
    hidden = float(spectrum.cdf(log_axis_start(spectrum)))
    assert 0.8 < hidden < 0.9
    page.wait_for_function(HIDDEN_MASS_JS, arg=re.escape(f"{hidden:.1%} of the mass lies left of"), timeout=30_000)
    assert app_page.errors == []


# Every notification toast the page ever showed (a toast lasts 10 s: on a loaded machine the page
# may take longer than that to finish loading, so they are recorded as they appear).
TOAST_RECORDER_JS = """(() => { window.__toasts = [];
  new MutationObserver(ms => { for (const m of ms) for (const n of m.addedNodes)
    if (n.nodeType === 1 && n.classList && n.classList.contains('notyf__toast')) window.__toasts.push(n); })
  .observe(document, {childList: true, subtree: true}); })();"""


def test_a_bad_link_gives_a_valid_page_and_one_notification(chromium, served_app):
    page, outside, errors = _open(chromium, served_app)
    try:
        page.add_init_script(TOAST_RECORDER_JS)
        page.goto(served_app + "?depth=201&sigma_w2=-1")
        page.wait_for_function(CURVE_DRAWN_JS, timeout=60_000)
        page.get_by_text(re.compile(r"relu network: L = 100, .*σ_w² = 0\.1,")).first.wait_for(timeout=30_000)
        page.wait_for_function("window.__toasts.length > 0", timeout=30_000)
        page.wait_for_timeout(1500)  # any further toast would be up by now
        toasts = page.evaluate("window.__toasts.map(n => n.textContent)")
        assert len(toasts) == 1, toasts
        assert "201 → 100" in toasts[0] and "-1 → 0.1" in toasts[0]
        assert "no spectrum yet" not in page.content()
        page.wait_for_function("window.location.search.includes('depth=100')", timeout=10_000)
        assert errors == [] and outside == []
    finally:
        page.close()


@pytest.mark.parametrize("size", [(1024, 768), (1280, 800), (390, 844)])
def test_nothing_is_clipped_on_a_projector(chromium, served_app, size):
    page, outside, errors = _open(chromium, served_app, viewport=size)
    try:
        page.goto(served_app)
        page.wait_for_function(CURVE_DRAWN_JS, timeout=60_000)
        page.wait_for_function(REST_LOADED_JS, timeout=60_000)  # the sections sent after the spectrum

        def fits(n_min: int) -> None:
            page.wait_for_function(f"() => ({LAYOUT_JS})().n >= {n_min}", timeout=60_000)
            page.wait_for_function("Bokeh.documents[0].is_idle", timeout=60_000)
            page.wait_for_timeout(1500)  # let the layout settle
            layout = page.evaluate(LAYOUT_JS)
            assert layout["doc"] <= layout["inner"] and layout["main"][0] <= layout["main"][1] + 1, layout
            assert max(layout["rights"]) <= layout["inner"] + 0.5 and min(layout["lefts"]) >= -0.5, layout

        # every tab in turn (only the open one is built): the teacher's tools (pinned density and
        # CDF, depth animation), the Evidence, the solver; always density, CDF, q, chi, phase
        fits(5 + 3)
        open_tab(page, "Evidence")
        fits(5 + 1)
        open_tab(page, "Solver", SOLVER_LOADED_JS)
        fits(5 + 2)
        # The solver planes: side by side on a projector (1280 x 800), one above the other on a phone.
        z = page.locator(".p-zplane canvas").first.bounding_box()
        m = page.locator(".p-mplane canvas").first.bounding_box()
        assert z["width"] >= 280 and m["width"] >= 280, (z, m)
        if size == (1280, 800):
            assert m["x"] >= z["x"] + z["width"] - 0.5 and abs(m["y"] - z["y"]) < 2, (z, m)
        if size[0] < 500:
            assert m["y"] >= z["y"] + z["height"] - 0.5, (z, m)
        assert errors == [] and outside == []
    finally:
        page.close()


#: A GELU page (issue 13, "stays computing… for 50-60 s"): its spectrum shows within this budget.
GELU_SPECTRUM_BUDGET = 10.0
GELU_QUERY = "?activation=gelu&depth=10&sigma_w2=2.0&base_width=380"


def _variance_pending(page) -> bool:
    """True while the metrics table's variance row says "computing…" (the table is in a shadow root:
    a locator, not querySelector)."""
    return "computing" in page.locator(".p-metrics tr", has_text="variance").first.inner_text(timeout=30_000)


def test_a_gelu_page_shows_its_spectrum_quickly_and_its_slow_numbers_block_nobody(chromium, served_app, page_class):
    # The GELU page's secondary numbers (the variance, a contour integral that took ~9 s at depth 10
    # before the contour took the short rules, now ~0.2 s; the exact deciles; the Evidence marker;
    # the solver views) used to be computed on the server's event loop when the metrics table was
    # drawn, freezing every session for seconds. Now the spectrum shows within its budget, and
    # while the GELU page's other jobs run (those still running once its page is complete) another
    # session's slider updates within the classroom budget (or within twice its time alone on a machine too
    # loaded for that, as in the test above; one move at most twice that). The variance is never
    # computed on the loop whatever its cost (test_dashboard_views checks the served table).
    other = page_class(chromium, served_app + "?depth=14&base_width=370")
    gelu = None
    try:

        def move() -> float:
            return _depth_key_to_curve(other.page)

        alone = min(move(), move())
        gelu, outside, errors = _open(chromium, served_app + GELU_QUERY)
        shown = _time_to_spectrum(gelu, served_app + GELU_QUERY)
        assert shown <= GELU_SPECTRUM_BUDGET, f"the GELU spectrum took {shown:.1f} s"
        budget = SECOND_SESSION_BUDGET if alone <= SECOND_SESSION_BUDGET / 3 else 2 * alone
        # the GELU page's sections sent after its first paint (a page build holds the loop for about
        # a second: that is the classroom load test's matter, not this one's), then its jobs
        gelu.wait_for_function(REST_LOADED_JS, timeout=60_000)
        open_tab(gelu, "Solver", SOLVER_LOADED_JS)  # its chain and basin frames are computed too
        moves = [move() for _ in range(4)]
        print(f"GELU spectrum {shown:.2f} s; other session alone {alone:.3f} s, while GELU's numbers computed: "
              + ", ".join(f"{m:.3f}" for m in moves))
        med = sorted(moves)[len(moves) // 2]
        assert med <= budget and max(moves) <= 2 * budget, f"the other session took {moves} s (alone {alone:.2f} s)"
        # The deciles and the variance arrive (or the row says why not), the Evidence marker is drawn.
        gelu.locator(".p-metrics tr", has_text="deciles").first.wait_for(timeout=60_000)
        open_tab(gelu, "Evidence")  # its marker is computed once the tab is open
        t0 = time.perf_counter()
        while _variance_pending(gelu):
            assert time.perf_counter() - t0 < 60, "the variance row still says computing after 60 s"
            gelu.wait_for_timeout(250)
        gelu.get_by_text(re.compile(r"Dashed line: this network|This network's value: (?!computing)")).first.wait_for(
            timeout=30_000
        )
        assert errors == [] and outside == [] and other.errors == []
    finally:
        if gelu is not None:
            gelu.close()
        other.page.close()
