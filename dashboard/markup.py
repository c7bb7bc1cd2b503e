"""Markup panes for text that changes with every update (titles, tables, captions, notes)."""

from __future__ import annotations

import panel as pn

__all__ = ["Markdown", "HTML", "DataFrame"]


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
