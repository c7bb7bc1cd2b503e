"""Activations and the laws of their squared derivatives ``D^2 = phi'(sqrt(q) Z)^2``.

Each activation knows three things the rest of the core needs (MATH.md sections 1-2):

* ``second_moment(q) = E[phi(sqrt(q) Z)^2]`` for the mean-field recursion,
* ``d2_law(q)``: the law of ``phi'(sqrt(q) Z)^2`` as a :class:`D2Law`,
* ``d2_moment(q, k) = E[phi'(sqrt(q) Z)^(2k)]``.

Piecewise-linear activations (linear, ReLU, hard-tanh, leaky ReLU) have laws with one or two
atoms and closed-form moments; smooth activations have continuous laws, represented by a
quadrature rule in ``h = sqrt(q) Z``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import special

__all__ = ["Activation", "D2Law", "get_activation", "ACTIVATIONS"]

# Probabilists' Gauss-Hermite rule: E[g(Z)] ~= sum w_i g(x_i).
_GH_N = 160
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(_GH_N)
_GH_W = _GH_W / math.sqrt(2.0 * math.pi)


def gaussian_expectation(g: Callable[[np.ndarray], np.ndarray], q: np.ndarray | float) -> np.ndarray:
    """``E[g(sqrt(q) Z)]`` by Gauss-Hermite quadrature, vectorised over ``q``."""
    q = np.asarray(q, dtype=float)
    h = np.sqrt(q)[..., None] * _GH_X
    return np.sum(_GH_W * g(h), axis=-1)


@dataclass(frozen=True)
class D2Law:
    """Law of ``D^2`` as weighted atoms (``values``, ``weights``).

    ``kind`` is ``"bernoulli"`` for ``(1-p) delta_0 + p delta_c`` (rational S-transform),
    ``"discrete"`` for finitely many atoms, ``"continuous"`` for a quadrature rule standing for a
    continuous law.
    """

    kind: str
    values: np.ndarray
    weights: np.ndarray
    p_nonzero: float

    @property
    def mean(self) -> float:
        return float(np.dot(self.weights, self.values))

    def moment(self, k: int) -> float:
        return float(np.dot(self.weights, self.values**k))

    @property
    def scale(self) -> float:
        """Non-zero atom of a Bernoulli law (1 for ReLU, linear and hard-tanh)."""
        if self.kind != "bernoulli":
            raise AttributeError("scale is defined for Bernoulli laws only")
        return float(self.values[-1])

    def key(self) -> tuple:
        return (self.kind, tuple(np.round(self.values, 15)), tuple(np.round(self.weights, 15)))


def _bernoulli(p: float, c: float = 1.0) -> D2Law:
    return D2Law("bernoulli", np.array([0.0, c]), np.array([1.0 - p, p]), float(p))


@dataclass(frozen=True)
class Activation:
    """A scalar activation ``phi`` with its derivative ``dphi``.

    Use :func:`get_activation` to build one by name, or pass ``(phi, dphi)`` (two vectorised
    callables) wherever an activation is accepted.
    """

    name: str
    phi: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False)
    dphi: Callable[[np.ndarray], np.ndarray] = field(repr=False, compare=False)
    params: tuple = ()
    family: str = "smooth"  # "linear", "relu", "leaky_relu", "hard_tanh", "erf", "smooth"

    @property
    def d2_depends_on_q(self) -> bool:
        """Whether the law of ``D^2`` changes with the pre-activation variance."""
        return self.family not in ("linear", "relu", "leaky_relu")

    @property
    def is_piecewise_linear(self) -> bool:
        return self.family in ("linear", "relu", "leaky_relu", "hard_tanh")

    # -- mean field -------------------------------------------------------------------------
    def second_moment(self, q: np.ndarray | float) -> np.ndarray:
        """``E[phi(sqrt(q) Z)^2]`` (closed form where one exists)."""
        q = np.asarray(q, dtype=float)
        f = self.family
        if f == "linear":
            return q.copy()
        if f == "relu":
            return q / 2.0
        if f == "leaky_relu":
            a = self.params[0]
            return q * (1.0 + a * a) / 2.0
        if f == "hard_tanh":
            # E[clip(h,-1,1)^2] = q P(|h|<1) - 2 sqrt(q) phi(1/sqrt q) ... in closed form
            s = np.sqrt(q)
            t = 1.0 / s
            inside = q * (special.erf(t / math.sqrt(2.0)) - 2.0 * t * np.exp(-t * t / 2.0) / math.sqrt(2.0 * math.pi))
            outside = special.erfc(t / math.sqrt(2.0))
            return inside + outside
        if f == "erf":
            a = self.params[0]
            return (2.0 / math.pi) * np.arcsin(2.0 * a * a * q / (1.0 + 2.0 * a * a * q))
        return gaussian_expectation(lambda h: self.phi(h) ** 2, q)

    def d2_moment(self, q: np.ndarray | float, k: int = 1) -> np.ndarray:
        """``E[phi'(sqrt(q) Z)^(2k)]``."""
        q = np.asarray(q, dtype=float)
        f = self.family
        if f == "linear":
            return np.ones_like(q)
        if f == "relu":
            return np.full_like(q, 0.5)
        if f == "leaky_relu":
            a = self.params[0]
            return np.full_like(q, 0.5 * (1.0 + a ** (2 * k)))
        if f == "hard_tanh":
            return special.erf(1.0 / np.sqrt(2.0 * q))
        if f == "erf":
            a = self.params[0]
            return (4.0 * a * a / math.pi) ** k * (1.0 + 4.0 * k * a * a * q) ** -0.5
        return gaussian_expectation(lambda h: self.dphi(h) ** (2 * k), q)

    def d2_law(self, q: float) -> D2Law:
        """The law of ``phi'(sqrt(q) Z)^2``."""
        f = self.family
        if f == "linear":
            return _bernoulli(1.0)
        if f == "relu":
            return _bernoulli(0.5)
        if f == "hard_tanh":
            return _bernoulli(float(special.erf(1.0 / math.sqrt(2.0 * q))))
        if f == "leaky_relu":
            a = self.params[0]
            if a == 0.0:
                return _bernoulli(0.5)
            return D2Law("discrete", np.array([a * a, 1.0]), np.array([0.5, 0.5]), 1.0)
        h = math.sqrt(q) * _GH_X
        values = np.asarray(self.dphi(h), dtype=float) ** 2
        # Exact simplifications of the quadrature rule: drop nodes of negligible weight and merge
        # nodes with equal values (phi' even: tanh, erf, sigmoid give symmetric pairs).
        keep = _GH_W > 1e-18
        v, w = values[keep], _GH_W[keep]
        key = np.round(v / max(float(v.max()), 1e-300), 13)  # relative: tail values ~0 merge
        uniq, inv = np.unique(key, return_inverse=True)
        wsum = np.bincount(inv, weights=w)
        vals = np.bincount(inv, weights=w * v) / wsum
        return D2Law("continuous", vals, wsum, float(np.sum(wsum[vals > 0])))


def _sigmoid(x):
    return special.expit(x)


def _dsigmoid(x):
    s = special.expit(x)
    return s * (1.0 - s)


_SELU_L = 1.0507009873554804934193349852946
_SELU_A = 1.6732632423543772848170429916717


def _make(name: str, **kw) -> Activation:
    if name == "linear":
        return Activation("linear", lambda x: x, lambda x: np.ones_like(x), (), "linear")
    if name == "relu":
        return Activation("relu", lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float), (), "relu")
    if name == "leaky_relu":
        a = float(kw.get("slope", 0.01))
        if not (math.isfinite(a) and 0.0 <= a < 1.0):
            raise ValueError(f"slope must be in [0, 1), got {a!r}")
        return Activation(
            "leaky_relu",
            lambda x: np.where(x > 0, x, a * x),
            lambda x: np.where(x > 0, 1.0, a),
            (a,),
            "leaky_relu",
        )
    if name == "hard_tanh":
        return Activation(
            "hard_tanh", lambda x: np.clip(x, -1.0, 1.0), lambda x: (np.abs(x) < 1).astype(float), (), "hard_tanh"
        )
    if name == "tanh":
        return Activation("tanh", np.tanh, lambda x: 1.0 / np.cosh(x) ** 2)
    if name == "erf":
        a = float(kw.get("scale", math.sqrt(math.pi) / 2.0))
        if not (math.isfinite(a) and a > 0):
            raise ValueError(f"scale must be a positive float, got {a!r}")
        return Activation(
            "erf",
            lambda x: special.erf(a * x),
            lambda x: 2.0 * a / math.sqrt(math.pi) * np.exp(-((a * x) ** 2)),
            (a,),
            "erf",
        )
    if name == "sigmoid":
        return Activation("sigmoid", _sigmoid, _dsigmoid)
    if name == "gelu":
        return Activation(
            "gelu",
            lambda x: x * special.ndtr(x),
            lambda x: special.ndtr(x) + x * np.exp(-x * x / 2.0) / math.sqrt(2.0 * math.pi),
        )
    if name in ("silu", "swish"):
        return Activation("silu", lambda x: x * special.expit(x), lambda x: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))))
    if name == "selu":
        return Activation(
            "selu",
            lambda x: _SELU_L * np.where(x > 0, x, _SELU_A * np.expm1(np.minimum(x, 0.0))),
            lambda x: _SELU_L * np.where(x > 0, 1.0, _SELU_A * np.exp(np.minimum(x, 0.0))),
        )
    if name == "elu":
        al = float(kw.get("alpha", 1.0))
        return Activation(
            "elu",
            lambda x: np.where(x > 0, x, al * np.expm1(np.minimum(x, 0.0))),
            lambda x: np.where(x > 0, 1.0, al * np.exp(np.minimum(x, 0.0))),
            (al,),
        )
    if name == "softplus":
        return Activation("softplus", lambda x: np.logaddexp(0.0, x), _sigmoid)
    raise ValueError(f"activation: unknown name {name!r}; choose one of {sorted(ACTIVATIONS)}")


