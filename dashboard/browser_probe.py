"""What the browser tests and the browser benchmarks share: Chromium's flags, the JavaScript they
run in the page, and starting / stopping a ``panel serve`` process on a free loopback port.

``PLOT_SIGNATURE_JS(prefix)`` returns a short signature of the data of the first Bokeh figure
whose title starts with ``prefix`` (``null`` before the document has rendered it), so a caller
can wait for a plot to change without knowing its data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
SETUP = ROOT / "dashboard" / "warmup.py"

#: Flags for Debian's Chromium on these machines (headless, offline: no background networking).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

PLOT_SIGNATURE_JS = """(prefix) => {
  if (!(window.Bokeh && Bokeh.documents.length)) return null;
  for (const m of Bokeh.documents[0].all_models) {
    const t = m.title && m.title.text;
    if (t && String(t).startsWith(prefix) && m.renderers) {
      let s = '';
      for (const r of m.renderers) {
        const ds = r.data_source;
        if (!ds || !ds.data) continue;
        for (const [k, v] of Object.entries(ds.data)) {
          let acc = 0;
          for (let i = 0; i < v.length; i++) { const a = +v[i]; if (isFinite(a)) acc += a * (1 + (i % 7)); }
          s += k + v.length + ':' + acc.toPrecision(12) + ';';
        }
      }
      return s;
    }
  }
  return null;
}"""


#: True once the page's sections below the spectrum (metrics, phase diagram, the tabs), which the
#: app sends after the browser has drawn the spectrum, are in the document.
REST_LOADED_JS = f"""() => ({PLOT_SIGNATURE_JS})('Phase diagram') !== null && ({PLOT_SIGNATURE_JS})('Pinned spectra') !== null"""

#: True once the solver tab's planes are in the document (the tab is open).
SOLVER_LOADED_JS = f"""() => ({PLOT_SIGNATURE_JS})('m-plane') !== null && ({PLOT_SIGNATURE_JS})('z-plane') !== null"""


def open_tab(page, name: str, loaded_js: str | None = None, timeout_ms: float = 60_000) -> None:
    """Click the page's tab called ``name`` (e.g. "Solver: Newton lilypads") and, with
    ``loaded_js``, wait until that holds."""
    page.locator(".bk-tab", has_text=name).first.click()
    if loaded_js:
        page.wait_for_function(loaded_js, timeout=timeout_ms)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_chromium() -> str | None:
    """The system Chromium (Playwright never downloads one here), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def start_server(apps: list[str], port: int, extra: list[str] | None = None, env: dict | None = None,
                 stderr=subprocess.PIPE, timeout: float = 300.0) -> subprocess.Popen:
    """``panel serve APPS --setup dashboard/warmup.py`` on ``127.0.0.1:port`` (that origin allowed
    for the websocket); returns once the port accepts connections (the setup script has run)."""
    cmd = [sys.executable, "-m", "panel", "serve", *apps, "--setup", str(SETUP), "--address", "127.0.0.1",
           "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}", *(extra or [])]  # fmt: skip
    # its own process group: with --num-procs the forked server processes are stopped with it
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, text=True, env=env,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + timeout  # the setup script compiles fpcore's kernels on a first run
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr is not None and stderr == subprocess.PIPE else ""
            raise RuntimeError(f"panel serve exited with {proc.returncode}: {err}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/liveness", timeout=1)
            return proc
        except OSError:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return proc
            except OSError:
                time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError(f"panel serve did not start within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop a server from :func:`start_server` and its process group (forked server processes of
    ``--num-procs``, worker processes): SIGTERM, then SIGKILL after 10 s."""
    def group(sig) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    group(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        group(signal.SIGKILL)
        proc.wait(10)
    time.sleep(0.5)
    group(signal.SIGKILL)  # forked servers that outlived the parent


@contextlib.contextmanager
def served(apps: list[str], **kwargs):
    """``with served([APP]) as (proc, port): ...``: a server for the block, always stopped."""
    port = free_port()
    proc = start_server(apps, port, **kwargs)
    try:
        yield proc, port
    finally:
        stop_server(proc)


#: Records when the page's websocket sends and receives messages (``window.__ws.sent`` and
#: ``window.__ws.recv``: ``performance.now()`` times, the last 200 of each), to split a latency
#: into browser-to-server, server, and server-to-screen parts.
WS_TIMES_JS = """(() => {
  window.__ws = {sent: [], recv: []};
  const keep = (a, t) => { a.push(t); if (a.length > 200) a.shift(); };
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (!this.__timed) { this.__timed = true;
      this.addEventListener('message', () => keep(window.__ws.recv, performance.now())); }
    keep(window.__ws.sent, performance.now());
    return send.call(this, data);
  };
})();"""


def open_page(browser, url: str, errors: list, viewport=(1600, 1000), wait_js: str | None = None,
              init_script: str | None = None):
    """A page that records its JS errors in ``errors`` and never requests another host; waits for
    ``wait_js`` (default: the Bokeh document is idle). ``init_script`` runs before the page's own."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    if init_script:
        page.add_init_script(init_script)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route(
        "**/*",
        lambda r: r.continue_() if r.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1")) else r.abort(),
    )
    page.goto(url, timeout=180_000)  # a slow solver delays the first page
    page.wait_for_function(wait_js or "window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].is_idle",
                           timeout=180_000)  # fmt: skip
    return page


def serve_log_path(port: int) -> Path:
    """Where the tests' served app (``tests/dashboard/conftest.py``) writes its server log."""
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"dashboard-serve-{port}.log"


def server_busy_marks(url: str, n: int = 12) -> str:
    """The last ``n`` of each session's busy marks and the job starts and ends in the log of the
    server serving ``url`` (for a failure message: which jobs a page that did not settle waits for)."""
    path = serve_log_path(int(url.split(":")[2].split("/")[0]))
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return f"(no server log at {path})"
    last: dict[str, str] = {}
    jobs = []
    for line in lines:
        parts = line.split(maxsplit=2)
        if len(parts) == 3 and parts[0] == "TIMING":
            step = parts[2]
            if step.startswith("busy:") and step.count(":") >= 2:
                last[step.split(":")[1]] = f"{parts[1]} {step}"
            elif step.startswith(("job-start", "job-end")):
                jobs.append(f"{parts[1]} {step}")
    return "last busy mark per session:\n" + "\n".join(last.values()) + "\nlast jobs:\n" + "\n".join(jobs[-n:])
