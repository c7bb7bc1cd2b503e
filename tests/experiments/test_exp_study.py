"""The empirical study: sampler, models, training, the sweep (in-process and on Dask), analysis."""

import json
import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("distributed")

import fpcore  # noqa: E402
from experiments import analysis, sweep  # noqa: E402
from experiments.architectures import WIDTH_RATIOS, Architecture, nominal_sigma_w2, sample_architectures  # noqa: E402
from experiments.data import load_task  # noqa: E402
from experiments.metrics import METRICS, UnsupportedActivation, network_metrics  # noqa: E402
from experiments.results import load_results  # noqa: E402
from experiments.training import build_model, train_run  # noqa: E402

torch.set_num_threads(1)


# -- sampler and models -----------------------------------------------------------------------
def test_sampler_is_deterministic_and_prefix_stable():
    a = sample_architectures(12, 64, 10, seed=5)
    b = sample_architectures(20, 64, 10, seed=5)
    assert a == b[:12]
    assert len({x.arch_id for x in b}) == 20
    assert sample_architectures(12, 64, 10, seed=6) != a


def test_sampler_conventions():
    for arch in sample_architectures(50, 64, 10, seed=0):
        assert arch.widths[0] == 64 and arch.widths[-1] == 10
        assert set(arch.width_ratios) <= set(WIDTH_RATIOS)  # ratios N_l / N_0
        assert 0.5 <= arch.gain <= 2.0
        assert arch.sigma_w2 == pytest.approx(arch.gain * nominal_sigma_w2(arch.activation), rel=1e-5)
        net = arch.network(1.0)
        assert net.activations[-1].name == "linear" and net.sigma_w2[-1] == 1.0 and net.sigma_b2[-1] == 0.0
        assert arch.hidden_network(1.0).widths == arch.widths[:-1]


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
def test_model_initialisation_follows_math_md(init):
    arch = Architecture(200, (400, 100), 10, "relu", 1.8, 0.3, init)
    model = build_model(arch, seed=0, dtype=torch.float64)
    w1, w2 = model[0].weight.detach(), model[2].weight.detach()
    # fan-in entry variance sigma_w2 / N_{l-1} for both inits
    for w in (w1, w2):
        assert float((w**2).mean()) * w.shape[1] == pytest.approx(1.8, rel=0.05 if init == "gaussian" else 1e-9)
    if init == "orthogonal":
        g2 = 1.8 * 400 / 200  # N_1 > N_0: orthonormal columns, g^2 = sigma_w2 max(N_l, N_{l-1}) / N_{l-1}
        assert torch.allclose(w1.T @ w1, g2 * torch.eye(200, dtype=torch.float64), atol=1e-10)
        g2 = 1.8 * 400 / 400  # N_2 < N_1: orthonormal rows
        assert torch.allclose(w2 @ w2.T, g2 * torch.eye(100, dtype=torch.float64), atol=1e-10)
    assert float(model[0].bias.detach().var()) == pytest.approx(0.3, rel=0.4)
    assert torch.all(model[-1].bias == 0)  # readout: sigma_b2 = 0
    same = build_model(arch, seed=0, dtype=torch.float64)
    other = build_model(arch, seed=1, dtype=torch.float64)
    assert torch.equal(same[0].weight, model[0].weight) and not torch.equal(other[0].weight, model[0].weight)


def test_tasks_need_no_download():
    t = load_task("digits")
    assert t.x_train.shape == (1257, 64) and t.x_test.shape == (540, 64) and t.n_classes == 10
    assert np.allclose(t.x_train.mean(0), 0, atol=1e-5) and 0.9 < t.q0 <= 1.0
    pytest.importorskip("mnist1d")
    m = load_task("mnist1d")
    assert m.x_train.shape == (4000, 40) and m.x_test.shape == (1000, 40) and set(np.unique(m.y_test)) == set(range(10))


def test_train_run_records_every_epoch():
    arch = Architecture(64, (32,), 10, "relu", 2.0, 0.0, "gaussian")
    r = train_run(arch, "digits", seed=0, config=dict(epochs=2), device="cpu")
    assert r["epochs_done"] == 2 and len(r["history"]["test_loss"]) == 3  # epoch 0 = at initialisation
    assert r["final_test_loss"] < r["init_test_loss"] and 0.5 < r["final_test_acc"] <= 1.0
    assert not r["diverged"]


