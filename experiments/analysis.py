"""Statistics of a finished sweep: do the FP metrics predict training, beyond the architecture?

Honest by construction, and this is the default output of ``python -m experiments analyze``:

* **The unit is the architecture.** Seeds of one architecture are averaged first
  (:func:`per_architecture`); intervals resample architectures. Runs as the unit (the seed paper's
  choice) are reported *beside*, never instead (:func:`runs_as_unit_table`).
* **Every target at every recorded epoch**: train loss, test loss, test accuracy (and train
  accuracy) after epochs 1, 2, 5, 10 and the last (``<target>_e<k>`` columns).
* **Within each activation family and pooled.** Pooling families can create or hide a relation
  (e.g. a metric that separates families but orders nothing inside one).
* **Spearman with bootstrap intervals** (percentile, ``n_boot`` resamples of architectures; the
  ranks are computed once on the sample and the resamples correlate them). A diverged run makes
  its architecture's loss ``+inf`` (worst rank); a ``-inf`` decile (inside the atom at 0) ranks
  lowest; a metric that could not be computed (NaN, e.g. a timeout) leaves that architecture out
  of that metric's rows (``n`` says how many remain).
* **Partial correlations given all descriptors** (depth, widths, gain, bias variance, bias,
  activation, init; :data:`DESCRIPTORS`): the rank of the metric and of the target are regressed
  on the ranked descriptors and the activation/init indicators, and the residuals correlated
  (recomputed in every bootstrap resample).
* **Out-of-fold rank prediction** (:func:`prediction_table`): each target's rank predicted by the
  descriptors alone, the metrics alone and both (extremely randomised trees, K-fold), scored by the
  Spearman correlation of the out-of-fold predictions with the target; the answer to "does the
  spectrum add anything?" is the gap *both - descriptors*, with a paired bootstrap interval,
  split (:func:`gap_decomposition_table`) into what the mean-field ``chi_1`` adds to the
  descriptors and what the spectral metrics proper add (alone, and beyond ``chi_1``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from . import RESULTS_DIR
from .architectures import ARCH_COLUMNS
from .metrics import MEAN_FIELD_METRICS, METRICS, SPECTRUM_METRICS

__all__ = [
    "per_architecture",
    "correlation_table",
    "prediction_table",
    "gap_decomposition_table",
    "runs_as_unit_table",
    "descriptor_matrix",
    "candidate_metrics",
    "target_columns",
    "analyze",
    "spearman",
    "pearson",
    "partial_spearman",
    "TARGETS",
    "DESCRIPTORS",
    "KEY_METRICS",
    "PRIMARY_METRIC",
]

#: Target name -> label. Each is recorded at several epochs (``<target>_e<k>`` columns).
TARGETS = {
    "train_loss": "train loss",
    "test_loss": "test loss",
    "test_acc": "test accuracy",
}
#: Numeric descriptors of an architecture (categorical ones: activation, init).
DESCRIPTORS = (
    "depth",
    "log2_gain",
    "log10_n_params",
    "min_width_ratio",
    "max_width_ratio",
    "mean_log2_width_ratio",
    "last_width_ratio",
    "sigma_b2",
    "bias",
)
#: The seed paper's metric: log of the 0.9 quantile of the hidden stack's J^T J law.
PRIMARY_METRIC = "hidden_log10_d9"
#: Metrics reported in every table (the full list with ``metrics="all"``).
KEY_METRICS = (
    "hidden_log10_d9",
    "hidden_log10_c9",
    "hidden_log10_c5",
    "hidden_log10_c1",
    "hidden_log10_spread_c",
    "hidden_log10_lambda_max",
    "hidden_log10_mean",
    "hidden_frac_above_1",
    "hidden_atom",
    "chi_1",
    "abs_log_chi_1",
    "log10_c5",
    "log10_spread_c",
    "log10_lambda_max",
)
#: Descriptors also correlated one at a time, as baselines beside the metrics.
BASELINES = ("depth", "log2_gain", "log10_n_params", "min_width_ratio")
_ARCH_KEEP = ("task",) + ARCH_COLUMNS
_MIN_GROUP = 12


def candidate_metrics(columns) -> list[str]:
    """FP metric columns present in a table: the full network's, then the hidden stack's."""
    cols = set(columns)
    hidden = [f"hidden_{m}" for m in SPECTRUM_METRICS if f"hidden_{m}" in cols]
    return [m for m in METRICS if m in cols] + hidden


def target_columns(columns) -> list[tuple[str, int, str]]:
    """``(target, epoch, column)`` of the recorded targets present, ordered by target then epoch."""
    out = []
    for c in columns:
        for t in TARGETS:
            if c.startswith(f"{t}_e") and c[len(t) + 2 :].isdigit():
                out.append((t, int(c[len(t) + 2 :]), c))
    order = {t: i for i, t in enumerate(TARGETS)}
    return sorted(out, key=lambda v: (order[v[0]], v[1]))


def _n_params(widths: str, bias: bool = True) -> int:
    w = [int(v) for v in str(widths).split("-")]
    return int(sum(a * b + (b if bias else 0) for a, b in zip(w[:-1], w[1:])))


def _family(activation: str) -> str:
    return str(activation).partition(":")[0]


def per_architecture(runs):
    """One row per architecture: its description and metrics, and the seed-averaged outcomes.

    Every ``<target>_e<k>`` column becomes its mean over seeds (a loss is ``inf`` if any seed
    diverged); ``<target>_e<k>_sd`` its standard deviation over the finite seeds. The final values
    are also named ``test_loss``, ``test_acc``, ``train_loss`` (the last recorded epoch), with
    ``test_loss_sd``, ``init_test_loss``, ``n_seeds``, ``n_diverged``, ``n_params``, ``family``
    (activation without its parameter) and the derived descriptors of :data:`DESCRIPTORS`.
    """
    import pandas as pd

    runs = runs.copy()
    if not target_columns(runs.columns):  # a first-round table: final values only
        last = int(runs["epochs_done"].max()) if "epochs_done" in runs else 0
        for t in ("train_loss", "test_loss", "test_acc"):
            runs[f"{t}_e{last}"] = runs[f"final_{t}"]
    metrics = candidate_metrics(runs.columns)
    extra = [
        c
        for c in (
            "metrics_error",
            "fpcore_version",
            "fpcore_commit",
            "fpcore_source",
            "metrics_source",
            "n_uncertified",
            "hidden_n_uncertified",
            "consistency_problems",
            "hidden_consistency_problems",
        )
        if c in runs.columns
    ]
    keep = [c for c in _ARCH_KEEP if c in runs.columns] + metrics + extra
    g = runs.groupby("arch_id", sort=False)
    first = g[keep].first().reset_index(drop=True)
    cols = {}
    tcols = [c for _, _, c in target_columns(runs.columns)]
    for c in tcols + [c for c in ("train_acc_e1",) if c in runs.columns and c not in tcols]:
        cols[c] = g[c].mean().values
        cols[c + "_sd"] = (
            g[c].apply(lambda s: float(np.std(s[np.isfinite(s)], ddof=1)) if np.isfinite(s).sum() > 1 else math.nan).values
        )
    for c in [c for c in runs.columns if c.startswith("train_acc_e")]:
        cols.setdefault(c, g[c].mean().values)
    cols["init_test_loss"] = g["init_test_loss"].mean().values
    cols["n_seeds"] = g.size().values
    cols["n_diverged"] = g["diverged"].sum().astype(int).values
    res = pd.concat([first, pd.DataFrame(cols)], axis=1)
    last = {t: max(e for tt, e, _ in target_columns(res.columns) if tt == t) for t in TARGETS}
    for t, e in last.items():
        res[t] = res[f"{t}_e{e}"]
    res["test_loss_sd"] = res[f"test_loss_e{last['test_loss']}_sd"]
    if "bias" not in res:
        res["bias"] = True
    res["bias"] = res["bias"].astype(str).str.lower().isin(("true", "1", "1.0"))
    res["n_params"] = [_n_params(w, b) for w, b in zip(res["widths"], res["bias"])]
    res["family"] = res["activation"].map(_family)
    _add_descriptors(res)
    return res


def _add_descriptors(df) -> None:
    w = df["widths"].map(lambda s: [int(v) for v in str(s).split("-")])
    ratios = [np.array(v[1:-1], float) / v[0] for v in w]
    df["log2_gain"] = np.log2(df["gain"].astype(float))
    df["log10_n_params"] = np.log10(df["n_params"].astype(float))
    df["mean_log2_width_ratio"] = [float(np.mean(np.log2(r))) for r in ratios]
    df["last_width_ratio"] = [float(r[-1]) for r in ratios]
    if "min_width_ratio" not in df:
        df["min_width_ratio"] = [float(r.min()) for r in ratios]
        df["max_width_ratio"] = [float(r.max()) for r in ratios]


def descriptor_matrix(arch, rank: bool = True) -> tuple[np.ndarray, list[str]]:
    """The descriptors of every architecture as a design matrix (no intercept): numeric
    :data:`DESCRIPTORS` (ranked when ``rank``) and indicators of the activation (with its
    parameter) and the init, one level dropped each. Constant columns are left out."""
    cols, names = [], []
    for d in DESCRIPTORS:
        if d in arch:
            v = arch[d].to_numpy(float)
            if np.ptp(v) > 0:
                cols.append(_rank(v) if rank else v)
                names.append(d)
    for cat in ("activation", "init"):
        if cat in arch:
            levels = sorted(arch[cat].astype(str).unique())
            for lv in levels[1:]:
                cols.append((arch[cat].astype(str) == lv).to_numpy(float))
                names.append(f"{cat}={lv}")
    if not cols:
        return np.zeros((len(arch), 0)), []
    return np.column_stack(cols), names


# -- correlation primitives ---------------------------------------------------------------------
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


def _residual(cols: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Residuals of each column of ``cols`` (n x c) after least squares on [1, design]."""
    z = np.column_stack([np.ones(len(cols)), design]) if design.size else np.ones((len(cols), 1))
    coef, *_ = np.linalg.lstsq(z, cols, rcond=None)
    return cols - z @ coef


