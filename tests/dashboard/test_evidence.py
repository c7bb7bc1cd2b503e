"""The Evidence view's pure functions on the committed study results."""

import math

import numpy as np
import pytest

pytest.importorskip("pandas")

import fpcore  # noqa: E402
from dashboard import evidence  # noqa: E402


def test_committed_results_load_and_scatter():
    df = evidence.load_evidence("digits")
    assert df is not None and len(df) >= 200  # the committed 240-architecture study
    for metric in evidence.METRICS:
        d = evidence.scatter_data(df, metric)
        assert d["n"] + d["n_dropped"] == len(df)
        assert np.all(np.isfinite(d["x"])) and np.all(np.isfinite(d["y"]))
        assert -1.0 <= d["spearman"] <= 1.0


def test_spearman_matches_scipy():
    from scipy import stats

    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    y = x + rng.normal(size=50)
    x[3] = x[7]  # a tie
    assert evidence.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, rel=1e-12)
    assert math.isnan(evidence.spearman([1.0, 2.0], [2.0, 1.0]))


def test_current_value_matches_the_study_definitions():
    net = fpcore.Network([64, 128, 128], "hard_tanh", sigma_w2=1.5, sigma_b2=0.1)
    s = fpcore.jacobian_spectrum(net, n_points=200)
    d = s.deciles
    assert evidence.current_value(s, 1.2, "log10_spread") == pytest.approx(math.log10(d[8] / d[0]))
    assert evidence.current_value(s, 1.2, "atom") == s.atom
    assert evidence.current_value(s, 1.2, "chi_1") == 1.2
    with pytest.raises(ValueError, match="metric"):
        evidence.current_value(s, 1.2, "nope")


def test_app_has_an_evidence_view_that_follows_the_network():
    from dashboard.app import DashboardApp

    app = DashboardApp(sync_url=False)
    assert app.evidence_df is not None
    src = app.evidence_plot.src.data
    assert len(src["x"]) > 40 and len(src["x"]) == len(src["y"])
    app.w_evidence.value = "log10_lambda_max"
    app._draw_evidence()
    spec = app.state.result.spectrum
    assert app.evidence_plot.line_src.data["x"][0] == pytest.approx(math.log10(spec.lambda_max))
    assert "Spearman" in app.evidence_text.object
