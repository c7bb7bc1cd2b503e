"""The app object and the console script, in-process (no browser)."""

from __future__ import annotations

import subprocess
import sys

import param
import pytest

from dashboard import cli


@pytest.fixture(scope="module")
def app():
    from dashboard.app import create_app

    return create_app(sync_url=False)


def test_widgets_drive_the_state(app):
    s = app.state
    with param.edit_constant(app.w_depth):
        app.w_depth.value_throttled = 7  # a throttled slider acts on release
    assert s.depth == 7 and s.result.network.depth == 7
    assert len(app.density.src["curve"].data["x"]) > 0
    assert app.title_pane.object.startswith("#### ") and "L = 7" in app.title_pane.object


def test_player_steps_the_lilypad_views(app):
    s = app.state
    K = len(s.trace.centres)
    assert app.w_player.end == max(K - 1, 1) and app.w_player.value == 0
    app.w_player.value = 2
    assert s.frame == 2 and s.lilypad.k == 2 and "Step 3 of" in app.caption_pane.object
    assert len(app.zplane.src["path"].data["x"]) == 3
    s.sigma_w2 = 1.9  # a new chain resets the player
    assert app.w_player.value == 0 and s.lilypad.k == 0


def test_choice_dependent_widgets(app):
    s = app.state
    s.param.update(profile="custom", custom_widths="100, 80, 60, 40, 20")
    assert app.w_custom.visible and app.w_depth.disabled
    assert app.w_depth.value == 4 and s.result.network.depth == 4  # the disabled slider shows the true L
    s.profile = "constant"
    assert not app.w_custom.visible and not app.w_ratio.visible
    s.activation = "leaky_relu"
    assert app.w_slope.visible
    s.activation = "relu"


def test_target_slider_and_click(app):
    s = app.state

    class Tap:
        x = 0.5 * float(s.result.spectrum.lambda_max)

    app._on_tap(Tap())
    assert s.trace.target.real == pytest.approx(Tap.x)
    with param.edit_constant(app.w_target):
        app.w_target.value_throttled = 0.9
    assert 0 < s.trace.target.real <= s.result.spectrum.lambda_max


def test_x_scale_switch_rebuilds_figures(app):
    old = app.density.figure
    app.state.x_scale = "linear"
    assert app.density.figure is not old and app.density_pane.object is app.density.figure
    assert app.density.figure.x_range.start == 0.0
    app.state.x_scale = "log"


def test_downloads(app):
    csv = app.w_csv.callback().getvalue()
    js = app.w_json.callback().getvalue()
    assert csv.splitlines()[1] == "x,density,cdf,mc_eigenvalue" and '"lambda_max"' in js
    # named after the configuration (dash-views)
    assert app.w_csv.filename.startswith("spectrum_") and app.w_csv.filename.endswith(".csv")
    assert app.w_json.filename.startswith("metrics_") and app.w_json.filename.endswith(".json")


def test_bad_input_keeps_plot(app):
    s = app.state
    before = app.density.src["curve"].data
    s.param.update(profile="custom", custom_widths="400, nope")
    assert "nope" in s.error and app.density.src["curve"].data is before
    s.param.update(profile="constant")


def test_cli_builds_panel_serve_command(monkeypatch):
    cmd = cli.build_command(["--port", "5011"])
    assert cmd[:4] == [sys.executable, "-m", "panel", "serve"] and cmd[4].endswith("dashboard/app.py")
    assert cmd[-2:] == ["--port", "5011"]
    assert cmd[cmd.index("--setup") + 1].endswith("dashboard/warmup.py")  # kernels ready before serving
    seen = []

    class FakeServer:
        def __init__(self, cmd):
            seen.append(cmd)

        def wait(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeServer)
    assert cli.main(["--show"]) == 0 and seen[0][-1] == "--show"


def test_cli_help_runs():
    out = subprocess.run([sys.executable, "-c", "from dashboard.cli import main; raise SystemExit(main(['--help']))"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0 and "fpcore-dashboard" in out.stdout and "--port" in out.stdout


def test_pending_details_keep_the_metrics_rows_with_values_hidden(app):
    # While a new network's details are computed (served: in a worker process), the metrics table
    # keeps its rows with the values hidden, and the density's hidden-mass note keeps its lines:
    # a table that emptied and filled again made the browser lay the page out twice per move.
    from html import unescape

    from dashboard import plots

    s = app.state
    app._draw_on_details()
    assert s.details is s.result and not app.metrics_pane.hide_values
    rows = unescape(app.metrics_pane.get_root().text).count("<tr")
    assert rows > 5
    ready_note = app.density.hidden.text
    assert s.x_scale == "log" and ready_note  # (ReLU: half the mass is the atom at 0, left of the axis)
    s.details = None  # (what a served page sees between the density and its details)
    app._draw_on_details()
    hidden = unescape(app.metrics_pane.get_root().text)
    assert app.metrics_pane.hide_values and hidden.count("<tr") == rows and "values-pending" in hidden
    assert len(app.density.src["deciles"].data["x"]) == 0
    note = app.density.hidden.text
    assert note.startswith(plots.PENDING_NOTE) and note.count("\n") == ready_note.count("\n")
    s.details = s.result  # the details arrive: the values, and no pending note
    app._draw_on_details()
    shown = unescape(app.metrics_pane.get_root().text)
    assert not app.metrics_pane.hide_values and "values-pending" not in shown and shown.count("<tr") == rows
    assert not app.density.hidden.text.startswith(plots.PENDING_NOTE)
