"""A teacher's tools: one-click presets, per-activation default variances, download file names.

Each preset is a set of control values with one sentence saying what it shows. Applying one sets
every control it names at once (one recomputation). When the user switches the activation, the
weight variance jumps to that activation's usual initialisation (:data:`DEFAULT_SIGMA_W2`), unless
the change comes from a preset or a shared link (both carry their own variance).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import fpcore

__all__ = ["Preset", "PRESETS", "DEFAULT_SIGMA_W2", "default_sigma_w2", "apply_preset", "choose_activation",
           "download_name", "tune_message", "spectrum_csv_with_sample"]  # fmt: skip


@dataclass(frozen=True)
class Preset:
    """A named configuration of the controls, with the sentence a teacher would say about it."""

    label: str
    sentence: str
    params: dict = field(default_factory=dict)
    critical: bool = False  # tune sigma_w2 to the edge of chaos after applying (fpcore.tune_init)


_BASE = dict(profile="constant", depth=10, base_width=400, ratio=2.0, init="gaussian", sigma_b2=0.0,
             input_mode="variance q0", q0=1.0, gram="JtJ")  # fmt: skip

PRESETS: dict[str, Preset] = {
    "he_relu": Preset(
        "He-initialised ReLU",
        "ReLU with σ_w² = 2 (He/Kaiming): each layer keeps the signal's size, yet the spectrum of JᵀJ "
        "spreads with depth (half of every layer is switched off): watch the atom at 0 and the tail.",
        dict(_BASE, activation="relu", sigma_w2=2.0),
    ),
    "xavier_tanh": Preset(
        "Xavier tanh",
        "tanh with σ_w² = 1 (Glorot/Xavier for square layers) and Gaussian weights: the classic "
        "initialisation, close to the edge of chaos but with a broad spectrum.",
        dict(_BASE, activation="tanh", sigma_w2=1.0),
    ),
    "orthogonal_tanh_edge": Preset(
        "Orthogonal tanh at the edge of chaos",
        "Orthogonal weights, small bias and σ_w² tuned to χ₁ = 1: dynamical isometry, the singular "
        "values of J concentrate near 1 even at depth (Pennington, Schoenholz and Ganguli).",
        dict(_BASE, activation="tanh", init="orthogonal", sigma_b2=1e-3, input_mode="fixed point q*",
             sigma_w2=1.0),  # fmt: skip
        critical=True,
    ),
    "selu": Preset(
        "SELU self-normalising",
        "SELU with σ_w² = 1 (LeCun normal): the activations' mean and variance are a fixed point "
        "(q* = 1), so the input needs no tuning (Klambauer et al.).",
        dict(_BASE, activation="selu", sigma_w2=1.0),
    ),
    "tapered_mlp": Preset(
        "784 → … → 10 tapered MLP",
        "An MNIST-style ReLU MLP, 784 → 512 → 256 → 128 → 64 → 10: JᵀJ is 784 × 784 but has rank "
        "at most 10, so at least 98.7 % of its eigenvalues are exactly 0.",
        dict(_BASE, activation="relu", sigma_w2=2.0, profile="custom", custom_widths="784, 512, 256, 128, 64, 10"),
    ),
    "bottleneck": Preset(
        "A bottleneck",
        "Widths shrink to a quarter in the middle and grow back: the narrow layers cap the rank and "
        "stretch the spectrum's tail.",
        dict(_BASE, activation="relu", sigma_w2=2.0, profile="bottleneck", ratio=4.0),
    ),
    "deep_linear": Preset(
        "A deep linear net",
        "No activation, σ_w² = 1, depth 30: the spectrum is the Fuss-Catalan law, with a singular "
        "edge at 0 and λ_max ≈ e (L + 1): depth alone makes a linear net ill-conditioned.",
        dict(_BASE, activation="linear", sigma_w2=1.0, depth=30),
    ),
}

# The usual weight variance for each activation at sigma_b2 = 0 (what a framework would use):
# He for the ReLU family and for GELU/SiLU/softplus (ReLU-like for large inputs), the edge of chaos
# 1/phi'(0)^2 for odd activations (tanh, hard-tanh, erf), LeCun for SELU and ELU, and for the
# sigmoid the edge 1/phi'(0)^2 = 16 capped to the slider's range.
DEFAULT_SIGMA_W2 = {
    "linear": 1.0,
    "relu": 2.0,
    "hard_tanh": 1.0,
    "tanh": 1.0,
    "sigmoid": 6.0,
    "gelu": 2.0,
    "silu": 2.0,
    "selu": 1.0,
    "elu": 1.0,
    "softplus": 2.0,
}


def default_sigma_w2(activation: str, slope: float = 0.1) -> float:
    """The usual ``sigma_w2`` for ``activation`` (see :data:`DEFAULT_SIGMA_W2`).

    Examples
    --------
    >>> default_sigma_w2("relu"), default_sigma_w2("leaky_relu", 0.2), default_sigma_w2("tanh")
    (2.0, 1.92, 1.0)
    """
    if activation == "leaky_relu":
        return round(2.0 / (1.0 + float(slope) ** 2), 2)
    if activation in DEFAULT_SIGMA_W2:
        return DEFAULT_SIGMA_W2[activation]
    act = fpcore.get_activation(activation)  # erf and any other odd activation: 1 / phi'(0)^2
    import numpy as np

    d0 = float(np.asarray(act.dphi(np.zeros(1)))[0])
    return round(1.0 / (d0 * d0), 4) if d0 != 0 and math.isfinite(d0) else 1.0


def apply_preset(state, key: str) -> str:
    """Set the controls of ``state`` to preset ``key``; returns the preset's sentence."""
    if key not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {key!r}")
    p = PRESETS[key]
    params = dict(p.params)
    if p.critical:
        net = fpcore.Network([params["base_width"]] * (params["depth"] + 1), params["activation"],
                             sigma_w2=params["sigma_w2"], sigma_b2=params["sigma_b2"], init=params["init"],
                             q0="fixed_point")  # fmt: skip
        r = fpcore.tune_init(net, "criticality")
        if r.reachable:
            params["sigma_w2"] = round(float(r.sigma_w2[0]), 6)
    state.param.update(**params)
    return p.sentence


