"""The "Evidence" view: the committed results of the empirical study next to the current network.

Pure functions turn a committed table (``experiments/results/<study>_architectures.csv``, read by
:func:`experiments.results.load_results`, which needs only pandas) into scatter data: a chosen
free-probability metric of every trained architecture against a chosen target (train or test
loss) after a chosen epoch, one colour per activation family, with

* the pooled Spearman correlation **and** the correlation within each family (pooling families can
  make or hide a relation; the within-family value is the honest one),
* the **descriptor baseline** beside it: the best single descriptor's Spearman (depth, gain,
  parameter count, narrowest width) and, from ``<study>_prediction.csv``, the out-of-fold rank
  prediction of the target by the descriptors alone and by descriptors + metrics (the gap is what
  the spectrum adds).

The metrics of the dashboard's network are those of its layers' ``J^T J``, comparable to the
study's ``hidden_`` columns (the hidden stack of each trained classifier).
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np

__all__ = [
    "METRICS",
    "STUDIES",
    "TARGETS",
    "BASELINES",
    "load_evidence",
    "load_prediction",
    "default_metric",
    "epochs",
    "scatter_data",
    "current_value",
    "spearman",
    "summary_text",
]

#: Committed studies (results names) -> label; the first one present is the default.
STUDIES = {
    "main_digits": "main sweep (digits)",
    "protocol_digits": "protocol-matched (digits)",
    "protocol_mnist1d": "protocol-matched (MNIST-1D)",
}
#: Targets the user chooses from (each recorded at several epochs).
TARGETS = {"train_loss": "train loss", "test_loss": "test loss"}
#: metric name (column without the hidden_ prefix) -> label
METRICS = {
    "log10_c9": "log10 0.9-quantile, non-zero part",
    "log10_d9": "log10 0.9-quantile (the paper's log q0.9)",
    "log10_c5": "log10 median, non-zero part",
    "log10_c1": "log10 0.1-quantile, non-zero part",
    "log10_spread_c": "log10 spread c9/c1, non-zero part",
    "log10_lambda_max": "log10 lambda_max",
    "log10_mean": "log10 mean",
    "frac_above_1": "P(lambda > 1)",
    "atom": "atom at 0",
    "chi_1": "chi_1 (first layer)",
}
#: Descriptors whose best single Spearman is shown beside the metric's.
BASELINES = {"depth": "depth", "log2_gain": "log2 gain", "log10_n_params": "log10 #parameters",
             "min_width_ratio": "narrowest width ratio"}  # fmt: skip


def _stamp(name: str):
    """``(name, mtime_ns)`` of a results file (None when absent): tables are re-read only when
    their file changed, not once per page (every session read all studies: 0.1-0.4 s a page)."""
    try:
        from experiments import RESULTS_DIR

        return name, (RESULTS_DIR / name).stat().st_mtime_ns
    except (ImportError, OSError):
        return name, None


def load_evidence(study: str = "main_digits"):
    """The study's per-architecture table, or ``None`` when pandas or the results are missing.
    The table is shared between sessions: read it, do not modify it."""
    return _load_evidence(study, _stamp(f"{study}_architectures.csv"))


@functools.lru_cache(maxsize=8)
def _load_evidence(study: str, _stamp):
    try:
        from experiments.results import load_results
    except ImportError:
        return None
    try:
        df = load_results(task=study)
    except (FileNotFoundError, OSError, ValueError):
        return None
    if "family" not in df.columns:
        df["family"] = df["activation"].astype(str).str.partition(":")[0]
    return df


def load_prediction(study: str = "main_digits"):
    """The committed out-of-fold prediction table (``<study>_prediction.csv``) or ``None``
    (shared between sessions, like :func:`load_evidence`)."""
    return _load_prediction(study, _stamp(f"{study}_prediction.csv"))


@functools.lru_cache(maxsize=8)
def _load_prediction(study: str, _stamp):
    try:
        import pandas as pd

        from experiments import RESULTS_DIR

        return pd.read_csv(RESULTS_DIR / f"{study}_prediction.csv")
    except (ImportError, FileNotFoundError, OSError, ValueError):
        return None


def _column(metric: str) -> str:
    return metric if metric == "chi_1" else f"hidden_{metric}"


def default_metric(df) -> str:
    """The paper's ``log10_d9`` when it is finite for at least 95 % of the architectures, else the
    0.9-quantile of the non-zero part (finite wherever the law is not all atom)."""
    col = _column("log10_d9")
    if col in df.columns and np.isfinite(df[col].to_numpy(float)).mean() >= 0.95:
        return "log10_d9"
    return "log10_c9"


def epochs(df, target: str) -> list[int]:
    """The recorded epochs of ``target`` in the table (``<target>_e<k>`` columns), ascending."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {sorted(TARGETS)}, got {target!r}")
    pre = f"{target}_e"
    return sorted(int(c[len(pre):]) for c in df.columns if c.startswith(pre) and c[len(pre):].isdigit())


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties); ``nan`` for fewer than 3 points."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 3:
        return math.nan

    def ranks(a):
        order = np.argsort(a, kind="mergesort")
        r = np.empty(a.size)
        r[order] = np.arange(a.size)
        # average ties
        _, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
        sums = np.bincount(inv, weights=r)
        return (sums / counts)[inv]

    rx, ry = ranks(x), ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    den = math.sqrt(float(np.dot(rx, rx) * np.dot(ry, ry)))
    return float(np.dot(rx, ry) / den) if den > 0 else math.nan


