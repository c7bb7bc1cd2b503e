"""The Jacobian-spectrum explorer: ``panel serve dashboard/app.py`` (or ``fpcore-dashboard``).

A thin layer: :class:`DashboardApp` binds widgets to a :class:`dashboard.state.DashboardState` and
puts the pure views of :mod:`dashboard.views` on the page.
"""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import numpy as np
import panel as pn
import param
from bokeh.events import Tap

try:
    from dashboard import evidence, plots, views
    from dashboard.state import (GRAMS, PROFILES, URL_PARAMETERS, DashboardState, grid_quantile, url_overrides,
                                 warm_up_kernels)
except ImportError:  # served from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from dashboard import evidence, plots, views
    from dashboard.state import (GRAMS, PROFILES, URL_PARAMETERS, DashboardState, grid_quantile, url_overrides,
                                 warm_up_kernels)

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


class DashboardApp(pn.viewable.Viewer):
    """The page: sidebar of controls, spectrum plots, mean field and phase diagram, lilypad animation."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, state: DashboardState | None = None, sync_url: bool = True, **params):
        sync_url = sync_url and pn.state.location is not None
        problems = []
        if state is None:
            # A shared link: build the state with the URL's values (one computation, not two).
            initial, problems = url_overrides(pn.state.location.query_params) if sync_url else ({}, [])
            state = DashboardState(scheduler=_next_tick, **initial)
        super().__init__(state=state, **params)
        s = self.state
        self._build_widgets()
        self._build_plots()
        s.param.watch(self._notify_error, "n_errors")
        s.param.watch(self._notify_info, "n_infos")
        s.param.watch(self._on_trace, "trace")
        self._on_trace()
        if problems:
            s._fail("link", ValueError("ignored " + "; ".join(problems)))
        if s.error:  # a first load that failed (e.g. a shared link with bad values)
            pn.state.onload(self._notify_error)
        if sync_url:
            pn.state.location.sync(
                s, {p: p for p in URL_PARAMETERS},
                on_error=lambda bad: s._fail("link", ValueError(f"could not apply {bad}")),
            )  # fmt: skip
        self._template = self._build_template()

    # -- widgets -------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        s = self.state
        W = pn.widgets
        self.w_depth = IntSlider.from_param(s.param.depth, start=1, end=100, throttled=True, css_classes=["w-depth"])
        self.w_profile = W.Select.from_param(s.param.profile, options=list(PROFILES), css_classes=["w-profile"])
        self.w_base = IntSlider.from_param(s.param.base_width, start=10, end=2000, step=10, throttled=True)
        self.w_ratio = FloatSlider.from_param(s.param.ratio, start=1.0, end=8.0, step=0.25, throttled=True)
        self.w_custom = W.TextInput.from_param(
            s.param.custom_widths, placeholder="e.g. 400, 800, 200, 400", css_classes=["w-custom"]
        )
        self.w_activation = W.Select.from_param(s.param.activation)
        self.w_slope = FloatSlider.from_param(s.param.slope, start=0.0, end=0.9, step=0.05, throttled=True)
        self.w_init = W.RadioButtonGroup.from_param(s.param.init, color="primary", variant="outline")
        self.w_sw2 = FloatSlider.from_param(
            s.param.sigma_w2, start=0.1, end=6.0, step=0.05, throttled=True, css_classes=["w-sigma-w2"]
        )
        self.w_sb2 = FloatSlider.from_param(s.param.sigma_b2, start=0.0, end=2.0, step=0.01, throttled=True)
        self.w_input = W.RadioButtonGroup.from_param(s.param.input_mode, color="primary", variant="outline")
        self.w_q0 = FloatSlider.from_param(s.param.q0, start=0.05, end=10.0, step=0.05, throttled=True)
        self.w_gram = W.RadioButtonGroup.from_param(
            s.param.gram, options={v: k for k, v in GRAMS.items()}, color="primary", variant="outline"
        )
        self.w_xscale = W.RadioButtonGroup.from_param(s.param.x_scale, color="primary", variant="outline")
        self.w_mc_size = IntSlider.from_param(s.param.mc_size, start=20, end=1500, step=10, throttled=True)
        self.w_mc_samples = IntSlider.from_param(s.param.mc_samples, start=1, end=10, throttled=True)
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
            callback=lambda: io.StringIO(views.metrics_json(self.state.result, self.state.mc)),
            filename="metrics.json", label="Metrics (JSON)", color="light",
        )  # fmt: skip
        # Lilypad controls: a target slider (also set by clicking the density) and a Player.
        # The target slider moves through the quantiles of the spectrum (x = F⁻¹(p)): one scale
        # that works for spectra spanning many decades; clicking the density sets x directly.
        self.w_target = FloatSlider(
            label="Target x = F⁻¹(p): quantile p", start=0.0, end=0.999, step=0.001,
            value=0.75, css_classes=["w-target"], width=300,
        )  # fmt: skip
        self.w_target.param.watch(self._on_target_slider, "value_throttled")
        self.w_player = W.Player(
            label="Lilypad step", start=0, end=1, value=0, interval=700, loop_policy="once",
            show_loop_controls=False, width=440, scale_buttons=0.9, css_classes=["w-player"], margin=(5, 30),
            visible_buttons=["first", "previous", "pause", "play", "next", "last"],
        )  # fmt: skip
        self.w_player.param.watch(self._on_player, "value")
        # Show only the widgets that matter for the current choices.
        self.w_custom.visible = s.profile == "custom"
        self.w_ratio.visible = s.profile not in ("constant", "custom")
        self.w_depth.disabled = s.profile == "custom"
        self.w_slope.visible = s.activation == "leaky_relu"
        self.w_q0.disabled = s.input_mode != "variance q0"
        s.param.watch(self._on_choice, ["profile", "activation", "input_mode"])

    def _on_choice(self, *_):
        s = self.state
        self.w_custom.visible = s.profile == "custom"
        self.w_ratio.visible = s.profile not in ("constant", "custom")
        self.w_depth.disabled = s.profile == "custom"
        self.w_slope.visible = s.activation == "leaky_relu"
        self.w_q0.disabled = s.input_mode != "variance q0"

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
        self.density_pane = pn.pane.Bokeh(self.density.figure, sizing_mode="stretch_width", min_width=480)
        self.cdf_pane = pn.pane.Bokeh(self.cdf.figure)
        self.q_pane = pn.pane.Bokeh(self.meanfield.q_figure)
        self.chi_pane = pn.pane.Bokeh(self.meanfield.chi_figure)
        self.phase_pane = pn.pane.Bokeh(self.phase.figure)
        self.z_pane = pn.pane.Bokeh(self.zplane.figure)
        self.m_pane = pn.pane.Bokeh(self.mplane.figure)
        self.metrics_pane = pn.pane.DataFrame(
            views.metrics_frame(s.result, s.mc), index=False, justify="left", sizing_mode="stretch_width",
            styles={"font-size": "12.5px"},
        )  # fmt: skip
        self.title_pane = pn.pane.Markdown(f"#### {views.title(s.result)}", margin=(0, 10))
        self.caption_pane = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "13px"})
        self._build_evidence()
        self._draw_density()
        self._draw_details()
        self._draw_lilypad()
        self._draw_evidence()
        s.param.watch(self._on_spectrum_change, ["result", "mc", "target_x"])
        s.param.watch(self._on_x_scale, "x_scale")
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

    def _draw_density(self) -> None:
        s = self.state
        self.density.update(views.density_data(s.result, s.mc, s.x_scale == "log", s.effective_target()))

    def _draw_details(self) -> None:
        """What needs the CDF (deciles, CDF plot, metrics) and the mean field: drawn after the density."""
        s = self.state
        log_x = s.x_scale == "log"
        self.density.update_deciles(views.decile_data(s.result, log_x))
        self.cdf.update(views.cdf_data(s.result, s.mc, log_x))
        self.meanfield.update(views.meanfield_data(s.result))
        self._draw_phase()

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
        self.evidence_pane = pn.pane.Bokeh(self.evidence_plot.figure)
        self.evidence_text = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "13px"})
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

    def _draw_evidence(self) -> None:
        if self.evidence_df is None or not self.w_evidence_epoch.options:
            self.evidence_text.object = "The study's results (`experiments/results/`) are not available here."
            return
        metric = self.w_evidence.value
        data = evidence.scatter_data(
            self.evidence_df, metric, self.w_evidence_target.value, self.w_evidence_epoch.value, self.evidence_prediction
        )
        r = self.state.result
        current = float("nan")
        if r is not None and (r.gram == "JtJ" or metric == "chi_1"):
            try:
                current = evidence.current_value(r.spectrum, float(r.mean_field.chi[0]), metric)
            except Exception:  # noqa: BLE001 - the marker is optional; the study's points stay
                current = float("nan")
        self.evidence_plot.update(data, evidence.METRICS[metric], current, ylabel=data["target_label"])
        label = evidence.STUDIES.get(self.w_evidence_study.value, self.w_evidence_study.value)
        self.evidence_text.object = evidence.summary_text(data, label, current)

    def _draw_tables(self) -> None:
        s = self.state
        self.metrics_pane.object = views.metrics_frame(s.result, s.mc)
        self.title_pane.object = f"#### {views.title(s.result)}"

    def _draw_phase(self) -> None:
        r = self.state.result
        if r is None:
            return
        net = r.network
        act = net.activations[0]
        spec = act.name if not act.params else f"{act.name}:{act.params[0]:g}"
        try:
            self.phase.update(spec, views.phase_data, net.sigma_w2[0], net.sigma_b2[0])
        except Exception as exc:  # noqa: BLE001 - a missing phase diagram must not break the page
            self.state._fail("phase diagram", exc)

    def _draw_lilypad(self) -> None:
        f = self.state.lilypad
        trace, k, basins, note = (f.trace, f.k, f.basins, f.note) if f is not None else (None, 0, None, "")
        self.zplane.update(views.zplane_data(trace, k))
        self.mplane.update(views.mplane_data(trace, k, basins))
        self.caption_pane.object = views.frame_caption(trace, k, note)

    def _on_spectrum_change(self, *events):
        # The density goes out first (its own websocket message); the CDF-based marks, the other
        # plots and the tables follow on the next tick, then the lilypad chain (see DashboardState).
        self._apply(self._draw_density)
        if any(e.name in ("result", "mc") for e in events):
            _next_tick(lambda: (self._apply(self._draw_details), self._draw_tables(),
                                self._apply(self._draw_evidence)))  # fmt: skip

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
        if r is None or event.new is None:
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
        self.state.frame = int(event.new)

    def _on_trace(self, *_):
        t = self.state.trace
        if t is None:
            return
        self.w_player.pause()
        n = len(t.centres)
        # A Player needs end > start; a one-lilypad chain just shows frame 0.
        self.w_player.param.update(end=max(n - 1, 1), value=0)
        r = self.state.result
        if r is not None:
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
            md("### Monte Carlo check"),
            self.w_mc_size,
            self.w_mc_samples,
            self.w_mc_button,
            self.w_mc_progress,
            md("### Downloads"),
            pn.Row(self.w_csv, self.w_json),
        ]
        intro = pn.Card(md(INTRO, sizing_mode="stretch_width"), title="What am I looking at?", collapsed=False,
                        sizing_mode="stretch_width", margin=(5, 10))  # fmt: skip
        spectrum = pn.Column(self.title_pane, pn.Row(self.density_pane, self.cdf_pane, sizing_mode="stretch_width"),
                             sizing_mode="stretch_width")  # fmt: skip
        details = pn.Row(
            pn.Column(md("#### Metrics"), self.metrics_pane, width=430),
            pn.Column(self.q_pane, self.chi_pane),
            self.phase_pane,
            sizing_mode="stretch_width",
        )
        lilypad_note = md(
            "#### Watch the solver: Newton lilypads\n"
            "To evaluate the density at **x** the solver starts high above the real axis, where the answer is "
            "known (m = 0), and walks down to **x + 0i**. Each **lilypad** (disk, left) is a region where the "
            "previous solution is a *proven* Newton start; the m-plane (right) shows Newton's iterates, the "
            "Kantorovich ball that certifies them, and behind them the **basins of attraction** of every root "
            "(one colour per root; grey: starts from which Newton does not converge in 40 steps): the chain stays inside the basin of the right root at every step.",
            sizing_mode="stretch_width",
        )
        lilypad = pn.Column(
            lilypad_note,
            pn.Row(self.w_target, self.w_player, sizing_mode="stretch_width"),
            self.caption_pane,
            pn.Row(self.z_pane, self.m_pane),
            sizing_mode="stretch_width",
        )
        evidence_card = pn.Card(
            md("Free-probability metrics computed **before** training against the train or test loss "
               "**after** a chosen epoch, for the empirical study's architectures (`python -m experiments`); "
               "one colour per activation family.",
               sizing_mode="stretch_width"),
            pn.Row(self.w_evidence_study, self.w_evidence_target, self.w_evidence_epoch, self.w_evidence),
            pn.Row(self.evidence_pane, self.evidence_text, sizing_mode="stretch_width"),
            title="Evidence: does the spectrum predict training?", collapsed=False, sizing_mode="stretch_width",
            margin=(5, 10),
        )  # fmt: skip
        template = pn.template.FastListTemplate(
            title="fpcore · Jacobian spectrum explorer",
            # One root per area: the document re-walks all models for every root added, so
            # passing the widgets one by one makes a new session several times slower.
            sidebar=[pn.Column(*sidebar, sizing_mode="stretch_width", margin=0)],
            main=[pn.Column(intro, spectrum, details, lilypad, evidence_card, sizing_mode="stretch_width", margin=0)],
            sidebar_width=340,
            accent="#1f5fa8",
            theme_toggle=False,
        )
        return template

    def __panel__(self):
        return self._template


def create_app(**kwargs) -> DashboardApp:
    """A new app (one per browser session)."""
    return DashboardApp(**kwargs)


if pn.state.served:
    warm_up_kernels()  # once per server process, in the background
    create_app().servable(title="fpcore · Jacobian spectrum explorer")
