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

Two kinds of clients (``--clients``):

- ``chromium`` (default): real pages in the system Chromium. The ten renderers run on the same
  2 cores as the server, which a classroom does not do (each student's browser runs on the
  student's machine): the measurement includes ten browsers' rendering competing with the server.
- ``bokeh``: Bokeh protocol clients (``bokeh.client``, one websocket session per student on
  loopback, each on its own thread of this process). A client opens the page as a browser does
  (the server builds the same document, and the client sends the ``document_ready`` event, so
  the sections below the spectrum are sent as to a browser), then "presses the key" by setting
  the Depth slider's ``value`` and ``value_throttled`` (the two properties a key press on the
  page sets) and times until the patch that changes the density source (``density-curve``)
  has arrived and been applied. No rendering: this measures what the server can serve, with
  the clients' own cost reduced to decoding the messages.

Usage::

    python benchmarks/load_dashboard.py                      # 10 sessions, 4 bursts
    python benchmarks/load_dashboard.py --sessions 5 --bursts 3
    python benchmarks/load_dashboard.py --server-timing      # also: when the server saw each burst
    python benchmarks/load_dashboard.py --num-procs 2        # two server processes (panel serve --num-procs)
    python benchmarks/load_dashboard.py --clients bokeh      # protocol clients instead of Chromium pages
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
from bench_dashboard import SETTLED_JS, SIGNATURE_JS, WATCH_JS  # noqa: E402
from dashboard.browser_probe import APP, CHROMIUM_ARGS, WS_TIMES_JS, find_chromium, open_page, served  # noqa: E402

MAX_SESSIONS, MAX_BURSTS = 20, 10

# Each page records its own key press and the first animation frame with a new density curve
# (absolute times: performance.timeOrigin + performance.now(), comparable across pages). Driven by
# the document's change events, not by polling: a poll on every animation frame in ten pages took
# 0.57 of the 2 cores with every page idle (measured, stop 28), CPU the pages and the server then
# lacked. On each change the density's signature is compared; the first change that alters it
# takes the time in the next animation frame (the frame that paints it).
PROBE_JS = """([name, sig]) => {
  window.__load = {key: null, changed: null};
  const sigFn = %s;
  const watch = %s;
  window.addEventListener('keydown', () => { if (window.__load.key === null)
    window.__load.key = performance.timeOrigin + performance.now(); }, {capture: true, once: true});
  let done = false;
  const check = () => {
    if (done || sigFn(name) === sig) return;
    done = true;
    requestAnimationFrame(() => { window.__load.changed = performance.timeOrigin + performance.now(); });
    stop();
  };
  const stop = watch(name, check);
}""" % (SIGNATURE_JS, WATCH_JS)


class ProtocolSession:
    """One student as a Bokeh protocol client: its own thread and event loop, a session of the
    app pulled from the server (``bokeh.client.pull_session``), ``document_ready`` sent as the
    browser sends it. :meth:`move` sets the Depth slider as a key press does and returns when the
    density source has changed: ``(sent, seen)`` in ``time.time()`` seconds."""

    def __init__(self, url: str, arguments: dict, timeout: float = 180.0):
        import threading

        self.url, self.arguments = url, arguments
        self.ready, self.changed = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self._sig0 = None
        self.sent = self.seen = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="load-client")
        self._thread.start()
        if not self.ready.wait(timeout):
            raise TimeoutError(f"protocol client: no session from {url} within {timeout} s")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        import asyncio

        from bokeh.client import pull_session
        from bokeh.document.events import MessageSentEvent
        from bokeh.events import DocumentReady

        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            _import_panel_models()
            self.session = pull_session(url=self.url, arguments=self.arguments)
            doc = self.session.document
            self.doc = doc
            handle = self.session._handle_patch

            def on_patch(message):
                handle(message)
                if self._sig0 is not None and self.seen is None and self.signature() != self._sig0:
                    self.seen = time.time()
                    self.changed.set()

            self.session._handle_patch = on_patch
            # what BokehJS sends once it has rendered the document (Panel's onload follows)
            self.session._connection._send_patch_document(self.session.id, MessageSentEvent(doc, "bokeh_event",
                                                                                            DocumentReady()))
        except BaseException as exc:  # noqa: BLE001 - reported by the constructor
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.session._connection.loop_until_closed()

    def _model(self, css: str):
        for m in list(self.doc.models):
            if css in (getattr(m, "css_classes", None) or []):
                return m
        return None

    def signature(self):
        src = self.doc.get_model_by_name("density-curve")
        if src is None:
            return None
        out = []
        for k, v in src.data.items():
            a = [float(x) for x in v] if not hasattr(v, "dtype") else v.astype(float).tolist()
            out.append((k, len(a), round(sum(x * (1 + i % 7) for i, x in enumerate(a) if x == x), 9)))
        return tuple(out)

    def settled(self) -> bool:
        """The page would say it is up to date: no "computing" in the busy indicator, and a density."""
        busy = self._model("w-busy")
        return self.signature() is not None and (busy is None or "computing" not in str(busy.text))

    def _call(self, fn) -> None:
        self.session._connection.io_loop.add_callback(fn)

    def press(self) -> None:
        """The key press: Depth + 1 (value and value_throttled, as the page's slider sets them)."""
        self.changed.clear()
        self.sent = self.seen = None

        def go():
            slider = self._model("w-depth")
            self._sig0 = self.signature()
            self.sent = time.time()
            new = int(slider.value) + 1
            slider.value = new
            slider.set_from_json("value_throttled", new)  # (read-only in Python; the page sets it)

        self._call(go)

    def close(self) -> None:
        try:
            self._call(lambda: self.session.close())
        except Exception:  # noqa: BLE001 - already gone
            pass
        self._thread.join(10)


