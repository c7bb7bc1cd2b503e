"""Bokeh figures of the dashboard, built once and updated in place from :mod:`dashboard.views` data.

Each class owns one figure and its ``ColumnDataSource`` objects; ``update(data)`` assigns new
columns and axis ranges. Updating sources in place (rather than re-rendering a plot) is what keeps
a slider move within the latency budget: the browser receives one small data patch per glyph.
The figures use distinct axis objects, so zooming one never moves another.
"""

from __future__ import annotations

import math

import numpy as np
from bokeh.models import ColorBar, ColumnDataSource, CustomJS, GlyphRenderer, HoverTool, LinearColorMapper, Range1d, Span, Title
from bokeh.plotting import figure

from .views import N_BASIN_COLOURS

THEORY = "#1f5fa8"
MC = "#e08a2c"
ATOM = "#b2182b"
DECILE = "#555555"
TARGET = "#1b9e4b"
BASIN_PALETTE = [
    "#d9d9d9",  # -1: Newton did not converge
    "#8dd3c7", "#fdb462", "#bebada", "#fb8072", "#80b1d3", "#b3de69", "#fccde5",
    "#bc80bd", "#ccebc5", "#ffed6f", "#a6cee3", "#fb9a99", "#cab2d6", "#ffff99",
]  # fmt: skip
assert len(BASIN_PALETTE) == N_BASIN_COLOURS + 1

_TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def diverging_palette(n: int = 101) -> list[str]:
    """Blue (ordered, log chi < 0) - white - red (chaotic) in ``n`` steps."""
    blue, white, red = np.array([33, 102, 172]), np.array([247, 247, 247]), np.array([178, 24, 43])
    out = []
    for t in np.linspace(-1.0, 1.0, n):
        c = white + (blue - white) * (-t) if t < 0 else white + (red - white) * t
        out.append("#%02x%02x%02x" % tuple(int(round(v)) for v in c))
    return out


def _figure(title: str, width: int | None, height: int, x_type: str = "linear", **kw):
    fig = figure(
        title=title,
        height=height,
        width=width,
        sizing_mode="stretch_width" if width is None else "fixed",
        x_axis_type=x_type,
        x_range=Range1d(1e-3 if x_type == "log" else 0.0, 1.0),
        y_range=Range1d(0.0, 1.0),
        tools=_TOOLS,
        toolbar_location="above",
        **kw,
    )
    fig.title.text_font_size = "13pt"
    fig.axis.axis_label_text_font_size = "11pt"
    fig.axis.axis_label_text_font_style = "normal"
    fig.axis.major_label_text_font_size = "10pt"
    fig.toolbar.logo = None
    return fig


# the real renderer follows its legend proxy's visibility (cb_obj: the proxy)
_FOLLOW_JS = "const r = cb_obj.document.get_model_by_id('%s'); if (r != null) r.visible = cb_obj.visible;"


def _static_legend(fig) -> None:
    """Point each legend item at a proxy renderer: the same glyph on a source of no rows that never
    changes (and, for ``click_policy = "hide"``, whose visibility the real renderer follows).

    BokehJS rebuilds a legend's entries (DOM elements and a canvas per entry) on every change of
    anything its items refer to, recursively, the renderers' data sources included: with the real
    renderers there, each data patch rebuilt the legend of its figure, 11 ms of the browser's main
    thread per lilypad frame (a Chromium profile of the m-plane and z-plane updates). The
    visibility link therefore names the real renderer by its id instead of holding it: a
    ``js_link`` keeps the renderer in its callback's ``args``, and through it the legend still
    reached the data sources and was rebuilt on every slider move (the density's and the CDF's,
    about 500 DOM nodes per move; stop 28)."""
    legend = fig.legend[0]
    hide = legend.click_policy == "hide"
    for item in legend.items:
        proxies = []
        for r in item.renderers:
            cols = {name: [] for name in r.data_source.data}
            proxy = GlyphRenderer(data_source=ColumnDataSource(data=cols), glyph=r.glyph.clone(), visible=r.visible)
            if hide:  # (the real renderer found by its id when clicked: see the docstring)
                proxy.js_on_change("visible", CustomJS(code=_FOLLOW_JS % r.id))
            fig.renderers.append(proxy)
            proxies.append(proxy)
        item.renderers = proxies


