"""Free-probability metrics of an architecture, computed before training with :mod:`fpcore`.

For each architecture two networks are analysed (see :mod:`experiments.architectures`):

* ``full`` (unprefixed columns): the trained map input -> logits, readout included, law of
  ``J J^T`` (``C x C``, ``C`` = number of classes). Its non-zero eigenvalues are those of
  ``J^T J``; the law of ``J^T J`` (``N_0 x N_0``) is the same law diluted by an atom
  ``1 - C/N_0`` at zero that is identical for every architecture of a task (here 54/64 for
  digits), which would make most of its deciles 0 and carries no information.
* ``hidden`` (columns prefixed ``hidden_``): the hidden stack alone (input -> last hidden layer),
  law of ``J^T J`` (``N_0 x N_0``), the seed paper's choice and what the dashboard shows.

Metrics of a spectrum (:data:`SPECTRUM_METRICS`):

``log10_d1 ... log10_d9``
    ``log10`` of the deciles of the eigenvalue law (``-inf`` where a decile falls in the atom at 0).
``mean, variance, lambda_max`` and their ``log10_`` versions
    Moments and the top edge of the support.
``atom``
    Mass of the atom at 0.
``frac_above_1``
    Mass above 1 (``1 - F(1)``).
``log10_spread``
    ``log10(d9 / d1)``: how spread ("hyperbolic") the spectrum is; ``+inf`` when ``d1`` lies in the
    atom at 0 (kept for comparison with the first round; use ``log10_spread_c``).
``log10_c1 ... log10_c9``, ``log10_spread_c``
    The same of the **non-zero part** of the law (the law conditioned on ``lambda > 0``, i.e. the
    quantiles at ``atom + p (1 - atom)``), so they are finite whenever the atom at 0 is not the whole
    law; the atom's mass is ``atom``. A decile of the full law that falls exactly on the atom's edge
    (``p = atom``) is ill-posed; these never are (``p > atom``).

Metrics of the mean field (:data:`MEAN_FIELD_METRICS`): ``chi_1`` (``chi`` of the first layer, at
the data's ``q0``; biases included) and ``abs_log_chi_1 = |ln chi_1|``, the distance to the edge of
chaos. The two networks share the first layer, hence ``chi_1``.
"""

from __future__ import annotations

import math
import time

import numpy as np

__all__ = [
    "SPECTRUM_METRICS",
    "MEAN_FIELD_METRICS",
    "METRICS",
    "spectrum_metrics",
    "network_metrics",
    "architecture_metrics",
    "supported_activations",
    "UnsupportedActivation",
    "continuous_deciles",
    "consistency",
    "metric_columns",
]

DECILE_METRICS = tuple(f"log10_d{i}" for i in range(1, 10))
CONTINUOUS_DECILE_METRICS = tuple(f"log10_c{i}" for i in range(1, 10))
SPECTRUM_METRICS = DECILE_METRICS + CONTINUOUS_DECILE_METRICS + (
    "mean",
    "variance",
    "lambda_max",
    "log10_mean",
    "log10_variance",
    "log10_lambda_max",
    "atom",
    "frac_above_1",
    "log10_spread",
    "log10_spread_c",
)
MEAN_FIELD_METRICS = ("chi_1", "abs_log_chi_1")
#: All metric columns of the ``full`` network; the hidden stack's are ``"hidden_" + name``.
METRICS = SPECTRUM_METRICS + MEAN_FIELD_METRICS

#: Points of the density grid used for the metrics (deciles come from the CDF on this grid).
N_POINTS = 200


class UnsupportedActivation(RuntimeError):
    """``fpcore.jacobian_spectrum`` cannot (yet) compute the spectrum of this activation."""


def metric_columns() -> list[str]:
    """Every metric column of a results row: :data:`METRICS` and solver bookkeeping, of the full
    network and (prefixed ``hidden_``) of the hidden stack."""
    own = list(METRICS) + ["n_uncertified", "solver_seconds", "consistency_problems"]
    return own + [f"hidden_{k}" for k in own]