def scatter_data(df, metric: str, target: str = "train_loss", epoch: int | None = None, prediction=None) -> dict:
    """(metric, target after ``epoch``) of the study's architectures, coloured by family.

    Parameters
    ----------
    df : DataFrame
        A per-architecture table (:func:`load_evidence`).
    metric : str
        A key of :data:`METRICS`.
    target : {"train_loss", "test_loss"}
    epoch : int, optional
        A recorded epoch (:func:`epochs`); default the last.
    prediction : DataFrame, optional
        The study's out-of-fold prediction table (:func:`load_prediction`).

    Returns
    -------
    dict
        ``x, y, activation`` (the family of each point, for the colours), ``n`` (finite pairs drawn),
        ``n_dropped`` (a diverged run: infinite loss; a metric not computed), ``spearman`` (pooled,
        over the drawn pairs), ``within`` ({family: (n, Spearman)} for families with >= 8 points),
        ``within_mean`` (their size-weighted mean), ``baseline`` ((descriptor label, Spearman) of
        the strongest single descriptor over the same pairs), ``oof`` (``{"descriptors", "metrics",
        "both", "both - descriptors"}: (Spearman, lo, hi)`` from the prediction table, or ``{}``),
        ``target_label``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"hidden_log10_c9": [0.1, 0.5, 0.9, 1.3], "train_loss_e1": [1.0, 2.0, 3.0, 4.0],
    ...                    "activation": ["relu"] * 4, "depth": [1, 2, 1, 2]})
    >>> round(scatter_data(df, "log10_c9", "train_loss", 1)["spearman"], 3)
    1.0
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    eps = epochs(df, target)
    if not eps:
        raise ValueError(f"target: the table has no {target!r} columns")
    epoch = eps[-1] if epoch is None else int(epoch)
    if epoch not in eps:
        raise ValueError(f"epoch must be one of {eps} for {target}, got {epoch!r}")
    x = df[_column(metric)].to_numpy(dtype=float)
    y = df[f"{target}_e{epoch}"].to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    fam = (df["family"] if "family" in df.columns else df["activation"].astype(str).str.partition(":")[0]).astype(str).to_numpy()
    within = {}
    for f in sorted(set(fam[ok])):
        sel = ok & (fam == f)
        if sel.sum() >= 8:
            within[f] = (int(sel.sum()), spearman(x[sel], y[sel]))
    vals = [(n, r) for n, r in within.values() if math.isfinite(r)]
    within_mean = sum(n * r for n, r in vals) / sum(n for n, _ in vals) if vals else math.nan
    baseline = (None, math.nan)
    for col, label in BASELINES.items():
        if col in df.columns:
            r = spearman(df[col].to_numpy(float)[ok], y[ok])
            if math.isfinite(r) and (baseline[0] is None or abs(r) > abs(baseline[1])):
                baseline = (label, r)
    oof = {}
    if prediction is not None and len(prediction):
        p = prediction[(prediction["target"] == target) & (prediction["epoch"] == epoch)]
        for _, row in p.iterrows():
            oof[str(row["features"])] = (float(row["spearman"]), float(row["lo"]), float(row["hi"]))
    return dict(
        x=x[ok],
        y=y[ok],
        activation=fam[ok],
        n=int(ok.sum()),
        n_dropped=int((~ok).sum()),
        spearman=spearman(x[ok], y[ok]),
        within=within,
        within_mean=within_mean,
        baseline=baseline,
        oof=oof,
        target_label=f"{TARGETS[target]} after epoch {epoch}",
    )


def current_value(spectrum, chi1: float, metric: str) -> float:
    """The metric of the dashboard's network (its ``J^T J`` law), computed exactly as the study's
    columns (:func:`experiments.metrics.spectrum_metrics`)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    if metric == "chi_1":
        return float(chi1)
    return metric_value(spectrum, metric)


#: Metrics read off the numbers the dashboard's details job already computed (the deciles, ``P(lambda
#: > 1)``, the atom, ``lambda_max``): no job of their own.
FROM_DETAILS = ("log10_d9", "frac_above_1", "atom", "log10_lambda_max", "log10_mean")