def _legend_below(fig, ncols: int = 2) -> None:
    """Legend under the frame (never over the data), in ``ncols`` columns, its entries drawn from
    proxy renderers (:func:`_static_legend`)."""
    _static_legend(fig)
    legend = fig.legend[0]
    legend.ncols = ncols
    legend.label_text_font_size = "9pt"
    legend.border_line_alpha = 0
    legend.spacing = 0
    legend.padding = 2
    fig.add_layout(legend, "below")


def _set_range(rng, lo_hi) -> None:
    if lo_hi is None:  # (kept as it is)
        return
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    if hi > lo:
        rng.update(start=lo, end=hi)


def _same(a, b) -> bool:
    if len(a) != len(b):
        return False
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
    except TypeError:  # text or image columns
        return list(a) == list(b) if not hasattr(a, "shape") else False


def _fill(figure, sources: dict, data: dict, skip=()) -> None:
    """Assign each source its columns from ``data`` and set the figure's x and y ranges."""
    for key, src in sources.items():
        if key not in skip:
            _assign(src, data[key])
    _set_range(figure.x_range, data["x_range"])
    _set_range(figure.y_range, data["y_range"])


#: Numeric columns up to this length go to the browser as JSON lists, longer ones as binary buffers.
INLINE_MAX = 1024


def _wire(col):
    """A column as it should cross the websocket: a short 1-d numeric array as a list.

    Bokeh sends each array as a binary buffer, two websocket frames (a header and the bytes), and
    the browser takes one task of its main thread per frame (0.3-0.9 ms each in a Chromium trace);
    a lilypad step patched about twenty short columns (disks, path, iterates, roots, ball), about
    forty frames, where a list travels inside the patch's own JSON."""
    if isinstance(col, np.ndarray) and col.ndim == 1 and col.size <= INLINE_MAX and col.dtype.kind in "fiub":
        return col.tolist()
    return col


def _assign(source: ColumnDataSource, cols: dict) -> None:
    """Replace the source's columns, skipping the websocket message when nothing changed."""
    old = source.data
    if set(old) == set(cols) and all(_same(old[k], cols[k]) for k in cols):
        return
    source.data = {k: _wire(v) for k, v in cols.items()}


PENDING_NOTE = "← the mass left of the axis is being computed"  # (DensityPlot.update_left)