def partial_spearman(x, y, design) -> float:
    """Spearman correlation of ``x`` and ``y`` given the columns of ``design`` (n x p or n):
    ranks of x and y regressed on the ranked design, residuals correlated."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    d = np.asarray(design, float)
    d = d[:, None] if d.ndim == 1 else d
    d = np.column_stack([_rank(c) if np.unique(c).size > 2 else c for c in d.T]) if d.size else d
    r = _residual(np.column_stack([_rank(x), _rank(y)]), d)
    return float(_pearson_rows(r[:, 0], r[:, 1]))


def _pct(a, q) -> float:
    a = np.asarray(a, float)
    a = a[np.isfinite(a)]
    return float(np.percentile(a, q)) if a.size else math.nan


def _corr_cols(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of ``a`` (n x p) with every column of ``b`` (n x q)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    num = a.T @ b
    den = np.sqrt(np.outer((a * a).sum(axis=0), (b * b).sum(axis=0)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _group_stats(X: np.ndarray, Y: np.ndarray, D: np.ndarray, n_boot: int, rng) -> dict:
    """Spearman and partial Spearman (given D) of every column of X with every column of Y, with
    bootstrap replicates. X, Y: ranks (NaN where missing); D: design (ranked numeric + indicators).

    Columns of X with missing values are handled on their complete rows (columns with the same
    missing rows together).
    """
    n = len(Y)
    out = {k: np.full((X.shape[1], Y.shape[1]), np.nan) for k in ("rho", "lo", "hi", "prho", "plo", "phi", "n")}
    # columns sharing the same missing rows are handled together, on their complete rows
    patterns: dict[bytes, list[int]] = {}
    for j in range(X.shape[1]):
        patterns.setdefault(np.isnan(X[:, j]).tobytes(), []).append(j)
    groups = [(js, np.flatnonzero(~np.isnan(X[:, js[0]]))) for js in patterns.values()]
    for js, rows in groups:
        js = list(js)
        if len(js) == 0 or len(rows) < 5:
            continue
        x, y, d = X[np.ix_(rows, js)], Y[rows], D[rows]
        x = np.column_stack([_rank(c) for c in x.T])
        yr = np.column_stack([_rank(c) for c in y.T])
        out["rho"][js] = _corr_cols(x, yr)
        out["n"][js] = len(rows)
        r = _residual(np.column_stack([x, yr]), d)
        out["prho"][js] = _corr_cols(r[:, : len(js)], r[:, len(js) :])
        m = len(rows)
        boots, pboots = [], []
        for _ in range(n_boot):
            idx = rng.integers(0, m, size=m)
            xb, yb, db = x[idx], yr[idx], d[idx]
            boots.append(_corr_cols(xb, yb))
            rb = _residual(np.column_stack([xb, yb]), db)
            pboots.append(_corr_cols(rb[:, : len(js)], rb[:, len(js) :]))
        boots, pboots = np.array(boots), np.array(pboots)
        with np.errstate(all="ignore"):
            out["lo"][js] = np.nanpercentile(boots, 2.5, axis=0)
            out["hi"][js] = np.nanpercentile(boots, 97.5, axis=0)
            out["plo"][js] = np.nanpercentile(pboots, 2.5, axis=0)
            out["phi"][js] = np.nanpercentile(pboots, 97.5, axis=0)
    return out


def correlation_table(arch, n_boot: int = 1000, seed: int = 0, metrics=None, min_group: int = _MIN_GROUP):
    """Spearman and partial Spearman (given all descriptors) of metrics and baseline descriptors
    with every target at every recorded epoch, pooled and within each activation family.

    Returns a DataFrame, one row per (group, predictor, target, epoch): ``group`` ("pooled" or
    the family), ``predictor``, ``kind`` ("metric"/"descriptor"), ``target``, ``epoch``,
    ``column``, ``n``, ``spearman`` with its 95 % bootstrap interval ``spearman_lo/hi``, and
    ``partial`` with ``partial_lo/hi`` (given all descriptors; within a family the activation
    indicators are constant and drop out). Families with fewer than ``min_group`` architectures
    are left out (they stay in the pooled rows).
    """
    import pandas as pd

    if metrics is None:
        metrics = [m for m in KEY_METRICS if m in arch.columns]
    elif metrics == "all":
        metrics = candidate_metrics(arch.columns)
    base = [b for b in BASELINES if b in arch.columns and np.ptp(arch[b].to_numpy(float)) > 0]
    preds = list(metrics) + base
    tcols = target_columns(arch.columns)
    rng = np.random.default_rng(seed)
    rows = []
    groups = [("pooled", np.ones(len(arch), bool))]
    fams = arch["family"].value_counts()
    if len(fams) > 1:
        groups += [(f, (arch["family"] == f).to_numpy()) for f in sorted(fams.index) if fams[f] >= min_group]
    for gname, sel in groups:
        sub = arch[sel].reset_index(drop=True)
        X = np.column_stack([sub[p].to_numpy(float) for p in preds])
        Y = np.column_stack([sub[c].to_numpy(float) for _, _, c in tcols])
        D, _ = descriptor_matrix(sub)
        st = _group_stats(X, Y, D, n_boot, rng)
        for i, p in enumerate(preds):
            for j, (t, e, c) in enumerate(tcols):
                rows.append(
                    dict(
                        group=gname,
                        predictor=p,
                        kind="descriptor" if p in base else "metric",
                        target=t,
                        epoch=e,
                        column=c,
                        n=int(st["n"][i, j]) if np.isfinite(st["n"][i, j]) else 0,
                        spearman=st["rho"][i, j],
                        spearman_lo=st["lo"][i, j],
                        spearman_hi=st["hi"][i, j],
                        # a descriptor given all descriptors is not a question: left empty
                        partial=st["prho"][i, j] if p not in base else math.nan,
                        partial_lo=st["plo"][i, j] if p not in base else math.nan,
                        partial_hi=st["phi"][i, j] if p not in base else math.nan,
                    )
                )
    return pd.DataFrame(rows)


def _feature_matrix(arch, which: str) -> tuple[np.ndarray, list[str]]:
    """Ranked features of a set: ``"descriptors"``, ``"metrics"`` (every FP metric), or the
    metrics split in two: ``"chi_1"`` (the mean-field metrics :data:`MEAN_FIELD_METRICS`,
    closed-form functions of activation, gain, bias and ``q0``) and ``"spectral"`` (the others)."""
    if which == "descriptors":
        return descriptor_matrix(arch)
    if which not in ("metrics", "chi_1", "spectral"):
        raise ValueError(f"which: unknown feature set {which!r}")
    cols, names = [], []
    for m in candidate_metrics(arch.columns):
        if (which == "chi_1" and m not in MEAN_FIELD_METRICS) or (which == "spectral" and m in MEAN_FIELD_METRICS):
            continue
        v = arch[m].to_numpy(float)
        miss = np.isnan(v)
        if miss.mean() > 0.2 or np.unique(v[~miss]).size < 2:
            continue
        r = _rank(np.where(miss, np.nanmedian(np.where(np.isinf(v), np.nan, v)), v))
        cols.append(r)
        names.append(m)
    return (np.column_stack(cols) if cols else np.zeros((len(arch), 0))), names


#: Feature sets of the prediction tables, as unions of :func:`_feature_matrix` parts.
FEATURE_SETS = {
    "descriptors": ("descriptors",),
    "metrics": ("metrics",),
    "both": ("descriptors", "metrics"),
    "descriptors + chi_1": ("descriptors", "chi_1"),
    "descriptors + spectral": ("descriptors", "spectral"),
}
#: The default prediction table: each feature set, and gaps ``a - b`` with paired intervals.
PREDICTION_SETS = ("descriptors", "metrics", "both")
PREDICTION_GAPS = (("both", "descriptors"), ("metrics", "descriptors"))
#: Where the gap ``both - descriptors`` comes from: the mean-field ``chi_1`` or the spectrum proper.
DECOMPOSITION_SETS = ("descriptors", "descriptors + chi_1", "descriptors + spectral", "both")
DECOMPOSITION_GAPS = (
    ("descriptors + chi_1", "descriptors"),
    ("descriptors + spectral", "descriptors"),
    ("both", "descriptors + chi_1"),
    ("both", "descriptors"),
)


def _gap_name(a: str, b: str) -> str:
    return f"{a if ' + ' not in a else f'({a})'} - {b if ' + ' not in b else f'({b})'}"


def prediction_table(
    arch,
    n_boot: int = 1000,
    seed: int = 0,
    folds: int = 5,
    n_trees: int = 150,
    sets=PREDICTION_SETS,
    gaps=PREDICTION_GAPS,
    _cache: dict | None = None,
):
    """Out-of-fold rank prediction of every target at every epoch from the descriptors alone, the
    metrics alone and both.

    Model: ``sklearn.ensemble.ExtraTreesRegressor`` (``n_trees`` trees, leaves of at least 3) on the
    ranked features, fitted on ``folds - 1`` folds and predicting the held-out fold (the same folds
    for every feature set). Score: Spearman of the out-of-fold predictions with the target.
    Intervals: a paired percentile bootstrap over architectures of the predictions, so the gaps
    ``both - descriptors`` and ``metrics - descriptors`` get their own intervals. Metrics missing
    (NaN) for more than 20 % of the architectures are not used; the others' gaps are filled with
    the median. ``sets`` and ``gaps`` choose other feature sets (:data:`FEATURE_SETS`) and
    differences (:func:`gap_decomposition_table`); ``_cache`` shares the out-of-fold predictions
    between calls on the same table (a set's predictions do not depend on the other sets).

    Returns a DataFrame: ``target, epoch, column, n, features`` (each set, then each gap
    ``"a - b"``), ``n_features, spearman, lo, hi``.
    """
    import pandas as pd
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.model_selection import KFold

    unknown = [k for k in sets if k not in FEATURE_SETS] + [g for g in gaps if not set(g) <= set(sets)]
    if unknown:
        raise ValueError(f"sets/gaps: unknown feature set or a gap between sets not computed: {unknown!r}")
    parts = {k: _feature_matrix(arch, k) for k in {p for s in sets for p in FEATURE_SETS[s]}}
    feats = {}
    for k in sets:
        mats = [parts[p][0] for p in FEATURE_SETS[k]]
        feats[k] = (np.column_stack(mats), sum(len(parts[p][1]) for p in FEATURE_SETS[k]))
    n = len(arch)
    rng = np.random.default_rng(seed)
    bidx = rng.integers(0, n, size=(n_boot, n))
    kf = KFold(n_splits=max(2, min(folds, n)), shuffle=True, random_state=seed)
    splits = list(kf.split(np.arange(n)))
    cache = {} if _cache is None else _cache
    rows = []
    for t, e, c in target_columns(arch.columns):
        y = _rank(arch[c].to_numpy(float))
        preds = {}
        for name in sets:
            F = feats[name][0]
            key = (c, name, n, n_trees, folds, seed)
            if key in cache:
                preds[name] = cache[key]
                continue
            if F.shape[1] == 0:
                preds[name] = np.full(n, np.nan)
                continue
            p = np.empty(n)
            for tr, te in splits:
                model = ExtraTreesRegressor(n_estimators=n_trees, min_samples_leaf=3, random_state=seed, n_jobs=1)
                model.fit(F[tr], y[tr])
                p[te] = model.predict(F[te])
            preds[name] = cache[key] = p
        yb = _rank(y[bidx])
        score = {k: spearman(v, y) for k, v in preds.items()}
        boot = {k: _pearson_rows(_rank(v[bidx]), yb) for k, v in preds.items()}
        nfeat = {k: feats[k][1] for k in sets}
        for a, b in gaps:
            g = _gap_name(a, b)
            score[g] = score[a] - score[b]
            boot[g] = boot[a] - boot[b]
        for k in score:
            rows.append(
                dict(
                    target=t,
                    epoch=e,
                    column=c,
                    n=n,
                    features=k,
                    n_features=nfeat.get(k, math.nan),
                    spearman=score[k],
                    lo=_pct(boot[k], 2.5),
                    hi=_pct(boot[k], 97.5),
                )
            )
    return pd.DataFrame(rows)


def gap_decomposition_table(arch, n_boot: int = 1000, seed: int = 0, folds: int = 5, n_trees: int = 150, _cache=None):
    """Where the prediction gap ``both - descriptors`` comes from: the mean-field ``chi_1``
    (``chi_1``, ``|ln chi_1|``; closed-form functions of activation, gain, bias and ``q0``) or
    the spectral metrics proper (every other metric).

    Out-of-fold rank prediction (as :func:`prediction_table`, same folds, trees and bootstrap
    resamples) from the descriptors, descriptors + ``chi_1``, descriptors + spectral metrics, and
    descriptors + all metrics ("both"), with the paired gaps ``(descriptors + chi_1) -
    descriptors``, ``(descriptors + spectral) - descriptors``, ``both - (descriptors + chi_1)``
    (what the spectrum adds once ``chi_1`` is known) and ``both - descriptors``.
    """
    return prediction_table(
        arch, n_boot, seed, folds, n_trees, sets=DECOMPOSITION_SETS, gaps=DECOMPOSITION_GAPS, _cache=_cache
    )


def runs_as_unit_table(runs, metric: str = PRIMARY_METRIC, n_boot: int = 1000, seed: int = 0):
    """The seed paper's unit, beside ours: Spearman of ``metric`` with every target over all runs
    (seeds pooled, runs resampled by the bootstrap), and over the runs that "trained" (final train
    loss below ``ln(10)/2``, a filter on the outcome like the seed's). For comparison only: pooled
    runs count an architecture once per seed, and the filter selects on the outcome."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    tcols = target_columns(runs.columns)
    last_e = max(e for t, e, _ in tcols if t == "train_loss")
    trained = runs[f"train_loss_e{last_e}"].to_numpy(float) < math.log(10) / 2
    rows = []
    for unit, sel in (("runs", np.ones(len(runs), bool)), ("runs, filtered on outcome", trained)):
        sub = runs[sel]
        x = sub[metric].to_numpy(float)
        ok = ~np.isnan(x)
        for t, e, c in tcols:
            y = sub[c].to_numpy(float)[ok]
            xx = x[ok]
            if len(y) < 5:
                continue
            idx = rng.integers(0, len(y), size=(n_boot, len(y)))
            b = _pearson_rows(_rank(xx[idx]), _rank(y[idx]))
            rows.append(
                dict(
                    unit=unit,
                    metric=metric,
                    target=t,
                    epoch=e,
                    n=int(len(y)),
                    spearman=spearman(xx, y),
                    spearman_lo=_pct(b, 2.5),
                    spearman_hi=_pct(b, 97.5),
                )
            )
    return pd.DataFrame(rows)


# -- figures -----------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_FAMILY_COLORS = {
    "relu": "C0",
    "leaky_relu": "C1",
    "hard_tanh": "C2",
    "linear": "C3",
    "tanh": "C4",
    "gelu": "C5",
    "erf": "C6",
    "sigmoid": "C7",
    "silu": "C8",
    "selu": "C9",
    "elu": "navy",  # not tab:olive / tab:brown: those are C8 / C5 (SiLU, GELU)
    "softplus": "magenta",
}


def _seeds_note(arch) -> str:
    """How many seeds each architecture has, as a figure title says it: "3 seeds averaged per
    architecture", "1 seed per architecture", or the counts when they differ."""
    counts = arch["n_seeds"].astype(int).value_counts().sort_index()
    if len(counts) == 1:
        k = int(counts.index[0])
        return "1 seed per architecture" if k == 1 else f"{k} seeds averaged per architecture"
    parts = [f"{k} seed{'s' if k > 1 else ''} for {n}" for k, n in counts.items()]
    return ", ".join(parts) + " architectures (averaged where > 1)"


def plot_correlations(table, arch, path, name, metric=PRIMARY_METRIC):
    """Spearman (left) and partial Spearman given all descriptors (right) of ``metric`` with each
    target against the epoch, pooled (black) and within each family (colours), 95 % intervals; the
    best single descriptor (pooled) in grey. The paper's |0.85| only on train-loss panels (its target)."""
    plt = _plt()
    targets = [t for t in TARGETS if (table["target"] == t).any()]
    fig, axes = plt.subplots(len(targets), 2, figsize=(14, 3.3 * len(targets) + 0.9), squeeze=False)
    groups = list(dict.fromkeys(table["group"]))
    for r, t in enumerate(targets):
        for c, (col, lab) in enumerate((("spearman", "Spearman"), ("partial", "partial Spearman given descriptors"))):
            ax = axes[r, c]
            for gi, g in enumerate(groups):
                d = table[(table["group"] == g) & (table["predictor"] == metric) & (table["target"] == t)]
                if d.empty:
                    continue
                x = np.arange(len(d)) + (gi - (len(groups) - 1) / 2) * 0.06
                color = "k" if g == "pooled" else _FAMILY_COLORS.get(g, "0.5")
                ax.errorbar(
                    x,
                    d[col],
                    yerr=[d[col] - d[f"{col}_lo"], d[f"{col}_hi"] - d[col]],
                    fmt="o-",
                    ms=4 if g == "pooled" else 3,
                    lw=2 if g == "pooled" else 1,
                    color=color,
                    capsize=2,
                    label=f"{g} (n={int(d['n'].max())})",
                )
            if col == "spearman":
                b = table[(table["group"] == "pooled") & (table["kind"] == "descriptor") & (table["target"] == t)]
                strength = b.groupby("predictor")["spearman"].apply(lambda v: np.abs(v).mean())
                if strength.notna().any():
                    best = strength.idxmax()
                    d = b[b["predictor"] == best]
                    ax.plot(np.arange(len(d)), d["spearman"], "s--", color="0.55", ms=4, label=f"descriptor: {best} (pooled)")
            if t == "train_loss":
                for v in (-0.85, 0.85):
                    ax.axhline(v, color="C3", lw=0.8, ls=":")
            ax.axhline(0, color="k", lw=0.6)
            epochs = sorted(table.loc[table["target"] == t, "epoch"].unique())
            ax.set_xticks(np.arange(len(epochs)), [str(e) for e in epochs])
            ax.set_ylim(-1, 1)
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"{lab}\nwith {TARGETS[t]}", fontsize=9)
            ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="center right", frameon=False)
    note = "red dotted lines (train loss only): the paper's |0.85|, whose target was the train loss" if "train_loss" in targets else ""
    n_m = int(arch[metric].notna().sum()) if metric in arch else 0
    with_m = "" if n_m == len(arch) else f", {metric} for {n_m}"
    fig.suptitle(
        f"{name}: {metric} at initialisation vs training outcome ({len(arch)} architectures{with_m}; {_seeds_note(arch)};\n"
        f"95% bootstrap intervals over architectures). {note}",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 0.84, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_prediction(pred, arch, path, name, decomp=None):
    """Out-of-fold rank prediction by descriptors / metrics / both (left) and the gaps (right),
    with the gap's split into ``chi_1`` and the spectral metrics (``decomp``,
    :func:`gap_decomposition_table`) where given."""
    plt = _plt()
    if decomp is not None:
        extra = decomp[decomp["features"].isin(["(descriptors + chi_1) - descriptors", "both - (descriptors + chi_1)"])]
        pred = _concat([pred, extra])
    targets = [t for t in TARGETS if (pred["target"] == t).any()]
    fig, axes = plt.subplots(len(targets), 2, figsize=(12, 3.1 * len(targets) + 0.8), squeeze=False)
    styles = {
        "descriptors": ("0.45", "s"),
        "metrics": ("C1", "o"),
        "both": ("C0", "D"),
        "both - descriptors": ("C0", "D"),
        "metrics - descriptors": ("C1", "o"),
        "(descriptors + chi_1) - descriptors": ("C2", "^"),
        "both - (descriptors + chi_1)": ("C3", "v"),
    }
    gaps = tuple(k for k in styles if " - " in k and (pred["features"] == k).any())
    for r, t in enumerate(targets):
        for c, keys in enumerate((("descriptors", "metrics", "both"), gaps)):
            ax = axes[r, c]
            for k, key in enumerate(keys):
                d = pred[(pred["target"] == t) & (pred["features"] == key)]
                x = np.arange(len(d)) + (k - (len(keys) - 1) / 2) * 0.08
                color, marker = styles[key]
                ax.errorbar(
                    x,
                    d["spearman"],
                    yerr=[d["spearman"] - d["lo"], d["hi"] - d["spearman"]],
                    fmt=marker + "-",
                    color=color,
                    capsize=2,
                    ms=4,
                    label=key,
                )
            ax.axhline(0, color="k", lw=0.6)
            epochs = sorted(pred.loc[pred["target"] == t, "epoch"].unique())
            ax.set_xticks(np.arange(len(epochs)), [str(e) for e in epochs])
            ax.set_xlabel("epoch")
            ax.set_ylabel(
                ("out-of-fold Spearman\n" if c == 0 else "gap in Spearman\n") + TARGETS[t], fontsize=9
            )
            ax.grid(alpha=0.3)
            if c == 0:
                ax.set_ylim(min(0, ax.get_ylim()[0]), 1)
            if r == 0:
                ax.legend(fontsize=7)
    fig.suptitle(
        f"{name}: does the spectrum add anything beyond the descriptors?\nOut-of-fold rank prediction "
        f"({len(arch)} architectures with metrics; {_seeds_note(arch)}); 95% paired bootstrap intervals",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def _clip(v):
    v = np.asarray(v, float).copy()
    fin = v[np.isfinite(v)]
    if fin.size:
        v[v == np.inf] = fin.max()
        v[v == -np.inf] = fin.min()
    return v


def plot_scatter(arch, table, path, name, metric=PRIMARY_METRIC):
    """``metric`` against train loss after epoch 1 and at the end, and the final test loss, one
    colour per family (x: an architecture with a diverged seed, drawn at the largest loss)."""
    plt = _plt()
    tcols = target_columns(arch.columns)
    last = max(e for t, e, _ in tcols if t == "train_loss")
    panels = [("train_loss", 1), ("train_loss", last), ("test_loss", last)]
    panels = [(t, e) for t, e in panels if f"{t}_e{e}" in arch]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), squeeze=False)
    x_raw = arch[metric].to_numpy(float)
    x = _clip(x_raw)
    for ax, (t, e) in zip(axes[0], panels):
        y_raw = arch[f"{t}_e{e}"].to_numpy(float)
        y = _clip(y_raw)
        div = ~np.isfinite(y_raw)
        for fam in sorted(arch["family"].unique()):
            sel = (arch["family"] == fam).to_numpy() & np.isfinite(x_raw)
            col = _FAMILY_COLORS.get(fam, "0.5")
            ax.scatter(x[sel & ~div], y[sel & ~div], s=10, alpha=0.7, color=col, label=fam)
            ax.scatter(x[sel & div], y[sel & div], s=25, marker="x", color=col)
        ax.set_yscale("log")
        ax.set_xlabel(metric)
        ax.set_ylabel(f"{TARGETS[t]} after epoch {e}")
        d = table[(table["group"] == "pooled") & (table["predictor"] == metric) & (table["column"] == f"{t}_e{e}")]
        if not d.empty:
            d = d.iloc[0]
            ax.set_title(
                f"pooled Spearman {d['spearman']:+.2f} [{d['spearman_lo']:+.2f}, {d['spearman_hi']:+.2f}]\n"
                f"given descriptors {d['partial']:+.2f} [{d['partial_lo']:+.2f}, {d['partial_hi']:+.2f}]",
                fontsize=9,
            )
        ax.grid(alpha=0.3)
    if arch["family"].nunique() > 1:
        axes[0, 0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"{name}: {metric} at initialisation vs outcome\n({len(arch)} architectures; {_seeds_note(arch)})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(epochs, arch, metric, path, name, target="train_loss"):
    """Median ``target`` curves of the architectures by quartile of ``metric``."""
    plt = _plt()
    v = arch.set_index("arch_id")[metric]
    fin = v[np.isfinite(v)]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    if len(fin) >= 8:
        edges = np.quantile(fin, [0, 0.25, 0.5, 0.75, 1])
        curves = epochs.groupby(["arch_id", "epoch"])[target].mean().unstack()
        for qi in range(4):
            lo, hi = edges[qi], edges[qi + 1]
            ids = v[(v >= lo) & ((v <= hi) if qi == 3 else (v < hi))].index
            c = curves.reindex(ids)
            med = np.nanmedian(np.where(np.isfinite(c), c, np.nan), axis=0)
            ax.plot(c.columns, med, lw=2, color=plt.cm.viridis(qi / 3), label=f"Q{qi + 1}: {lo:.2g}..{hi:.2g} (n={len(ids)})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{TARGETS[target]} (median over architectures)")
    ax.set_title(f"{name}: {TARGETS[target]} curves by quartile of {metric}\n({_seeds_note(arch)})", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- the command -------------------------------------------------------------------------------
def _fmt(v) -> str:
    return "  nan" if not np.isfinite(v) else f"{v:+.2f}"


def analyze(
    name: str = "main_digits",
    results_dir=None,
    n_boot: int = 1000,
    seed: int = 0,
    figures: bool = True,
    metrics=None,
    log=print,
    n_trees: int = 150,
) -> dict:
    """Reproduce the analysis from ``<results_dir>/<name>_runs.csv`` (the committed CSV).

    Writes ``<name>_architectures.csv``, ``<name>_correlations.csv``, ``<name>_prediction.csv``,
    ``<name>_gap_decomposition.csv`` (:func:`gap_decomposition_table`),
    ``<name>_runs_unit.csv``, ``<name>_summary.json`` and the figures ``<name>_*.png``; prints the
    primary metric's table and the prediction gaps; returns the summary.
    """
    import pandas as pd

    results_dir = Path(results_dir) if results_dir is not None else RESULTS_DIR
    runs = pd.read_csv(results_dir / f"{name}_runs.csv")
    arch = per_architecture(runs)
    arch.to_csv(results_dir / f"{name}_architectures.csv", index=False, float_format="%.6g")
    table = correlation_table(arch, n_boot=n_boot, seed=seed, metrics=metrics)
    table.to_csv(results_dir / f"{name}_correlations.csv", index=False, float_format="%.4f")
    # the prediction compares feature sets on the same architectures: those with metrics
    with_metrics = arch[arch[PRIMARY_METRIC].notna()].reset_index(drop=True) if PRIMARY_METRIC in arch else arch
    cache: dict = {}
    pred = prediction_table(with_metrics, n_boot=n_boot, seed=seed, n_trees=n_trees, _cache=cache)
    pred.to_csv(results_dir / f"{name}_prediction.csv", index=False, float_format="%.4f")
    decomp = gap_decomposition_table(with_metrics, n_boot=n_boot, seed=seed, n_trees=n_trees, _cache=cache)
    decomp.to_csv(results_dir / f"{name}_gap_decomposition.csv", index=False, float_format="%.4f")
    unit = runs_as_unit_table(runs, n_boot=n_boot, seed=seed) if PRIMARY_METRIC in runs else None
    if unit is not None:
        unit.to_csv(results_dir / f"{name}_runs_unit.csv", index=False, float_format="%.4f")

    tcols = target_columns(arch.columns)
    last = {t: max(e for tt, e, _ in tcols if tt == t) for t in TARGETS}
    fam_floor = (
        arch.groupby("family")[[f"train_loss_e{last['train_loss']}", f"test_loss_e{last['test_loss']}"]]
        .median()
        .round(4)
        .to_dict(orient="index")
    )
    prov_cols = [c for c in ("fpcore_version", "fpcore_commit", "fpcore_source", "metrics_source") if c in arch]
    summary = dict(
        name=name,
        n_architectures=int(len(arch)),
        n_runs=int(len(runs)),
        seeds_per_architecture=sorted(int(s) for s in arch["n_seeds"].unique()),
        n_architectures_with_diverged_seed=int((arch["n_diverged"] > 0).sum()),
        families={k: int(v) for k, v in arch["family"].value_counts().items()},
        n_architectures_without_metrics=int(arch[PRIMARY_METRIC].isna().sum()) if PRIMARY_METRIC in arch else None,
        metrics_errors={
            k: int(v)
            for k, v in arch.get("metrics_error", pd.Series(dtype=str)).fillna("").map(lambda s: s.split(":")[0]).value_counts().items()
            if k
        },
        fpcore=(
            arch[prov_cols].fillna("").astype(str).drop_duplicates().to_dict(orient="records") if prov_cols else []
        ),
        median_final_losses_by_family=fam_floor,
        seed_noise_final_train_loss_sd_median=_pct(arch.get(f"train_loss_e{last['train_loss']}_sd", np.nan), 50),
        n_architectures_with_cdf_decile_inconsistency={
            c: int((arch[c] > 0).sum()) for c in ("consistency_problems", "hidden_consistency_problems") if c in arch
        },
        primary_metric=PRIMARY_METRIC,
        finite_fraction={
            m: float(np.isfinite(arch[m].to_numpy(float)).mean()) for m in candidate_metrics(arch.columns) if m.startswith("hidden_")
        },
    )
    prim = table[(table["predictor"] == PRIMARY_METRIC)]
    summary["primary"] = prim.drop(columns=["kind", "column"]).to_dict(orient="records")
    summary["prediction"] = pred.drop(columns=["column"]).to_dict(orient="records")
    summary["gap_decomposition"] = decomp.drop(columns=["column"]).to_dict(orient="records")
    if unit is not None:
        summary["runs_as_unit"] = unit.to_dict(orient="records")
    (results_dir / f"{name}_summary.json").write_text(json.dumps(summary, indent=1, default=float))

    if figures:
        plot_correlations(table, arch, results_dir / f"{name}_correlations.png", name)
        plot_prediction(pred, with_metrics, results_dir / f"{name}_prediction.png", name, decomp)
        plot_scatter(arch, table, results_dir / f"{name}_scatter.png", name)
        ep = results_dir / f"{name}_epochs.csv"
        if ep.exists():
            plot_curves(pd.read_csv(ep), arch, PRIMARY_METRIC, results_dir / f"{name}_curves.png", name)

    log(f"{name}: {len(arch)} architectures, {len(runs)} runs ({_seeds_note(arch)}), families {summary['families']}")
    log(f"Spearman of {PRIMARY_METRIC} [95% bootstrap CI] | partial given descriptors [CI], per group:")
    for g in dict.fromkeys(prim["group"]):
        for t in TARGETS:
            d = prim[(prim["group"] == g) & (prim["target"] == t)]
            cells = [
                f"e{int(r.epoch)} {_fmt(r.spearman)} [{_fmt(r.spearman_lo)},{_fmt(r.spearman_hi)}]|{_fmt(r.partial)}"
                for r in d.itertuples()
            ]
            if cells:
                log(f"  {g:>11} {TARGETS[t]:<13} n={int(d['n'].max()):<4} " + "  ".join(cells))
    log(
        f"Out-of-fold rank prediction on the {len(with_metrics)} architectures with metrics "
        "(Spearman [CI]): descriptors | metrics | both | both - descriptors:"
    )
    for t, e, c in tcols:
        d = pred[pred["column"] == c].set_index("features")
        cells = [
            f"{d.loc[k, 'spearman']:+.2f} [{d.loc[k, 'lo']:+.2f},{d.loc[k, 'hi']:+.2f}]"
            for k in ("descriptors", "metrics", "both", "both - descriptors")
        ]
        log(f"  {TARGETS[t]:<13} e{e:<3} " + " | ".join(cells))
    keys = [_gap_name(a, b) for a, b in DECOMPOSITION_GAPS]
    log("Where the gap comes from (Spearman gaps [CI]): " + " | ".join(keys) + ":")
    for t, e, c in tcols:
        d = decomp[decomp["column"] == c].set_index("features")
        cells = [f"{d.loc[k, 'spearman']:+.2f} [{d.loc[k, 'lo']:+.2f},{d.loc[k, 'hi']:+.2f}]" for k in keys]
        log(f"  {TARGETS[t]:<13} e{e:<3} " + " | ".join(cells))
    if unit is not None:
        log(f"Runs as the unit (the seed's choice), {PRIMARY_METRIC}:")
        for r in unit.itertuples():
            log(f"  {r.unit:<26} {TARGETS[r.target]:<13} e{r.epoch:<3} n={r.n:<5} {r.spearman:+.2f} [{r.spearman_lo:+.2f},{r.spearman_hi:+.2f}]")
    return summary