ACTIVATIONS = (
    "linear",
    "relu",
    "leaky_relu",
    "hard_tanh",
    "tanh",
    "erf",
    "sigmoid",
    "gelu",
    "silu",
    "selu",
    "elu",
    "softplus",
)


def _custom(phi, dphi) -> Activation:
    if not (callable(phi) and callable(dphi)):
        raise ValueError(f"activation: a custom activation must be a pair of callables (phi, dphi), got {(phi, dphi)!r}")
    probe = np.linspace(-3.0, 3.0, 7)
    for label, fn in (("phi", phi), ("dphi", dphi)):
        try:
            out = np.asarray(fn(probe), dtype=float)
        except Exception as exc:  # noqa: BLE001 - report any failure of user code clearly
            raise ValueError(f"activation: {label} failed on a numpy array ({exc!r}); it must be vectorised") from exc
        if out.shape != probe.shape:
            raise ValueError(
                f"activation: {label} must be vectorised (array in, same-shape array out); "
                f"got shape {out.shape} for input shape {probe.shape}"
            )
        if not np.all(np.isfinite(out)):
            raise ValueError(f"activation: {label} returned non-finite values on [-3, 3]")
    name = getattr(phi, "__name__", "custom")
    return Activation(f"custom:{name}", phi, dphi)


def get_activation(activation, **params) -> Activation:
    """Build an :class:`Activation`.

    Parameters
    ----------
    activation : str, Activation or (callable, callable)
        A name from ``fpcore.ACTIVATIONS`` (``"leaky_relu:0.2"`` sets the slope), an existing
        activation, or a pair ``(phi, dphi)`` of vectorised callables.
    **params
        ``slope`` for leaky ReLU (default 0.01), ``scale`` for ``erf(scale * x)``, ``alpha`` for ELU.

    Examples
    --------
    >>> get_activation("leaky_relu", slope=0.2).params
    (0.2,)
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, tuple) and len(activation) == 2:
        return _custom(*activation)
    if isinstance(activation, str):
        name, _, arg = activation.partition(":")
        if arg:
            key = {"leaky_relu": "slope", "erf": "scale", "elu": "alpha"}.get(name)
            if key is None:
                raise ValueError(f"activation: {activation!r} takes no parameter")
            try:
                params[key] = float(arg)
            except ValueError:
                raise ValueError(f"activation: bad parameter in {activation!r}") from None
        return _make(name, **params)
    raise ValueError(f"activation: expected a name, an Activation or a (phi, dphi) pair, got {activation!r}")
