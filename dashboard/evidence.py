"""The "Evidence" view: the committed results of the empirical study next to the current network.

Pure functions turn the committed table (``experiments/results/<task>_architectures.csv``, read by
:func:`experiments.results.load_results`, which needs only pandas) into scatter data; the view
draws a chosen free-probability metric of every trained architecture against its final test loss,
with the Spearman correlation, and marks the value of the network on the dashboard. The metrics
of the dashboard's network are those of its layers' ``J^T J``, comparable to the study's
``hidden_`` columns (the hidden stack of each trained classifier).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["METRICS", "load_evidence", "scatter_data", "current_value", "spearman"]

# metric name (column without the hidden_ prefix) -> label
METRICS = {
    "log10_spread": "log10 spread d9/d1",
    "log10_lambda_max": "log10 lambda_max",
    "log10_mean": "log10 mean",
    "log10_variance": "log10 variance",
    "atom": "atom at 0",
    "frac_above_1": "P(lambda > 1)",
    "log10_d5": "log10 median",
    "log10_d1": "log10 first decile",
    "log10_d9": "log10 last decile",
    "chi_1": "chi_1 (first layer)",
}


def load_evidence(task: str = "digits"):
    """The study's per-architecture table, or ``None`` when pandas or the results are missing."""
    try:
        from experiments.results import load_results
    except ImportError:
        return None
    try:
        return load_results(task=task)
    except (FileNotFoundError, OSError, ValueError):
        return None


def _column(metric: str) -> str:
    return metric if metric == "chi_1" else f"hidden_{metric}"


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


def scatter_data(df, metric: str) -> dict:
    """Finite (metric, test loss) pairs of the study, with the activation of each architecture.

    Returns ``dict(x, y, activation, n, spearman)``; diverged runs (infinite loss) and metrics
    that are infinite (a decile inside the atom at 0) are left out and counted in ``n_dropped``.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    x = df[_column(metric)].to_numpy(dtype=float)
    y = df["test_loss"].to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    act = df["activation"].astype(str).to_numpy()
    return dict(
        x=x[ok],
        y=y[ok],
        activation=act[ok],
        n=int(ok.sum()),
        n_dropped=int((~ok).sum()),
        spearman=spearman(x[ok], y[ok]),
    )


def current_value(spectrum, chi1: float, metric: str) -> float:
    """The metric of the dashboard's network (its ``J^T J`` law), computed exactly as the study's
    columns (:func:`experiments.metrics.spectrum_metrics`)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    if metric == "chi_1":
        return float(chi1)
    from experiments.metrics import spectrum_metrics

    return float(spectrum_metrics(spectrum)[metric])