def test_diverging_run_is_marked_not_dropped():
    arch = Architecture(64, (256,) * 6, 10, "linear", 6.0, 0.0, "gaussian")
    r = train_run(arch, "digits", seed=0, config=dict(epochs=3, lr=0.5), device="cpu")
    assert r["diverged"] and r["final_test_loss"] == math.inf


# -- metrics -----------------------------------------------------------------------------------
def test_metrics_are_finite_or_signed_infinities_never_nan():
    for arch in sample_architectures(6, 64, 10, seed=2, activations=("relu", "linear", "hard_tanh")):
        m = network_metrics(arch.network(1.0), gram="JJt", n_points=100)
        for k in METRICS:
            assert not math.isnan(m[k]), k
        assert m["chi_1"] == pytest.approx(float(fpcore.mean_field(arch.network(1.0)).chi[0]))


def test_unsupported_activation_is_reported_not_nan(monkeypatch):
    def refuse(net, **kw):
        raise NotImplementedError("not yet")

    monkeypatch.setattr(fpcore, "jacobian_spectrum", refuse)
    arch = Architecture(8, (8,), 3, "tanh", 1.0, 0.0, "gaussian")
    with pytest.raises(UnsupportedActivation):
        network_metrics(arch.network(1.0))
    out = sweep._metrics_task(arch.to_dict(), 1.0, 50)
    assert "metrics" not in out and out["error"].startswith("unsupported")


# -- the sweep ---------------------------------------------------------------------------------
TINY = dict(
    task="digits", n_arch=3, seeds=2, train=dict(epochs=1), activations=("relu", "linear"), n_points=60, progress=False
)


def test_tiny_sweep_end_to_end_and_resume(tmp_path):
    runs_dir, res = tmp_path / "runs", tmp_path / "results"
    logs = []
    sweep.run_sweep(runs_dir=runs_dir, scheduler="synchronous", log=logs.append, **TINY)
    files = sorted((runs_dir / "runs").glob("*.json"))
    assert len(files) == 6 and len(list((runs_dir / "metrics").glob("*.json"))) == 3
    mtimes = [f.stat().st_mtime_ns for f in files]

    # Resumable: nothing is redone; a longer sweep only adds the new architecture.
    logs.clear()
    sweep.run_sweep(runs_dir=runs_dir, scheduler="synchronous", log=logs.append, **TINY)
    assert any("6 done already" in line for line in logs)
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    sweep.run_sweep(runs_dir=runs_dir, scheduler="synchronous", log=logs.append, **{**TINY, "n_arch": 4})
    assert len(list((runs_dir / "runs").glob("*.json"))) == 8
    with pytest.raises(ValueError, match="other settings"):
        sweep.run_sweep(runs_dir=runs_dir, scheduler="synchronous", **{**TINY, "train": dict(epochs=2)})

    paths = sweep.export(runs_dir, res)
    runs = pd.read_csv(paths["runs"])
    assert len(runs) == 8 and set(runs["seed"]) == {0, 1}
    assert len(pd.read_csv(paths["epochs"])) == 16  # epochs 0 and 1 of 8 runs

    assert {"fpcore_version", "fpcore_commit", "fpcore_source", "metrics_source", "train_loss_e1"} <= set(runs.columns)
    summary = analysis.analyze("digits", res, n_boot=50, n_trees=10, figures=True, log=lambda s: None)
    assert summary["n_architectures"] == 4 and summary["n_runs"] == 8
    for name in (
        "architectures.csv",
        "correlations.csv",
        "prediction.csv",
        "summary.json",
        "correlations.png",
        "prediction.png",
        "scatter.png",
    ):
        assert (res / f"digits_{name}").exists(), name
    df = load_results(res / "digits_architectures.csv")
    assert len(df) == 4 and (df["n_seeds"] == 2).all()
    for col in ("arch_id", "test_loss", "test_acc", "chi_1", "log10_d5", "hidden_log10_d5", "lambda_max"):
        assert col in df.columns
    assert load_results(paths["runs"]).shape == df.shape  # a per-run CSV is averaged on load


