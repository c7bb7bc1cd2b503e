"""Pin and compare up to four spectra, and watch the spectrum grow with depth.

:class:`ComparePanel`: *Pin* keeps the current spectrum (density, CDF and a few exact metrics
from the :class:`fpcore.Spectrum`); up to :data:`MAX_PINS` are drawn side by side (density per
unit ``ln λ`` and CDF, both on a log axis) with a metrics table. The figures keep a fixed set of
four line glyphs (empty sources for unused slots), so updates patch data in place.

:class:`DepthAnimation`: a Player over the depth ``L`` of the current architecture (constant
widths, same activation and variances). The spectra are computed lazily through the dashboard's
LRU cache (``dashboard.state.compute_spectrum``); *Precompute* fills that cache in a worker
thread so that playing only reads cached results.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from .markup import HTML, Markdown
from .presets import download_name

__all__ = ["MAX_PINS", "Pinned", "pin_result", "compare_table", "ComparePanel", "DepthAnimation", "depth_networks",
           "spectrum_curves"]  # fmt: skip

MAX_PINS = 4
COLOURS = ("#1f5fa8", "#e08a2c", "#1b9e4b", "#b2182b")
_TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


@dataclass(frozen=True)
class Pinned:
    """A pinned spectrum: its label, curves on the log axis and exact metrics."""

    label: str
    x: np.ndarray
    xdensity: np.ndarray  # x * rho(x): density per unit ln(x)
    cdf: np.ndarray
    metrics: dict


def spectrum_curves(result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, x rho(x), F(x))`` on the positive part of the spectrum's grid."""
    s = result.spectrum
    x = np.asarray(s.x, float)
    keep = x > 0
    return x[keep], (x * np.asarray(s.density, float))[keep], np.asarray(result.cdf_grid, float)[keep]


def _label(net, gram: str) -> str:
    return download_name(net, "", "", gram).strip("_").rstrip(".").replace("_", " ")


def pin_result(result, label: str | None = None) -> Pinned:
    """Pin ``result`` (a ``dashboard.state.Result``): curves and exact metrics from its Spectrum."""
    s = result.spectrum
    x, xd, F = spectrum_curves(result)
    c = result.computed  # the numbers the details and variance jobs computed already (Spectrum.deciles ...)
    q = np.asarray(result.deciles, float)[[0, 4, 8]]
    metrics = {
        "mean": float(c.mean if c is not None else s.mean),
        "variance": float(c.variance if c is not None else s.variance),
        "λ_max": float(s.lambda_max),
        "atom at 0": float(s.atom),
        "λ at p = 0.1": float(q[0]),
        "median": float(q[1]),
        "λ at p = 0.9": float(q[2]),
        "P(λ > 1)": float(result.fraction_above_1),
    }
    return Pinned(label or _label(result.network, result.gram), x, xd, F, metrics)


def compare_table(pins) -> str:
    """Markdown table: one column per pin, one row per metric."""
    if not pins:
        return "*Nothing pinned yet: press **Pin this spectrum** to keep the current one for comparison.*"
    head = "| | " + " | ".join(f"**{i + 1}.** {p.label}" for i, p in enumerate(pins)) + " |"
    sep = "|---|" + "---|" * len(pins)
    rows = [head, sep]
    for key in pins[0].metrics:
        rows.append(f"| {key} | " + " | ".join(f"{p.metrics[key]:.4g}" for p in pins) + " |")
    return "\n".join(rows)


