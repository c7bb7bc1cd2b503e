"""Sampled architectures and the :class:`fpcore.Network` of exactly the network that is trained.

Conventions (one place, used by the metrics, the torch model and ``fpcore.from_torch``):

* **Widths.** A classifier ``N_0 -> N_1 -> ... -> N_H -> C``: ``H`` hidden layers, then a linear
  readout to the ``C`` classes. The **width ratio** of hidden layer ``l`` is ``r_l = N_l / N_0``
  (relative to the *input* width, i.e. ``1 / Lambda_l`` in MATH.md section 3), drawn independently
  per layer from ``{1/4, 1/2, 1, 2, 4}``; ``N_l = round(r_l N_0)``.
* **Weights.** Fan-in convention ``E[W_ij^2] = sigma_w2 / N_{l-1}``, Gaussian or variance-matched
  orthogonal (MATH.md section 1); biases ``N(0, sigma_b2)``. Hidden layers share ``sigma_w2``,
  ``sigma_b2`` and the activation; the readout layer has the same ``init``, ``sigma_w2 = 1`` and
  ``sigma_b2 = 0`` (zero biases) for every architecture.
* **Gain.** ``sigma_w2 = gain * sigma_w2_nominal(activation)``, ``gain`` log-uniform in
  ``[1/2, 2]``, where the nominal value is the edge of chaos for ``sigma_b2 = 0`` (2 for ReLU,
  ``2 / (1 + a^2)`` for leaky ReLU, 1 for linear, hard-tanh and tanh). The recorded ``chi_1`` is the
  exact mean-field value, biases and the data's ``q0`` included.
* **The analysed network** (:meth:`Architecture.network`) is the whole trained map from the input
  to the logits: the hidden layers *and the linear readout*. :meth:`Architecture.hidden_network` is
  the hidden stack alone (the seed paper's object); its metrics are recorded too, prefixed
  ``hidden_``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from fpcore import ACTIVATIONS

__all__ = [
    "Architecture",
    "sample_architectures",
    "nominal_sigma_w2",
    "DEFAULT_ACTIVATIONS",
    "WIDTH_RATIOS",
    "DEPTHS",
    "GAIN_RANGE",
    "SIGMA_B2_CHOICES",
    "LEAKY_SLOPES",
    "ALL_ACTIVATIONS",
    "SWEEPS",
    "sweep_sampler",
]

DEFAULT_ACTIVATIONS = ("relu", "leaky_relu", "hard_tanh", "linear")
WIDTH_RATIOS = (0.25, 0.5, 1.0, 2.0, 4.0)
DEPTHS = (1, 2, 3, 4, 5, 6, 8)
GAIN_RANGE = (0.5, 2.0)
SIGMA_B2_CHOICES = (0.0, 0.05, 0.2)
LEAKY_SLOPES = (0.1, 0.3)
INITS = ("gaussian", "orthogonal")
READOUT_SIGMA_W2 = 1.0
READOUT_SIGMA_B2 = 0.0


def nominal_sigma_w2(activation: str) -> float:
    """Edge-of-chaos ``sigma_w2`` at ``sigma_b2 = 0`` used to scale the sampled gains.

    Examples
    --------
    >>> nominal_sigma_w2("relu"), nominal_sigma_w2("leaky_relu:0.5")
    (2.0, 1.6)
    """
    name, _, arg = activation.partition(":")
    if name == "relu":
        return 2.0
    if name == "leaky_relu":
        a = float(arg) if arg else 0.01
        return 2.0 / (1.0 + a * a)
    if name in ("gelu", "silu", "elu", "softplus"):
        return 2.0  # ReLU-like for large inputs; exact chi_1 is recorded anyway
    return 1.0  # linear, hard_tanh, tanh, erf, selu, sigmoid (scale only matters for coverage)


@dataclass(frozen=True)
class Architecture:
    """One sampled classifier ``n_in -> hidden... -> n_out`` at initialisation."""

    n_in: int
    hidden: tuple[int, ...]
    n_out: int
    activation: str
    sigma_w2: float
    sigma_b2: float
    init: str
    gain: float = float("nan")
    bias: bool = True

    def __post_init__(self):
        if not self.bias and self.sigma_b2 != 0:
            raise ValueError(f"sigma_b2: a network without biases needs sigma_b2 = 0, got {self.sigma_b2!r}")

    @property
    def depth(self) -> int:
        """Number of hidden layers ``H`` (the trained network has ``H + 1`` linear layers)."""
        return len(self.hidden)

    @property
    def widths(self) -> tuple[int, ...]:
        """All widths of the trained network, readout included."""
        return (self.n_in, *self.hidden, self.n_out)

    @property
    def width_ratios(self) -> tuple[float, ...]:
        """``N_l / N_0`` of each hidden layer."""
        return tuple(h / self.n_in for h in self.hidden)

    @property
    def activation_name(self) -> str:
        return self.activation.partition(":")[0]

    @property
    def arch_id(self) -> str:
        """Stable short hash of the architecture (names result files; resumability key)."""
        d = asdict(self)
        d.pop("gain")  # derived, kept for the tables only
        if d["bias"]:
            d.pop("bias")  # networks with biases keep the ids they had before the field existed
        blob = json.dumps(d, sort_keys=True, default=list)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def layer_sigma_w2(self) -> list[float]:
        return [self.sigma_w2] * self.depth + [READOUT_SIGMA_W2]

    def layer_sigma_b2(self) -> list[float]:
        return [self.sigma_b2] * self.depth + [READOUT_SIGMA_B2]

    def _fpcore_scale(self) -> float:
        """Pre-activation variance factor that makes fpcore's activation the trained one.

        The trained ``erf`` is ``torch.erf(x)``. An fpcore whose ``"erf"`` means
        ``erf(sqrt(pi)/2 x)`` analyses the same network when the pre-activations of the erf layers
        are scaled by ``2/sqrt(pi)``, i.e. their ``sigma_w2, sigma_b2`` by ``4/pi`` (the Jacobian
        ``phi'(h) W`` is unchanged). 1 for every other activation and for an fpcore whose ``"erf"``
        is ``erf(x)``.
        """
        if self.activation_name != "erf":
            return 1.0
        from fpcore._activations import get_activation

        phi1 = float(get_activation("erf").phi(1.0))
        if abs(phi1 - math.erf(1.0)) < 1e-12:
            return 1.0
        if abs(phi1 - math.erf(math.sqrt(math.pi) / 2)) < 1e-12:
            return 4.0 / math.pi
        raise ValueError(f"activation: fpcore's 'erf' is neither erf(x) nor erf(sqrt(pi)/2 x) (erf(1) -> {phi1})")

    def network(self, q0: float = 1.0):
        """The :class:`fpcore.Network` of the trained map input -> logits (readout included)."""
        import fpcore

        c = self._fpcore_scale()
        return fpcore.Network(
            list(self.widths),
            activation=[self.activation] * self.depth + ["linear"],
            sigma_w2=[c * v for v in self.layer_sigma_w2()[:-1]] + [READOUT_SIGMA_W2],
            sigma_b2=[c * v for v in self.layer_sigma_b2()[:-1]] + [READOUT_SIGMA_B2],
            init=self.init,
            q0=q0,
        )

    def hidden_network(self, q0: float = 1.0):
        """The :class:`fpcore.Network` of the hidden stack alone (input -> last hidden layer)."""
        import fpcore

        c = self._fpcore_scale()
        return fpcore.Network(
            [self.n_in, *self.hidden],
            activation=self.activation,
            sigma_w2=c * self.sigma_w2,
            sigma_b2=c * self.sigma_b2,
            init=self.init,
            q0=q0,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Architecture":
        d = dict(d)
        d["hidden"] = tuple(int(h) for h in d["hidden"])
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def describe(self) -> str:
        return (
            f"{self.activation} {self.init} {'-'.join(map(str, self.widths))} "
            f"sigma_w2={self.sigma_w2:.3g} sigma_b2={self.sigma_b2:g}"
        )


def sample_architectures(
    n: int,
    n_in: int,
    n_out: int,
    seed: int = 0,
    activations: Sequence[str] = DEFAULT_ACTIVATIONS,
    depths: Sequence[int] = DEPTHS,
    width_ratios: Sequence[float] = WIDTH_RATIOS,
    gain_range: tuple[float, float] = GAIN_RANGE,
    sigma_b2_choices: Sequence[float] = SIGMA_B2_CHOICES,
    inits: Sequence[str] = INITS,
    gain_choices: Sequence[float] | None = None,
    bias: bool = True,
    leaky_slopes: Sequence[float] = LEAKY_SLOPES,
) -> list[Architecture]:
    """Sample ``n`` distinct architectures; the ``i``-th draw depends only on ``(seed, i)`` and the
    choice sets (a draw repeating an earlier architecture is skipped).

    So a longer sweep with the same settings extends a shorter one (resumability).

    ``gain`` is the *variance* gain: ``sigma_w2 = gain * nominal_sigma_w2(activation)``. It is drawn
    log-uniformly from ``gain_range``, or uniformly from the discrete ``gain_choices`` when given
    (the protocol-matched sweep: std gains ``{1/4, ..., 4}`` are variance gains ``{1/16, ..., 16}``).
    ``bias=False`` builds networks without bias parameters (``sigma_b2 = 0``).

    Examples
    --------
    >>> archs = sample_architectures(3, n_in=64, n_out=10, seed=0)
    >>> [a.widths[0] for a in archs], all(a.widths[-1] == 10 for a in archs)
    ([64, 64, 64], True)
    """
    lo, hi = gain_range
    if not (0 < lo <= hi):
        raise ValueError(f"gain_range must satisfy 0 < lo <= hi, got {gain_range!r}")
    if gain_choices is not None and not all(g > 0 for g in gain_choices):
        raise ValueError(f"gain_choices must be positive, got {gain_choices!r}")
    out, seen, i = [], set(), -1
    while len(out) < n:
        i += 1
        if i > 1000 * n + 1000:
            raise ValueError(f"n: only {len(out)} distinct architectures found in {i} draws, asked for {n}")
        rng = np.random.default_rng([seed, i])
        act = str(rng.choice(list(activations)))
        if act == "leaky_relu":
            act = f"leaky_relu:{float(rng.choice(list(leaky_slopes))):g}"
        depth = int(rng.choice(list(depths)))
        ratios = rng.choice(list(width_ratios), size=depth)
        hidden = tuple(max(1, int(round(r * n_in))) for r in ratios)
        if gain_choices is None:
            gain = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        else:
            gain = float(rng.choice(list(gain_choices)))
        sigma_w2 = round(gain * nominal_sigma_w2(act), 6)
        sigma_b2 = float(rng.choice(list(sigma_b2_choices))) if bias else 0.0
        init = str(rng.choice(list(inits)))
        arch = Architecture(n_in, hidden, n_out, act, sigma_w2, sigma_b2, init, round(gain, 6), bool(bias))
        if arch.arch_id in seen:  # a repeated draw (discrete choice sets): the architecture is the unit
            continue
        seen.add(arch.arch_id)
        out.append(arch)
    return out


#: Every activation fpcore's spectrum solver knows, smooth ones included (the same tuple, in the
#: same order, as ``fpcore.ACTIVATIONS``); ``leaky_relu`` gets a slope from ``LEAKY_SLOPES``,
#: ``elu`` its default alpha 1.
ALL_ACTIVATIONS = ACTIVATIONS

# The seed notebook's protocol: ReLU, depth 3, no bias, Gaussian init, std gain in
# {1/4, 1/2, 1, 2, 4} around He (variance gain = std gain squared), width ratios per layer,
# plain SGD lr 1e-3, batch 64, 50 epochs, final train loss.
_PROTOCOL_SAMPLER = dict(
    activations=("relu",),
    depths=(3,),
    gain_choices=(1 / 16, 1 / 4, 1.0, 4.0, 16.0),
    sigma_b2_choices=(0.0,),
    inits=("gaussian",),
    bias=False,
)
_PROTOCOL_TRAIN = dict(epochs=50, batch_size=64, optimizer="sgd", lr=0.001, momentum=0.0)

#: Named sweeps: task, sampler options (keyword arguments of :func:`sample_architectures`),
#: training options (:class:`experiments.training.TrainConfig`) and the default extent.
SWEEPS = {
    "protocol_digits": dict(
        task="digits",
        sampler=dict(_PROTOCOL_SAMPLER),
        train=dict(_PROTOCOL_TRAIN),
        n_arch=150,
        seeds=3,
    ),
    "protocol_mnist1d": dict(
        task="mnist1d",
        sampler=dict(_PROTOCOL_SAMPLER),
        train=dict(_PROTOCOL_TRAIN),
        n_arch=100,
        seeds=2,  # the committed results: 100 architectures x 2 seeds
    ),
    # The wider main sweep: variance gain 1/16..16, depth up to 20, every activation, both inits.
    "main_digits": dict(
        task="digits",
        sampler=dict(
            activations=ALL_ACTIVATIONS,
            depths=(1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20),
            gain_range=(1 / 16, 16.0),
            sigma_b2_choices=SIGMA_B2_CHOICES,
            inits=INITS,
            # widths up to 2 N_0 (the first round: up to 4 N_0) and 20 epochs, so every target is
            # recorded at epochs 1, 2, 5, 10 and 20 (the last); 400 x 3 runs train in minutes
            width_ratios=(0.25, 0.5, 1.0, 2.0),
        ),
        train=dict(epochs=20, batch_size=64, optimizer="sgd", lr=0.01, momentum=0.9),
        n_arch=400,
        seeds=3,
    ),
}


def sweep_sampler(name_or_sampler) -> dict:
    """The sampler options of a named sweep (a dict is returned as is, JSON-normalised)."""
    s = SWEEPS[name_or_sampler]["sampler"] if isinstance(name_or_sampler, str) else name_or_sampler
    return json.loads(json.dumps({k: list(v) if isinstance(v, (tuple, list)) else v for k, v in s.items()}))


#: Columns that describe an architecture in the results tables (one row per architecture).
ARCH_COLUMNS = (
    "arch_id",
    "activation",
    "activation_name",
    "init",
    "depth",
    "widths",
    "sigma_w2",
    "sigma_b2",
    "gain",
    "min_width_ratio",
    "max_width_ratio",
    "bias",
)
