"""A classroom on one server: many browser sessions moving their sliders at the same moment.

Serves ``dashboard/app.py`` on the loopback interface only (127.0.0.1, a free port; with
``--setup dashboard/warmup.py`` as ``fpcore-dashboard`` does), opens ``--sessions`` pages in the
system Chromium (Playwright), each with its own ReLU network (depths spread over 10 ... 90 and its own
base width, so no session is served from another's cache), and then, ``--bursts`` times, presses
ArrowRight on every session's Depth slider one right after the other (a burst takes the few
tens of ms Playwright needs per key press). For every session it measures the time from its own
key press to the moment its density curve's data source (``density-curve``) holds the new data,
and for every burst the time from the first key press to the moment the last session sees new
data. Between bursts it waits until every page says it is up to date.

Bounded: at most 20 sessions and 10 bursts, a 30 s wait per update and ``--max-seconds`` for the
whole run (it stops by itself, then shuts the server down). Nothing leaves the machine: the server
listens on 127.0.0.1 and the pages may only talk to it.

Targets (issue 13, 10 sessions on the 2-core machine): median <= 500 ms and worst <= 1.5 s until
every session sees new data. Note that the 10 Chromium pages run on the same 2 cores as the server.

Usage::

    python benchmarks/load_dashboard.py                      # 10 sessions, 4 bursts
    python benchmarks/load_dashboard.py --sessions 5 --bursts 3
    python benchmarks/load_dashboard.py --server-timing      # also: when the server saw each burst
    python benchmarks/load_dashboard.py --num-procs 2        # two server processes (panel serve --num-procs)
    python benchmarks/load_dashboard.py --profile FILE       # cProfile of the server's event loop in the bursts

``--server-timing`` serves with ``FPCORE_DASHBOARD_TIMING=1`` and splits each burst with the
server's own time stamps: first key press -> the server sees the burst's last key press (its
``event``) -> it has sent the burst's last density. The server's log goes to a temporary file
(never to an unread pipe, which would block the server once full).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_dashboard import SETTLED_JS, SIGNATURE_JS  # noqa: E402
from dashboard.browser_probe import APP, CHROMIUM_ARGS, WS_TIMES_JS, find_chromium, open_page, served  # noqa: E402

MAX_SESSIONS, MAX_BURSTS = 20, 10

# Each page records its own key press and the first animation frame with a new density curve
# (absolute times: performance.timeOrigin + performance.now(), comparable across pages).
PROBE_JS = """([name, sig]) => {
  window.__load = {key: null, changed: null};
  const sigFn = %s;
  window.addEventListener('keydown', () => { if (window.__load.key === null)
    window.__load.key = performance.timeOrigin + performance.now(); }, {capture: true, once: true});
  const poll = () => {
    if (sigFn(name) !== sig) { window.__load.changed = performance.timeOrigin + performance.now(); return; }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
}""" % SIGNATURE_JS


def open_session(browser, url: str, errors: list):
    return open_page(browser, url, errors, viewport=(1280, 800), wait_js=f"({SIGNATURE_JS})('density-curve') !== null",
                     init_script=WS_TIMES_JS)


def settle(pages, timeout_ms: float) -> None:
    for page in pages:
        page.wait_for_function(SETTLED_JS, timeout=timeout_ms)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10, help=f"browser sessions (<= {MAX_SESSIONS})")
    ap.add_argument("--bursts", type=int, default=4, help=f"bursts of slider moves (<= {MAX_BURSTS})")
    ap.add_argument("--max-seconds", type=float, default=600.0, help="stop after this long, whatever happened")
    ap.add_argument("--server-timing", action="store_true", help="split each burst with the server's time stamps")
    ap.add_argument("--num-procs", type=int, default=1,
                    help="server processes (panel serve --num-procs; sessions are spread over them)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the server's event loop into FILE (pstats) and print its top")
    args = ap.parse_args(argv)
    if not 1 <= args.sessions <= MAX_SESSIONS or not 1 <= args.bursts <= MAX_BURSTS:
        ap.error(f"sessions must be in [1, {MAX_SESSIONS}] and bursts in [1, {MAX_BURSTS}]")
    chromium = find_chromium()
    if chromium is None:
        print("no Chromium found (install Debian's `chromium`)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    deadline = time.monotonic() + args.max_seconds
    latencies: list[float] = []  # per session and burst, ms
    all_seen: list[float] = []  # per burst: first key press -> last session updated, ms
    errors: list[str] = []
    timeouts = 0
    sends: list[float] = []  # per session and burst: key press -> its websocket sent the change, ms
    bursts: list[tuple[float, float]] = []  # per burst: (first key press, last session updated), epoch ms
    log = tempfile.TemporaryFile("w+")
    env = dict(os.environ, FPCORE_DASHBOARD_TIMING="1") if args.server_timing else None
    if args.profile:
        env = dict(env or os.environ, FPCORE_DASHBOARD_PROFILE=str(Path(args.profile).resolve()))
    extra = ["--num-procs", str(args.num_procs)] if args.num_procs != 1 else None
    with served([str(APP)], env=env, stderr=log, extra=extra) as (_, port), sync_playwright() as pw:
        base = f"http://127.0.0.1:{port}/app"
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        pages = []
        for i in range(args.sessions):
            if time.monotonic() > deadline:
                raise TimeoutError("out of time while opening the sessions")
            depth = 10 + (80 * i) // max(1, args.sessions - 1)  # depths 10 ... 90, as in the issue
            pages.append(open_session(browser, f"{base}?activation=relu&depth={depth}&base_width={300 + i}", errors))
        settle(pages, 180_000)
        if args.profile:  # the statistics so far (page loads), to subtract: only the bursts are shown
            time.sleep(6.0)  # (the server writes them every 5 s)
            before = Path(args.profile + ".before")
            before.write_bytes(Path(args.profile).read_bytes())
        for burst in range(args.bursts):
            if time.monotonic() > deadline:
                print(f"stopped after {burst} bursts: --max-seconds reached")
                break
            time.sleep(1.0)
            settle(pages, 120_000)
            handles = []
            for page in pages:
                sig = page.evaluate(SIGNATURE_JS, "density-curve")
                page.evaluate(PROBE_JS, ["density-curve", sig])
                handle = page.locator(".w-depth .noUi-handle").first
                handle.scroll_into_view_if_needed()
                handles.append(handle)
            for page, handle in zip(pages, handles):  # the burst: every session, one after the other
                handle.focus()
                page.keyboard.press("ArrowRight")
            keys, seen = [], []
            for page in pages:
                try:
                    page.wait_for_function("window.__load.changed !== null", timeout=30_000, polling=50)
                except Exception:  # noqa: BLE001 - counted and reported
                    timeouts += 1
                    continue
                k, c = page.evaluate("[window.__load.key, window.__load.changed]")
                # when this page's websocket sent its first message after the key press (epoch ms)
                sent = page.evaluate("(() => { const t0 = window.__load.key - performance.timeOrigin;"
                                     " const s = window.__ws.sent.find(t => t >= t0);"
                                     " return s === undefined ? null : s + performance.timeOrigin; })()")
                if sent is not None:
                    sends.append(sent - k)
                keys.append(k)
                seen.append(c)
                latencies.append(c - k)
            if seen:
                all_seen.append(max(seen) - min(keys))
                bursts.append((min(keys), max(seen)))
        browser.close()

    load = os.getloadavg()
    print(f"\n{args.sessions} sessions on one server ({args.num_procs} process(es)), {len(all_seen)} bursts, Chromium headless, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.1f} {load[1]:.1f}\n")  # fmt: skip
    if not latencies:
        print("no update seen")
        return 1
    srt = sorted(latencies)
    print(f"{'key press -> that session sees new data':<48}{'median':>9}{'p90':>8}{'worst':>8}  (ms, n = {len(srt)})")
    p90 = srt[min(len(srt) - 1, int(round(0.9 * (len(srt) - 1))))]
    print(f"{'':<48}{statistics.median(srt):>9.0f}{p90:>8.0f}{srt[-1]:>8.0f}")
    print(f"{'burst: first key press -> every session updated':<48}{statistics.median(all_seen):>9.0f}{'':>8}"
          f"{max(all_seen):>8.0f}  (ms, per burst: {', '.join(f'{v:.0f}' for v in all_seen)})")  # fmt: skip
    ok = statistics.median(srt) <= 500 and srt[-1] <= 1500 and timeouts == 0
    print(f"\ntarget median <= 500 ms, worst <= 1500 ms: {'met' if ok else 'NOT met'}; timeouts: {timeouts}")
    if sends:
        ss = sorted(sends)
        print(f"{'key press -> the page sent it (websocket)':<48}{statistics.median(ss):>9.0f}"
              f"{ss[min(len(ss) - 1, int(round(0.9 * (len(ss) - 1))))]:>8.0f}{ss[-1]:>8.0f}")
    if args.server_timing:
        log.seek(0)
        server_split(log.read(), bursts, args.sessions)
    log.close()
    if args.profile and Path(args.profile).exists():
        profile_bursts(args.profile)
    if errors:
        print("page errors:", *errors[:10], sep="\n  ")
    return 0 if ok and not errors else 1


def profile_bursts(path: str, top: int = 40) -> None:
    """The server event loop's profile during the bursts: the statistics written after the bursts
    minus those written before them (cProfile, per function: own and cumulative seconds, calls)."""
    import pstats

    after = pstats.Stats(path).stats
    before_path = Path(path + ".before")
    before = pstats.Stats(str(before_path)).stats if before_path.exists() else {}
    rows = []
    for fn, (cc, nc, tt, ct, _) in after.items():
        b = before.get(fn, (0, 0, 0.0, 0.0, None))
        rows.append((ct - b[3], tt - b[2], nc - b[1], fn))
    total = max((r[0] for r in rows), default=0.0)
    print(f"\nserver event loop during the bursts (cProfile; the busiest entry {total:.1f} s), "
          f"top {top} by cumulative seconds (cumulative, own, calls, function):")
    for ct, tt, nc, (file, line, name) in sorted(rows, reverse=True)[:top]:
        short = "/".join(Path(file).parts[-2:]) if file != "~" else ""
        print(f"  {ct:8.2f} {tt:8.2f} {nc:8d}  {short}:{line}({name})")


def server_split(text: str, bursts: list, sessions: int) -> None:
    """Per burst (ms from its first key press): when the server saw the burst's last key press,
    and when it sent the burst's last density (its ``TIMING`` lines)."""
    marks = [(float(t), step) for t, step in re.findall(r"^TIMING ([0-9.]+) (\S+)$", text, re.M)]
    print("\nserver time stamps per burst (ms from the first key press): last key press seen by the server"
          " (events seen), last density sent, last session saw it")
    for i, (k0, k1) in enumerate(bursts):
        ev = [t for t, s in marks if s == "event" and k0 - 50 <= t <= k1]
        sent = [t for t, s in marks if s == "density-sent" and k0 - 50 <= t <= k1]
        last_ev = f"{max(ev) - k0:.0f} ({len(ev)}/{sessions})" if ev else "-"
        last_sent = f"{max(sent) - k0:.0f}" if sent else "-"
        print(f"  burst {i + 1}: {last_ev:>14} {last_sent:>8} {k1 - k0:>8.0f}")


if __name__ == "__main__":
    sys.exit(main())
