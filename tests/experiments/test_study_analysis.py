"""The analysis on synthetic tables whose answer is known, provenance invalidation, and metrics that
are finite on atomic and bottleneck spectra."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from experiments import analysis

EPOCHS = (1, 2, 5)


def _synthetic(n_per_family=90, r_within=0.7, seed=0, families=("relu", "tanh", "gelu")):
    """A runs table (2 seeds) where ``m_within`` correlates with every target at Pearson
    ``r_within`` inside each family (a Gaussian copula: Spearman (6/pi) asin(r/2)) while its family
    offsets run against the targets', and ``m_noise`` is independent of everything."""
    rng = np.random.default_rng(seed)
    rows = []
    for f, fam in enumerate(families):
        for i in range(n_per_family):
            z = rng.normal()
            m = r_within * z + math.sqrt(1 - r_within**2) * rng.normal()
            depth = int(rng.integers(1, 6))
            gain = float(np.exp(rng.uniform(-2, 2)))
            rec = dict(
                arch_id=f"{fam}{i}",
                task="synthetic",
                activation=fam,
                activation_name=fam,
                init="gaussian" if i % 2 else "orthogonal",
                depth=depth,
                widths="-".join(["64"] + ["32"] * depth + ["10"]),
                sigma_w2=gain,
                sigma_b2=0.0,
                gain=gain,
                min_width_ratio=0.5,
                max_width_ratio=0.5,
                bias=True,
                hidden_log10_d9=m + 10.0 * f,  # offsets up with the family index...
                hidden_log10_c9=rng.normal(),  # noise
                init_test_loss=2.3,
                diverged=False,
                epochs_done=EPOCHS[-1],
            )
            for s in range(2):
                y = z - 10.0 * f  # ...targets' offsets down: pooled and within disagree
                for e in EPOCHS:
                    rec_e = {f"train_loss_e{e}": y, f"test_loss_e{e}": y + 0.01 * s, f"test_acc_e{e}": -y}
                    rec.update(rec_e)
                rows.append({**rec, "seed": s, "final_train_loss": y, "final_test_loss": y, "final_test_acc": -y})
    return pd.DataFrame(rows)


def test_within_family_correlation_is_recovered_and_pooling_is_not_trusted():
    r = 0.7
    expected = 6 / math.pi * math.asin(r / 2)  # Spearman of a Gaussian pair with Pearson r
    arch = analysis.per_architecture(_synthetic(r_within=r))
    assert len(arch) == 270 and (arch["n_seeds"] == 2).all()
    t = analysis.correlation_table(arch, n_boot=300, seed=1, metrics=["hidden_log10_d9", "hidden_log10_c9"])
    rows = t[(t["predictor"] == "hidden_log10_d9") & (t["target"] == "train_loss")]
    for fam in ("relu", "tanh", "gelu"):
        for row in rows[rows["group"] == fam].itertuples():
            assert abs(row.spearman - expected) < 0.15
            assert row.spearman_lo < expected < row.spearman_hi
            assert row.n == 90
    pooled = rows[rows["group"] == "pooled"]
    assert (pooled["spearman_hi"] < 0).all()  # pooled: the family offsets dominate, sign flips
    # given all descriptors (activation indicators included) the family offsets are removed
    assert (pooled["partial"] > expected - 0.15).all() and (pooled["partial_lo"] > 0.4).all()
    noise = t[(t["predictor"] == "hidden_log10_c9") & (t["group"] != "pooled")]
    assert (noise["spearman_lo"] < 0).mean() > 0.8 and (noise["spearman_hi"] > 0).mean() > 0.8
    acc = t[(t["predictor"] == "hidden_log10_d9") & (t["target"] == "test_acc") & (t["group"] == "relu")]
    assert (acc["spearman"] < 0).all()  # accuracy = -loss here


def test_prediction_gap_is_zero_for_a_function_of_the_descriptors_and_positive_for_new_information():
    rng = np.random.default_rng(3)
    n = 160
    depth = rng.integers(1, 9, n)
    gain = np.exp(rng.uniform(-2, 2, n))
    info = rng.normal(size=n)  # information no descriptor has
    arch = pd.DataFrame(
        dict(
            arch_id=[f"a{i}" for i in range(n)],
            activation="relu",
            family="relu",
            init="gaussian",
            depth=depth,
            gain=gain,
            log2_gain=np.log2(gain),
            n_seeds=1,
            function_of_descriptors=np.log(gain) * depth,
            train_loss_e1=np.log(gain) * depth + 5.0 * info + 0.3 * rng.normal(size=n),
        )
    )
    # "metrics": one a deterministic function of the descriptors, one carrying the new information
    arch["hidden_log10_d9"] = arch["function_of_descriptors"]
    arch["hidden_log10_c9"] = info
    p = analysis.prediction_table(arch, n_boot=200, seed=0, n_trees=60).set_index("features")
    gap = p.loc["both - descriptors"]
    assert gap["lo"] > 0.1  # the spectrum-side information is found, with an interval above 0
    arch["hidden_log10_c9"] = rng.normal(size=n)  # now the metrics add nothing
    arch["train_loss_e1"] = np.log(gain) * depth + 0.3 * rng.normal(size=n)
    p = analysis.prediction_table(arch, n_boot=200, seed=0, n_trees=60).set_index("features")
    gap = p.loc["both - descriptors"]
    assert gap["lo"] < 0.02 and abs(gap["spearman"]) < 0.1
    assert p.loc["descriptors", "spearman"] > 0.8


