"""The Jacobian-spectrum explorer: ``panel serve dashboard/app.py`` (or ``fpcore-dashboard``).

A thin layer: :class:`DashboardApp` binds widgets to a :class:`dashboard.state.DashboardState` and
puts the pure views of :mod:`dashboard.views` on the page.
"""

from __future__ import annotations

import io
import json
import math
import sys
from functools import partial
from pathlib import Path

import numpy as np
import panel as pn
import param
from bokeh.events import Tap
from panel.io.state import set_curdoc
from panel.theme.fast import Fast

try:
    from dashboard import evidence, plots, views
    from dashboard.markup import HTML, Markdown, MetricsTable
    from dashboard import teacher as _teacher  # dash-views
    from dashboard.state import (GRAMS, PROFILES, RANGES, TIME_LIMIT, URL_PARAMETERS, X_FROM, DashboardState,
                                 JobRunner, grid_quantile, network_args, timing_mark,
                                 url_overrides, warm_up_kernels)
except ImportError:  # served from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from dashboard import evidence, plots, views
    from dashboard.markup import HTML, Markdown, MetricsTable
    from dashboard import teacher as _teacher  # dash-views
    from dashboard.state import (GRAMS, PROFILES, RANGES, TIME_LIMIT, URL_PARAMETERS, X_FROM, DashboardState,
                                 JobRunner, grid_quantile, network_args, timing_mark,
                                 url_overrides, warm_up_kernels)

pn.extension(notifications=True)

__all__ = ["DashboardApp", "create_app", "INTRO"]

INTRO = """
A deep network at random initialisation maps inputs to outputs; its
input–output Jacobian **J = D_L W_L ⋯ D_1 W_1** says how a small change of the input is stretched.
The eigenvalues **λ of JᵀJ** are the squared singular values of J: λ ≫ 1 are exploding directions,
λ ≈ 0 collapsed ones, and the **atom at 0** is the fraction of input directions killed outright
(inactive ReLUs, narrow layers). The curves are the exact **infinite-width** law, computed by free
probability; every point is solved by a chain of certified Newton steps, the **lilypads**, which you
can watch at the bottom. **Try:** move *Depth* and watch the ReLU spectrum spread and λ_max grow;
move σ_w² off 2 to leave the edge of chaos (χ₁ = 1, black line on the phase diagram); press *Sample*
to check the theory against a real finite network.
"""

# Panel's Fast design without its web font (Open Sans from fonts.googleapis.com, requested on every
# load): the page must load with no internet (classrooms, offline machines); the system sans-serif
# is used. Panel finds a design's bundled files under its class name, hence the name "Fast".
OfflineFast = type("Fast", (Fast,), {"_resources": {k: v for k, v in Fast._resources.items() if k != "font"},
                                     "__module__": __name__})  # fmt: skip


def session_runner(doc, on_busy=None, on_overdue=None, time_limit: float = TIME_LIMIT) -> JobRunner:
    """A :class:`JobRunner` whose results come back on ``doc``'s event loop.

    Called on the server's event loop (while the session is created). A result is handed from
    the worker's thread to that loop by Tornado's thread-safe ``IOLoop.add_callback``, and only
    there scheduled on the document (``add_next_tick_callback``: its callbacks run with the
    document locked). Bokeh documents ``add_next_tick_callback`` as safe from other threads, but
    it is not while the loop holds the document: the callback's registration is then queued in
    the document's held events, which Panel's ``unlocked()`` copies and replaces without a lock,
    so a registration made from a worker at that moment was lost, the result never delivered,
    and the page said *computing…* for good (tests/dashboard/test_delivery_race.py: 22 and 63
    of 20000 results lost; the likely cause of the stuck indicator of stop 26's runs).
    """
    from tornado.ioloop import IOLoop

    loop = IOLoop.current()

    def in_doc(fn):
        # As in a widget callback: Panel's curdoc set, and changes sent when `fn` returns.
        with set_curdoc(doc):
            with pn.io.unlocked():
                fn()
            timing_mark("callback-flushed")

    def on_loop(fn):
        if runner.closed:
            return
        try:
            doc.add_next_tick_callback(partial(in_doc, fn))
        except Exception:  # noqa: BLE001 - the session is gone: nobody to deliver to
            runner.closed = True

    def call_soon(fn):
        loop.add_callback(on_loop, fn)

    def call_later(seconds, fn):
        return doc.add_timeout_callback(partial(in_doc, fn), int(1000 * seconds))

    seen = [False]

    def gone() -> bool:
        # The page was connected and has had no websocket for ABANDONED_AFTER seconds: Bokeh keeps
        # a closed page's session (and would run its jobs) until its unused-session check, 15-30 s
        # later, while the worker processes and threads serve the pages still open.
        ctx = doc.session_context
        session = getattr(ctx, "_session", None) if ctx is not None else None
        if session is None:
            return False
        if session.connection_count > 0:
            seen[0] = True
            return False
        return seen[0] and session.milliseconds_since_last_unsubscribe > 1000 * ABANDONED_AFTER

    runner = JobRunner(call_soon, call_later, on_busy=on_busy, on_overdue=on_overdue, time_limit=time_limit,
                       gone=gone)  # fmt: skip
    with set_curdoc(doc):
        pn.state.onload(lambda: seen.__setitem__(0, True))  # the page's onload: it is connected
    return runner


def _same_key(a, b) -> bool:
    """Whether two redraw keys are the same: the same objects (by identity: results hold arrays)
    and equal scalars."""
    if a is None or b is None or len(a) != len(b):
        return False
    return all(x is y or (isinstance(x, (str, bool, int, float)) and type(x) is type(y) and x == y) for x, y in zip(a, b))


def _next_tick(fn) -> None:
    """Run ``fn`` on the next tick of the session's event loop (so earlier updates reach the browser first)."""
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        pn.state.execute(fn, schedule=True)
    else:
        fn()


class _Prompt:
    """Mixin: handle a widget's change 5 ms after it arrives instead of Panel's 50 ms.

    Panel delays every server-side widget event by ``_debounce`` (50 ms) to merge bursts of
    events. The sliders here are throttled (one ``value_throttled`` per release or key press), so
    the wait only adds latency. (``_debounce`` is a private Panel attribute, checked on 1.9.)
    """

    _debounce = 5


