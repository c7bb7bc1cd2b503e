"""Screenshots of the dashboard for the README, taken from a served app in the system Chromium.

Serves ``dashboard/app.py`` on 127.0.0.1 (``dashboard.browser_probe.served``; the pages may talk
to nothing else) and writes into ``docs/``:

* ``screenshot.png``: the main page at 1280 x 800 (ReLU, depth 10, width 400);
* ``basins.png``, ``basins-gelu.png``: the solver planes (z-plane lilypads, m-plane basins with
  the Newton iterates, and the Kantorovich ball where the chain is certified: ReLU's) at lilypad
  step 2 for ReLU and GELU;
* ``compare.png``: pin-and-compare with two pinned depths;
* ``depth-animation.png``: a frame of the depth animation (the Player stepped to L = 4);
* ``dashboard-1280x800-solver.png``: the solver planes in a 1280 x 800 window;
* ``dashboard-1024x768.png``, ``dashboard-1024x768-solver.png``: the page and the solver planes
  at 1024 x 768 (a projector).

Run: ``python docs/take_screenshots.py`` (about two minutes; needs Debian's ``chromium``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dashboard.browser_probe import (APP, CHROMIUM_ARGS, REST_LOADED_JS, SOLVER_LOADED_JS, find_chromium,  # noqa: E402
                                     open_page, open_tab, served)

DOCS = ROOT / "docs"
IDLE = "window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].is_idle"
SETTLED = """() => window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].is_idle &&
  !Array.from(Bokeh.documents[0].all_models).some(m => (m.css_classes || []).includes('w-busy') &&
                                                     String(m.text).includes('computing'))"""


def settle(page, ms: int = 1500) -> None:
    page.wait_for_function(IDLE, timeout=120_000)
    page.wait_for_function(SETTLED, timeout=120_000)
    page.wait_for_timeout(ms)


def solver_step(page, step: int) -> None:
    page.get_by_text(re.compile(r"Step 1 of \d+")).first.wait_for(timeout=60_000)  # the chain is there
    page.locator(".w-player").first.scroll_into_view_if_needed()
    for _ in range(step - 1):
        page.locator(".w-player .next").first.click()
    page.get_by_text(re.compile(rf"Step {step} of \d+")).first.wait_for(timeout=60_000)
    settle(page)


def shot(page, selectors: list[str], path: Path, pad: int = 8) -> None:
    """A picture of the smallest box around the first element of each selector (viewport
    coordinates: the first element is scrolled to just below the page's fixed header first)."""
    page.locator(selectors[0]).first.evaluate("e => { e.scrollIntoView({block: 'start'}); window.scrollBy(0, -90); }")
    page.wait_for_timeout(600)
    boxes = [page.locator(s).first.bounding_box() for s in selectors]
    x0 = max(0, min(b["x"] for b in boxes) - pad)
    y0 = max(0, min(b["y"] for b in boxes) - pad)
    x1 = max(b["x"] + b["width"] for b in boxes) + pad
    y1 = max(b["y"] + b["height"] for b in boxes) + pad
    page.screenshot(path=str(path), clip={"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0})
    print("wrote", path.relative_to(ROOT))


def solver_shot(page, path: Path) -> None:
    """The Player, the caption and both planes in one picture."""
    shot(page, [".w-player", ".p-zplane canvas", ".p-mplane canvas", ".w-target"], path)


def _solver_page(page, path: Path) -> None:
    """The whole window with the solver's controls at its top (the planes below them)."""
    page.locator(".w-target").first.evaluate("e => { e.scrollIntoView({block: 'start'}); window.scrollBy(0, -90); }")
    page.wait_for_timeout(500)
    page.screenshot(path=str(path))
    print("wrote", path.relative_to(ROOT))
    page.evaluate("window.scrollTo(0, 0)")


def main() -> int:
    chromium = find_chromium()
    if chromium is None:
        print("no Chromium found (install Debian's `chromium`)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with served([str(APP)]) as (_, port), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        base = f"http://127.0.0.1:{port}/app"

        page = open_page(browser, f"{base}?activation=relu&depth=10&base_width=400", errors, viewport=(1280, 800))
        page.wait_for_function(REST_LOADED_JS, timeout=120_000)
        settle(page)
        page.screenshot(path=str(DOCS / "screenshot.png"))
        print("wrote docs/screenshot.png")
        open_tab(page, "Solver", SOLVER_LOADED_JS)
        solver_step(page, 2)
        solver_shot(page, DOCS / "basins.png")
        _solver_page(page, DOCS / "dashboard-1280x800-solver.png")
        # pin and compare: depth 10, then depth 20
        open_tab(page, "Teacher")
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.locator(".teacher-tools").first.scroll_into_view_if_needed()
        page.locator(".w-pin button").first.click()
        settle(page)
        page.locator(".w-depth .noUi-handle").first.focus()
        for _ in range(10):
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(150)
        page.get_by_text(re.compile(r"L = 20\b")).first.wait_for(timeout=60_000)
        settle(page, 2000)
        page.locator(".w-pin button").first.click()
        page.get_by_text("2. relu L20").first.wait_for(timeout=60_000)
        settle(page, 2000)
        shot(page, [".w-pin", ".p-compare-density canvas", ".p-compare-cdf canvas", ".compare-table"], DOCS / "compare.png")
        # depth animation: the Player stepped on to L = 4
        for _ in range(3):
            page.locator(".w-depth-player .next").first.click()
            settle(page, 800)
        settle(page, 2000)
        shot(page, [".w-depth-player", ".p-depth-animation canvas"], DOCS / "depth-animation.png")
        page.close()

        page = open_page(browser, f"{base}?activation=gelu&depth=10&sigma_w2=2.0&base_width=400", errors,
                         viewport=(1280, 800))  # fmt: skip
        page.wait_for_function(REST_LOADED_JS, timeout=120_000)
        settle(page)
        open_tab(page, "Solver", SOLVER_LOADED_JS)
        solver_step(page, 2)
        solver_shot(page, DOCS / "basins-gelu.png")
        page.close()

        page = open_page(browser, f"{base}?activation=relu&depth=10&base_width=400", errors, viewport=(1024, 768))
        page.wait_for_function(REST_LOADED_JS, timeout=120_000)
        settle(page)
        page.screenshot(path=str(DOCS / "dashboard-1024x768.png"))
        print("wrote docs/dashboard-1024x768.png")
        open_tab(page, "Solver", SOLVER_LOADED_JS)
        solver_step(page, 2)
        _solver_page(page, DOCS / "dashboard-1024x768-solver.png")
        page.close()
        browser.close()
    if errors:
        print("page errors:", *errors[:10], sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
