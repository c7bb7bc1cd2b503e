"""Description and validation of a fully-connected network at initialisation (MATH.md section 1)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._activations import Activation, get_activation

__all__ = ["Network"]

_INITS = ("gaussian", "orthogonal")
_GRAMS = ("JtJ", "JJt")


def _check_gram(gram: str) -> str:
    if gram not in _GRAMS:
        raise ValueError(f"gram must be one of {_GRAMS}, got {gram!r}")
    return gram


def _per_layer(name: str, value, depth: int, positive: bool) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a float or a sequence of {depth} floats, got {value!r}")
    if np.ndim(value) == 0:
        values = [value] * depth
    else:
        values = list(value)
        if len(values) != depth:
            raise ValueError(f"{name} must have one value per layer ({depth}), got {len(values)}: {value!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise ValueError(f"{name} must contain real numbers, got {v!r}")
        v = float(v)
        if not math.isfinite(v) or (v <= 0 if positive else v < 0):
            kind = "positive" if positive else "non-negative"
            raise ValueError(f"{name} must be finite and {kind}, got {v!r}")
        out.append(v)
    return tuple(out)


@dataclass(frozen=True, init=False)
class Network:
    """A fully-connected network at random initialisation.

    Parameters
    ----------
    widths : sequence of int
        ``[N_0, ..., N_L]``: input width then the width of each of the ``L`` layers.
    activation : str, Activation, (phi, dphi) or a sequence of these
        One activation for all layers or one per layer (see :func:`fpcore.get_activation`).
    sigma_w2, sigma_b2 : float or sequence of float
        Weight and bias variances, fan-in convention: ``E[W_ij^2] = sigma_w2 / N_{l-1}``.
    init : {"gaussian", "orthogonal"}
        Weight distribution; orthogonal weights are variance-matched (MATH.md section 1).
    q0 : float or "fixed_point"
        Variance of the input entries, or ``"fixed_point"``: the input is drawn so that the
        first layer's pre-activations sit at the first layer's mean-field fixed point ``q*``
        (``q_1 = q*``, input variance ``(q* - sigma_b2[0]) / sigma_w2[0]``), and the later layers
        follow the mean-field recursion from there. Layers that repeat the first layer's
        ``(activation, sigma_w2, sigma_b2)`` stay at ``q*``; a layer with other parameters moves
        to wherever the recursion takes it (no input puts every layer at its own fixed point).
        A first layer without a finite fixed point whose law of ``D^2`` does not depend on ``q``
        (ReLU, leaky ReLU: ``sigma_w2`` above their critical value) takes ``q_1 = 1``. Theory and :func:`fpcore.sample_jacobian_eigenvalues` use this same definition.

    Examples
    --------
    >>> net = Network([100, 200, 100], activation="relu", sigma_w2=2.0)
    >>> net.depth
    2
    """

    widths: tuple[int, ...]
    activations: tuple[Activation, ...]
    sigma_w2: tuple[float, ...]
    sigma_b2: tuple[float, ...]
    init: str
    q0: float | str

    def __init__(
        self,
        widths: Sequence[int],
        activation="relu",
        sigma_w2: float | Sequence[float] = 2.0,
        sigma_b2: float | Sequence[float] = 0.0,
        init: str = "gaussian",
        q0: float | str = 1.0,
    ) -> None:
        if isinstance(widths, (str, bytes)) or np.ndim(widths) != 1:
            raise ValueError(f"widths must be a sequence [N_0, ..., N_L] of positive integers, got {widths!r}")
        widths = list(widths)
        if len(widths) < 2:
            raise ValueError(f"widths must hold the input width and at least one layer width, got {widths!r}")
        clean = []
        for w in widths:
            if isinstance(w, bool) or not isinstance(w, numbers.Integral) and not (
                isinstance(w, numbers.Real) and float(w).is_integer()
            ):
                raise ValueError(f"widths must be positive integers, got {w!r} in {widths!r}")
            if int(w) <= 0:
                raise ValueError(f"widths must be positive integers, got {w!r} in {widths!r}")
            clean.append(int(w))
        depth = len(clean) - 1

        if isinstance(activation, (list, tuple)) and not (
            len(activation) == 2 and callable(activation[0]) and callable(activation[1])
        ):
            if len(activation) != depth:
                raise ValueError(
                    f"activation must be one activation or one per layer ({depth}), got {len(activation)}: {activation!r}"
                )
            acts = tuple(get_activation(a) for a in activation)
        else:
            acts = (get_activation(activation),) * depth

        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {init!r}")
        if isinstance(q0, str):
            if q0 != "fixed_point":
                raise ValueError(f"q0 must be a positive float or 'fixed_point', got {q0!r}")
        else:
            if isinstance(q0, bool) or not isinstance(q0, numbers.Real) or not math.isfinite(q0) or q0 <= 0:
                raise ValueError(f"q0 must be a positive float or 'fixed_point', got {q0!r}")
            q0 = float(q0)

        object.__setattr__(self, "widths", tuple(clean))
        object.__setattr__(self, "activations", acts)
        object.__setattr__(self, "sigma_w2", _per_layer("sigma_w2", sigma_w2, depth, positive=True))
        object.__setattr__(self, "sigma_b2", _per_layer("sigma_b2", sigma_b2, depth, positive=False))
        object.__setattr__(self, "init", init)
        object.__setattr__(self, "q0", q0)

    @property
    def depth(self) -> int:
        """Number of layers ``L``."""
        return len(self.widths) - 1

    def replace(self, **changes) -> "Network":
        """A copy with some constructor arguments changed.

        Examples
        --------
        >>> Network([10, 10]).replace(sigma_w2=1.0).sigma_w2
        (1.0,)
        """
        kw = dict(
            widths=self.widths,
            activation=list(self.activations),
            sigma_w2=self.sigma_w2,
            sigma_b2=self.sigma_b2,
            init=self.init,
            q0=self.q0,
        )
        kw.update(changes)
        return Network(**kw)

    def __repr__(self) -> str:
        names = sorted({a.spec for a in self.activations})
        act = names[0] if len(names) == 1 else [a.spec for a in self.activations]
        sw = self.sigma_w2[0] if len(set(self.sigma_w2)) == 1 else list(self.sigma_w2)
        sb = self.sigma_b2[0] if len(set(self.sigma_b2)) == 1 else list(self.sigma_b2)
        return (
            f"Network(widths={list(self.widths)}, activation={act!r}, sigma_w2={sw}, sigma_b2={sb}, "
            f"init={self.init!r}, q0={self.q0!r})"
        )
