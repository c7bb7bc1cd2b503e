"""Build the :class:`~fpcore.Network` of a PyTorch model (torch is imported lazily, only here).

A practitioner analyses their own model before training::

    net = fpcore.from_torch(model)
    spec = fpcore.jacobian_spectrum(net)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._activations import get_activation
from ._network import Network

__all__ = ["from_torch"]

# Relative tolerance for recognising a variance-matched orthogonal weight (W W^T or W^T W a
# multiple of the identity). Gaussian weights miss it by O(1/sqrt(N)), float32 rounding by ~1e-6.
_ORTHO_RTOL = 1e-4


def _activation_of(module, nn):
    """The fpcore activation of a torch activation module (ValueError when unsupported)."""
    if isinstance(module, nn.Identity):
        return get_activation("linear")
    if isinstance(module, nn.ReLU):
        return get_activation("relu")
    if isinstance(module, nn.LeakyReLU):
        return get_activation("leaky_relu", slope=float(module.negative_slope))
    if isinstance(module, nn.Hardtanh):
        # nn.ReLU6 is a Hardtanh(0, 6) subclass: only the default clip (-1, 1) is hard-tanh.
        if type(module) is not nn.Hardtanh or (module.min_val, module.max_val) != (-1.0, 1.0):
            raise ValueError(
                f"from_torch: only nn.Hardtanh(-1, 1) is supported, got {module!r} "
                f"(min_val={getattr(module, 'min_val', None)}, max_val={getattr(module, 'max_val', None)})"
            )
        return get_activation("hard_tanh")
    if isinstance(module, nn.Tanh):
        return get_activation("tanh")
    if isinstance(module, nn.Sigmoid):
        return get_activation("sigmoid")
    if isinstance(module, nn.GELU):
        if module.approximate != "none":
            raise ValueError(
                f"from_torch: only the exact nn.GELU() is supported, got approximate={module.approximate!r}"
            )
        return get_activation("gelu")
    if isinstance(module, nn.SiLU):
        return get_activation("silu")
    if isinstance(module, nn.SELU):
        return get_activation("selu")
    if isinstance(module, nn.ELU):
        return get_activation("elu", alpha=float(module.alpha))
    if isinstance(module, nn.Softplus):
        if float(module.beta) != 1.0:
            raise ValueError(f"from_torch: only nn.Softplus(beta=1) is supported, got beta={module.beta!r}")
        return get_activation("softplus")
    raise ValueError(
        f"from_torch: unsupported module {module!r}; expected nn.Linear and activations "
        "(ReLU, LeakyReLU, Hardtanh, Tanh, Sigmoid, GELU, SiLU, SELU, ELU, Softplus, Identity)"
    )


def _flatten(model, nn):
    if isinstance(model, nn.Sequential):
        out = []
        for child in model:
            out.extend(_flatten(child, nn))
        return out
    return [model]


def _is_orthogonal(w: np.ndarray) -> bool:
    n_out, n_in = w.shape
    g = w @ w.T if n_out <= n_in else w.T @ w  # the small Gram matrix
    scale = np.trace(g) / g.shape[0]
    if not scale > 0:
        return False
    return bool(np.max(np.abs(g / scale - np.eye(g.shape[0]))) <= _ORTHO_RTOL)


def _per_layer_arg(name, value, depth):
    if value is None:
        return None
    if np.ndim(value) == 0:
        return [value] * depth
    value = list(value)
    if len(value) != depth:
        raise ValueError(f"from_torch: {name} must be a float or one value per Linear layer ({depth}), got {value!r}")
    return value


def from_torch(model, sigma_w2=None, sigma_b2=None, init=None, q0=None) -> Network:
    """The :class:`Network` of a PyTorch ``nn.Sequential`` of ``Linear`` layers and activations.

    Parameters
    ----------
    model : torch.nn.Sequential
        ``Linear`` layers, each optionally followed by one activation module: ``ReLU``,
        ``LeakyReLU`` (its ``negative_slope``), ``Hardtanh`` (default ``(-1, 1)`` only), ``Tanh``,
        ``Sigmoid``, ``GELU`` (exact), ``SiLU``, ``SELU``, ``ELU`` (its ``alpha``), ``Softplus``
        (``beta=1``) or ``Identity``. A ``Linear`` with no activation after it (e.g. a final
        readout) is a linear layer. Nested ``Sequential`` containers are flattened.
    sigma_w2, sigma_b2 : float or sequence of float, optional
        Weight and bias variances (fan-in convention, one value or one per ``Linear``).
    init : {"gaussian", "orthogonal"}, optional
    q0 : float or "fixed_point", optional
        Input variance; default 1.0.

    Each of ``sigma_w2, sigma_b2, init, q0`` is taken, in this order of precedence, from the keyword
    argument, from ``model.fpcore_init`` (a dict the ``experiments`` sampler sets), or estimated
    from the weights: ``sigma_w2 = N_{l-1} * mean(W_l^2)``, ``sigma_b2 = mean(b_l^2)`` (0 without
    bias), ``init = "orthogonal"`` when every weight is a multiple of a matrix with orthonormal rows
    or columns, else ``"gaussian"``. Estimates describe the weights *as they are now*: call this
    before training.

    Raises
    ------
    ValueError
        For a module that is not ``Linear`` or a supported activation, an activation not preceded
        by a ``Linear``, or mismatched consecutive ``Linear`` shapes.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(100, 200), nn.ReLU(), nn.Linear(200, 10))
    >>> net = from_torch(model, sigma_w2=2.0, sigma_b2=0.0, init="gaussian")
    >>> net.widths, [a.name for a in net.activations]
    ((100, 200, 10), ['relu', 'linear'])
    """
    try:
        import torch
        from torch import nn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("fpcore.from_torch needs PyTorch: pip install torch") from exc

    if not isinstance(model, nn.Module):
        raise ValueError(f"from_torch: expected a torch.nn.Sequential, got {type(model).__name__}")
    modules = _flatten(model, nn) if isinstance(model, nn.Sequential) else [model]

    linears, activations = [], []
    for m in modules:
        if isinstance(m, nn.Linear):
            if linears and len(activations) < len(linears):
                activations.append(get_activation("linear"))  # Linear directly after Linear
            if linears and linears[-1].out_features != m.in_features:
                raise ValueError(
                    f"from_torch: Linear({m.in_features}, ...) follows a layer of width {linears[-1].out_features}"
                )
            linears.append(m)
        else:
            act = _activation_of(m, nn)
            if not linears:
                raise ValueError(f"from_torch: activation {m!r} before the first nn.Linear")
            if len(activations) == len(linears):
                if isinstance(m, nn.Identity):
                    continue  # an Identity after an activation changes nothing
                raise ValueError(f"from_torch: two activations in a row ({m!r}); one per Linear layer")
            activations.append(act)
    if not linears:
        raise ValueError("from_torch: the model has no nn.Linear layer")
    if len(activations) < len(linears):
        activations.append(get_activation("linear"))  # final Linear without activation

    depth = len(linears)
    widths = [linears[0].in_features] + [lin.out_features for lin in linears]
    weights = [lin.weight.detach().to("cpu", dtype=torch.float64).numpy() for lin in linears]
    biases = [None if lin.bias is None else lin.bias.detach().to("cpu", dtype=torch.float64).numpy() for lin in linears]

    attrs = getattr(model, "fpcore_init", None) or {}
    if not isinstance(attrs, dict):
        raise ValueError(f"from_torch: model.fpcore_init must be a dict, got {type(attrs).__name__}")

    def pick(name, given):
        return given if given is not None else attrs.get(name)

    sw = _per_layer_arg("sigma_w2", pick("sigma_w2", sigma_w2), depth)
    if sw is None:
        sw = [float(w.shape[1] * np.mean(w * w)) for w in weights]
    sb = _per_layer_arg("sigma_b2", pick("sigma_b2", sigma_b2), depth)
    if sb is None:
        sb = [0.0 if b is None else float(np.mean(b * b)) for b in biases]
    init_ = pick("init", init)
    if init_ is None:
        init_ = "orthogonal" if all(_is_orthogonal(w) for w in weights) else "gaussian"
    q0_ = pick("q0", q0)
    if q0_ is None:
        q0_ = 1.0
    if isinstance(q0_, numbers.Real) and not isinstance(q0_, bool) and not math.isfinite(q0_):
        raise ValueError(f"from_torch: q0 must be finite, got {q0_!r}")
    return Network(widths, activation=activations, sigma_w2=sw, sigma_b2=sb, init=init_, q0=q0_)
