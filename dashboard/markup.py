"""Markup panes for text that changes with every update (titles, tables, captions, notes)."""

from __future__ import annotations

from html import escape

import panel as pn
import param

__all__ = ["Markdown", "HTML", "DataFrame", "MetricsTable"]


class _TextOnly:
    """Mixin for markup panes: a new ``object`` sets only the Bokeh model's ``text``.

    Panel's markup panes send *all* their properties on every update of ``object``, stylesheets
    included, as new ``ImportedStyleSheet`` models; new models make Bokeh walk the whole document
    again (``Document.models.recompute``: about 860 models here). Under a class's load that walk
    was the largest single cost of the server's event loop (cProfile of ``load_dashboard.py``: 29 s
    of the 98 s the loop was busy during two bursts of 10 sessions, in 27 walks). The text is what
    Panel itself would send (``_transform_object``, as ``_get_properties`` renames it).
    """

    def _update(self, ref, model) -> None:
        text = self._transform_object(self.object)["object"]
        if model.text != text:
            model.text = text


class Markdown(_TextOnly, pn.pane.Markdown):
    pass


class HTML(_TextOnly, pn.pane.HTML):
    pass


class DataFrame(_TextOnly, pn.pane.DataFrame):
    pass


class MetricsTable(DataFrame):
    """The metrics table. ``hide_values``: the table keeps its rows, and so its size, with every
    value hidden and the value column's header saying "computing…" (the numbers of a network
    whose own numbers are on their way: none is shown, and its layout stays).

    A table that emptied while the details were computed and filled again afterwards changed the
    page's height twice per slider move, and each change made the browser lay out the whole
    document again (its resize observers: about 90 of the 280 ms a move cost the page's main
    thread in a Chromium trace, stop 28), work that ten pages on the server's 2 cores share.
    """

    hide_values = param.Boolean(default=False, doc="Hide the values (the details are being computed).")

    _rename = {**DataFrame._rename, "hide_values": None}  # (not a property of the Bokeh model)

    _HIDDEN = ('<div class="values-pending"><style>.values-pending tbody td:last-child {visibility: hidden}'
               ' .values-pending thead th:last-child::after {content: " · computing…"}</style>')

    def _transform_object(self, obj) -> dict:
        out = super()._transform_object(obj)
        if self.hide_values and out.get("object"):
            out = dict(out, object=escape(self._HIDDEN) + out["object"] + escape("</div>"))
        return out
