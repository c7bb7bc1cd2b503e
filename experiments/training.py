"""PyTorch models of sampled architectures and their short training runs.

The model is an ``nn.Sequential`` of ``Linear`` layers and activation modules initialised exactly
as MATH.md section 1 describes (fan-in Gaussian or variance-matched Haar orthogonal weights,
``N(0, sigma_b2)`` biases), so that ``fpcore.from_torch(model)`` returns the same network as
:meth:`experiments.architectures.Architecture.network`. The model carries
``model.fpcore_init = dict(sigma_w2=[...], sigma_b2=[...], init=..., q0=...)`` for ``from_torch``.

Training: cross-entropy, mini-batches of 64 reshuffled each epoch, SGD with momentum by default
(``lr=0.01``, ``momentum=0.9``; Adam on request). After every epoch (and once before training,
epoch 0) the full training and test sets are evaluated: train loss, test loss, test accuracy. A run
whose loss becomes non-finite stops and is marked ``diverged`` (its final losses are ``inf``).
"""

from __future__ import annotations

import hashlib
import math
import time

from .architectures import Architecture

__all__ = [
    "build_model",
    "activation_module",
    "train_run",
    "TrainConfig",
    "resolve_device",
    "epoch_summary",
    "record_epochs",
    "RECORD_EPOCHS",
]


def activation_module(activation: str):
    """The ``torch.nn`` module of an activation name (``"leaky_relu:0.1"`` sets the slope).

    ``"erf"`` is ``torch.erf(x)`` (see :meth:`Architecture._fpcore_scale` for fpcore's convention).
    """
    import torch
    from torch import nn

    class Erf(nn.Module):
        def forward(self, x):
            return torch.erf(x)

    name, _, arg = activation.partition(":")
    table = {
        "linear": nn.Identity,
        "relu": nn.ReLU,
        "hard_tanh": nn.Hardtanh,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "selu": nn.SELU,
        "softplus": nn.Softplus,
        "erf": Erf,
    }
    if name == "leaky_relu":
        return nn.LeakyReLU(float(arg) if arg else 0.01)
    if name == "elu":
        return nn.ELU(float(arg) if arg else 1.0)
    if name not in table:
        raise ValueError(f"no torch module for activation {activation!r}")
    return table[name]()


def _seed_for(arch: Architecture, seed: int) -> int:
    """Independent RNG stream per (architecture, seed)."""
    return int(hashlib.sha1(f"{arch.arch_id}:{int(seed)}".encode()).hexdigest()[:15], 16)


def _init_linear(layer, sigma_w2: float, sigma_b2: float, init: str, gen) -> None:
    import torch

    n_out, n_in = layer.weight.shape
    with torch.no_grad():
        if init == "gaussian":
            w = torch.randn(n_out, n_in, generator=gen, dtype=torch.float64) * math.sqrt(sigma_w2 / n_in)
        elif init == "orthogonal":
            big, small = max(n_out, n_in), min(n_out, n_in)
            a = torch.randn(big, small, generator=gen, dtype=torch.float64)
            q, r = torch.linalg.qr(a)  # q: big x small, orthonormal columns
            q = q * torch.sign(torch.diagonal(r))  # sign correction -> Haar
            o = q.T if n_out <= n_in else q  # orthonormal rows if N_l <= N_{l-1}, else columns
            w = math.sqrt(sigma_w2 * big / n_in) * o  # variance-matched: E[W_ij^2] = sigma_w2 / N_{l-1}
        else:
            raise ValueError(f"init must be 'gaussian' or 'orthogonal', got {init!r}")
        layer.weight.copy_(w.to(layer.weight.dtype))
        b = torch.randn(n_out, generator=gen, dtype=torch.float64) * math.sqrt(sigma_b2)
        if layer.bias is not None:
            layer.bias.copy_(b.to(layer.bias.dtype))


def build_model(arch: Architecture, seed: int = 0, q0: float = 1.0, dtype=None):
    """The initialised ``nn.Sequential`` of ``arch`` for a given seed.

    Layout: ``[Linear, act] * H + [Linear]`` (``act`` is ``nn.Identity`` for linear networks, so
    the layer structure stays explicit). ``dtype`` defaults to float32.

    Examples
    --------
    >>> from experiments.architectures import Architecture
    >>> arch = Architecture(4, (8,), 3, "relu", 2.0, 0.0, "gaussian")
    >>> build_model(arch)
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): ReLU()
      (2): Linear(in_features=8, out_features=3, bias=True)
    )
    """
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(_seed_for(arch, seed))
    layers = []
    widths = arch.widths
    sw, sb = arch.layer_sigma_w2(), arch.layer_sigma_b2()
    for i in range(len(widths) - 1):
        lin = nn.Linear(widths[i], widths[i + 1], bias=bool(arch.bias), dtype=dtype or torch.float32)
        _init_linear(lin, sw[i], sb[i], arch.init, gen)
        layers.append(lin)
        if i < arch.depth:
            layers.append(activation_module(arch.activation))
    model = nn.Sequential(*layers)
    model.fpcore_init = dict(sigma_w2=list(sw), sigma_b2=list(sb), init=arch.init, q0=float(q0))
    return model


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class TrainConfig(dict):
    """Training hyper-parameters (a dict so it serialises as is)."""

    DEFAULTS = dict(epochs=20, batch_size=64, optimizer="sgd", lr=0.01, momentum=0.9)

    def __init__(self, **kw):
        unknown = set(kw) - set(self.DEFAULTS)
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}")
        super().__init__({**self.DEFAULTS, **kw})
        if self["optimizer"] not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self['optimizer']!r}")
        if int(self["epochs"]) < 1 or int(self["batch_size"]) < 1 or not float(self["lr"]) > 0:
            raise ValueError(f"bad training options {dict(self)!r}")


