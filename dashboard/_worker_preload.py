"""Imported once by the dashboard's fork server (:class:`dashboard.pool.ProcessPool`): every
worker process forked from it starts with fpcore imported and its kernels loaded, so a worker
replaced after a stopped job is ready in milliseconds."""

import logging
import warnings

import fpcore
from dashboard import state
from experiments.metrics import spectrum_metrics

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # tiny warm-up nets: uncertified points do not matter here
    for _net in (fpcore.Network([20, 20, 20], "relu", sigma_w2=2.0), fpcore.Network([20, 20, 20], "gelu", sigma_w2=2.0),
                 fpcore.Network([20, 20, 20], "tanh", sigma_w2=1.0, init="orthogonal")):  # fmt: skip
        try:
            _out = state.details_task(state.network_args(_net), "JtJ", 40, 1e-6, 1e-12)
            spectrum_metrics(state.compute_spectrum(_net, "JtJ", 40).spectrum)
        except Exception:  # noqa: BLE001 - a failed warm-up only costs time later
            logging.getLogger(__name__).warning("worker warm-up failed for %r", _net, exc_info=True)
state._SPECTRA._data.clear()