def metric_value(spectrum, metric: str, deciles=None, fraction_above_1: float | None = None,
                 mean: float | None = None) -> float:
    """One column of :func:`experiments.metrics.spectrum_metrics`, computing only what it needs.

    ``spectrum_metrics`` computes every metric, the variance among them (a contour integral: about
    9 s for a GELU net of depth 10, where the 0.9-decile takes 0.4 s); the Evidence marker needs one.
    The formulas are the same (a test compares every metric). ``deciles``, ``fraction_above_1`` and
    ``mean``, when given, are ``spectrum.deciles``, ``spectrum.fraction_above(1.0)`` and
    ``spectrum.mean`` computed already.

    Examples
    --------
    >>> import fpcore
    >>> s = fpcore.jacobian_spectrum(fpcore.Network([50, 50], "linear"), n_points=60)
    >>> round(metric_value(s, "atom"), 12), round(metric_value(s, "log10_lambda_max"), 2)
    (0.0, 0.9)
    """
    from experiments.metrics import _log10, continuous_deciles, spectrum_metrics

    m = re.fullmatch(r"log10_([dc])([1-9])", metric)
    if m:
        if m.group(1) == "d":
            d = np.asarray(spectrum.deciles if deciles is None else deciles, dtype=float)
        else:
            d = continuous_deciles(spectrum)
        return _log10(float(d[int(m.group(2)) - 1]))
    if metric == "log10_spread_c":
        c = continuous_deciles(spectrum)
        return math.log10(c[-1] / c[0]) if c[0] > 0 else math.inf
    if metric == "log10_lambda_max":
        return _log10(float(spectrum.lambda_max))
    if metric == "log10_mean":
        return _log10(float(spectrum.mean if mean is None else mean))
    if metric == "frac_above_1":
        return float(spectrum.fraction_above(1.0)) if fraction_above_1 is None else float(fraction_above_1)
    if metric == "atom":
        return float(spectrum.atom)
    return float(spectrum_metrics(spectrum)[metric])


def value_from_details(computed, metric: str) -> float | None:
    """The metric from a prepared details entry (``dashboard.state._Computed``: deciles, ``P(lambda
    > 1)`` computed), or None when it needs more than those (then a worker computes it)."""
    if metric not in FROM_DETAILS or computed is None or not computed.prepared:
        return None
    try:
        return metric_value(computed.spectrum, metric, deciles=computed.deciles,
                            fraction_above_1=computed.fraction_above_1, mean=computed.mean)  # fmt: skip
    except Exception:  # noqa: BLE001 - the marker is optional
        return float("nan")


def current_value_or_nan(spectrum, chi1: float, metric: str) -> float:
    """:func:`current_value`, or NaN where the metric cannot be computed (the marker is optional)."""
    try:
        return current_value(spectrum, chi1, metric)
    except Exception:  # noqa: BLE001 - the study's points stay; only this network's marker is missing
        return float("nan")


def metric_task(args: dict, gram: str, n_points: int, chi1: float, metric: str) -> float:
    """In a worker process (:class:`dashboard.pool.ProcessPool`): :func:`current_value_or_nan` of
    the spectrum of ``fpcore.Network(**args)``."""
    from dashboard.state import compute_spectrum
    import fpcore

    return current_value_or_nan(compute_spectrum(fpcore.Network(**args), gram, n_points).spectrum, chi1, metric)


def summary_text(data: dict, study_label: str, current: float) -> str:
    """The Markdown beside the scatter: pooled and within-family correlations, the descriptor
    baseline and the out-of-fold prediction gap."""
    fam = ", ".join(f"{f} {r:+.2f} (n={n})" for f, (n, r) in data["within"].items())
    lines = [
        f"**{study_label}**: {data['n']} architectures with a finite value"
        + (f" ({data['n_dropped']} left out: diverged or no metric)" if data["n_dropped"] else "")
        + f", seeds averaged. Target: **{data['target_label']}**.",
        f"- Spearman, pooled: **{data['spearman']:+.2f}**; within families (size-weighted mean): "
        f"**{data['within_mean']:+.2f}**" + (f" — {fam}" if fam else ""),
    ]
    label, r = data["baseline"]
    if label is not None:
        lines.append(f"- Descriptor baseline: {label} alone **{r:+.2f}**.")
    o = data["oof"]
    if {"descriptors", "both", "both - descriptors"} <= set(o):
        d, b, g = o["descriptors"], o["both"], o["both - descriptors"]
        lines.append(
            f"- Out-of-fold rank prediction: descriptors {d[0]:+.2f}, descriptors + metrics {b[0]:+.2f}; "
            f"what the spectrum adds: **{g[0]:+.2f}** [{g[1]:+.2f}, {g[2]:+.2f}]."
        )
    if math.isfinite(current):
        lines.append(f"- Dashed line: this network ({current:.3g}).")
    lines.append("What holds and what does not: `experiments/README.md`.")
    return "\n".join(lines)