def test_restored_runs_export_the_same_tables_and_extend(tmp_path):
    """A fresh checkout has only the committed CSVs: restoring them into a runs directory, redoing
    the metrics and exporting again writes the same training columns and curves, byte for byte;
    a longer sweep then trains only the runs that are missing."""
    res, res2 = tmp_path / "results", tmp_path / "results2"
    cfg = {**TINY, "n_arch": 2}
    sweep.run_sweep(runs_dir=tmp_path / "a", scheduler="synchronous", log=lambda s: None, **cfg)
    sweep.export(tmp_path / "a", res)
    with pytest.raises(ValueError, match="name"):
        sweep.restore_runs("nothing", tmp_path / "b", res)
    assert sweep.restore_runs("digits", tmp_path / "b", res) == 4
    assert sweep.restore_runs("digits", tmp_path / "b", res) == 0  # runs already there are kept
    logs = []
    sweep.run_sweep(runs_dir=tmp_path / "b", scheduler="synchronous", log=logs.append, **{**cfg, "stages": ("metrics",)})
    paths = sweep.export(tmp_path / "b", res2)
    a, b = pd.read_csv(res / "digits_runs.csv"), pd.read_csv(paths["runs"])
    assert list(a.columns) == list(b.columns)
    training = list(a.columns)[: list(a.columns).index("log10_d1")]
    assert "train_loss_e1" in training and "seconds" in training
    pd.testing.assert_frame_equal(a[training], b[training])
    assert (res / "digits_epochs.csv").read_bytes() == paths["epochs"].read_bytes()
    logs.clear()
    sweep.run_sweep(runs_dir=tmp_path / "b", scheduler="synchronous", log=logs.append, **{**cfg, "n_arch": 3})
    assert any("6 training runs, 4 done already" in line for line in logs)
    assert len(pd.read_csv(sweep.export(tmp_path / "b", res2)["runs"])) == 6


def test_tiny_sweep_on_dask_local_cluster(tmp_path):
    logs = []
    runs_dir = sweep.run_sweep(
        runs_dir=tmp_path / "runs", scheduler=None, workers=1, log=logs.append, **{**TINY, "n_arch": 2, "seeds": 1}
    )
    assert len(list((runs_dir / "runs").glob("*.json"))) == 2
    rec = json.loads(next((runs_dir / "runs").glob("*.json")).read_text())
    assert rec["epochs_done"] == 1 and rec["device"] == "cpu"
    runs, epochs, skipped = sweep.collect(runs_dir)
    assert len(runs) == 2 and skipped.empty


def test_unsupported_activation_is_trained_with_nan_metrics_and_reason(tmp_path, monkeypatch):
    real = fpcore.jacobian_spectrum

    def no_relu(net, **kw):
        if any(a.name == "relu" for a in net.activations):
            raise NotImplementedError("relu not yet")
        return real(net, **kw)

    monkeypatch.setattr(fpcore, "jacobian_spectrum", no_relu)
    runs_dir = sweep.run_sweep(
        runs_dir=tmp_path / "runs", scheduler="synchronous", log=lambda s: None, metrics_timeout=None,
        **{**TINY, "n_arch": 5, "seeds": 1},
    )
    runs, _, skipped = sweep.collect(runs_dir)
    assert len(runs) == 5  # sampling and training never depend on fpcore
    relu = runs["activation"] == "relu"
    assert relu.any() and runs.loc[relu, "hidden_log10_d9"].isna().all()
    assert runs.loc[relu, "metrics_error"].str.startswith("unsupported").all()
    assert runs.loc[~relu, "hidden_log10_c9"].notna().all() and len(skipped) == relu.sum()


def test_named_sweeps_match_the_protocol():
    from experiments.architectures import SWEEPS, sweep_sampler

    p = SWEEPS["protocol_digits"]
    assert p["train"] == dict(epochs=50, batch_size=64, optimizer="sgd", lr=0.001, momentum=0.0)
    archs = sample_architectures(40, 64, 10, **sweep_sampler("protocol_digits"))
    assert len({a.arch_id for a in archs}) == 40  # repeated draws are skipped: distinct units
    assert {a.depth for a in archs} == {3} and {a.activation for a in archs} == {"relu"}
    assert {a.init for a in archs} == {"gaussian"} and not any(a.bias for a in archs)
    # std gain in {1/4, ..., 4} around He: variance gain std^2
    assert {a.gain for a in archs} <= {1 / 16, 1 / 4, 1.0, 4.0, 16.0} and len({a.gain for a in archs}) == 5
    model = build_model(archs[0])
    assert all(m.bias is None for m in model if isinstance(m, torch.nn.Linear))
    main = sample_architectures(200, 64, 10, **sweep_sampler("main_digits"))
    assert max(a.depth for a in main) == 20 and min(a.gain for a in main) < 0.1 and max(a.gain for a in main) > 10
    assert {a.activation_name for a in main} == set(fpcore._activations.ACTIVATIONS)


