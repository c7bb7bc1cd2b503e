"""What the browser tests and the latency benchmark share: Chromium's flags and the JavaScript
they run in the page.

``PLOT_SIGNATURE_JS(prefix)`` returns a short signature of the data of the first Bokeh figure
whose title starts with ``prefix`` (``null`` before the document has rendered it), so a caller
can wait for a plot to change without knowing its data.
"""

#: Flags for Debian's Chromium on these machines (headless, offline: no background networking).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

PLOT_SIGNATURE_JS = """(prefix) => {
  if (!(window.Bokeh && Bokeh.documents.length)) return null;
  for (const m of Bokeh.documents[0].all_models) {
    const t = m.title && m.title.text;
    if (t && String(t).startsWith(prefix) && m.renderers) {
      let s = '';
      for (const r of m.renderers) {
        const ds = r.data_source;
        if (!ds || !ds.data) continue;
        for (const [k, v] of Object.entries(ds.data)) {
          let acc = 0;
          for (let i = 0; i < v.length; i++) { const a = +v[i]; if (isFinite(a)) acc += a * (1 + (i % 7)); }
          s += k + v.length + ':' + acc.toPrecision(12) + ';';
        }
      }
      return s;
    }
  }
  return null;
}"""
