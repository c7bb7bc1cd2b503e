"""The Evidence view's pure functions, on a synthetic table and on the committed study results."""

import math

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

import fpcore  # noqa: E402
from dashboard import evidence  # noqa: E402


def _table(n=60, seed=0):
    rng = np.random.default_rng(seed)
    fam = np.repeat(["relu", "tanh"], n // 2)
    z = rng.normal(size=n)
    off = np.where(fam == "relu", 0.0, 5.0)
    df = pd.DataFrame(
        {
            "activation": fam,
            "family": fam,
            "depth": rng.integers(1, 6, n),
            "log2_gain": rng.normal(size=n),
            "hidden_log10_c9": z + off,  # within each family: increasing with the loss
            "hidden_log10_d9": np.where(np.arange(n) % 3 == 0, -np.inf, z),
            "train_loss_e1": np.exp(z - off),  # across families: the other way
            "train_loss_e5": np.exp(z - off),
            "test_loss_e5": np.exp(-z),
        }
    )
    df.loc[0, "train_loss_e5"] = np.inf  # a diverged architecture
    return df


def test_scatter_data_reports_within_family_pooled_and_baseline():
    df = _table()
    assert evidence.epochs(df, "train_loss") == [1, 5] and evidence.epochs(df, "test_loss") == [5]
    d = evidence.scatter_data(df, "log10_c9", "train_loss", 1)
    assert d["n"] == 60 and d["n_dropped"] == 0
    assert d["within"]["relu"][1] == pytest.approx(1.0) and d["within"]["tanh"][1] == pytest.approx(1.0)
    assert d["within_mean"] == pytest.approx(1.0) and d["spearman"] < 0.5  # pooling hides it
    assert d["baseline"][0] in evidence.BASELINES.values() and abs(d["baseline"][1]) < 0.5
    d = evidence.scatter_data(df, "log10_c9", "train_loss")  # default: the last epoch
    assert d["target_label"] == "train loss after epoch 5" and d["n_dropped"] == 1
    assert evidence.scatter_data(df, "log10_c9", "test_loss", 5)["within"]["relu"][1] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="epoch"):
        evidence.scatter_data(df, "log10_c9", "train_loss", 3)
    with pytest.raises(ValueError, match="target"):
        evidence.scatter_data(df, "log10_c9", "accuracy", 3)


def test_default_metric_is_finite_for_nearly_every_architecture():
    df = _table()
    assert evidence.default_metric(df) == "log10_c9"  # d9 is -inf for a third of them
    df["hidden_log10_d9"] = df["hidden_log10_c9"]
    assert evidence.default_metric(df) == "log10_d9"


def test_prediction_gap_is_shown_beside():
    df = _table()
    pred = pd.DataFrame(
        [
            dict(target="train_loss", epoch=1, features=f, spearman=v, lo=v - 0.1, hi=v + 0.1)
            for f, v in (("descriptors", 0.8), ("metrics", 0.6), ("both", 0.82), ("both - descriptors", 0.02))
        ]
    )
    d = evidence.scatter_data(df, "log10_c9", "train_loss", 1, pred)
    assert d["oof"]["both - descriptors"][0] == pytest.approx(0.02)
    text = evidence.summary_text(d, "synthetic", 0.5)
    assert "descriptors +0.80" in text and "+0.02" in text and "within families" in text


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
    assert evidence.current_value(s, 1.2, "log10_d9") == pytest.approx(math.log10(d[8]))
    assert evidence.current_value(s, 1.2, "atom") == s.atom
    assert evidence.current_value(s, 1.2, "chi_1") == 1.2
    with pytest.raises(ValueError, match="metric"):
        evidence.current_value(s, 1.2, "nope")


def test_committed_results_give_finite_default_metric():
    df = evidence.load_evidence("main_digits")
    if df is None:
        pytest.skip("no committed main_digits results")
    m = evidence.default_metric(df)
    x = df["hidden_" + m].to_numpy(float)
    computed = ~np.isnan(x)  # NaN: metrics not computed (yet) for that architecture
    assert computed.sum() >= 100
    assert np.isfinite(x[computed]).mean() >= 0.99  # finite for nearly every architecture
    d = evidence.scatter_data(df, m, "train_loss", 1)
    assert np.all(np.isfinite(d["x"])) and np.all(np.isfinite(d["y"])) and -1 <= d["spearman"] <= 1


def test_app_has_an_evidence_view_that_follows_the_network():
    from dashboard.app import DashboardApp

    if evidence.load_evidence("main_digits") is None:
        pytest.skip("no committed main_digits results")
    app = DashboardApp(sync_url=False)
    assert app.evidence_df is not None
    src = app.evidence_plot.src.data
    assert len(src["x"]) > 40 and len(src["x"]) == len(src["y"])
    app.w_evidence_target.value = "test_loss"
    app.w_evidence_epoch.value = 1
    app.w_evidence.value = "log10_lambda_max"
    app._draw_evidence()
    spec = app.state.result.spectrum
    assert app.evidence_plot.line_src.data["x"][0] == pytest.approx(math.log10(spec.lambda_max))
    assert "Spearman" in app.evidence_text.object and "test loss after epoch 1" in app.evidence_text.object


@pytest.mark.parametrize("net", [fpcore.Network([60] * 4, "relu", sigma_w2=2.0),
                                 fpcore.Network([60, 80, 60], "tanh", sigma_w2=1.5, sigma_b2=0.1)],
                         ids=["relu", "tanh"])  # fmt: skip
def test_the_marker_computes_each_metric_as_the_study_does(net):
    """The marker computes only the metric asked for (spectrum_metrics computes all of them, the
    variance among them: seconds for smooth activations); every value equals the study's."""
    from experiments.metrics import spectrum_metrics

    from dashboard.state import compute_spectrum

    r = compute_spectrum(net, "JtJ", 120)
    want = spectrum_metrics(r.spectrum)
    r.computed.prepare()
    for metric in evidence.METRICS:
        if metric == "chi_1":
            continue
        got = evidence.metric_value(r.spectrum, metric)
        assert got == pytest.approx(want[metric], rel=1e-12, abs=0.0) or got == want[metric], metric
        quick = evidence.value_from_details(r.computed, metric)
        assert quick is None or quick == pytest.approx(want[metric], rel=1e-12, abs=0.0) or quick == want[metric], metric
        assert (quick is None) == (metric not in evidence.FROM_DETAILS)