def test_erf_network_is_the_trained_one():
    """The trained erf is torch.erf(x); the analysed network must be the same map whatever fpcore's
    'erf' convention: its pre-activations are scaled so that fpcore's phi of them is erf(h)."""
    arch = Architecture(60, (120, 60), 10, "erf", 2.0, 0.1, "gaussian")
    model = build_model(arch, seed=0, dtype=torch.float64)
    assert torch.allclose(model[1](torch.tensor([0.7], dtype=torch.float64)), torch.erf(torch.tensor([0.7], dtype=torch.float64)))
    net = arch.hidden_network(1.0)
    from fpcore._activations import get_activation

    phi = get_activation("erf").phi
    # the analysed pre-activation variance times fpcore's phi equals erf of the trained one
    c = net.sigma_w2[0] / arch.sigma_w2
    for h in (0.3, 1.0, 2.0):
        assert float(phi(math.sqrt(c) * h)) == pytest.approx(math.erf(h), abs=1e-12)
    assert net.sigma_b2[0] == pytest.approx(c * 0.1)


# -- analysis ----------------------------------------------------------------------------------
def _synthetic_runs(n_arch=60, seeds=3, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_arch):
        good = rng.normal()
        noise = rng.normal()
        for s in range(seeds):
            loss = math.exp(0.5 * good + 0.1 * rng.normal())
            rows.append(
                dict(
                    arch_id=f"a{i}",
                    task="digits",
                    activation="relu",
                    activation_name="relu",
                    init="gaussian",
                    depth=1 + i % 4,
                    widths="64-32-10",
                    sigma_w2=2.0,
                    sigma_b2=0.0,
                    gain=1.0,
                    min_width_ratio=0.5,
                    max_width_ratio=0.5,
                    seed=s,
                    final_test_loss=loss,
                    final_test_acc=1 - loss / 10,
                    final_train_loss=loss / 2,
                    init_test_loss=2.3,
                    diverged=False,
                    log10_d5=good,
                    mean=noise,
                    hidden_log10_d5=-math.inf if i % 2 else good,
                )
            )
    return pd.DataFrame(rows)


def test_seeds_are_averaged_not_pooled():
    runs = _synthetic_runs()
    arch = analysis.per_architecture(runs)
    assert len(arch) == 60 and (arch["n_seeds"] == 3).all()
    a0 = runs[runs["arch_id"] == "a0"]
    assert arch.loc[0, "test_loss"] == pytest.approx(a0["final_test_loss"].mean())
    runs.loc[runs.index[0], ["final_test_loss", "diverged"]] = [math.inf, True]
    arch = analysis.per_architecture(runs)
    assert arch.loc[0, "test_loss"] == math.inf and arch.loc[0, "n_diverged"] == 1


def test_spearman_ranks_infinities_as_extremes():
    assert analysis.spearman([1, 2, math.inf], [1, 2, 3]) == pytest.approx(1.0)
    assert analysis.spearman([-math.inf, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert analysis.pearson([1, 2, 3, math.inf], [1, 2, 3, 4]) == (pytest.approx(1.0), 3)


@pytest.mark.parametrize("name", ["protocol_digits", "protocol_mnist1d", "main_digits"])
def test_committed_results_load_with_provenance(name):
    path = analysis.RESULTS_DIR / f"{name}_runs.csv"
    if not path.exists():
        pytest.skip(f"no committed {name} results yet")
    runs = pd.read_csv(path)
    for col in ("fpcore_version", "fpcore_commit", "fpcore_source", "metrics_source", "train_loss_e1", "test_loss_e1"):
        assert col in runs.columns, col
    has = runs["hidden_log10_d9"].notna()
    assert (runs.loc[has, "fpcore_source"].astype(str).str.len() == 12).all()
    df = load_results(task=name)
    assert df["arch_id"].is_unique
