"""Page load of the dashboard in Chromium: how long until the first spectrum shows.

Serves ``dashboard/app.py`` (with ``--setup dashboard/warmup.py``, as ``fpcore-dashboard`` does)
and opens ``/app`` ``--loads`` times, each in a fresh browser context (nothing cached), after
one unmeasured load. For each load it records: the time from navigation until the density
curve's own data source holds a curve (what the browser test "first page within 5 s" waits for);
the HTML response's wait (the server runs the app for the new session and builds its document);
the number of Bokeh models in the document when the curve shows; and the time until the whole
page is there (the metrics, the phase diagram and the open tab, which the app sends after the
first paint; the solver and the Evidence are closed tabs, built when opened; an older checkout
given with ``--before`` that has no tabs counts its solver planes and Evidence plot instead).

With ``--before DIR`` (a checkout of another commit, e.g. ``git worktree add /tmp/before HEAD~3``)
a second server runs that checkout's app and the loads alternate between the two, so that both are
measured the same way in the same run (ratios stay meaningful on a loaded machine).

Usage::

    python benchmarks/bench_page_load.py --loads 5
    python benchmarks/bench_page_load.py --loads 5 --before /tmp/before
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dashboard.browser_probe import CHROMIUM_ARGS, find_chromium, free_port, stop_server  # noqa: E402

CURVE_JS = """() => { if (!(window.Bokeh && Bokeh.documents.length)) return false;
  const s = Bokeh.documents[0].get_model_by_name('density-curve'); return !!(s && s.data.x && s.data.x.length > 10); }"""
# The whole page: the phase diagram and the open tab's pinned spectra (tabs), or the m-plane and the
# Evidence scatter (a checkout from before the tabs) are in the document.
WHOLE_JS = """() => { const t = Array.from(Bokeh.documents[0].all_models).map(m => m.title && m.title.text)
  .filter(x => typeof x === 'string');
  return (t.some(x => x.startsWith('Phase diagram')) && t.some(x => x.startsWith('Pinned spectra')))
    || (t.some(x => x.startsWith('m-plane')) && t.some(x => /loss/i.test(x))); }"""
HTML_WAIT_JS = """() => { const n = performance.getEntriesByType('navigation')[0]; return n.responseStart - n.requestStart; }"""


def start(root: Path, port: int) -> subprocess.Popen:
    """``panel serve`` of ``root``'s app with ``root`` first on the import path; returns once the port accepts."""
    env = dict(os.environ, PYTHONPATH=str(root))
    cmd = [sys.executable, "-m", "panel", "serve", str(root / "dashboard" / "app.py"), "--setup",
           str(root / "dashboard" / "warmup.py"), "--address", "127.0.0.1", "--port", str(port),
           "--allow-websocket-origin", f"127.0.0.1:{port}"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600  # a fresh checkout compiles fpcore's kernels first
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"panel serve of {root} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"panel serve of {root} did not start")


def load(browser, url: str) -> tuple[float, float, float, int]:
    """``(to curve s, HTML wait s, whole page s, models at the curve)`` of one page load."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1"))
               else r.abort())  # fmt: skip
    try:
        t0 = time.perf_counter()
        page.goto(url, wait_until="commit", timeout=180_000)
        page.wait_for_function(CURVE_JS, timeout=180_000, polling=50)
        t1 = time.perf_counter()
        models = page.evaluate("Bokeh.documents[0].all_models.size")
        page.wait_for_function(WHOLE_JS, timeout=180_000, polling=100)
        t2 = time.perf_counter()
        return t1 - t0, page.evaluate(HTML_WAIT_JS) / 1000, t2 - t0, models
    finally:
        page.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loads", type=int, default=5, help="measured loads per server (after one unmeasured)")
    ap.add_argument("--before", type=Path, default=None, help="another checkout to measure in the same run")
    args = ap.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("no Chromium found (install Debian's `chromium`)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    roots = {"this checkout": ROOT}
    if args.before is not None:
        roots = {"before": args.before.resolve(), "this checkout": ROOT}
    procs, ports = {}, {}
    try:
        for name, root in roots.items():
            ports[name] = free_port()
            procs[name] = start(root, ports[name])
        rows: dict = {name: [] for name in roots}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for i in range(args.loads + 1):
                order = list(roots) if i % 2 else list(reversed(roots))  # alternate who goes first
                for name in order:
                    r = load(browser, f"http://127.0.0.1:{ports[name]}/app")
                    if i > 0:  # the first round only warms both servers
                        rows[name].append(r)
            browser.close()
    finally:
        for proc in procs.values():
            stop_server(proc)

    load_avg = os.getloadavg()
    print(f"\npage load of /app, Chromium headless, fresh context each, {os.cpu_count()} CPUs, load average "
          f"{load_avg[0]:.1f} {load_avg[1]:.1f}; medians over {args.loads} loads (alternating)\n")  # fmt: skip
    head = f"{'app':<16}{'to curve s':>11}{'p90':>7}{'HTML wait s':>13}{'whole page s':>14}{'models at curve':>17}"
    print(head)
    print("-" * len(head))
    med = {}
    for name, rs in rows.items():
        curve = sorted(r[0] for r in rs)
        med[name] = statistics.median(curve)
        p90 = curve[min(len(curve) - 1, int(round(0.9 * (len(curve) - 1))))]
        print(f"{name:<16}{med[name]:>11.2f}{p90:>7.2f}{statistics.median(r[1] for r in rs):>13.2f}"
              f"{statistics.median(r[2] for r in rs):>14.2f}{rs[0][3]:>17}")  # fmt: skip
    if "before" in med:
        print(f"\nratio this checkout / before (to curve): {med['this checkout'] / med['before']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
