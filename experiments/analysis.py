"""Statistics of a finished sweep: do the FP metrics predict the final test loss and accuracy?

Honest by construction:

* **The unit is the architecture.** Repeated seeds of one architecture are averaged first
  (:func:`per_architecture`); correlations and their bootstrap confidence intervals resample
  architectures, never pooled runs (pooling seeds would count one architecture three times and
  shrink the intervals).
* **Spearman and Pearson.** Spearman uses every architecture: a diverged run makes its
  architecture's mean test loss ``+inf`` (worst rank) and a decile inside the atom at 0 has
  ``log10 = -inf`` (lowest rank). Pearson needs finite values: it uses the architectures where both
  are finite, and the table says how many (``n_pearson``).
* **Baselines.** Plain architecture descriptors (depth, parameter count, narrowest width ratio,
  gain) are correlated the same way, so a metric's correlation can be compared with what the
  architecture's shape alone gives.
* **Held-out check.** The metric with the largest ``|Spearman|`` on a random half of the
  architectures is re-evaluated on the other half (one fixed split reported in detail, and the
  distribution over many random splits).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from . import RESULTS_DIR
from .architectures import ARCH_COLUMNS
from .metrics import METRICS, SPECTRUM_METRICS

__all__ = [
    "per_architecture",
    "correlation_table",
    "heldout_check",
    "candidate_metrics",
    "analyze",
    "TARGETS",
    "BASELINES",
]

#: (column, label, sign that means "better"): the per-architecture outcomes correlated with.
TARGETS = {"test_loss": "final test loss", "test_acc": "final test accuracy"}
BASELINES = ("depth", "n_params", "min_width_ratio", "gain")
_ARCH_KEEP = ("task",) + ARCH_COLUMNS


def candidate_metrics(columns) -> list[str]:
    """FP metric columns present in a table: the full network's, then the hidden stack's."""
    cols = set(columns)
    # chi_1 belongs to the first layer, shared by both networks: listed once.
    hidden = [f"hidden_{m}" for m in SPECTRUM_METRICS if f"hidden_{m}" in cols]
    return [m for m in METRICS if m in cols] + hidden


def _n_params(widths: str) -> int:
    w = [int(v) for v in str(widths).split("-")]
    return int(sum(a * b + b for a, b in zip(w[:-1], w[1:])))


def per_architecture(runs):
    """One row per architecture: its description and metrics, and the seed-averaged outcomes.

    Columns added: ``test_loss``, ``test_acc``, ``train_loss`` (means over seeds; ``test_loss`` and
    ``train_loss`` are ``inf`` if any seed diverged), ``test_loss_sd`` (std over the finite seeds),
    ``init_test_loss``, ``n_seeds``, ``n_diverged``, ``n_params``.
    """
    import pandas as pd

    metrics = candidate_metrics(runs.columns)
    keep = [c for c in _ARCH_KEEP if c in runs.columns] + metrics
    g = runs.groupby("arch_id", sort=False)
    first = g[keep].first().reset_index(drop=True)
    out = pd.DataFrame(
        {
            "test_loss": g["final_test_loss"].mean().values,  # inf if any seed is inf
            "test_acc": g["final_test_acc"].mean().values,
            "train_loss": g["final_train_loss"].mean().values,
            "test_loss_sd": g["final_test_loss"]
            .apply(lambda s: float(np.std(s[np.isfinite(s)], ddof=1)) if np.isfinite(s).sum() > 1 else math.nan)
            .values,
            "init_test_loss": g["init_test_loss"].mean().values,
            "n_seeds": g.size().values,
            "n_diverged": g["diverged"].sum().astype(int).values,
        }
    )
    res = pd.concat([first, out], axis=1)
    res["n_params"] = res["widths"].map(_n_params)
    front = [c for c in _ARCH_KEEP if c in res.columns] + [
        "n_params",
        "n_seeds",
        "n_diverged",
        "test_loss",
        "test_loss_sd",
        "test_acc",
        "train_loss",
        "init_test_loss",
    ]
    return res[front + metrics]


# -- correlation primitives (vectorised over bootstrap resamples: rows of a 2-D array) ---------
def _rank(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(a, axis=-1)  # average ranks for ties; +-inf rank as extremes


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (x * y).sum(axis=-1) / den, np.nan)


def spearman(x, y) -> float:
    """Spearman's rho with infinite values allowed (ranked as extremes)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(_pearson_rows(_rank(x), _rank(y)))