def _log10(x: float) -> float:
    if x > 0:
        return math.log10(x)
    return -math.inf if x == 0 else math.nan


def continuous_deciles(spectrum) -> np.ndarray:
    """Deciles of the law conditioned on ``lambda > 0``: quantiles at ``atom + p (1 - atom)``.

    Raises ValueError when the law is the atom at 0 alone (no non-zero part).
    """
    atom = float(spectrum.atom)
    if not atom < 1.0:
        raise ValueError(f"spectrum: the law is an atom at 0 (mass {atom}); it has no non-zero part")
    p = atom + (1.0 - atom) * np.arange(1, 10) / 10.0
    return np.asarray(spectrum.quantile(np.minimum(p, 1.0)), dtype=float)


def consistency(spectrum, deciles: np.ndarray, frac_above_1: float, tol: float = 1e-6) -> list[str]:
    """Problems between ``fraction_above(1)``, the CDF and the deciles (empty list: consistent).

    * ``fraction_above(1) == 1 - cdf(1)``;
    * each decile ``d_k`` with ``k/10`` not within ``tol`` of ``F(1)`` lies on the side of 1 that
      ``F(1)`` says: ``d_k <= 1`` iff ``F(1) >= k/10``;
    * ``F(d_k (1 + 1e-9)) >= k/10 - tol`` (a quantile is where the CDF reaches its level; the
      relative slack allows a decile returned a rounding error below an atom), and ``F`` just below
      a positive ``d_k`` is at most ``k/10 + tol``.
    """
    problems = []
    f1 = float(spectrum.cdf(1.0))
    if abs((1.0 - f1) - frac_above_1) > tol:
        problems.append(f"fraction_above(1)={frac_above_1} but 1 - cdf(1)={1.0 - f1}")
    for k, d in enumerate(deciles, start=1):
        p = k / 10.0
        if abs(f1 - p) > tol and (d <= 1.0) != (f1 >= p):
            problems.append(f"decile {k} = {d} on the wrong side of 1 (F(1) = {f1})")
        Fd = float(spectrum.cdf(float(d) * (1.0 + 1e-9)))
        if Fd < p - tol:
            problems.append(f"F(d{k}) = {Fd} < {p}")
        if d > 0:
            Fb = float(spectrum.cdf(float(d) * (1.0 - 1e-7)))
            if Fb > p + tol:
                problems.append(f"F just below d{k} = {Fb} > {p}")
    return problems


def spectrum_metrics(spectrum) -> dict:
    """The metrics of an :class:`fpcore.Spectrum` (keys :data:`SPECTRUM_METRICS`)."""
    deciles = np.asarray(spectrum.deciles, dtype=float)
    out = {f"log10_d{i + 1}": _log10(float(d)) for i, d in enumerate(deciles)}
    cdec = continuous_deciles(spectrum)
    out.update({f"log10_c{i + 1}": _log10(float(d)) for i, d in enumerate(cdec)})
    out["log10_spread_c"] = math.log10(cdec[-1] / cdec[0]) if cdec[0] > 0 else math.inf
    mean, var, lmax = float(spectrum.mean), float(spectrum.variance), float(spectrum.lambda_max)
    if abs(var) <= 1e-10 * mean * mean:
        var = 0.0  # a single atom (e.g. an orthogonal linear isometry): round-off, not a variance
    out.update(
        mean=mean,
        variance=var,
        lambda_max=lmax,
        log10_mean=_log10(mean),
        log10_variance=_log10(var),
        log10_lambda_max=_log10(lmax),
        atom=float(spectrum.atom),
        frac_above_1=float(spectrum.fraction_above(1.0)),
    )
    d1, d9 = float(deciles[0]), float(deciles[-1])
    out["log10_spread"] = math.log10(d9 / d1) if d1 > 0 else math.inf
    return out