class DensityPlot:
    """Spectral density: theory curve, Monte Carlo histogram, deciles, atom at 0, ``lambda_max``, target."""

    TITLE = "Spectral density  (click on it to choose the lilypad target x)"

    def __init__(self, log_x: bool = True, height: int = 370):
        self.log_x = log_x
        fig = _figure(self.TITLE, None, height, "log" if log_x else "linear", min_width=360)
        # Named sources: the benchmarks and browser tests watch the density curve's own data.
        self.src = {k: ColumnDataSource(data=d, name=f"density-{k}") for k, d in _EMPTY_DENSITY.items()}
        s = self.src
        self.left_src = ColumnDataSource(data={"x": _E, "y": _E}, name="density-left")
        fig.line("x", "y", source=self.left_src, color=THEORY, line_width=2, line_dash="dashed",
                 legend_label="left of the grid (exact CDF)")  # fmt: skip
        fig.quad(left="left", right="right", top="top", bottom=0, source=s["mc"], fill_color=MC, fill_alpha=0.35,
                 line_color=MC, line_alpha=0.7, legend_label="Monte Carlo (finite N)")  # fmt: skip
        fig.varea(x="x", y1=0, y2="y", source=s["curve"], fill_color=THEORY, fill_alpha=0.25)
        line = fig.line("x", "y", source=s["curve"], color=THEORY, line_width=2.5, legend_label="theory (N → ∞)")
        fig.segment(x0="x", y0="y0", x1="x", y1="y1", source=s["deciles"], color=DECILE, line_dash="dashed",
                    line_width=1.2, legend_label="deciles")  # fmt: skip
        fig.segment(x0="x", y0="y0", x1="x", y1="y1", source=s["atom"], color=ATOM, line_width=7,
                    legend_label="atom at λ = 0")  # fmt: skip
        fig.text(x="x", y="y", text="text", source=s["atom_label"], text_color=ATOM, text_font_size="10pt",
                 text_align="left", text_baseline="top", x_offset=6)  # fmt: skip
        fig.segment(x0="x", y0="y0", x1="x", y1="y1", source=s["lmax"], color="black", line_dash="dotdash",
                    line_width=1.5, legend_label="λ_max")  # fmt: skip
        fig.text(x="x", y="y", text="text", source=s["lmax_label"], text_color="black", text_font_size="10pt",
                 text_align="right", text_baseline="bottom")  # fmt: skip
        fig.segment(x0="x", y0="y0", x1="x", y1="y1", source=s["target"], color=TARGET, line_width=2.5,
                    line_alpha=0.85, legend_label="lilypad target x")  # fmt: skip
        fig.add_tools(HoverTool(renderers=[line], tooltips=[("λ", "@x{0.0000e}"), ("value", "@y{0.0000e}")],
                                mode="vline"))  # fmt: skip
        fig.legend.click_policy = "hide"
        _legend_below(fig, ncols=3)  # outside the frame: never hides λ_max or the atom
        fig.xaxis.axis_label = "eigenvalue λ"
        # What the log axis hides (mass left of its range), under the plot.
        self.hidden = Title(text="", text_color=ATOM, text_font_size="10.5pt", text_font_style="normal", align="left")
        fig.add_layout(self.hidden, "below")
        self.figure = fig

    def update(self, data: dict) -> None:
        """Curve, histogram, atom, ``lambda_max`` and target (the deciles come with :meth:`update_deciles`)."""
        _fill(self.figure, self.src, data, skip=("deciles",))
        if self.figure.yaxis.axis_label != data["y_label"]:
            self.figure.yaxis.axis_label = data["y_label"]

    def update_deciles(self, data: dict) -> None:
        _assign(self.src["deciles"], data)

    def update_left(self, data: dict, pending: bool = False) -> None:
        """The curve left of the solver's grid (extended log axis) and the hidden-mass note.

        ``pending``: the new network's hidden mass is being computed (``data`` is empty). A note
        shown so far is replaced by one that says so, with as many lines: a note that vanished
        and came back with the details changed the figure's height twice per slider move, and
        each change made the browser lay out and draw the whole figure again, its legend rebuilt
        (about 500 DOM nodes per move; stop 28's Chromium profile of ten pages on one server)."""
        _assign(self.left_src, data["curve"])
        text = data["text"]
        if pending and not text and self.hidden.text and not self.hidden.text.startswith(PENDING_NOTE):
            text = PENDING_NOTE + "\n " * self.hidden.text.count("\n")
        elif pending and not text:
            text = self.hidden.text  # (already the pending note, or no note: nothing changes)
        if self.hidden.text != text:
            self.hidden.text = text


_E = []
_EMPTY_DENSITY = {
    "curve": {"x": _E, "y": _E},
    "mc": {"left": _E, "right": _E, "top": _E},
    "deciles": {"x": _E, "y0": _E, "y1": _E},
    "atom": {"x": _E, "y0": _E, "y1": _E},
    "atom_label": {"x": _E, "y": _E, "text": _E},
    "lmax": {"x": _E, "y0": _E, "y1": _E},
    "lmax_label": {"x": _E, "y": _E, "text": _E},
    "target": {"x": _E, "y0": _E, "y1": _E},
}


class CdfPlot:
    """Cumulative distribution, atom included, with deciles and the empirical CDF of a Monte Carlo run."""

    TITLE = "Cumulative distribution F(λ)"

    def __init__(self, log_x: bool = True, width: int | None = None, height: int = 370):
        fig = _figure(self.TITLE, width, height, "log" if log_x else "linear", min_width=300)
        self.src = {k: ColumnDataSource(data={"x": _E, "y": _E}) for k in ("curve", "mc", "deciles")}
        fig.step("x", "y", source=self.src["mc"], mode="after", color=MC, line_width=2, legend_label="Monte Carlo")
        line = fig.line("x", "y", source=self.src["curve"], color=THEORY, line_width=2.5, legend_label="theory")
        fig.scatter("x", "y", source=self.src["deciles"], marker="diamond", size=9, color=DECILE,
                    legend_label="deciles")  # fmt: skip
        fig.add_tools(HoverTool(renderers=[line], tooltips=[("λ", "@x{0.0000e}"), ("F", "@y{0.0000}")], mode="vline"))
        fig.legend.click_policy = "hide"
        _legend_below(fig, ncols=3)
        fig.xaxis.axis_label = "eigenvalue λ"
        fig.yaxis.axis_label = "F(λ) = P(eigenvalue ≤ λ)"
        self.figure = fig

    def update(self, data: dict) -> None:
        _fill(self.figure, self.src, data)


