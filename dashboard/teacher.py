"""The teacher's tools on the page: preset buttons, pin-and-compare, depth animation, downloads.

:func:`install` attaches them to a ``DashboardApp`` (``dashboard.app``) and returns the card
that goes on the page; it also makes the activation selector set that activation's usual
``sigma_w2``, names the downloads after the configuration, keeps the Monte Carlo sample in the
CSV, adds a PNG download of the current basin frame, and computes every basin frame of a new
lilypad chain in the background.
"""

from __future__ import annotations

import io
import os

import panel as pn

from . import presets
from .basins import cancel_prefetch, frame_png, prefetch
from .compare import ComparePanel, DepthAnimation
from .markup import Markdown

__all__ = ["install", "basin_png_name"]


def basin_png_name(app) -> str:
    f = app.state.lilypad
    r = app.state.result
    k = f.k if f is not None else 0
    base = presets.download_name(r.network, "basins", "png", r.gram) if r is not None else "basins.png"
    return base.replace(".png", f"_step{k + 1}.png")


def _basin_png(app):
    f = app.state.lilypad
    if f is None or f.basins is None or not hasattr(f.basins, "rgba"):
        raise ValueError("no basin frame to export yet")
    return io.BytesIO(frame_png(f.basins, f.trace, f.k))


def install(app) -> pn.Card:
    """Wire the tools into ``app`` (widgets ``w_activation``, ``w_csv``, ``w_json``) and return
    the "Teacher's tools" card."""
    s = app.state
    W = pn.widgets
    # The activation selector sets the activation's usual sigma_w2 with it (one update).
    select = W.Select(name=s.param.activation.label, options=list(s.param.activation.objects), value=s.activation,
                      css_classes=["w-activation"])  # fmt: skip
    select.param.watch(lambda e: presets.choose_activation(s, e.new), "value")
    s.param.watch(lambda e: setattr(select, "value", e.new), "activation")
    app.w_activation = select
    # Downloads named after the configuration; the CSV keeps the Monte Carlo sample.
    app.w_png = W.FileDownload(filename="basins.png", label="Basin frame (PNG)", color="light",
                               css_classes=["w-basin-png"])  # fmt: skip

    def rename(*_):
        r = s.result
        if r is None:
            return
        app.w_csv.filename = presets.download_name(r.network, "spectrum", "csv", r.gram)
        app.w_json.filename = presets.download_name(r.network, "metrics", "json", r.gram)

    def rename_png(*_):
        if s.result is not None:
            app.w_png.filename = basin_png_name(app)

    def prefetch_frames(*_):
        # FPCORE_DASHBOARD_PREFETCH=0 turns it off (bench_dashboard.py times uncached basin frames)
        if os.environ.get("FPCORE_DASHBOARD_PREFETCH", "1") == "0":
            return
        if s.trace is not None and s._trace_net is not None and s.solver_visible:
            net, gram = s._trace_net
            prefetch(net, gram, s.trace, owner=id(s))

    def stop_prefetch(*_):
        if not s.solver_visible:  # the solver view was closed: its frames are not needed
            cancel_prefetch(owner=id(s))

    s.param.watch(prefetch_frames, "trace")  # the Player then reads cached basin frames
    s.param.watch(stop_prefetch, "solver_visible")
    # The names are set when a download is clicked (FileDownload reads `filename` after its
    # callback): renaming three widgets on every slider move sent three more properties to the
    # browser with each density.
    json_callback = app.w_json.callback

    def csv_file():
        rename()
        return io.StringIO(presets.spectrum_csv_with_sample(s.result, s.mc))

    def json_file():
        rename()
        return json_callback()

    def png_file():
        rename_png()
        return _basin_png(app)

    app.w_csv.callback, app.w_json.callback, app.w_png.callback = csv_file, json_file, png_file
    rename()
    rename_png()

    # Presets: one button each, the sentence shown under them.
    sentence = Markdown("*Pick a preset: every control is set at once.*", sizing_mode="stretch_width",
                                css_classes=["preset-sentence"])  # fmt: skip
    buttons = []
    for key, p in presets.PRESETS.items():
        b = W.Button(label=p.label, color="light", css_classes=["w-preset", f"w-preset-{key}"], margin=(2, 4))

        def click(_, key=key):
            try:
                text = presets.apply_preset(s, key)
            except Exception as exc:  # noqa: BLE001 - reported as a notification
                s._fail("preset", exc)
                return
            sentence.object = f"**{presets.PRESETS[key].label}.** {text}"

        b.on_click(click)
        buttons.append(b)
    from .state import compute_spectrum

    app.compare = ComparePanel(s)
    app.depth_animation = DepthAnimation(s, lambda net, gram: compute_spectrum(net, gram, 120))
    return pn.Card(
        pn.pane.Markdown("#### Presets", margin=(0, 10)),
        pn.FlexBox(*buttons, sizing_mode="stretch_width"),
        sentence,
        pn.pane.Markdown("#### Pin and compare (up to four spectra)", margin=(0, 10)),
        app.compare,
        pn.pane.Markdown("#### Depth animation: the spectrum as L grows (constant width N₀)", margin=(0, 10)),
        app.depth_animation,
        title="Teacher's tools: presets, pin and compare, depth animation",
        collapsed=False,
        sizing_mode="stretch_width",
        margin=(5, 10),
        css_classes=["teacher-tools"],
    )