def train_run(arch: Architecture, task_name: str, seed: int, config: dict | None = None, device: str = "cpu") -> dict:
    """Train one architecture with one seed; return the final metrics and the per-epoch history.

    Single-threaded on CPU (``torch.set_num_threads(1)``) so parallelism comes from the workers.
    """
    import torch
    from torch import nn

    from .data import load_task

    cfg = TrainConfig(**(config or {}))
    device = resolve_device(device)
    torch.set_num_threads(1)
    task = load_task(task_name)
    t0 = time.perf_counter()
    model = build_model(arch, seed, q0=task.q0).to(device)
    xtr = torch.as_tensor(task.x_train, device=device)
    ytr = torch.as_tensor(task.y_train, device=device)
    xte = torch.as_tensor(task.x_test, device=device)
    yte = torch.as_tensor(task.y_test, device=device)
    if cfg["optimizer"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    loss_fn = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(_seed_for(arch, seed) + 1)

    def evaluate():
        model.eval()
        with torch.no_grad():
            out_tr = model(xtr)
            tr = loss_fn(out_tr, ytr).item()
            tr_acc = (out_tr.argmax(1) == ytr).double().mean().item()
            out = model(xte)
            te = loss_fn(out, yte).item()
            acc = (out.argmax(1) == yte).double().mean().item()
        model.train()
        return tr, te, acc, tr_acc

    hist = {"train_loss": [], "test_loss": [], "test_acc": [], "train_acc": []}

    def record(values):
        for k, v in zip(hist, values):
            hist[k].append(float(v))

    record(evaluate())
    diverged = False
    n, bs = xtr.shape[0], int(cfg["batch_size"])
    for _epoch in range(int(cfg["epochs"])):
        perm = torch.randperm(n, generator=shuffle).to(device)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            if not torch.isfinite(loss):
                diverged = True
                break
            loss.backward()
            opt.step()
        values = evaluate()
        if diverged or not all(math.isfinite(v) for v in values[:2]):
            diverged = True
            record((math.inf, math.inf, 0.0, 0.0))  # a diverged network predicts nothing
            break
        record(values)
    epochs = int(cfg["epochs"])
    return dict(
        arch_id=arch.arch_id,
        seed=int(seed),
        task=task_name,
        final_train_loss=hist["train_loss"][-1],
        final_test_loss=hist["test_loss"][-1],
        final_test_acc=hist["test_acc"][-1],
        init_test_loss=hist["test_loss"][0],
        diverged=diverged,
        epochs_done=len(hist["test_loss"]) - 1,
        seconds=time.perf_counter() - t0,
        device=device,
        torch_version=torch.__version__,
        **epoch_summary(hist, epochs),
        history=hist,
    )


#: Epochs at which every target is recorded in the results tables (and the last one, "last").
RECORD_EPOCHS = (1, 2, 5, 10)
TARGETS = ("train_loss", "test_loss", "test_acc", "train_acc")


def record_epochs(epochs: int) -> list[int]:
    """The recorded epochs of a run of ``epochs`` epochs: ``RECORD_EPOCHS`` up to it, and the last."""
    return sorted({e for e in RECORD_EPOCHS if e <= epochs} | {int(epochs)})


def epoch_summary(hist: dict, epochs: int) -> dict:
    """``{target}_e{k}`` for every target and recorded epoch ``k`` (``history[...][k]``).

    A run that diverged before epoch ``k`` has loss ``inf`` and accuracy 0 there (it stays
    diverged); ``hist`` holds epoch 0 (before training) at index 0.
    """
    out = {}
    for k in record_epochs(epochs):
        for t in TARGETS:
            h = hist.get(t, [])
            if k < len(h):
                out[f"{t}_e{k}"] = h[k]
            elif h:
                out[f"{t}_e{k}"] = math.inf if "loss" in t else 0.0
            else:
                out[f"{t}_e{k}"] = math.nan
    return out