def _import_panel_models() -> None:
    """Register Panel's Bokeh models in this process (the client decodes the document)."""
    import importlib
    import pkgutil

    import panel.models

    for info in pkgutil.iter_modules(panel.models.__path__):
        try:
            importlib.import_module(f"panel.models.{info.name}")
        except Exception:  # noqa: BLE001 - an optional model (e.g. a missing extra) is not in the app
            pass


def run_protocol(base: str, sessions: int, n_bursts: int, deadline: float, profile: str | None = None) -> tuple:
    """The bursts with :class:`ProtocolSession` clients: ``(latencies ms, per-burst all-seen ms,
    bursts (first press, last seen) epoch ms, timeouts)``."""
    clients = []
    latencies, all_seen, bursts, timeouts = [], [], [], 0
    try:
        for i in range(sessions):
            depth = 10 + (80 * i) // max(1, sessions - 1)  # depths 10 ... 90, as with the pages
            clients.append(ProtocolSession(base, dict(activation="relu", depth=str(depth), base_width=str(300 + i))))
        _wait(lambda: all(c.settled() for c in clients), 180.0, "the sessions' first densities")
        for c in clients:  # each session shows its own network (its link's arguments reached the app)
            got = int(c._model("w-depth").value)
            if got != int(c.arguments["depth"]):
                raise RuntimeError(f"a protocol session shows depth {got}, not its link's {c.arguments['depth']}")
        if profile:  # the statistics so far (page loads), to subtract: only the bursts are shown
            time.sleep(6.0)  # (the server writes them every 5 s)
            Path(profile + ".before").write_bytes(Path(profile).read_bytes())
        for burst in range(n_bursts):
            if time.monotonic() > deadline:
                print(f"stopped after {burst} bursts: --max-seconds reached")
                break
            time.sleep(1.0)
            _wait(lambda: all(c.settled() for c in clients), 120.0, "the sessions to settle")
            time.sleep(0.5)  # (the busy indicator shows only after 0.25 s of work: look again)
            _wait(lambda: all(c.settled() for c in clients), 120.0, "the sessions to settle")
            for c in clients:  # the burst: every session, one right after the other
                c.press()
            keys, seen = [], []
            for c in clients:
                if not c.changed.wait(30.0):
                    timeouts += 1
                    continue
                keys.append(1000 * c.sent)
                seen.append(1000 * c.seen)
                latencies.append(1000 * (c.seen - c.sent))
            if seen:
                all_seen.append(max(seen) - min(keys))
                bursts.append((min(keys), max(seen)))
    finally:
        for c in clients:
            c.close()
    return latencies, all_seen, bursts, timeouts


def _wait(pred, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.02)


