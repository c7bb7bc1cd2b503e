"""The empirical study: do free-probability metrics computed before training predict training?

The package samples fully-connected architectures, computes the free-probability (FP) metrics of
the Jacobian spectrum of exactly the network that is then trained (:mod:`experiments.metrics`),
trains each architecture with PyTorch on data that needs no download (:mod:`experiments.data`,
:mod:`experiments.training`), runs the sweep on Dask, resumably (:mod:`experiments.sweep`), and
analyses the results with bootstrap confidence intervals over architectures and a held-out check
(:mod:`experiments.analysis`). The committed results live in ``experiments/results/``;
:func:`experiments.results.load_results` loads them.

Run ``python -m experiments --help``. Importing this package is cheap: torch, dask and
scikit-learn are imported only by the modules that need them.
"""

__all__ = ["RESULTS_DIR"]

from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