class IntSlider(_Prompt, pn.widgets.IntSlider):
    pass


class FloatSlider(_Prompt, pn.widgets.FloatSlider):
    pass


class Player(pn.widgets.Player):
    """The lilypad Player: a click on "next" is one event (no burst to merge), handled on the
    next tick (Panel's 50 ms wait was a quarter of the time from the click to the next basin
    frame; ``_debounce`` as in :class:`_Prompt`)."""

    _debounce = 0


TAB_TEACHER = "Teacher's tools"
TAB_SOLVER = "Solver: Newton lilypads"
TAB_EVIDENCE = "Evidence"
BUSY_DELAY = 0.25  # seconds of work before the indicator says "computing…"
ABANDONED_AFTER = 2.0  # seconds without a websocket after which a page's jobs are dropped (see session_runner)
HELD_UNTIL_LOADED = ("trace", "basins", "phase", "evidence")  # job kinds a new page starts after its first paint
FIRST_PAINT_HOLD = 10.0  # seconds: held jobs start then even if the browser never reported its first paint
BUSY_IDLE = '<span class="idle">✓ up to date</span>'
BUSY_ON = '<span class="busy">⏳ computing…</span>'
# (no animation: a pulsing indicator kept the browser's compositor drawing 60 frames a second
# while it showed; ten pages showing it took 0.68 of the 2 cores, measured at stop 28, the
# cores the pages and the server need during a class's burst of moves)
BUSY_CSS = """
span { font-size: 12.5px; white-space: nowrap; }
.idle { color: #888; }
.busy { color: #1f5fa8; font-weight: 600; }
"""

# Phones and narrow windows: the sidebar stacks above the main area instead of squeezing it.
NARROW_CSS = """
@media screen and (max-width: 760px) {
  #content { flex-direction: column; height: auto; width: 100%; }
  #sidebar { width: auto !important; min-width: 0 !important; max-width: none !important; height: auto;
             overflow: visible; border-right: 0; border-bottom: 2px solid var(--neutral-fill-rest); }
  #main { height: auto; overflow: visible; padding: 0 4px; }
  #header .title { font-size: 18px; white-space: normal; }
}
"""


#: The URL's view of the controls (raw values from the browser; see DashboardApp._sync_url).
_Link = type("_Link", (param.Parameterized,), {p: param.Parameter(None) for p in URL_PARAMETERS})


def _url_value(v) -> str:
    return v if isinstance(v, str) else json.dumps(v)


_SCATTER: dict = {}  # (tables, metric, target, epoch) -> the study's scatter, shared by all sessions


def _scatter_data(df, metric, target, epoch, prediction) -> dict:
    """:func:`evidence.scatter_data`, computed once per study table and choice (the study's
    correlations do not depend on the current network; every session's update redrew them on the
    event loop, 15-20 ms each on an idle machine). The key holds the tables themselves, so an id
    is never reused while its entry lives."""
    key = (id(df), id(prediction), metric, target, epoch)
    hit = _SCATTER.get(key)
    if hit is not None and hit[0] is df and hit[1] is prediction:
        return hit[2]
    data = evidence.scatter_data(df, metric, target, epoch, prediction)
    if len(_SCATTER) >= 64:
        _SCATTER.clear()
    _SCATTER[key] = (df, prediction, data)
    return data


class _Event:
    __slots__ = ("name", "new")

    def __init__(self, name, new):
        self.name, self.new = name, new