def _decomposition_table(rng, n=200):
    """Descriptors, a ``chi_1`` carrying information ``z_chi`` no descriptor has, a spectral
    metric carrying another ``z_spec``, and a spectral metric that is noise."""
    depth = rng.integers(1, 9, n)
    gain = np.exp(rng.uniform(-2, 2, n))
    z_chi, z_spec = rng.normal(size=n), rng.normal(size=n)
    arch = pd.DataFrame(
        dict(
            arch_id=[f"a{i}" for i in range(n)],
            activation="relu",
            family="relu",
            init="gaussian",
            depth=depth,
            gain=gain,
            log2_gain=np.log2(gain),
            n_seeds=1,
            chi_1=np.exp(0.5 * z_chi),
            abs_log_chi_1=np.abs(0.5 * z_chi),
            hidden_log10_d9=z_spec,
            hidden_log10_c9=rng.normal(size=n),
        )
    )
    return arch, np.log(gain) * depth, z_chi, z_spec


@pytest.mark.parametrize("source", ["chi_1", "spectral"])
def test_gap_decomposition_finds_which_metrics_carry_the_information(source):
    """The target = a function of the descriptors + the information of ``chi_1`` only (or of the
    spectral metric only): the gap is attributed to that part, and the other adds nothing."""
    rng = np.random.default_rng(5)
    arch, base, z_chi, z_spec = _decomposition_table(rng)
    z = z_chi if source == "chi_1" else z_spec
    arch["train_loss_e1"] = base + 4.0 * z + 0.3 * rng.normal(size=len(arch))
    p = analysis.gap_decomposition_table(arch, n_boot=200, seed=0, n_trees=60).set_index("features")
    chi_gap = p.loc["(descriptors + chi_1) - descriptors"]
    spec_gap = p.loc["(descriptors + spectral) - descriptors"]
    beyond_chi = p.loc["both - (descriptors + chi_1)"]
    total = p.loc["both - descriptors"]
    assert total["lo"] > 0.1  # the metrics add, with an interval above 0
    if source == "chi_1":
        assert chi_gap["lo"] > 0.1 and abs(chi_gap["spearman"] - total["spearman"]) < 0.1
        assert spec_gap["lo"] < 0.02 and abs(spec_gap["spearman"]) < 0.1
        assert beyond_chi["lo"] < 0.02 and abs(beyond_chi["spearman"]) < 0.1
    else:
        assert spec_gap["lo"] > 0.1 and beyond_chi["lo"] > 0.1
        assert chi_gap["lo"] < 0.02 and abs(chi_gap["spearman"]) < 0.1
    assert p.loc["descriptors + chi_1", "n_features"] == p.loc["descriptors", "n_features"] + 2
    assert p.loc["descriptors + spectral", "n_features"] == p.loc["descriptors", "n_features"] + 2
    # the shared parts are the default table's numbers (same folds, trees and resamples)
    d = analysis.prediction_table(arch, n_boot=200, seed=0, n_trees=60).set_index("features")
    for k in ("descriptors", "both", "both - descriptors"):
        assert d.loc[k, "spearman"] == pytest.approx(p.loc[k, "spearman"])
        assert d.loc[k, "lo"] == pytest.approx(p.loc[k, "lo"])


def test_prediction_sets_are_checked():
    arch, base, *_ = _decomposition_table(np.random.default_rng(0), n=30)
    arch["train_loss_e1"] = base
    with pytest.raises(ValueError, match="sets"):
        analysis.prediction_table(arch, n_boot=10, n_trees=5, sets=("descriptors", "chi"))
    with pytest.raises(ValueError, match="sets"):
        analysis.prediction_table(arch, n_boot=10, n_trees=5, sets=("descriptors",), gaps=(("both", "descriptors"),))


def test_runs_as_unit_and_filter_are_reported_beside():
    runs = _synthetic(n_per_family=30)
    u = analysis.runs_as_unit_table(runs, n_boot=100)
    assert set(u["unit"]) == {"runs", "runs, filtered on outcome"}
    assert (u.loc[u["unit"] == "runs", "n"] == 180).all()