def pearson(x, y) -> tuple[float, int]:
    """Pearson's r on the pairs where both values are finite, and how many there are."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return math.nan, int(ok.sum())
    return float(_pearson_rows(x[ok], y[ok])), int(ok.sum())


def _pct(a, q) -> float:
    """Percentile of the finite bootstrap replicates (NaN when a resample had a constant column)."""
    a = np.asarray(a, float)
    a = a[np.isfinite(a)]
    return float(np.percentile(a, q)) if a.size else math.nan


def _bootstrap(x, y, idx, method):
    xb, yb = x[idx], y[idx]
    if method == "spearman":
        return _pearson_rows(_rank(xb), _rank(yb))
    ok = np.isfinite(xb) & np.isfinite(yb)
    out = np.full(len(idx), np.nan)
    for i in range(len(idx)):  # finite subsets differ per resample
        if ok[i].sum() >= 3:
            out[i] = _pearson_rows(xb[i, ok[i]], yb[i, ok[i]])
    return out


def _partial_rows(rx, ry, rz):
    """Partial correlation of x and y given z, from their (rank) rows."""
    rxy, rxz, ryz = _pearson_rows(rx, ry), _pearson_rows(rx, rz), _pearson_rows(ry, rz)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rxy - rxz * ryz) / np.sqrt((1.0 - rxz**2) * (1.0 - ryz**2))


def partial_spearman(x, y, z) -> float:
    """Spearman correlation of ``x`` and ``y`` with the (rank-linear) effect of ``z`` removed."""
    x, y, z = (np.asarray(v, float) for v in (x, y, z))
    return float(_partial_rows(_rank(x), _rank(y), _rank(z)))


def correlation_table(arch, n_boot: int = 2000, seed: int = 0, metrics=None):
    """Spearman and Pearson correlation of every metric (and baseline) with each target.

    Returns a DataFrame with one row per (metric, target): ``network`` (full/hidden/baseline),
    ``spearman`` with its 95 % bootstrap interval ``spearman_lo/hi``, ``pearson`` with
    ``pearson_lo/hi`` and ``n_pearson``, ``n`` (architectures), and ``partial_depth`` with
    ``partial_depth_lo/hi``: the partial Spearman correlation given the depth (what a metric says
    beyond how deep the network is). Intervals: percentile bootstrap over architectures, ``n_boot``
    resamples (the same resamples for every metric).
    """
    import pandas as pd

    metrics = list(metrics) if metrics is not None else candidate_metrics(arch.columns)
    predictors = metrics + [b for b in BASELINES if b in arch.columns]
    n = len(arch)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    rows = []
    depth = arch["depth"].to_numpy(float)
    for target in TARGETS:
        y = arch[target].to_numpy(float)
        for m in predictors:
            x = arch[m].to_numpy(float)
            if np.isnan(x).any():
                raise ValueError(f"metric {m!r} has NaN values: fix the metrics, do not hide them")
            rho = spearman(x, y)
            r, n_p = pearson(x, y)
            bs = _bootstrap(x, y, idx, "spearman")
            bp = _bootstrap(x, y, idx, "pearson")
            if m == "depth":
                pd_, bpd = math.nan, np.full(n_boot, np.nan)
            else:
                pd_ = partial_spearman(x, y, depth)
                bpd = _partial_rows(_rank(x[idx]), _rank(y[idx]), _rank(depth[idx]))
            network = "baseline" if m in BASELINES else ("hidden" if m.startswith("hidden_") else "full")
            rows.append(
                dict(
                    metric=m,
                    network=network,
                    target=target,
                    n=n,
                    spearman=rho,
                    spearman_lo=_pct(bs, 2.5),
                    spearman_hi=_pct(bs, 97.5),
                    pearson=r,
                    pearson_lo=_pct(bp, 2.5),
                    pearson_hi=_pct(bp, 97.5),
                    n_pearson=n_p,
                    partial_depth=pd_,
                    partial_depth_lo=_pct(bpd, 2.5),
                    partial_depth_hi=_pct(bpd, 97.5),
                )
            )
    return pd.DataFrame(rows)


def heldout_check(
    arch, target: str = "test_loss", n_splits: int = 500, seed: int = 0, metrics=None, n_boot: int = 2000
) -> dict:
    """Choose the metric with the largest ``|Spearman|`` on half of the architectures, evaluate
    it on the other half.

    Returns a dict: ``split0`` (the first random split in detail: chosen metric, its rho on the
    selection half, its rho on the held-out half with a bootstrap interval), and ``splits``
    (over ``n_splits`` random splits: median and 5-95 % range of the aligned held-out rho, the optimism
    ``rho_selection - rho_heldout``, the fraction of splits whose held-out rho has the selection
    sign, and how often each metric was chosen). "Aligned" held-out rho: the held-out Spearman
    times the sign found on the selection half, so that it is positive when the chosen relation
    held up whatever its direction.
    """
    metrics = list(metrics) if metrics is not None else candidate_metrics(arch.columns)
    X = np.stack([arch[m].to_numpy(float) for m in metrics])  # (n_metrics, n)
    y = arch[target].to_numpy(float)
    n = len(y)
    rng = np.random.default_rng(seed)
    chosen, sel_rho, held_rho = [], [], []
    detail = None
    for k in range(n_splits):
        perm = rng.permutation(n)
        a, b = perm[: n // 2], perm[n // 2 :]
        RX = _rank(X[:, a])
        rho_a = _pearson_rows(RX, _rank(y[a])[None, :])
        j = int(np.nanargmax(np.abs(rho_a)))
        rho_b = spearman(X[j, b], y[b])
        chosen.append(metrics[j])
        sel_rho.append(float(rho_a[j]))
        held_rho.append(rho_b)
        if k == 0:
            bidx = np.random.default_rng(seed + 1).integers(0, len(b), size=(n_boot, len(b)))
            bs = _bootstrap(X[j, b], y[b], bidx, "spearman")
            detail = dict(
                metric=metrics[j],
                n_selection=len(a),
                n_heldout=len(b),
                rho_selection=float(rho_a[j]),
                rho_heldout=rho_b,
                rho_heldout_lo=_pct(bs, 2.5),
                rho_heldout_hi=_pct(bs, 97.5),
            )
    sel_rho, held_rho = np.array(sel_rho), np.array(held_rho)
    # Different splits may choose metrics of opposite sign: compare each held-out rho with the
    # direction chosen on its selection half (positive = the chosen relation held up).
    aligned = np.sign(sel_rho) * held_rho
    names, counts = np.unique(chosen, return_counts=True)
    order = np.argsort(-counts)
    return dict(
        target=target,
        split0=detail,
        splits=dict(
            n_splits=n_splits,
            aligned_rho_heldout_median=float(np.median(aligned)),
            aligned_rho_heldout_p05=float(np.percentile(aligned, 5)),
            aligned_rho_heldout_p95=float(np.percentile(aligned, 95)),
            abs_rho_selection_median=float(np.median(np.abs(sel_rho))),
            optimism_median=float(np.median(np.abs(sel_rho) - aligned)),
            same_sign_fraction=float(np.mean(np.sign(held_rho) == np.sign(sel_rho))),
            chosen=[(str(names[i]), int(counts[i])) for i in order],
        ),
    )


# -- figures -----------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_COLORS = {"relu": "C0", "leaky_relu": "C1", "hard_tanh": "C2", "linear": "C3", "tanh": "C4", "gelu": "C5"}


def _finite_clip(v, lo=None, hi=None):
    v = np.asarray(v, float).copy()
    fin = v[np.isfinite(v)]
    if fin.size:
        v[v == np.inf] = fin.max() if hi is None else hi
        v[v == -np.inf] = fin.min() if lo is None else lo
    return v


def plot_correlations(table, path, task):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 9), sharey=True)
    for ax, target in zip(axes, TARGETS):
        t = table[table["target"] == target].reset_index(drop=True)
        ypos = np.arange(len(t))[::-1]
        colors = t["network"].map({"full": "C0", "hidden": "C1", "baseline": "0.4"})
        ax.barh(ypos, t["spearman"], color=colors, alpha=0.85)
        ax.errorbar(
            t["spearman"],
            ypos,
            xerr=[t["spearman"] - t["spearman_lo"], t["spearman_hi"] - t["spearman"]],
            fmt="none",
            ecolor="k",
            elinewidth=0.8,
            capsize=2,
        )
        ax.scatter(
            t["partial_depth"], ypos, marker="D", s=14, color="k", zorder=3, label="partial Spearman given depth"
        )
        ax.axvline(0, color="k", lw=0.8)
        for v in (-0.85, 0.85):
            ax.axvline(v, color="C3", lw=0.8, ls="--")
        ax.set_yticks(ypos, t["metric"], fontsize=7)
        ax.set_xlim(-1, 1)
        ax.set_xlabel(f"Spearman rho with {TARGETS[target]} (95% bootstrap CI)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_title("blue: trained net (J J^T), orange: hidden stack (J^T J), grey: baselines", fontsize=9)
    axes[1].set_title("red dashes: the paper's |0.85|", fontsize=9)
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle(
        f"{task}: FP metrics at initialisation vs outcome after training "
        f"({int(table['n'].iloc[0])} architectures, seeds averaged)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scatter(arch, table, path, task, k=5):
    """The ``k`` strongest distinct metrics (a raw/log10 pair counts once), chi_1 and depth vs loss."""
    plt = _plt()
    t = table[(table["target"] == "test_loss") & (table["network"] != "baseline")]
    t = t.reindex(t["spearman"].abs().sort_values(ascending=False).index)
    top = []
    for m in t["metric"]:
        base = m.replace("log10_", "")
        if all(base != x.replace("log10_", "") for x in top):
            top.append(m)
    top = top[:k]
    if "chi_1" not in top:
        top = top[: k - 1] + ["chi_1"]
    top.append("depth")
    rho_of = dict(
        zip(table.loc[table["target"] == "test_loss", "metric"], table.loc[table["target"] == "test_loss", "spearman"])
    )
    fig, axes = plt.subplots(2, 3, figsize=(14, 8.5))
    y_raw = arch["test_loss"].to_numpy(float)
    diverged = ~np.isfinite(y_raw)
    y = _finite_clip(y_raw)
    for ax, m in zip(axes.ravel(), top):
        x_raw = arch[m].to_numpy(float)
        x = _finite_clip(x_raw)
        off = ~np.isfinite(x_raw)
        for name, c in _COLORS.items():
            sel = (arch["activation_name"] == name).to_numpy()
            if sel.any():
                ax.scatter(x[sel & ~diverged & ~off], y[sel & ~diverged & ~off], s=12, color=c, alpha=0.7, label=name)
                ax.scatter(x[sel & off & ~diverged], y[sel & off & ~diverged], s=22, color=c, marker="|")
                ax.scatter(x[sel & diverged], y[sel & diverged], s=30, color=c, marker="x")
        sign = "+" if np.nanmax(x_raw) == np.inf else "-"
        note = f" ({int(off.sum())} at {sign}inf: edge marks)" if off.any() else ""
        ax.set_title(f"{m}: Spearman {rho_of[m]:+.2f}{note}", fontsize=9)
        ax.set_yscale("log")
        if m == "chi_1":
            ax.set_xscale("log")
            ax.axvline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xlabel(m + (" (baseline)" if m == "depth" else ""))
        ax.set_ylabel("final test loss (mean of seeds)")
    axes.ravel()[0].legend(fontsize=8)
    fig.suptitle(
        f"{task}: strongest FP metrics, chi_1 and depth vs final test loss "
        "(x = a diverged seed, drawn at the largest loss)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_heldout(hold, path, task):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    s = hold["splits"]
    ax.bar([c for c, _ in s["chosen"][:8]], [n for _, n in s["chosen"][:8]], color="C0")
    ax.set_ylabel(f"times chosen (of {s['n_splits']} random splits)")
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    ax.set_title(
        f"{task}: metric chosen on one half (largest |Spearman| with test loss);\n"
        f"its Spearman on the other half (sign-aligned): median {s['aligned_rho_heldout_median']:+.2f}, "
        f"5-95% over splits [{s['aligned_rho_heldout_p05']:+.2f}, {s['aligned_rho_heldout_p95']:+.2f}]",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(epochs, arch, metric, path, task):
    """Mean test-loss curves of the architectures, coloured by a metric's quartile."""
    plt = _plt()
    v = arch.set_index("arch_id")[metric]
    fin = v[np.isfinite(v)]
    edges = np.quantile(fin, [0, 0.25, 0.5, 0.75, 1])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    curves = epochs.groupby(["arch_id", "epoch"])["test_loss"].mean().unstack()
    for qi in range(4):
        lo, hi = edges[qi], edges[qi + 1]
        ids = v[(v >= lo) & (True if qi == 3 else (v < hi))].index  # +inf belongs to the top quartile
        c = curves.reindex(ids)
        med = np.nanmedian(np.where(np.isfinite(c), c, np.nan), axis=0)
        top = f"{hi:.2g}" + (" and +inf" if qi == 3 and np.isinf(v).any() else "")
        ax.plot(c.columns, med, lw=2, color=plt.cm.viridis(qi / 3), label=f"Q{qi + 1}: {lo:.2g}..{top} (n={len(ids)})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test loss (median over architectures)")
    ax.set_title(f"{task}: test-loss curves by quartile of {metric}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the command -------------------------------------------------------------------------------
def analyze(
    task: str = "digits",
    results_dir=None,
    n_boot: int = 2000,
    n_splits: int = 500,
    seed: int = 0,
    figures: bool = True,
    log=print,
) -> dict:
    """Reproduce the analysis from ``<results_dir>/<task>_runs.csv`` (the committed CSV).

    Writes ``<task>_architectures.csv`` (per-architecture table), ``<task>_correlations.csv``,
    ``<task>_heldout.json``, ``<task>_summary.json`` and the figures ``<task>_*.png``; returns the
    summary.
    """
    import pandas as pd

    results_dir = Path(results_dir) if results_dir is not None else RESULTS_DIR
    runs = pd.read_csv(results_dir / f"{task}_runs.csv")
    arch = per_architecture(runs)
    arch.to_csv(results_dir / f"{task}_architectures.csv", index=False, float_format="%.6g")
    table = correlation_table(arch, n_boot=n_boot, seed=seed)
    table.to_csv(results_dir / f"{task}_correlations.csv", index=False, float_format="%.4f")
    hold = {t: heldout_check(arch, t, n_splits=n_splits, seed=seed, n_boot=n_boot) for t in TARGETS}
    (results_dir / f"{task}_heldout.json").write_text(json.dumps(hold, indent=2))

    fp = table[table["network"] != "baseline"]
    summary = dict(
        task=task,
        n_architectures=int(len(arch)),
        n_runs=int(len(runs)),
        seeds_per_architecture=sorted(int(s) for s in arch["n_seeds"].unique()),
        n_architectures_with_diverged_seed=int((arch["n_diverged"] > 0).sum()),
        activations={k: int(v) for k, v in arch["activation_name"].value_counts().items()},
        n_architectures_infinite_test_loss=int((~np.isfinite(arch["test_loss"])).sum()),
        test_loss_quantiles_finite=dict(
            zip(
                ("min", "q25", "median", "q75", "max"),
                np.quantile(arch["test_loss"][np.isfinite(arch["test_loss"])], [0, 0.25, 0.5, 0.75, 1]).tolist(),
            )
        ),
        test_acc_quantiles=dict(
            zip(("min", "q25", "median", "q75", "max"), np.quantile(arch["test_acc"], [0, 0.25, 0.5, 0.75, 1]).tolist())
        ),
        seed_noise_test_loss_sd_median=_pct(arch["test_loss_sd"], 50),
    )
    for target in TARGETS:
        t = fp[fp["target"] == target]
        best = t.loc[t["spearman"].abs().idxmax()]
        bt = table[(table["target"] == target) & (table["network"] == "baseline")]
        bb = bt.loc[bt["spearman"].abs().idxmax()]
        keys = (
            "metric",
            "network",
            "spearman",
            "spearman_lo",
            "spearman_hi",
            "pearson",
            "n_pearson",
            "partial_depth",
            "partial_depth_lo",
            "partial_depth_hi",
        )
        summary[f"best_{target}"] = {k: (float(best[k]) if k not in ("metric", "network") else best[k]) for k in keys}
        bestp = t.loc[t["partial_depth"].abs().idxmax()]
        summary[f"best_given_depth_{target}"] = {
            k: (float(bestp[k]) if k not in ("metric", "network") else bestp[k]) for k in keys
        }
        summary[f"best_baseline_{target}"] = {
            k: (float(bb[k]) if k != "metric" else bb[k]) for k in ("metric", "spearman", "spearman_lo", "spearman_hi")
        }
        summary[f"n_metrics_ci_excluding_0_{target}"] = int(((t["spearman_lo"] > 0) | (t["spearman_hi"] < 0)).sum())
        summary[f"n_metrics_abs_spearman_ge_0.85_{target}"] = int((t["spearman"].abs() >= 0.85).sum())
        summary[f"heldout_{target}"] = hold[target]
    # Edge of chaos: is the loss lowest near chi_1 = 1?
    lc = np.log(arch["chi_1"].to_numpy(float))
    bins = [-np.inf, -0.35, -0.1, 0.1, 0.35, np.inf]
    lab = ["chi<0.70", "0.70-0.90", "0.90-1.11", "1.11-1.42", "chi>1.42"]
    cut = pd.cut(lc, bins, labels=lab)
    summary["test_loss_median_by_chi_1"] = {
        str(k): dict(n=int(v.size), median=float(np.median(v)))
        for k, v in arch["test_loss"].groupby(cut, observed=True)
    }
    (results_dir / f"{task}_summary.json").write_text(json.dumps(summary, indent=2, default=float))

    if figures:
        plot_correlations(table, results_dir / f"{task}_correlations.png", task)
        plot_scatter(arch, table, results_dir / f"{task}_scatter.png", task)
        plot_heldout(hold["test_loss"], results_dir / f"{task}_heldout.png", task)
        epochs_path = results_dir / f"{task}_epochs.csv"
        if epochs_path.exists():
            plot_curves(
                pd.read_csv(epochs_path),
                arch,
                summary["best_test_loss"]["metric"],
                results_dir / f"{task}_curves.png",
                task,
            )
    for target in TARGETS:
        b = summary[f"best_{target}"]
        bb = summary[f"best_baseline_{target}"]
        h = summary[f"heldout_{target}"]
        log(
            f"{task} {TARGETS[target]}: best metric {b['metric']} Spearman {b['spearman']:+.3f} "
            f"[{b['spearman_lo']:+.3f}, {b['spearman_hi']:+.3f}], Pearson {b['pearson']:+.3f} (n={b['n_pearson']}); "
            f"given depth {b['partial_depth']:+.3f}; best baseline {bb['metric']} {bb['spearman']:+.3f}; "
            f"held-out ({h['split0']['metric']}) "
            f"{h['split0']['rho_heldout']:+.3f} [{h['split0']['rho_heldout_lo']:+.3f}, "
            f"{h['split0']['rho_heldout_hi']:+.3f}], sign-aligned median over {h['splits']['n_splits']} splits "
            f"{h['splits']['aligned_rho_heldout_median']:+.3f}"
        )
    return summary
