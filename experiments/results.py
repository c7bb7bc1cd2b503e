"""Loading the committed results (``experiments/results/``) — pandas only, no torch or dask.

The dashboard's "Evidence" view reads :func:`load_results`.
"""

from __future__ import annotations

from pathlib import Path

from . import RESULTS_DIR

__all__ = ["load_results", "load_runs", "load_correlations", "RESULTS_DIR"]


def load_results(path=None, task: str = "main_digits"):
    """The per-architecture results table of a finished study.

    Parameters
    ----------
    path : str or Path, optional
        A ``<task>_architectures.csv`` written by ``python -m experiments analyze``, or a
        ``<task>_runs.csv`` (one row per run; its seeds are then averaged here). Default: the
        committed ``experiments/results/<task>_architectures.csv``.
    task : str
        Results name, used only when ``path`` is None: ``"main_digits"``, ``"protocol_digits"`` or
        ``"protocol_mnist1d"``.

    Returns
    -------
    pandas.DataFrame
        One row per architecture. Columns:

        * description: ``task, arch_id, activation`` (e.g. ``"leaky_relu:0.1"``),
          ``activation_name, init, depth`` (hidden layers), ``widths`` (``"64-128-32-10"``, readout
          included), ``sigma_w2, sigma_b2`` (hidden layers; the readout has 1 and 0), ``gain``,
          ``min_width_ratio, max_width_ratio`` (``N_l / N_0``), ``n_params``;
        * outcomes, averaged over ``n_seeds`` training seeds: ``train_loss_e<k>``,
          ``test_loss_e<k>``, ``test_acc_e<k>`` after each recorded epoch ``k`` (1, 2, 5, 10 and the
          last; a loss is ``inf`` if any of the ``n_diverged`` seeds diverged) with ``..._sd`` (std
          over seeds), and the final ``train_loss``, ``test_loss``, ``test_acc``, ``init_test_loss``;
        * FP metrics of the trained network (input -> logits, law of ``J J^T``): ``log10_d1`` ...
          ``log10_d9``, ``mean, variance, lambda_max, log10_mean, log10_variance,
          log10_lambda_max, atom, frac_above_1, log10_spread, chi_1, abs_log_chi_1``, and the
          deciles of the non-zero part ``log10_c1`` ... ``log10_c9`` and ``log10_spread_c``
          (finite wherever the law is not all atom); NaN with the reason in ``metrics_error`` when
          they could not be computed; ``fpcore_version, fpcore_commit, fpcore_source,
          metrics_source``: the code that computed them;
        * the same metrics of the hidden stack (input -> last hidden layer, law of ``J^T J``, as
          the dashboard computes for a ``Network``), prefixed ``hidden_``.

        ``-inf``/``inf`` are real values (a decile inside the atom at 0; a diverged run), not
        missing data.

    Examples
    --------
    >>> df = load_results()                                          # doctest: +SKIP
    >>> df.plot.scatter("hidden_log10_d5", "test_loss", logy=True)   # doctest: +SKIP
    """
    import pandas as pd

    path = Path(path) if path is not None else RESULTS_DIR / f"{task}_architectures.csv"
    df = pd.read_csv(path)
    if "seed" in df.columns:  # a per-run table: average the seeds
        from .analysis import per_architecture

        df = per_architecture(df)
    return df


def load_runs(task: str = "main_digits", path=None):
    """The per-run table (one row per architecture and seed) of a finished sweep."""
    import pandas as pd

    return pd.read_csv(Path(path) if path is not None else RESULTS_DIR / f"{task}_runs.csv")


def load_correlations(task: str = "main_digits", path=None):
    """The correlation table written by ``python -m experiments analyze``."""
    import pandas as pd

    return pd.read_csv(Path(path) if path is not None else RESULTS_DIR / f"{task}_correlations.csv")