class DashboardApp(pn.viewable.Viewer):
    """The page: sidebar of controls, spectrum plots, mean field and phase diagram, lilypad animation.

    Served, every computation runs in worker threads through a per-session :class:`JobRunner`
    (latest wins; a spinner shows while results are on their way; a job past its time limit is
    reported and the last good result stays); without a server (tests, notebooks) it runs at once.
    """

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, state: DashboardState | None = None, sync_url: bool = True, **params):
        sync_url = sync_url and pn.state.location is not None
        doc = pn.state.curdoc
        served = doc is not None and doc.session_context is not None
        self._served = served
        # "computing…" while results are on their way: a fixed-size text, because showing, hiding
        # or restyling an element (a LoadingSpinner) made the browser lay out the whole page again
        # (over a second on a loaded 2-core machine) ahead of the very patch the user waits for.
        self.w_busy = HTML(BUSY_IDLE, width=110, height=24, margin=(12, 0, 0, 8), css_classes=["w-busy"],
                                   stylesheets=[BUSY_CSS])  # fmt: skip
        changes = []
        if state is None:
            # A shared link: build the state with the URL's values (one computation, not two),
            # clamped to the controls' ranges.
            initial, changes = url_overrides(pn.state.location.query_params) if sync_url else ({}, [])
            runner = session_runner(doc, self._on_busy, self._on_overdue) if served else None
            if runner is not None:  # a closed page's jobs are dropped, its running worker processes stopped
                doc.on_session_destroyed(lambda session_context: runner.close())
                # A new page: the solver chain, basins, phase diagram and Evidence marker wait until
                # the browser has drawn the spectrum (onload; at most FIRST_PAINT_HOLD seconds), so
                # they do not take the cores while the first page renders.
                runner.hold(HELD_UNTIL_LOADED)
                pn.state.onload(runner.release)
                runner._call_later(FIRST_PAINT_HOLD, runner.release)
            # Served, the solver tab is closed at first: no chain or basin frame is computed until
            # it is opened (see _on_tab).
            state = DashboardState(scheduler=None if served else _next_tick, runner=runner, solver_visible=not served,
                                   **initial)  # fmt: skip
        super().__init__(state=state, **params)
        s = self.state
        self._state_for_busy = s
        self._evidence_cache: dict = {}
        # The Evidence tab: its marker is computed and its plot drawn only while the tab is open
        # (served; without a server everything is drawn at once).
        self._evidence_visible = not served
        self._evidence_stale = False
        self._build_widgets()
        self._teacher_card = _teacher.install(self)  # dash-views: presets, compare, depth animation, downloads
        self._build_plots()
        s.param.watch(self._notify_error, "n_errors")
        s.param.watch(self._notify_info, "n_infos")
        s.param.watch(self._on_trace, "trace")
        self._set_player()
        if changes:
            msg = "This link's values were adjusted to the controls: " + "; ".join(changes) + "."
            if served:
                pn.state.onload(lambda: self._warn(msg))
            else:
                self._warn(msg)
        if s.error:  # a first load that failed
            pn.state.onload(self._notify_error)
        if sync_url:
            self._sync_url(changes)
        self._template = self._build_template()

    def _sync_url(self, reported: list[str]) -> None:
        """Mirror the controls in the URL, through :class:`_Link`: whatever the browser's URL says
        (on connection, back/forward, an edited link) is validated and clamped by
        :func:`url_overrides` before it reaches the state, and each adjustment is reported once."""
        s = self.state
        link = _Link(**{p: getattr(s, p) for p in URL_PARAMETERS})
        self._link, self._link_guard, self._reported = link, False, set(reported)

        def state_to_link(*events):
            self._link_guard = True
            try:
                link.param.update(**{e.name: e.new for e in events})
            finally:
                self._link_guard = False

        def link_to_state(*events):
            if self._link_guard:
                return
            params, changes = url_overrides({e.name: e.new for e in events})
            new = [c for c in changes if c not in self._reported]
            self._reported.update(changes)
            params = {k: v for k, v in params.items() if getattr(s, k) != v}
            if params:
                s.param.update(**params)
            # The link shows the state's values (clamped), never the raw ones. (The URL is rewritten
            # on the next tick: Location ignores updates made while it applies the browser's URL.)
            state_to_link(*[_Event(e.name, getattr(s, e.name)) for e in events])
            query = {e.name: _url_value(getattr(s, e.name)) for e in events if getattr(s, e.name) is not None}
            if query:
                _next_tick(lambda: pn.state.location.update_query(**query))
            if new:
                self._warn("This link's values were adjusted to the controls: " + "; ".join(new) + ".")

        s.param.watch(state_to_link, list(URL_PARAMETERS))
        link.param.watch(link_to_state, list(URL_PARAMETERS))
        pn.state.location.sync(link, {p: p for p in URL_PARAMETERS})

    def _warn(self, msg: str) -> None:
        self.last_warning = msg
        if pn.state.notifications is not None:
            pn.state.notifications.warning(msg, duration=10000)

    def _on_busy(self, n: int) -> None:
        # "computing…" shows only once work has gone on for BUSY_DELAY seconds: a fast update then
        # sends no indicator patch (and the browser renders none) ahead of the density it waits for.
        state = self.__dict__.get("_state_for_busy")
        if state is not None:
            state.busy = n
        runner = getattr(state, "_runner", None) if state is not None else None
        if n > 0 and runner is not None and runner._call_later is not None:
            if self.w_busy.object != BUSY_ON and not self.__dict__.get("_busy_pending"):
                self._busy_pending = True
                try:
                    runner._call_later(BUSY_DELAY, self._show_busy)
                except Exception:  # noqa: BLE001 - a session being torn down
                    self._busy_pending = False
            return
        text = BUSY_ON if n > 0 else BUSY_IDLE
        if self.w_busy.object != text:
            self.w_busy.object = text

    def _show_busy(self) -> None:
        self._busy_pending = False
        state = self.__dict__.get("_state_for_busy")
        if state is not None and state.busy > 0 and self.w_busy.object != BUSY_ON:
            self.w_busy.object = BUSY_ON

    def _on_overdue(self, label: str, seconds: float) -> None:
        if pn.state.notifications is not None:
            pn.state.notifications.warning(
                f"The {label} is taking longer than {seconds:.0f} s (a slow network for this machine). The "
                "plots show the last good result and update when it is done; move a control to ask for "
                "something else instead.", duration=12000,
            )  # fmt: skip

    # -- widgets -------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        s = self.state
        W = pn.widgets
        self.w_depth = IntSlider.from_param(s.param.depth, start=RANGES["depth"][0], end=max(RANGES["depth"][1], s.depth),
                                            throttled=True, css_classes=["w-depth"])
        self.w_profile = W.Select.from_param(s.param.profile, options=list(PROFILES), css_classes=["w-profile"])
        self.w_base = IntSlider.from_param(s.param.base_width, start=RANGES["base_width"][0], end=RANGES["base_width"][1],
                                           step=10, throttled=True)
        self.w_ratio = FloatSlider.from_param(s.param.ratio, start=RANGES["ratio"][0], end=RANGES["ratio"][1], step=0.25,
                                              throttled=True)
        self.w_custom = W.TextInput.from_param(
            s.param.custom_widths, placeholder="e.g. 400, 800, 200, 400", css_classes=["w-custom"]
        )
        self.w_activation = W.Select.from_param(s.param.activation)
        self.w_slope = FloatSlider.from_param(s.param.slope, start=RANGES["slope"][0], end=RANGES["slope"][1], step=0.05,
                                              throttled=True)
        self.w_init = W.RadioButtonGroup.from_param(s.param.init, color="primary", variant="outline")
        self.w_sw2 = FloatSlider.from_param(
            s.param.sigma_w2, start=RANGES["sigma_w2"][0], end=RANGES["sigma_w2"][1], step=0.05, throttled=True,
            css_classes=["w-sigma-w2"]
        )
        self.w_sb2 = FloatSlider.from_param(s.param.sigma_b2, start=RANGES["sigma_b2"][0], end=RANGES["sigma_b2"][1],
                                            step=0.01, throttled=True, css_classes=["w-sigma-b2"])
        self.w_input = W.RadioButtonGroup.from_param(s.param.input_mode, color="primary", variant="outline")
        self.w_q0 = FloatSlider.from_param(s.param.q0, start=RANGES["q0"][0], end=RANGES["q0"][1], step=0.05, throttled=True)
        self.w_gram = W.RadioButtonGroup.from_param(
            s.param.gram, options={v: k for k, v in GRAMS.items()}, color="primary", variant="outline"
        )
        self.w_xscale = W.RadioButtonGroup.from_param(s.param.x_scale, color="primary", variant="outline")
        self.w_xfrom = W.Select.from_param(s.param.x_from, options=list(X_FROM), css_classes=["w-xfrom"])
        self.w_mc_size = IntSlider.from_param(s.param.mc_size, start=RANGES["mc_size"][0], end=RANGES["mc_size"][1], step=10,
                                              throttled=True)
        self.w_mc_samples = IntSlider.from_param(s.param.mc_samples, start=RANGES["mc_samples"][0], end=RANGES["mc_samples"][1],
                                                 throttled=True)
        self.w_mc_button = W.Button(label="Sample real networks", color="primary")
        self.w_mc_button.on_click(self._on_mc_click)
        self.w_mc_progress = W.Progress(value=0, max=100, bar_color="primary", sizing_mode="stretch_width", height=12)
        s.param.watch(self._on_mc_progress, ["mc_progress", "mc_running"])
        self.w_tune = W.Button(label="Tune σ_w², σ_b² to criticality", color="success")
        self.w_tune.on_click(lambda _: self.state.tune_to_criticality())
        self.w_tune.visible = s.can_tune
        self.w_csv = W.FileDownload(
            callback=lambda: io.StringIO(views.spectrum_csv(self.state.result)),
            filename="spectrum.csv", label="Density & CDF (CSV)", color="light",
        )  # fmt: skip
        self.w_json = W.FileDownload(
            callback=lambda: io.StringIO(views.metrics_json(*self._ready_metrics(), pending=self._served)),
            filename="metrics.json", label="Metrics (JSON)", color="light",
        )  # fmt: skip
        # Lilypad controls: a target slider (also set by clicking the density) and a Player.
        # The target slider moves through the quantiles of the spectrum (x = F⁻¹(p)): one scale
        # that works for spectra spanning many decades; clicking the density sets x directly.
        self.w_target = FloatSlider(
            label="Target x = F⁻¹(p): quantile p", start=0.0, end=0.999, step=0.001,
            value=0.75, css_classes=["w-target"], width=280,
        )  # fmt: skip
        self.w_target.param.watch(self._on_target_slider, "value_throttled")
        self.w_player = Player(
            label="Lilypad step", start=0, end=1, value=0, interval=700, loop_policy="once",
            show_loop_controls=False, width=380, scale_buttons=0.85, css_classes=["w-player"], margin=(5, 10),
            visible_buttons=["first", "previous", "pause", "play", "next", "last"],
        )  # fmt: skip
        self.w_player.param.watch(self._on_player, "value")
        # Show only the widgets that matter for the current choices.
        self.w_custom.visible = s.profile == "custom"
        self.w_ratio.visible = s.profile not in ("constant", "custom")
        self.w_depth.disabled = s.profile == "custom"
        self.w_slope.visible = s.activation == "leaky_relu"
        self.w_q0.disabled = s.input_mode != "variance q0"
        self.w_xfrom.disabled = s.x_scale != "log"
        s.param.watch(self._on_choice, ["profile", "activation", "input_mode", "x_scale"])

    def _on_choice(self, *_):
        s = self.state
        self.w_custom.visible = s.profile == "custom"
        self.w_ratio.visible = s.profile not in ("constant", "custom")
        self.w_depth.disabled = s.profile == "custom"
        self.w_slope.visible = s.activation == "leaky_relu"
        self.w_q0.disabled = s.input_mode != "variance q0"
        self.w_xfrom.disabled = s.x_scale != "log"
        self._show_depth()

    def _show_depth(self) -> None:
        """With a custom width list the (disabled) Depth slider shows the list's L."""
        s, r = self.state, self.state.result
        if s.profile != "custom" or r is None:
            return
        L = int(r.network.depth)
        if self.w_depth.end < L:
            self.w_depth.end = L
        if self.w_depth.value != L:
            s.show_depth(L)

    # -- plots ---------------------------------------------------------------------------------
    def _build_plots(self) -> None:
        s = self.state
        self.density = plots.DensityPlot(log_x=s.x_scale == "log")
        self.cdf = plots.CdfPlot(log_x=s.x_scale == "log")
        self.meanfield = plots.MeanFieldPlots()
        self.phase = plots.PhasePlot()
        self.zplane = plots.ZPlanePlot()
        self.mplane = plots.MPlanePlot()
        self.density.figure.on_event(Tap, self._on_tap)
        self.density_pane = pn.pane.Bokeh(self.density.figure, sizing_mode="stretch_width", min_width=360,
                                          css_classes=["p-density"])  # fmt: skip
        self.cdf_pane = pn.pane.Bokeh(self.cdf.figure, sizing_mode="stretch_width", min_width=320, max_width=560)
        self.q_pane = pn.pane.Bokeh(self.meanfield.q_figure)
        self.chi_pane = pn.pane.Bokeh(self.meanfield.chi_figure)
        # Panes that share a line stretch between a minimum and a maximum width and wrap (FlexBox).
        flex = dict(sizing_mode="stretch_width", min_width=300)
        self.phase_pane = pn.pane.Bokeh(self.phase.figure, max_width=520, styles={"flex": "1 1 340px"}, **flex)
        # The solver planes share a line when two fit (1280 x 800: side by side) and stack otherwise
        # (phones). The figure is the flex item itself: a Bokeh pane's own `styles` and
        # `css_classes` reach no element, so they go on the figure (else each plane took the whole
        # line and they stacked even at 1280 px).
        for fig, name in ((self.zplane.figure, "p-zplane"), (self.mplane.figure, "p-mplane")):
            fig.css_classes = [name]
            fig.styles = {"flex": "1 1 340px"}
        self.z_pane = pn.pane.Bokeh(self.zplane.figure, max_width=560, styles={"flex": "1 1 340px"}, **flex)
        self.m_pane = pn.pane.Bokeh(self.mplane.figure, max_width=560, styles={"flex": "1 1 340px"}, **flex)
        self.metrics_pane = MetricsTable(
            views.metrics_frame(None), index=False, justify="left", sizing_mode="stretch_width",
            styles={"font-size": "12.5px"}, css_classes=["p-metrics"],
        )  # fmt: skip
        self.details_note_pane = Markdown("", sizing_mode="stretch_width", css_classes=["p-details-note"],
                                                  styles={"font-size": "12.5px", "color": "#a33"})  # fmt: skip
        self.title_pane = Markdown(f"#### {views.title(s.result)}", margin=(0, 10),
                                           sizing_mode="stretch_width")  # fmt: skip
        self.caption_pane = Markdown("", sizing_mode="stretch_width", styles={"font-size": "13px"})
        # what holds for the density shown: "verified, certificate running", then the certified counts
        self.certificate_pane = Markdown(views.certificate_text(s.result), sizing_mode="stretch_width",
                                         margin=(0, 10), styles={"font-size": "12.5px"},
                                         css_classes=["p-certificate"])  # fmt: skip
        self._metrics_pending = False
        self._density_key = self._tables_key = None
        self._build_evidence()
        self._draw_density()
        self._draw_details()
        self._draw_lilypad()
        self._draw_evidence()
        s.param.watch(self._on_spectrum_change, ["result", "mc", "target_x"])
        s.param.watch(self._on_details, ["details", "left", "details_note"])
        s.param.watch(lambda *_: self._apply(self._draw_tables), ["variance", "variance_note"])
        s.param.watch(self._on_x_scale, "x_scale")
        s.param.watch(self._on_certified, "certified")
        s.param.watch(self._on_lilypad, "lilypad")

    def _apply(self, fn, deferred: bool = False) -> None:
        """Run ``fn`` (which edits Bokeh models) where that is safe, sending its changes at once.

        In a server callback (widget event, next tick) the session's document is locked by us:
        run now inside ``pn.io.unlocked()`` so the patch goes out before any later, slower work.
        From elsewhere (the Monte Carlo coroutine) schedule it on the session's next tick.
        """
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:
            fn()  # no server: tests, notebooks
        elif pn.state._unblocked(doc):
            with pn.io.unlocked():
                fn()
        elif deferred:
            fn()
        else:
            pn.state.execute(lambda: self._apply(fn, deferred=True), schedule=True)

    def _details_ready(self) -> bool:
        s = self.state
        return s.result is not None and s.details is s.result

    def _ready_metrics(self):
        """``(result, mc, left)`` for the metrics: the result only once its exact numbers are ready."""
        s = self.state
        if not self._details_ready():
            return None, None, None
        return s.result, s.mc, s.left if s.x_scale == "log" else None

    def _draw_density(self) -> None:
        s = self.state
        # (drawn again when the details arrive, for an extended axis: skipped when nothing it
        # shows changed; a class's server spends its event loop on such redraws)
        key = (s.result, s.mc, s.x_scale, s.effective_target(), s.x_from, self.density)
        if not _same_key(key, self._density_key):
            self._density_key = key
            self.density.update(views.density_data(s.result, s.mc, s.x_scale == "log", s.effective_target(), s.x_from))
        self.certificate_pane.object = views.certificate_text(s.result)

    def _on_certified(self, *_):
        s = self.state
        if s.certified is None or s.certified is not s.result:
            return
        if not self._metrics_pending and self.certificate_pane.object == views.certificate_text(s.result):
            return  # (certified at once, e.g. ReLU: drawn with the density; nothing to send)

        def draw():
            self.certificate_pane.object = views.certificate_text(s.result)
            if self._metrics_pending:  # the table showed "certificate running": its counts change
                self._draw_tables()

        self._apply(draw)

    def _draw_details(self) -> None:
        """What needs the exact CDF (deciles, CDF plot, hidden mass, metrics) and the mean field.

        Drawn once the state's details job has computed them (never on the event loop); until then
        the deciles and the CDF are left empty rather than showing numbers of another network.
        """
        self._draw_cdf_marks()
        self._draw_layers()

    def _draw_layers(self) -> None:
        """The per-layer views: the mean field and the phase diagram's star."""
        self.meanfield.update(views.meanfield_data(self.state.result))
        self._draw_phase()

    def _draw_cdf_marks(self) -> None:
        """The marks read off the exact CDF (the density's deciles and hidden-mass note, the CDF
        plot, the details note), or, while the details are computed, the same marks emptied.

        Sent with the density itself (:meth:`_on_spectrum_change`): sent a tick later, the emptied
        marks made the browser draw the density figure a second time for the same move (and a
        third when the details came)."""
        s = self.state
        log_x = s.x_scale == "log"
        ready = self._details_ready()
        r = s.result if ready else None
        note = "" if ready else s.details_note
        if self.details_note_pane.object != note:
            self.details_note_pane.object = note
        pending = not ready and not note  # (the details are on their way)
        self.density.update_deciles(views.decile_data(r, log_x))
        self.density.update_left(views.left_data(s.left if ready else None, log_x), pending=log_x and pending)
        cdf = views.cdf_data(r, s.mc, log_x, s.x_from)
        if pending:  # the CDF is cleared until then, its axis kept (one layout of the figure less)
            cdf["x_range"] = None
        self.cdf.update(cdf)

    # -- evidence (the empirical study, experiments/results) ------------------------------------
    def _build_evidence(self) -> None:
        studies = {label: name for name, label in evidence.STUDIES.items() if evidence.load_evidence(name) is not None}
        first = next(iter(studies.values()), "main_digits")
        self.w_evidence_study = pn.widgets.Select(name="Study", value=first, options=studies or {"-": first}, width=220)
        self.w_evidence_target = pn.widgets.Select(
            name="Target", value="train_loss", options={v: k for k, v in evidence.TARGETS.items()}, width=130
        )
        self.w_evidence_epoch = pn.widgets.Select(name="After epoch", options=[], width=110)
        self.w_evidence = pn.widgets.Select(
            name="Metric", value="log10_c9", options={v: k for k, v in evidence.METRICS.items()}, width=300
        )
        self.evidence_plot = plots.EvidencePlot()
        self.evidence_pane = pn.pane.Bokeh(self.evidence_plot.figure, sizing_mode="stretch_width", min_width=300,
                                           max_width=640, styles={"flex": "2 1 400px"})  # fmt: skip
        self.evidence_text = Markdown("", sizing_mode="stretch_width", styles={"font-size": "13px"},
                                              min_width=260)  # fmt: skip
        self._load_evidence_study()
        self.w_evidence_study.param.watch(lambda *_: (self._load_evidence_study(), self._apply(self._draw_evidence)), "value")
        self.w_evidence_target.param.watch(lambda *_: (self._evidence_epochs(), self._apply(self._draw_evidence)), "value")
        for w in (self.w_evidence, self.w_evidence_epoch):
            w.param.watch(lambda *_: self._apply(self._draw_evidence), "value")

    def _load_evidence_study(self) -> None:
        study = self.w_evidence_study.value
        self.evidence_df = evidence.load_evidence(study)
        self.evidence_prediction = evidence.load_prediction(study)
        if self.evidence_df is not None:
            self.w_evidence.value = evidence.default_metric(self.evidence_df)
        self._evidence_epochs()

    def _evidence_epochs(self) -> None:
        eps = evidence.epochs(self.evidence_df, self.w_evidence_target.value) if self.evidence_df is not None else []
        self.w_evidence_epoch.options = eps
        if eps and self.w_evidence_epoch.value not in eps:
            self.w_evidence_epoch.value = eps[-1]

    def _evidence_marker(self, metric: str) -> float | None:
        """The metric of the current network, or None while it is being computed (in a worker:
        the study's exact metrics can take seconds)."""
        r = self.state.result
        if r is None or not (r.gram == "JtJ" or metric == "chi_1"):
            return float("nan")
        key = (id(r.computed), metric)
        if key in self._evidence_cache:
            return self._evidence_cache[key]
        chi1 = float(r.mean_field.chi[0])
        if metric in evidence.FROM_DETAILS and r.computed is not None:
            # Read off the deciles of the details job (no job of its own): wait for them.
            value = evidence.value_from_details(r.computed, metric)
            if value is None:
                stopped = getattr(r.computed, "timed_out", "") or self.state.details_note
                if not stopped:
                    self._evidence_waiting = True  # redrawn by _on_details
                    return None
                value, self._evidence_note = float("nan"), f"This network's value needs the deciles. {stopped}"
            else:
                self._evidence_note = ""
            self._evidence_cache.clear()  # one network at a time
            self._evidence_cache[key] = float(value)
            return float(value)

        def job():
            return evidence.current_value_or_nan(r.spectrum, chi1, metric)

        def done(value):
            self._evidence_cache.clear()  # one network at a time
            self._evidence_cache[key] = float(value)
            self._evidence_note = ""
            self._draw_evidence()

        def fail(exc):  # stopped at the time limit (or the worker failed): no marker, and why
            self._evidence_cache.clear()
            self._evidence_cache[key] = float("nan")
            self._evidence_note = f"This network's value: {exc}."
            self._draw_evidence()

        task = None
        n_points = getattr(r.computed, "n_points", None)
        if metric != "chi_1" and n_points is not None:
            try:
                task = (evidence.metric_task, (network_args(r.network), r.gram, n_points, chi1, metric))
            except ValueError:
                task = None
        self.state.run("evidence", job, done, fail, slow=True, label="Evidence marker", task=task)
        return None

    def _draw_evidence(self) -> None:
        if not self.__dict__.get("_evidence_visible", True):  # its tab is closed: drawn when opened
            self._evidence_stale = True
            return
        self._evidence_stale = False
        if self.evidence_df is None or not self.w_evidence_epoch.options:
            self.evidence_text.object = "The study's results (`experiments/results/`) are not available here."
            return
        metric = self.w_evidence.value
        data = _scatter_data(self.evidence_df, metric, self.w_evidence_target.value, self.w_evidence_epoch.value,
                             self.evidence_prediction)  # fmt: skip
        current = self._evidence_marker(metric)
        shown = float("nan") if current is None else current
        self.evidence_plot.update(data, evidence.METRICS[metric], shown, ylabel=data["target_label"])
        label = evidence.STUDIES.get(self.w_evidence_study.value, self.w_evidence_study.value)
        text = evidence.summary_text(data, label, shown)
        if current is None:
            text += "\n\nThis network's value: computing…"
        elif getattr(self, "_evidence_note", ""):
            text += "\n\n" + self._evidence_note
        self.evidence_text.object = text

    def _draw_tables(self) -> None:
        s = self.state
        ready = self._ready_metrics()
        r = ready[0]
        pending = r is not None and r.certificate_pending
        variance = r is not None and r.computed is not None and r.computed.variance_ready
        # the table is rebuilt (pandas -> HTML, about 13-37 ms) only when what it shows changed:
        # a move used to rebuild it three times, twice as the same empty table
        key = (*ready, pending, variance, self.state.variance_note, self.state.details_note, self._served)
        if not _same_key(key, self._tables_key):
            # (a table shown, or kept with its values hidden while the details come)
            shown = self._tables_key is not None and (self._tables_key[0] is not None or self.metrics_pane.hide_values)
            self._tables_key = key
            if r is None and shown and not self.state.details_note:
                # the details are on their way: the last table keeps its rows (and the page its
                # layout) with its values hidden (markup.MetricsTable)
                self.metrics_pane.hide_values = True
                self.metrics_pane.param.trigger("object")
            else:
                self._metrics_pending = pending
                self.metrics_pane.hide_values = False
                self.metrics_pane.object = views.metrics_frame(*ready, pending=self._served,
                                                               variance_note=self.state.variance_note)
        self.title_pane.object = f"#### {views.title(s.result)}"

    def _draw_phase(self) -> None:
        r = self.state.result
        if r is None:
            return
        net = r.network
        act = net.activations[0]
        spec = act.name if not act.params else f"{act.name}:{act.params[0]:g}"
        sw, sb = net.sigma_w2[0], net.sigma_b2[0]
        if spec == self.phase._activation:
            self.phase.update(spec, views.phase_data, sw, sb)  # moves the star only
            return

        def done(data):
            cur = self.state.result
            if cur is not None:
                self._apply(lambda: self.phase.update(spec, lambda _: data, cur.network.sigma_w2[0],
                                                      cur.network.sigma_b2[0]))  # fmt: skip

        def fail(exc):  # a missing phase diagram must not break the page
            self.state._fail("phase diagram", exc)

        self.state.run("phase", lambda: views.phase_data(spec), done, fail, label="phase diagram")

    def _draw_lilypad(self) -> None:
        f = self.state.lilypad
        trace, k, basins, note = (f.trace, f.k, f.basins, f.note) if f is not None else (None, 0, None, "")
        timing_mark("draw-lilypad")
        self.zplane.update(views.zplane_data(trace, k))
        self.mplane.update(views.mplane_data(trace, k, basins))
        self.caption_pane.object = views.frame_caption(trace, k, note, basins_drawn=basins is not None)
        timing_mark("drawn-lilypad")

    def _on_spectrum_change(self, *events):
        # The density goes out first (its own websocket message, with the CDF-based marks emptied
        # until the state's `details` bring them, see _on_details); the mean field, the title and
        # the phase star follow on the next tick.
        self._apply(self._draw_density_and_marks)
        timing_mark("density-sent")
        if any(e.name in ("result", "mc") for e in events):
            result = any(e.name == "result" for e in events)

            def rest():  # (one websocket message for all of it, not four; the CDF marks went with the density)
                self._draw_layers()
                self._draw_tables()
                self._show_depth()
                if result:
                    self._draw_evidence()

            _next_tick(lambda: self._apply(rest))

    def _draw_density_and_marks(self) -> None:
        self._draw_density()
        self._draw_cdf_marks()

    def _on_details(self, *_):
        self._apply(self._draw_on_details)  # one websocket message

    def _draw_on_details(self) -> None:
        self._draw_details()
        self._draw_density()  # the axis may have been extended
        self._draw_tables()
        if self.__dict__.get("_evidence_waiting") and (self._details_ready() or self.state.details_note):
            self._evidence_waiting = False
            self._draw_evidence()  # the marker read off the new deciles

    def _on_x_scale(self, *_):
        # The axis type of a Bokeh figure is fixed: build new figures for the other scale.
        log_x = self.state.x_scale == "log"
        self.density = plots.DensityPlot(log_x=log_x)
        self.density.figure.on_event(Tap, self._on_tap)
        self.cdf = plots.CdfPlot(log_x=log_x)
        self._draw_density()
        self._draw_details()
        self.density_pane.object = self.density.figure
        self.cdf_pane.object = self.cdf.figure

    def _on_lilypad(self, *_):
        self._apply(self._draw_lilypad)

    # -- callbacks ---------------------------------------------------------------------------------
    def _notify_error(self, *_):
        msg = self.state.error
        if msg and pn.state.notifications is not None:
            pn.state.notifications.error(f"{msg} — showing the last good result.", duration=8000)

    def _notify_info(self, *_):
        if self.state.info and pn.state.notifications is not None:
            pn.state.notifications.info(self.state.info, duration=5000)

    def _on_tap(self, event):
        x = getattr(event, "x", None)
        if x is not None and math.isfinite(x) and x > 0:
            self.state.target_x = float(x)

    def _on_target_slider(self, event):
        r = self.state.result
        if r is None or event.new is None or not self._details_ready():
            return
        x = float(grid_quantile(r.spectrum, r.cdf_grid, min(max(float(event.new), 0.0), 0.999)))
        if math.isfinite(x) and x > 0:
            self.state.target_x = x
        elif pn.state.notifications is not None:
            pn.state.notifications.warning(
                f"p = {event.new:g} falls in the atom at 0 (mass {float(r.spectrum.atom):.3g}): pick a larger p",
                duration=4000,
            )

    def _on_player(self, event):
        timing_mark("player")
        self.state.frame = int(event.new)

    def _on_trace(self, *_):
        # The Player's new range goes out at once, in its own message, before the new chain's first
        # frame (whose caption, drawn in an unlocked block, was sent ahead of the range when this
        # ran as part of the trace's callback: a "next" clicked in between was lost).
        self._apply(self._set_player)

    def _set_player(self) -> None:
        t = self.state.trace
        if t is None:
            return
        self.w_player.pause()
        n = len(t.centres)
        # A Player needs end > start; a one-lilypad chain just shows frame 0.
        self.w_player.param.update(end=max(n - 1, 1), value=0)
        r = self.state.result
        if r is not None and self._details_ready():
            p = float(np.interp(float(t.target.real), np.asarray(r.spectrum.x, float), r.cdf_grid))
            # Setting `value` from Python does not fire `value_throttled`: no feedback loop.
            self.w_target.value = round(min(max(p, 0.0), 0.999), 4)

    def _on_mc_progress(self, *_):
        self.w_mc_progress.value = int(round(100 * self.state.mc_progress))
        self.w_mc_button.disabled = self.state.mc_running
        self.w_mc_button.label = "Sampling…" if self.state.mc_running else "Sample real networks"

    async def _on_mc_click(self, _event):
        await self.state.arun_monte_carlo()

    # -- page -------------------------------------------------------------------------------------
    def _build_template(self):
        s = self.state
        md = pn.pane.Markdown
        sidebar = [
            md("### Network"),
            self.w_depth,
            self.w_profile,
            self.w_base,
            self.w_ratio,
            self.w_custom,
            md("### Activation and initialisation"),
            self.w_activation,
            self.w_slope,
            self.w_init,
            self.w_sw2,
            self.w_sb2,
            self.w_input,
            self.w_q0,
            self.w_tune,
            md("### View"),
            pn.Row(self.w_gram, self.w_xscale),
            self.w_xfrom,
            md("### Monte Carlo check"),
            self.w_mc_size,
            self.w_mc_samples,
            self.w_mc_button,
            self.w_mc_progress,
            md("### Downloads"),
            pn.Row(self.w_csv, self.w_json),
            self.w_png,  # dash-views: the current basin frame as PNG
        ]
        intro = pn.Card(md(INTRO, sizing_mode="stretch_width"), title="What am I looking at?", collapsed=False,
                        sizing_mode="stretch_width", margin=(5, 10))  # fmt: skip
        # FlexBoxes wrap their items onto the next line when the window is narrow (projectors at
        # 1024 x 768, phones): nothing is clipped and no horizontal scrolling is needed.
        wrap = dict(flex_wrap="wrap", sizing_mode="stretch_width", align_items="flex-start")
        spectrum = pn.Column(
            pn.Row(self.w_busy, self.title_pane, sizing_mode="stretch_width"),
            self.certificate_pane,
            pn.FlexBox(self.density_pane, self.cdf_pane, **wrap),
            sizing_mode="stretch_width",
        )
        self.density_pane.styles = {"flex": "3 1 420px"}
        self.cdf_pane.styles = {"flex": "2 1 320px"}
        details = pn.FlexBox(
            pn.Column(md("#### Metrics"), self.details_note_pane, self.metrics_pane, sizing_mode="stretch_width", min_width=300,
                      max_width=480, styles={"flex": "1 1 340px"}, css_classes=["c-metrics"]),  # fmt: skip
            pn.Column(self.q_pane, self.chi_pane),
            self.phase_pane,
            **wrap,
        )
        lilypad_note = md(
            "#### Watch the solver: Newton lilypads\n"
            "To evaluate the density at **x** the solver starts high above the real axis, where the answer is "
            "known (m = 0), and walks down to **x + 0i**. For linear, ReLU and hard-tanh networks each **lilypad** "
            "(disk, left) is a region where the previous solution is a *proven* Newton start, and the m-plane (right) "
            "shows Newton's iterates and the Kantorovich ball that certifies them; for the other activations the "
            "chain is verified by its residuals, without such proofs (the caption says which). Behind the iterates "
            "are the **basins of attraction** of every root "
            "(one colour per root, darker where Newton needs more steps; grey: starts from which Newton does not converge in 24 steps): the chain stays inside the basin of the right root at every step.",
            sizing_mode="stretch_width",
        )
        lilypad = pn.Column(
            lilypad_note,
            pn.FlexBox(self.w_target, self.w_player, **wrap),
            self.caption_pane,
            pn.FlexBox(self.z_pane, self.m_pane, **wrap),
            sizing_mode="stretch_width",
        )
        evidence_card = pn.Card(
            md("Free-probability metrics computed **before** training against the train or test loss "
               "**after** a chosen epoch, for the empirical study's architectures (`python -m experiments`); "
               "one colour per activation family.",
               sizing_mode="stretch_width"),
            pn.FlexBox(self.w_evidence_study, self.w_evidence_target, self.w_evidence_epoch, self.w_evidence, **wrap),
            pn.FlexBox(self.evidence_pane, self.evidence_text, **wrap),
            title="Evidence: does the spectrum predict training?", collapsed=False, sizing_mode="stretch_width",
            margin=(5, 10),
        )  # fmt: skip
        for w in sidebar:  # widgets fill the sidebar's width (a fixed 300 px overflowed its padding)
            if isinstance(w, pn.widgets.Widget) and not isinstance(w, pn.widgets.RadioButtonGroup):
                w.sizing_mode = "stretch_width"
        # The teacher's tools, the solver and the Evidence in tabs (only the open tab is built in
        # the browser, `dynamic`): a closed tab costs nothing per slider move, neither on the
        # server (no lilypad chain, basin frame or Evidence marker is computed for it) nor in the
        # browser. Opening the solver or the Evidence computes what it shows for the current network.
        self.tabs = pn.Tabs((TAB_TEACHER, self._teacher_card), (TAB_SOLVER, lilypad), (TAB_EVIDENCE, evidence_card),
                            dynamic=True, sizing_mode="stretch_width", css_classes=["c-tabs"], margin=(5, 0))  # fmt: skip
        self.tabs.param.watch(self._on_tab, "active")
        below = [details, self.tabs]
        # Served, the first page carries only the controls and the spectrum: the sections below
        # it (about 600 of the page's 860 Bokeh models: solver planes, basin image, compare
        # plots, evidence) are sent once the browser has drawn that first part (Panel's onload,
        # after the client's document_ready). The server builds, serialises and the browser
        # renders half as much before the spectrum shows.
        self.rest = pn.Column(*([] if self._served else below), sizing_mode="stretch_width", margin=0,
                              css_classes=["c-rest"])  # fmt: skip
        if self._served:
            pn.state.onload(lambda: setattr(self.rest, "objects", below))
        template = pn.template.FastListTemplate(
            title="fpcore · Jacobian spectrum explorer",
            # One root per area: the document re-walks all models for every root added, so
            # passing the widgets one by one makes a new session several times slower.
            sidebar=[pn.Column(*sidebar, sizing_mode="stretch_width", margin=0)],
            main=[pn.Column(intro, spectrum, self.rest, sizing_mode="stretch_width", margin=0)],
            sidebar_width=300,
            accent="#1f5fa8",
            theme_toggle=False,
            design=OfflineFast,
            # No template busy spinner: Panel sets every session's spinner (pn.state is global) on
            # each event of any session, so ten students' key presses sent 10 x 10 spinner patches
            # through the one event loop (cProfile: 10.7 of 53 s busy in a two-burst run). The
            # page's own "computing…" indicator (w_busy) is per session.
            busy_indicator=None,
        )
        template.config.raw_css.append(NARROW_CSS)
        return template

    def _on_tab(self, *_) -> None:
        """Compute what the open tab shows (and stop what a closed one no longer needs)."""
        name = self.tabs._names[self.tabs.active] if 0 <= self.tabs.active < len(self.tabs) else ""
        s = self.state
        runner = getattr(s, "_runner", None)
        s.solver_visible = name == TAB_SOLVER
        evidence = name == TAB_EVIDENCE
        if evidence != self._evidence_visible:
            self._evidence_visible = evidence
            if evidence:
                if self._evidence_stale or self.__dict__.get("_evidence_waiting"):
                    self._apply(self._draw_evidence)
            elif runner is not None:
                runner.supersede("evidence")  # (its marker is asked for again when the tab is opened)
                self._evidence_stale = True

    def show_tab(self, name: str) -> None:
        """Open the tab called ``name`` (one of ``TAB_TEACHER``, ``TAB_SOLVER``, ``TAB_EVIDENCE``)."""
        self.tabs.active = self.tabs._names.index(name)

    def __panel__(self):
        return self._template


def create_app(**kwargs) -> DashboardApp:
    """A new app (one per browser session)."""
    return DashboardApp(**kwargs)


if pn.state.served:
    # Worker threads compute while the event loop serves every session: let the loop take the GIL
    # back after 1 ms instead of 5 ms, so a busy worker delays a message by at most that much.
    sys.setswitchinterval(0.001)
    # Kernels compiled (or loaded from numba's cache) once per server process: before the server
    # accepts requests when it was started with `--setup dashboard/warmup.py` (fpcore-dashboard
    # does that), otherwise the first session waits for it here.
    warm_up_kernels(wait=True)
    create_app().servable(title="fpcore · Jacobian spectrum explorer")