def open_session(browser, url: str, errors: list):
    return open_page(browser, url, errors, viewport=(1280, 800), wait_js=f"({SIGNATURE_JS})('density-curve') !== null",
                     init_script=WS_TIMES_JS)


def settle(pages, timeout_ms: float) -> None:
    for i, page in enumerate(pages):
        try:
            page.wait_for_function(SETTLED_JS, timeout=timeout_ms, polling=100)
        except Exception:
            state = page.evaluate(STATE_JS)
            raise TimeoutError(f"session {i} did not settle in {timeout_ms / 1000:.0f} s: {state}") from None


# what a page that does not settle shows (its document's idle flag and the busy indicator)
STATE_JS = """() => { if (!(window.Bokeh && Bokeh.documents.length)) return 'no Bokeh document';
  const d = Bokeh.documents[0];
  const busy = Array.from(d.all_models).filter(m => (m.css_classes || []).includes('w-busy')).map(m => String(m.text));
  return `is_idle=${d.is_idle} busy=${JSON.stringify(busy)}`; }"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10, help=f"browser sessions (<= {MAX_SESSIONS})")
    ap.add_argument("--bursts", type=int, default=4, help=f"bursts of slider moves (<= {MAX_BURSTS})")
    ap.add_argument("--max-seconds", type=float, default=600.0, help="stop after this long, whatever happened")
    ap.add_argument("--server-timing", action="store_true", help="split each burst with the server's time stamps")
    ap.add_argument("--num-procs", type=int, default=1,
                    help="server processes (panel serve --num-procs; sessions are spread over them)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the server's event loop into FILE (pstats) and print its top")
    ap.add_argument("--clients", choices=("chromium", "bokeh"), default="chromium",
                    help="chromium: real pages (on the server's cores); bokeh: protocol clients (no rendering)")
    args = ap.parse_args(argv)
    if not 1 <= args.sessions <= MAX_SESSIONS or not 1 <= args.bursts <= MAX_BURSTS:
        ap.error(f"sessions must be in [1, {MAX_SESSIONS}] and bursts in [1, {MAX_BURSTS}]")
    chromium = find_chromium() if args.clients == "chromium" else None
    if chromium is None and args.clients == "chromium":
        print("no Chromium found (install Debian's `chromium`)", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.max_seconds
    errors: list[str] = []
    sends: list[float] = []  # per session and burst: key press -> its websocket sent the change, ms
    log = tempfile.TemporaryFile("w+")
    env = dict(os.environ, FPCORE_DASHBOARD_TIMING="1") if args.server_timing else None
    if args.profile:
        env = dict(env or os.environ, FPCORE_DASHBOARD_PROFILE=str(Path(args.profile).resolve()))
    extra = ["--num-procs", str(args.num_procs)] if args.num_procs != 1 else None
    if args.clients == "bokeh":
        with served([str(APP)], env=env, stderr=log, extra=extra) as (_, port):
            # latencies per session and burst (ms); per burst: first key press -> last session
            # updated (ms) and (first key press, last session updated) in epoch ms
            latencies, all_seen, bursts, timeouts = run_protocol(f"http://127.0.0.1:{port}/app", args.sessions,
                                                                 args.bursts, deadline, args.profile)
    else:
        latencies, all_seen, bursts, timeouts = _run_chromium(args, env, log, extra, chromium, deadline, errors, sends)
    return report(args, latencies, all_seen, bursts, timeouts, sends, log, errors)


def _run_chromium(args, env, log, extra, chromium, deadline, errors, sends):
    """The bursts with Chromium pages (see the module's docstring)."""
    from playwright.sync_api import sync_playwright

    latencies: list[float] = []
    all_seen: list[float] = []
    bursts: list[tuple[float, float]] = []
    timeouts = 0
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
    return latencies, all_seen, bursts, timeouts


def report(args, latencies, all_seen, bursts, timeouts, sends, log, errors) -> int:
    load = os.getloadavg()
    clients = ("Chromium headless pages (on the server's cores)" if args.clients == "chromium"
               else "Bokeh protocol clients (no rendering)")
    print(f"\n{args.sessions} sessions on one server ({args.num_procs} process(es)), {len(all_seen)} bursts, {clients}, "
          f"{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f}\n")  # fmt: skip
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
