"""dashboard.markup: an update of a text pane changes the model's text and nothing else (no new
stylesheet models, so Bokeh does not walk the whole document again)."""

import pandas as pd
import panel as pn
import pytest
from bokeh.document import Document

from dashboard.markup import HTML, DataFrame, Markdown, MetricsTable


@pytest.mark.parametrize("cls, base, first, second", [
    (Markdown, pn.pane.Markdown, "#### a *b*", "#### c **d**"),
    (HTML, pn.pane.HTML, "<b>a</b>", "<i>c</i>"),
    (DataFrame, pn.pane.DataFrame, pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [2.5], "b": ["<x>"]})),
])
def test_text_update_sends_the_same_text_and_no_new_models(cls, base, first, second):
    doc, ref_doc = Document(), Document()
    pane, ref = cls(first, styles={"color": "red"}), base(first, styles={"color": "red"})
    model, ref_model = pane.get_root(doc), ref.get_root(ref_doc)
    sheets, ref_sheets = list(model.stylesheets), list(ref_model.stylesheets)
    n_models = len(list(doc.models))
    pane.object = second
    ref.object = second
    assert model.text == ref_model.text != ""
    assert all(a is b for a, b in zip(model.stylesheets, sheets)) and len(model.stylesheets) == len(sheets)
    assert len(list(doc.models)) == n_models
    # Panel's own pane replaces its stylesheet models (what made the document walk again)
    assert any(a is not b for a, b in zip(ref_model.stylesheets, ref_sheets))


def test_metrics_table_hides_its_values_and_keeps_its_rows():
    # While a network's details are computed the table keeps the last rows (the page's layout)
    # with every value hidden and its header saying so; nothing of the values is rendered.
    from html import unescape

    doc = Document()
    frame = pd.DataFrame({"quantity": ["mean", "deciles"], "value": ["1.234", "0.1, 0.2"]})
    pane = MetricsTable(frame, index=False)
    model = pane.get_root(doc)  # (hide_values is no property of the Bokeh model)
    shown = unescape(model.text)
    assert "1.234" in shown and "values-pending" not in shown
    pane.hide_values = True
    pane.param.trigger("object")
    hidden = unescape(model.text)
    assert hidden.startswith('<div class="values-pending">') and hidden.endswith("</div>")
    assert "tbody td:last-child {visibility: hidden}" in hidden and "computing…" in hidden
    assert hidden.count("<tr") == shown.count("<tr")  # the same rows
    pane.hide_values = False
    pane.object = frame.assign(value=["2.5", "0.3, 0.4"])
    assert "2.5" in unescape(model.text) and "values-pending" not in unescape(model.text)
