"""dashboard.markup: an update of a text pane changes the model's text and nothing else (no new
stylesheet models, so Bokeh does not walk the whole document again)."""

import pandas as pd
import panel as pn
import pytest
from bokeh.document import Document

from dashboard.markup import HTML, DataFrame, Markdown


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