# -- provenance --------------------------------------------------------------------------------
def test_stale_metrics_are_recomputed_current_ones_kept(tmp_path):
    from experiments import sweep
    from experiments.provenance import fpcore_provenance, is_current

    cfg = dict(task="digits", n_arch=2, seeds=1, train=dict(epochs=1), activations=("relu",), n_points=40, progress=False)
    runs_dir = tmp_path / "runs"
    sweep.run_sweep(runs_dir=runs_dir, scheduler="synchronous", stages=("metrics",), metrics_timeout=None, log=None, **cfg)
    files = sorted((runs_dir / "metrics").glob("*.json"))
    assert len(files) == 2 and all(is_current(json.loads(f.read_text())) for f in files)
    rec = json.loads(files[0].read_text())
    rec["provenance"]["fpcore_source"] = "000000000000"  # computed by another fpcore
    rec["metrics"]["hidden_log10_d9"] = 123.0
    files[0].write_text(json.dumps(rec))
    keep = files[1].stat().st_mtime_ns
    logs = []
    sweep.run_sweep(runs_dir=runs_dir, scheduler="synchronous", stages=("metrics",), metrics_timeout=None, log=logs.append, **cfg)
    assert any("1 discarded as stale" in s for s in logs)
    new = json.loads(files[0].read_text())
    assert new["provenance"] == fpcore_provenance() and new["metrics"]["hidden_log10_d9"] != 123.0
    assert files[1].stat().st_mtime_ns == keep
    assert not is_current({"metrics": {}})  # no provenance at all: stale


def test_metrics_timeout_gives_nan_with_reason(monkeypatch):
    from experiments import sweep
    from experiments.architectures import Architecture

    arch = Architecture(8, (8,), 3, "relu", 2.0, 0.0, "gaussian")
    out = sweep._metrics_task(arch.to_dict(), 1.0, 30, timeout=1e-3)  # the child cannot even start
    assert "metrics" not in out and out["error"].startswith("timeout") and "provenance" in out
    out = sweep._metrics_task(arch.to_dict(), 1.0, 30, timeout=120)  # a fresh child does it
    assert "metrics" in out and math.isfinite(out["metrics"]["hidden_log10_c5"])
    if sweep._CHILD is not None:
        sweep._CHILD.kill()
        sweep._CHILD.wait()
        sweep._CHILD = None


# -- metrics defined everywhere ----------------------------------------------------------------
@pytest.mark.parametrize(
    "widths, activation, init, sigma_w2",
    [
        ((64, 16, 64), "relu", "gaussian", 2.0),  # bottleneck: atom at 0 of mass >= 3/4 in J^T J
        ((64, 64, 64), "linear", "orthogonal", 1.0),  # a single atom at 1: no continuous part
        ((64, 64, 32), "linear", "orthogonal", 1.3),  # atoms at 0 (1/2) and at 1.3^2
    ],
)
def test_continuous_part_metrics_are_finite_on_atomic_and_bottleneck_spectra(widths, activation, init, sigma_w2):
    import fpcore

    from experiments.metrics import CONTINUOUS_DECILE_METRICS, continuous_deciles, network_metrics

    net = fpcore.Network(list(widths), activation=activation, sigma_w2=sigma_w2, init=init, q0=1.0)
    m = network_metrics(net, gram="JtJ", n_points=60)
    for k in CONTINUOUS_DECILE_METRICS + ("log10_spread_c", "log10_lambda_max", "frac_above_1"):
        assert math.isfinite(m[k]), (k, m[k])
    assert m["consistency_problems"] == 0
    spec = fpcore.jacobian_spectrum(net, n_points=60)
    c = continuous_deciles(spec)
    assert np.all(np.diff(c) >= -1e-12) and c[0] > 0
    if m["atom"] > 0.1:
        assert m["log10_d1"] == -math.inf  # the full law's first decile sits in the atom
    if activation == "linear":  # atoms only: every conditional decile is the non-zero atom
        top = sigma_w2 ** (len(widths) - 1)
        assert np.allclose(c, top, rtol=1e-9) and m["log10_spread_c"] == pytest.approx(0.0, abs=1e-9)
        assert m["frac_above_1"] == pytest.approx((1 - m["atom"]) if top > 1 else 0.0, abs=1e-12)


def test_seed_counts_in_figure_titles_are_exact():
    one = pd.DataFrame({"n_seeds": [1, 1, 1]})
    three = pd.DataFrame({"n_seeds": [3, 3]})
    mixed = pd.DataFrame({"n_seeds": [1, 1, 1, 2]})
    assert analysis._seeds_note(one) == "1 seed per architecture"  # never "seeds averaged"
    assert analysis._seeds_note(three) == "3 seeds averaged per architecture"
    assert analysis._seeds_note(mixed) == "1 seed for 3, 2 seeds for 1 architectures (averaged where > 1)"


def test_every_family_has_its_own_colour():
    from matplotlib.colors import to_hex

    colours = [to_hex(c) for c in analysis._FAMILY_COLORS.values()]
    assert len(set(colours)) == len(colours)