def network_metrics(net, gram: str = "JtJ", n_points: int = N_POINTS) -> dict:
    """Spectrum and mean-field metrics of one :class:`fpcore.Network`, plus solver bookkeeping.

    Raises
    ------
    UnsupportedActivation
        If fpcore's spectrum solver does not handle the network's activation; never returns NaN
        metrics silently.
    """
    import warnings

    import fpcore

    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # overflow warnings of rejected Newton proposals; the solver certifies what it keeps
            warnings.simplefilter("ignore", RuntimeWarning)
            spec = fpcore.jacobian_spectrum(net, gram=gram, n_points=n_points)
    except NotImplementedError as exc:
        raise UnsupportedActivation(f"{net!r}: {exc}") from exc
    out = spectrum_metrics(spec)
    problems = consistency(spec, np.asarray(spec.deciles, dtype=float), out["frac_above_1"])
    out["consistency_problems"] = len(problems)
    if problems:
        warnings.warn(f"{net!r}: " + "; ".join(problems[:3]), RuntimeWarning, stacklevel=2)
    chi = float(fpcore.mean_field(net).chi[0])
    out["chi_1"] = chi
    out["abs_log_chi_1"] = abs(math.log(chi))
    stats = getattr(spec, "stats", None)
    out["n_uncertified"] = int(getattr(stats, "n_uncertified", 0) or 0)
    out["solver_seconds"] = time.perf_counter() - t0
    _check(net, out, np.asarray(spec.deciles, dtype=float))
    return out


def _check(net, m: dict, deciles: np.ndarray) -> None:
    """Refuse inconsistent metrics instead of recording them (the sweep reports the reason)."""
    problems = [f"{k} is NaN" for k in METRICS if isinstance(m.get(k), float) and math.isnan(m[k])]
    if np.any(np.diff(deciles) < -1e-9 * max(1.0, float(np.max(np.abs(deciles))))):
        problems.append(f"deciles not non-decreasing: {deciles.tolist()}")
    if not 0.0 <= m["atom"] <= 1.0 or not -1e-9 <= m["frac_above_1"] <= 1.0 + 1e-9:
        problems.append(f"masses outside [0, 1]: atom={m['atom']}, frac_above_1={m['frac_above_1']}")
    if m["lambda_max"] < deciles[-1] * (1.0 - 1e-6):
        problems.append(f"lambda_max={m['lambda_max']} below the 9th decile {deciles[-1]}")
    if not (m["mean"] > 0 and m["variance"] >= -1e-9 * m["mean"] ** 2):
        problems.append(f"moments inconsistent: mean={m['mean']}, variance={m['variance']}")
    if problems:
        raise ValueError(f"{net!r}: inconsistent spectrum metrics: " + "; ".join(problems))


def architecture_metrics(arch, q0: float, n_points: int = N_POINTS) -> dict:
    """Metrics of the trained network (``J J^T``, readout included) and of its hidden stack
    (``J^T J``, columns prefixed ``hidden_``), for input variance ``q0``."""
    full = network_metrics(arch.network(q0), gram="JJt", n_points=n_points)
    hidden = network_metrics(arch.hidden_network(q0), gram="JtJ", n_points=n_points)
    out = dict(full)
    out.update({f"hidden_{k}": v for k, v in hidden.items()})
    return out


def supported_activations(candidates) -> tuple[list[str], dict[str, str]]:
    """Which activations fpcore's spectrum solver handles now: ``(supported, {name: reason})``.

    Each candidate is probed on a small network; an exception (``NotImplementedError`` or other)
    or a non-finite result marks it unsupported, with the reason.
    """
    import fpcore

    ok, reasons = [], {}
    for act in candidates:
        try:
            # Wide enough that the law of J J^T has no atom at 0 (all its deciles positive).
            net = fpcore.Network(
                [12, 48, 48, 10],
                activation=[act, act, "linear"],
                sigma_w2=[1.5, 1.5, 1.0],
                sigma_b2=[0.05, 0.05, 0.0],
                q0=1.0,
            )
            m = network_metrics(net, gram="JJt", n_points=100)
            if not all(math.isfinite(m[k]) for k in ("mean", "lambda_max", "log10_d5")):
                raise ValueError("non-finite metrics")
            ok.append(act)
        except Exception as exc:  # noqa: BLE001 - the reason is reported, not hidden
            reasons[act] = f"{type(exc).__name__}: {exc}"
    return ok, reasons