class MeanFieldPlots:
    """Per-layer ``q_l`` and ``chi_l`` (with ``chi = 1`` marked)."""

    def __init__(self, width: int = 310, height: int = 235):
        q = _figure("Mean field: q_l per layer", width, height)
        chi = _figure("Mean field: χ_l per layer", width, height)
        self.q_src = ColumnDataSource(data={"layer": _E, "q": _E})
        self.chi_src = ColumnDataSource(data={"layer": _E, "chi": _E})
        q.line("layer", "q", source=self.q_src, color=THEORY, line_width=2)
        q.scatter("layer", "q", source=self.q_src, color=THEORY, size=6)
        chi.line("layer", "chi", source=self.chi_src, color=MC, line_width=2)
        chi.scatter("layer", "chi", source=self.chi_src, color=MC, size=6)

        chi.add_layout(Span(location=1.0, dimension="width", line_color=ATOM, line_dash="dashed", line_width=1.5))
        q.xaxis.axis_label = chi.xaxis.axis_label = "layer l"
        q.yaxis.axis_label = "q_l (pre-activation variance)"
        chi.yaxis.axis_label = "χ_l = σ_w² E[φ′(h_l)²]"
        for f, name in ((q, "q"), (chi, "chi")):
            f.add_tools(HoverTool(tooltips=[("layer", "@layer"), (name, f"@{name}{{0.0000}}")]))
        self.q_figure, self.chi_figure = q, chi

    def update(self, data: dict) -> None:
        _assign(self.q_src, data["q"])
        _assign(self.chi_src, data["chi"])
        for f in (self.q_figure, self.chi_figure):
            _set_range(f.x_range, data["layer_range"])
        _set_range(self.q_figure.y_range, data["q_range"])
        _set_range(self.chi_figure.y_range, data["chi_range"])


class PhasePlot:
    """Order-to-chaos phase diagram of the activation with the current ``(sigma_w2, sigma_b2)``."""

    def __init__(self, width: int | None = None, height: int = 370):
        fig = _figure("Phase diagram: log₁₀ χ₁ at q*", width, height, min_width=300, max_width=520)
        self.image_src = ColumnDataSource(data={"image": [], "q_star": [], "x": [], "y": [], "dw": [], "dh": []})
        self.boundary_src = ColumnDataSource(data={"x": _E, "y": _E})
        self.point_src = ColumnDataSource(data={"x": _E, "y": _E})
        mapper = LinearColorMapper(palette=diverging_palette(), low=-1, high=1, nan_color="#dddddd")
        img = fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=self.image_src, color_mapper=mapper)
        fig.line("x", "y", source=self.boundary_src, color="black", line_width=2.5, legend_label="edge of chaos χ₁ = 1")
        fig.scatter("x", "y", source=self.point_src, marker="star", size=18, fill_color="yellow", line_color="black",
                    legend_label="this network")  # fmt: skip
        fig.add_layout(ColorBar(color_mapper=mapper, title="log₁₀ χ₁", width=10), "right")
        fig.add_tools(HoverTool(renderers=[img], tooltips=[("σ_w²", "$x{0.00}"), ("σ_b²", "$y{0.00}"),
                                                           ("log₁₀ χ₁", "@image{0.000}"), ("q*", "@q_star{0.000}")]))  # fmt: skip
        fig.text(x=[0.2], y=[1.93], text=["ordered: χ₁ < 1"], text_color="#08306b", text_font_size="10pt",
                 text_baseline="top", background_fill_color="white", background_fill_alpha=0.6)  # fmt: skip
        fig.text(x=[5.9], y=[1.93], text=["chaotic: χ₁ > 1"], text_color="#67000d", text_font_size="10pt",
                 text_align="right", text_baseline="top", background_fill_color="white",
                 background_fill_alpha=0.6)  # fmt: skip
        _legend_below(fig)
        fig.xaxis.axis_label = "σ_w² (weight variance)"
        fig.yaxis.axis_label = "σ_b² (bias variance)"
        self.figure = fig
        self._activation = None

    def update(self, activation: str, data_fn, sigma_w2: float, sigma_b2: float) -> None:
        """Redraw the image only when the activation changes; always move the point."""
        if activation != self._activation:
            data = data_fn(activation)
            _assign(self.image_src, data["image"])
            _assign(self.boundary_src, data["boundary"])
            _set_range(self.figure.x_range, data["x_range"])
            _set_range(self.figure.y_range, data["y_range"])
            self._activation = activation
        _assign(self.point_src, {"x": [float(sigma_w2)], "y": [float(sigma_b2)]})