def choose_activation(state, name: str) -> None:
    """The user picked activation ``name``: set it together with its usual ``sigma_w2``
    (:func:`default_sigma_w2`) in one update, so only one spectrum is computed."""
    if name == state.activation:
        return
    state.param.update(activation=name, sigma_w2=default_sigma_w2(name, state.slope))


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def download_name(net, kind: str, ext: str, gram: str = "JtJ") -> str:
    """A file name that carries the configuration, e.g. ``spectrum_relu_L10_w400_sw2-2.0.csv``.

    Examples
    --------
    >>> download_name(fpcore.Network([400] * 11, "relu", sigma_w2=2.0), "spectrum", "csv")
    'spectrum_relu_L10_w400_sw2-2.0.csv'
    >>> download_name(fpcore.Network([784, 512, 10], "tanh", sigma_w2=1.5, sigma_b2=0.05,
    ...               init="orthogonal"), "metrics", "json", gram="JJt")
    'metrics_tanh_L2_w784-512-10_sw2-1.5_sb2-0.05_orth_JJt.json'
    """
    acts = sorted({a.name + (f"{a.params[0]:g}" if a.params and a.name != "erf" else "") for a in net.activations})
    widths = net.widths
    w = f"w{widths[0]}" if len(set(widths)) == 1 else "w" + "-".join(str(v) for v in widths)
    if len(w) > 40:
        w = f"w{widths[0]}-to-{widths[-1]}"
    parts = [kind, "+".join(acts), f"L{net.depth}", w, f"sw2-{_num(net.sigma_w2)}"]
    if any(v != 0 for v in net.sigma_b2):
        parts.append(f"sb2-{_num(net.sigma_b2)}")
    if net.init != "gaussian":
        parts.append("orth")
    if net.q0 == "fixed_point":
        parts.append("qstar")
    elif net.q0 != 1.0:
        parts.append(f"q0-{net.q0:g}")
    if gram != "JtJ":
        parts.append(gram)
    return _SAFE.sub("", "_".join(parts)) + "." + ext


def _num(v) -> str:
    vals = sorted(set(float(x) for x in v))
    return "-".join(f"{x:.6g}" if x != int(x) or abs(x) >= 1e6 else f"{x:.1f}" for x in vals[:3])


_WORDS = (("sigma_w2", "σ_w²"), ("sigma_b2", "σ_b²"), ("chi_1", "χ₁"), ("phi'(0)^2", "φ′(0)²"), ("q*", "q*"))


def tune_message(result, lo: float, hi: float, lo_b: float, hi_b: float) -> tuple[bool, str]:
    """``(move the sliders?, message)`` for a :class:`fpcore.TuneResult`: move only when the
    target was reached and both variances lie within the sliders' ranges ``[lo, hi]``, ``[lo_b, hi_b]``."""
    msg = result.message
    for a, b in _WORDS:
        msg = msg.replace(a, b)
    sw, sb = float(result.sigma_w2[0]), float(result.sigma_b2[0])
    if not result.reachable:
        return False, f"Not tuned (the sliders are unchanged): {msg}"
    if len(set(result.sigma_w2)) > 1 or not (lo <= sw <= hi) or not (lo_b <= sb <= hi_b):
        return False, (f"Not tuned (the sliders are unchanged): the edge of chaos is at σ_w² = {sw:.4g}, σ_b² = {sb:.4g}, "
                       f"outside the sliders' range (σ_w² in [{lo:g}, {hi:g}], σ_b² in [{lo_b:g}, {hi_b:g}]).")  # fmt: skip
    return True, f"Tuned: {msg[0].upper()}{msg[1:]}."


def spectrum_csv_with_sample(result, mc=None) -> str:
    """``x, density, cdf`` of the spectrum and, when the Monte Carlo sample belongs to this
    network, its eigenvalues in a fourth column ``mc_eigenvalue`` (one table; blank cells where
    a column is shorter). A comment line names the network, the atom, ``lambda_max`` and the sample.
    """
    import io

    import numpy as np

    if result is None:
        return "x,density,cdf,mc_eigenvalue\n"
    s = result.spectrum
    x = np.asarray(s.x, float)
    d = np.asarray(s.density, float)
    F = np.asarray(result.cdf_grid, float)
    ev = np.array([])
    note = ""
    if mc is not None and mc.network == result.network and mc.gram == result.gram:
        ev = np.sort(np.asarray(mc.eigenvalues, float).ravel())
        note = (f", monte_carlo: {mc.n_samples} network(s) of widths {list(mc.sampled_widths)}, "
                f"{ev.size} eigenvalues, KS={mc.ks:.4g}")  # fmt: skip
    buf = io.StringIO()
    buf.write(f"# {s.network!r}, gram={result.gram}, atom_at_0={float(s.atom)!r}, "
              f"lambda_max={float(s.lambda_max)!r}{note}\n")  # fmt: skip
    buf.write("x,density,cdf,mc_eigenvalue\n")
    for i in range(max(x.size, ev.size)):
        row = [f"{x[i]!r},{d[i]!r},{F[i]!r}" if i < x.size else ",,", repr(float(ev[i])) if i < ev.size else ""]
        buf.write(",".join(row) + "\n")
    return buf.getvalue()
