"""Fixtures of the dashboard's browser tests: a served app and the system Chromium driven by Playwright.

The browser is Debian's ``chromium`` (installed by ``.ci/run``); Playwright never downloads one.
Without Chromium (or Playwright) the browser tests skip locally, but under ``CI=true`` they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dashboard.browser_probe import CHROMIUM_ARGS, PLOT_SIGNATURE_JS, REST_LOADED_JS, SOLVER_LOADED_JS, open_tab, serve_log_path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "app.py"

# A digest of the data of the plot whose title starts with `prefix` (changes when any glyph's data does).

COLUMN_LENGTH_JS = """([prefix, column]) => {
  for (const m of Bokeh.documents[0].all_models) {
    const t = m.title && m.title.text;
    if (t && String(t).startsWith(prefix) && m.renderers) {
      let n = 0;
      for (const r of m.renderers) { const ds = r.data_source; if (ds && ds.data && ds.data[column]) n += ds.data[column].length; }
      return n;
    }
  }
  return -1;
}"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests must run under CI: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - depends on the environment
        _unavailable("playwright is not installed")
    path = find_chromium()
    if path is None:
        _unavailable("no system Chromium found (apt-get install -y chromium)")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    except Exception as exc:  # noqa: BLE001
        pw.stop()
        _unavailable(f"Chromium at {path} does not start under Playwright: {exc}")
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture(scope="module")
def served_app(chromium):
    """``panel serve dashboard/app.py`` on 127.0.0.1 and a fresh port; yields the app's URL."""
    port = _free_port()
    log = open(serve_log_path(port), "w")
    from dashboard.cli import build_command

    proc = subprocess.Popen(
        build_command(["--address", "127.0.0.1", "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}"]),
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        # the server's time stamps (busy:<session>:<kinds>, job-start/job-end) go to the log, which
        # a test that waits in vain for a page to settle quotes (browser_probe.server_busy_marks)
        env=dict(os.environ, FPCORE_DASHBOARD_TIMING="1"),
    )  # fmt: skip
    deadline = time.time() + 300  # (the setup script compiles fpcore's kernels on a cold numba cache: minutes)
    while True:
        if proc.poll() is not None:
            pytest.fail(f"panel serve exited with {proc.returncode}; see {log.name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                pytest.fail("panel serve did not open its port within 300 s")
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}/app"
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    text = Path(log.name).read_text()
    assert not _server_exceptions(text), f"the server logged an exception:\n{text[-4000:]}"


def _server_exceptions(log: str) -> list[str]:
    """The tracebacks in a server log, except Tornado's report that a browser closed its websocket
    while the server was still writing to it (a page closed mid-update: no fault of the app)."""
    closed = re.compile(
        r"Traceback \(most recent call last\):\n(?:[ \t].*\n)*tornado\.iostream\.StreamClosedError: .*\n\s*\n"
        r"During handling of the above exception, another exception occurred:\n\s*\n"
        r"Traceback \(most recent call last\):\n(?:[ \t].*\n)*tornado\.websocket\.WebSocketClosedError\n"
    )
    # The same event seen from Panel's message dispatch task (a page closed while a patch was sent).
    dispatch = re.compile(
        r"Task exception was never retrieved\nfuture: <Task finished name='[^']*' coro=<_dispatch_msgs\(\) .*"
        r"exception=WebSocketClosedError\(\)>\nTraceback \(most recent call last\):\n(?:[ \t].*\n)*"
        r"tornado\.websocket\.WebSocketClosedError\n"
    )
    # Once the fixture has sent SIGTERM, a worker process that the forkserver was starting at
    # that moment dies reading its start-up data (EOFError in multiprocessing's spawn): the
    # server being stopped, not the app failing. Only that traceback is dropped after the signal.
    head, sep, tail = log.partition("Received signal SIGTERM, shutting down")
    spawn = re.compile(
        r"Traceback \(most recent call last\):\n(?:[ \t].*\n)*?[ \t]+File \"[^\"]*multiprocessing/forkserver\.py\""
        r"(?:.*\n)(?:[ \t].*\n)*EOFError: Ran out of input\n"
    )
    log = head + sep + spawn.sub("", tail)
    return dispatch.sub("", closed.sub("", log)).split("Traceback")[1:]


class AppPage:
    """A loaded dashboard page with the JS errors it raised."""

    def __init__(self, browser, url: str):
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1600, "height": 1000})
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        # The machines are offline: never wait on a CDN or a font server.
        self.page.route(
            "**/*",
            lambda r: r.continue_() if r.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1")) else r.abort(),
        )
        self.page.goto(url)
        self.wait_idle()
        self.page.wait_for_function(f"({PLOT_SIGNATURE_JS})('Spectral density') !== null", timeout=60_000)
        # The sections below the spectrum arrive once the browser has drawn it (the app's onload).
        self.page.wait_for_function(REST_LOADED_JS, timeout=60_000)
        self.wait_idle()

    def open_solver(self) -> None:
        """Open the solver tab and wait for its planes (they are built only when it is open)."""
        open_tab(self.page, "Solver", SOLVER_LOADED_JS)
        self.wait_idle()

    def open_tab(self, name: str) -> None:
        open_tab(self.page, name)
        self.wait_idle()

    def wait_idle(self, timeout: float = 60_000) -> None:
        self.page.wait_for_function(
            "window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].is_idle", timeout=timeout
        )

    def signature(self, prefix: str = "Spectral density") -> str:
        return self.page.evaluate(PLOT_SIGNATURE_JS, prefix)

    def wait_signature_change(self, old: str, prefix: str = "Spectral density", timeout: float = 30_000) -> str:
        js = f"(old) => ({PLOT_SIGNATURE_JS})({prefix!r}) !== old"
        self.page.wait_for_function(js, arg=old, timeout=timeout)
        return self.signature(prefix)

    def column_length(self, prefix: str, column: str) -> int:
        return self.page.evaluate(COLUMN_LENGTH_JS, [prefix, column])

    def wait_column_filled(self, prefix: str, column: str, timeout: float = 60_000) -> None:
        js = f"(args) => ({COLUMN_LENGTH_JS})(args) > 0"
        self.page.wait_for_function(js, arg=[prefix, column], timeout=timeout)


@pytest.fixture
def app_page(chromium, served_app, request):
    """A fresh page (session); ``indirect`` parametrisation passes a URL query string."""
    query = getattr(request, "param", "")
    p = AppPage(chromium, served_app + query)
    yield p
    p.page.close()


@pytest.fixture(scope="module")
def shared_page(chromium, served_app):
    """One page for the tests that only need *a* loaded app: a page load costs seconds."""
    p = AppPage(chromium, served_app)
    yield p
    p.page.close()


@pytest.fixture
def page_class():
    """:class:`AppPage` itself, for tests that open several sessions."""
    return AppPage