class ZPlanePlot:
    """The z-plane: lilypads as disks, the path toward the real axis, rejected proposals, the target."""

    def __init__(self, width: int | None = None, height: int = 500):
        fig = _figure("z-plane: the chain of lilypads (disks)", width, height, match_aspect=True, min_width=300,
                      max_width=560)  # fmt: skip
        keys = ("disks", "current", "path", "rejected", "target")
        self.src = {k: ColumnDataSource(data={"x": _E, "y": _E, "r": _E} if k in ("disks", "current") else
                                        {"x": _E, "y": _E}) for k in keys}  # fmt: skip

        fig.add_layout(Span(location=0.0, dimension="width", line_color="black", line_width=1.5))
        fig.circle("x", "y", radius="r", source=self.src["disks"], fill_color=THEORY, fill_alpha=0.07,
                   line_color=THEORY, line_alpha=0.6, legend_label="earlier lilypads")  # fmt: skip
        fig.circle("x", "y", radius="r", source=self.src["current"], fill_color=TARGET, fill_alpha=0.18,
                   line_color=TARGET, line_width=2.5, legend_label="current lilypad")  # fmt: skip
        fig.line("x", "y", source=self.src["path"], color="black", line_width=1.5)
        fig.scatter("x", "y", source=self.src["path"], color="black", size=5, legend_label="centres z_k")
        fig.scatter("x", "y", source=self.src["rejected"], marker="x", size=11, line_width=2.5, color=ATOM,
                    legend_label="rejected step (halved)")  # fmt: skip
        fig.scatter("x", "y", source=self.src["target"], marker="star", size=18, fill_color=TARGET,
                    line_color="black", legend_label="target x + 0i")  # fmt: skip
        _legend_below(fig)
        fig.xaxis.axis_label = "Re z"
        fig.yaxis.axis_label = "Im z"
        self.figure = fig

    def update(self, data: dict) -> None:
        _fill(self.figure, self.src, data)