def _apply(fn) -> None:
    """Run ``fn`` (which edits Bokeh models) where the session's document may change: at once
    outside a server or inside a locked server callback, else on the session's next tick."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        fn()
    elif pn.state._unblocked(doc):
        with pn.io.unlocked():
            fn()
    else:
        pn.state.execute(fn, schedule=True)


def _log_figure(title: str, y_label: str, height: int = 300):
    fig = figure(title=title, height=height, x_axis_type="log", tools=_TOOLS, toolbar_location="above",
                 sizing_mode="stretch_width")  # fmt: skip
    fig.xaxis.axis_label = "λ"
    fig.yaxis.axis_label = y_label
    return fig


class ComparePanel(pn.viewable.Viewer):
    """Pin up to four spectra and compare density, CDF and metrics side by side."""

    pins = param.List(default=[], doc="Pinned spectra, oldest first (at most MAX_PINS).")

    def __init__(self, state, **params):
        super().__init__(**params)
        self.state = state
        self.srcd = [ColumnDataSource(data={"x": [], "y": []}) for _ in range(MAX_PINS)]
        self.srcc = [ColumnDataSource(data={"x": [], "y": []}) for _ in range(MAX_PINS)]
        self.fig_density = _log_figure("Pinned spectra: density λρ(λ) (per unit ln λ)", "λ ρ(λ)")
        self.fig_cdf = _log_figure("Pinned spectra: CDF F(λ) (atom at 0 included)", "F(λ)")
        for i in range(MAX_PINS):
            self.fig_density.line("x", "y", source=self.srcd[i], color=COLOURS[i], line_width=2.5)
            self.fig_cdf.line("x", "y", source=self.srcc[i], color=COLOURS[i], line_width=2.5)
        self.fig_density.css_classes, self.fig_cdf.css_classes = ["p-compare-density"], ["p-compare-cdf"]
        self.b_pin = pn.widgets.Button(label="Pin this spectrum", color="primary", css_classes=["w-pin"])
        self.b_clear = pn.widgets.Button(label="Clear pins", color="light", css_classes=["w-clear-pins"])
        self.b_pin.on_click(lambda _: self.pin())
        self.b_clear.on_click(lambda _: self.clear())
        self.table = Markdown(compare_table([]), sizing_mode="stretch_width", css_classes=["compare-table"])
        self.legend = HTML("", sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.Row(self.b_pin, self.b_clear),
            self.legend,
            pn.Row(self.fig_density, self.fig_cdf, sizing_mode="stretch_width"),
            self.table,
            sizing_mode="stretch_width",
        )

    def pin(self) -> bool:
        r = self.state.result
        if r is None:
            return False

        def done(p) -> None:
            pins = [q for q in self.pins if q.label != p.label] + [p]
            self.pins = pins[-MAX_PINS:]
            self._draw()

        def fail(exc) -> None:  # reported, the pins stay as they were
            self.state._fail("pin", exc)

        # Off the event loop: a pin needs the deciles and the variance (seconds for a smooth
        # activation when their jobs have not delivered them yet). Served, True means "requested".
        self.state.run("pin", lambda: pin_result(r), done, fail, label="pin")
        return True

    def clear(self) -> None:
        self.pins = []
        self._draw()

    def _draw(self) -> None:
        _apply(self._draw_now)

    def _draw_now(self) -> None:
        for i in range(MAX_PINS):
            if i < len(self.pins):
                p = self.pins[i]
                self.srcd[i].data = {"x": p.x, "y": p.xdensity}
                self.srcc[i].data = {"x": p.x, "y": p.cdf}
            else:
                self.srcd[i].data = {"x": [], "y": []}
                self.srcc[i].data = {"x": [], "y": []}
        self.table.object = compare_table(self.pins)
        self.legend.object = " ".join(
            f'<span style="color:{COLOURS[i]};font-weight:bold">━ {i + 1}. {p.label}</span>&nbsp;'
            for i, p in enumerate(self.pins)
        )

    def __panel__(self):
        return self._layout


# --------------------------------------------------------------------------------------------
# Depth animation


def depth_networks(net, depths) -> list:
    """``net`` at each depth in ``depths``: constant widths ``N_0``, the first layer's activation
    and variances (the architecture a depth slider would give)."""
    act = net.activations[0]
    return [
        net.replace(widths=[net.widths[0]] * (int(L) + 1), activation=act, sigma_w2=net.sigma_w2[0],
                    sigma_b2=net.sigma_b2[0])  # fmt: skip
        for L in depths
    ]


class DepthAnimation(pn.viewable.Viewer):
    """A Player over depth L: the spectrum (λρ(λ), log axis) of the current architecture at each L."""

    max_depth = param.Integer(30, bounds=(2, 200))

    def __init__(self, state, compute, **params):
        super().__init__(**params)
        self.state = state
        self._compute = compute  # compute(net, gram) -> Result (the dashboard's cached spectrum)
        self.src = ColumnDataSource(data={"x": [], "y": []})
        self.fig = _log_figure("Spectrum as depth grows", "λ ρ(λ)", height=320)
        self.fig.line("x", "y", source=self.src, color=COLOURS[0], line_width=2.5)
        self.fig.css_classes = ["p-depth-animation"]
        self.player = pn.widgets.Player(label="Depth L", start=1, end=self.max_depth, value=1, interval=500,
                                        loop_policy="once", show_loop_controls=False, width=420,
                                        css_classes=["w-depth-player"])  # fmt: skip
        self.player.param.watch(self._on_frame, "value")
        self.b_pre = pn.widgets.Button(label="Precompute frames", color="light", css_classes=["w-depth-precompute"])
        self.b_pre.on_click(lambda _: self.precompute())
        self.status = Markdown("", sizing_mode="stretch_width")
        self._thread: threading.Thread | None = None
        self._layout = pn.Column(pn.Row(self.player, self.b_pre), self.status, self.fig, sizing_mode="stretch_width")

    def _networks(self):
        net = self.state.build_network()
        return depth_networks(net, range(1, self.max_depth + 1))

    def frame(self, L: int):
        """The Result at depth ``L`` (computed, or read from the cache)."""
        net = self._networks()[int(L) - 1]
        return self._compute(net, self.state.gram)

    def _on_frame(self, event) -> None:
        self.show(int(event.new))

    def show(self, L: int) -> None:
        """Draw depth ``L`` (the Player calls this for each frame). Served, the frame is computed
        in a worker (a spectrum not precomputed takes seconds for a smooth activation, and its CDF
        on the grid as long again): the event loop never waits for it, and a newer frame
        supersedes one still waiting."""

        def job():
            r = self.frame(L)
            x, xd, _ = spectrum_curves(r)
            s = r.spectrum
            text = (f"**L = {L}**: mean {float(s.mean):.4g}, λ_max {float(s.lambda_max):.4g}, "
                    f"atom at 0 {float(s.atom):.3g}")  # fmt: skip
            return x, xd, text

        def done(out) -> None:
            x, xd, text = out

            def draw() -> None:
                self.src.data = {"x": x, "y": xd}
                self.status.object = text

            _apply(draw)

        def fail(exc) -> None:  # a failed frame is reported, the plot keeps the last one
            self.state._fail(f"depth {L}", exc)

        self.state.run("depth-frame", job, done, fail, label=f"depth-{L} frame")

    def precompute(self) -> None:
        """Fill the spectrum cache for every depth in a worker thread (playing then only reads)."""
        if self._thread is not None and self._thread.is_alive():
            return
        nets, gram = self._networks(), self.state.gram
        self.status.object = f"Precomputing {len(nets)} depths in the background…"

        def run() -> None:
            for n in nets:
                try:
                    self._compute(n, gram)
                except Exception:  # noqa: BLE001 - the frame reports its own failure when shown
                    pass

        self._thread = threading.Thread(target=run, name="depth-precompute", daemon=True)
        self._thread.start()

    def __panel__(self):
        return self._layout