class MPlanePlot:
    """The m-plane: Newton basins of ``f_z`` (one colour per root), Kantorovich ball, Newton iterates."""

    def __init__(self, width: int | None = None, height: int = 500):
        fig = _figure("m-plane: Newton basins of f_z", width, height, match_aspect=True,
                      min_width=300, max_width=560)  # fmt: skip
        self.basin_src = ColumnDataSource(data={"image": [], "x": [], "y": [], "dw": [], "dh": []}, name="mplane-basins")
        self.src = {k: ColumnDataSource(data={"x": _E, "y": _E}) for k in ("roots", "iterates", "start", "solution")}
        self.ball_src = ColumnDataSource(data={"x": _E, "y": _E, "r": _E})
        mapper = LinearColorMapper(palette=BASIN_PALETTE, low=-1.5, high=N_BASIN_COLOURS - 0.5, nan_color="white")
        # dash-views: RGBA frames (dashboard.basins.basin_rgba); the mapper serves label images
        self._mapper = mapper
        fig.image_rgba(image="image", x="x", y="y", dw="dw", dh="dh", source=self.basin_src)
        fig.scatter("x", "y", source=self.src["roots"], size=9, fill_color="white", line_color="black",
                    legend_label="roots of f_z")  # fmt: skip
        fig.circle("x", "y", radius="r", source=self.ball_src, fill_alpha=0.0, line_color="black", line_width=2.5,
                   line_dash="dashed", legend_label="Kantorovich ball B(m₀, 2η)")  # fmt: skip
        fig.line("x", "y", source=self.src["iterates"], color="black", line_width=1.5)
        fig.scatter("x", "y", source=self.src["iterates"], color="black", size=5, legend_label="Newton iterates")
        fig.scatter("x", "y", source=self.src["start"], marker="square", size=11, fill_color=THEORY,
                    line_color="white", legend_label="start m₀ (previous lilypad)")  # fmt: skip
        fig.scatter("x", "y", source=self.src["solution"], marker="star", size=18, fill_color=TARGET,
                    line_color="black", legend_label="solution m_k = M(z_k)")  # fmt: skip
        _legend_below(fig)
        fig.xaxis.axis_label = "Re m"
        fig.yaxis.axis_label = "Im m"
        self.figure = fig
        # (listed only while a ball is drawn: a verified chain's steps have none)
        self.ball_item = next(i for i in fig.legend[0].items if str(i.label.value).startswith("Kantorovich ball"))

    def update(self, data: dict) -> None:
        _assign(self.basin_src, data["basins"])
        _assign(self.ball_src, data["ball"])
        drawn = len(data["ball"]["r"]) > 0
        if self.ball_item.visible != drawn:
            self.ball_item.visible = drawn
        _fill(self.figure, self.src, data)


class EvidencePlot:
    """The empirical study's architectures: a metric before training against the test loss after
    (log scale), one colour per activation, and a vertical line at the current network."""

    _COLORS = {"relu": "#1f77b4", "leaky_relu": "#2ca02c", "hard_tanh": "#ff7f0e", "linear": "#7f7f7f",
               "tanh": "#9467bd", "gelu": "#8c564b", "erf": "#e377c2", "sigmoid": "#bcbd22",
               "silu": "#17becf", "selu": "#d62728", "elu": "#393b79", "softplus": "#8c6d31"}  # fmt: skip

    def __init__(self, width: int | None = None, height: int = 340):
        fig = figure(title="Evidence: a metric at initialisation vs test loss after training", width=width,
                     height=height, y_axis_type="log", tools=_TOOLS, toolbar_location="above",
                     sizing_mode="stretch_width" if width is None else "fixed", min_width=300)  # fmt: skip
        self.src = ColumnDataSource(data={"x": _E, "y": _E, "activation": [], "color": []})
        self.line_src = ColumnDataSource(data={"x": _E, "y": _E})
        fig.scatter("x", "y", source=self.src, size=6, fill_alpha=0.6, line_alpha=0.0, color="color",
                    legend_field="activation")  # fmt: skip
        fig.line("x", "y", source=self.line_src, color="black", line_width=2, line_dash="dashed")
        fig.add_tools(HoverTool(tooltips=[("metric", "@x{0.000}"), ("loss", "@y{0.000}"), ("φ", "@activation")]))
        fig.yaxis.axis_label = "final test loss (mean over seeds)"
        fig.legend.location = "top_left"
        fig.legend.label_text_font_size = "9pt"
        self.figure = fig

    def update(self, data: dict, label: str, current: float, ylabel: str | None = None) -> None:
        colors = [self._COLORS.get(a, "#000000") for a in data["activation"]]
        _assign(self.src, {"x": list(data["x"]), "y": list(data["y"]), "activation": list(data["activation"]),
                           "color": colors})  # fmt: skip
        if data["n"] and math.isfinite(current):
            y = [float(min(data["y"])) * 0.8, float(max(data["y"])) * 1.25]
            _assign(self.line_src, {"x": [current, current], "y": y})
        else:
            _assign(self.line_src, {"x": [], "y": []})
        self.figure.xaxis.axis_label = f"{label} (hidden stack, J^T J)"
        if ylabel:
            self.figure.yaxis.axis_label = f"{ylabel} (mean over seeds)"
            self.figure.title.text = f"Evidence: a metric at initialisation vs {ylabel}"
