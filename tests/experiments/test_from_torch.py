"""fpcore.from_torch: the Network of a PyTorch model, and its spectrum against autograd."""

import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import fpcore  # noqa: E402
from experiments.architectures import Architecture, sample_architectures  # noqa: E402
from experiments.training import build_model  # noqa: E402

torch.set_num_threads(1)


def test_exported_and_torch_imported_lazily():
    assert callable(fpcore.from_torch)
    code = "import sys, fpcore; assert 'torch' not in sys.modules, 'import fpcore pulled in torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("activations", [("relu", "leaky_relu", "hard_tanh", "linear"), ("tanh", "gelu")])
def test_sampled_model_gives_the_analysed_network(activations):
    """The experiments analyse exactly the network they train."""
    q0 = 0.9375
    for arch in sample_architectures(8, n_in=64, n_out=10, seed=3, activations=activations):
        model = build_model(arch, seed=1, q0=q0)
        net = fpcore.from_torch(model)
        assert net == arch.network(q0), arch
        # Without the sampler's attributes, the explicit keywords give the same network too.
        del model.fpcore_init
        kw = dict(sigma_w2=arch.layer_sigma_w2(), sigma_b2=arch.layer_sigma_b2(), init=arch.init, q0=q0)
        assert fpcore.from_torch(model, **kw) == net


def test_protocol_model_without_biases_gives_the_analysed_network():
    from experiments.architectures import sweep_sampler

    for arch in sample_architectures(4, n_in=64, n_out=10, seed=0, **sweep_sampler("protocol_digits")):
        model = build_model(arch, seed=0, q0=1.0)
        assert all(m.bias is None for m in model if isinstance(m, nn.Linear))
        assert fpcore.from_torch(model) == arch.network(1.0), arch


def test_keywords_override_model_attributes():
    model = build_model(Architecture(8, (16,), 3, "relu", 2.0, 0.1, "gaussian"), q0=0.5)
    net = fpcore.from_torch(model, sigma_w2=1.5, q0=2.0)
    assert net.sigma_w2 == (1.5, 1.5) and net.q0 == 2.0
    assert net.sigma_b2 == (0.1, 0.0) and net.init == "gaussian"


def test_estimates_from_weights_when_not_given():
    torch.manual_seed(0)
    n_in, n_out = 300, 400
    gauss = nn.Sequential(nn.Linear(n_in, n_out), nn.Tanh(), nn.Linear(n_out, n_out))
    ortho = nn.Sequential(nn.Linear(n_in, n_out), nn.Tanh(), nn.Linear(n_out, 200))
    with torch.no_grad():
        for lin in gauss[::2]:
            lin.weight.normal_(0.0, math.sqrt(1.7 / lin.in_features))
            lin.bias.normal_(0.0, math.sqrt(0.05))
        for lin in ortho[::2]:
            nn.init.orthogonal_(lin.weight, gain=2.0)
            lin.bias.zero_()
    net = fpcore.from_torch(gauss)
    assert net.init == "gaussian" and net.q0 == 1.0
    assert [a.name for a in net.activations] == ["tanh", "linear"]
    # N_{l-1} mean(W^2) has relative standard deviation sqrt(2 / (N_l N_{l-1})): 4 sigma.
    for lin, sw in zip(gauss[::2], net.sigma_w2):
        assert sw == pytest.approx(1.7, rel=4 * math.sqrt(2.0 / lin.weight.numel()))
    for lin, sb in zip(gauss[::2], net.sigma_b2):
        assert sb == pytest.approx(0.05, rel=4 * math.sqrt(2.0 / lin.out_features))

    net = fpcore.from_torch(ortho)
    assert net.init == "orthogonal" and net.sigma_b2 == (0.0, 0.0)
    # gain^2 O with orthonormal rows/columns: entry variance gain^2 min(N_l, N_{l-1}) / (N_l N_{l-1}).
    for lin, sw in zip(ortho[::2], net.sigma_w2):
        n_o, n_i = lin.weight.shape
        assert sw == pytest.approx(4.0 * min(n_o, n_i) / n_o, rel=1e-5)


@pytest.mark.parametrize(
    "module, name, params",
    [
        (nn.ReLU(), "relu", ()),
        (nn.LeakyReLU(0.2), "leaky_relu", (0.2,)),
        (nn.Hardtanh(), "hard_tanh", ()),
        (nn.Tanh(), "tanh", ()),
        (nn.Sigmoid(), "sigmoid", ()),
        (nn.GELU(), "gelu", ()),
        (nn.SiLU(), "silu", ()),
        (nn.SELU(), "selu", ()),
        (nn.ELU(alpha=0.5), "elu", (0.5,)),
        (nn.Softplus(), "softplus", ()),
        (nn.Identity(), "linear", ()),
    ],
)
def test_activation_modules(module, name, params):
    model = nn.Sequential(nn.Linear(5, 6), module, nn.Sequential(nn.Linear(6, 7)), nn.Linear(7, 2))
    net = fpcore.from_torch(model, sigma_w2=1.0, sigma_b2=0.0, init="gaussian")
    assert net.widths == (5, 6, 7, 2)
    assert net.activations[0].name == name and net.activations[0].params == params
    assert [a.name for a in net.activations[1:]] == ["linear", "linear"]  # Linear after Linear, final Linear


@pytest.mark.parametrize(
    "model",
    [
        nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.Linear(4, 2)),
        nn.Sequential(nn.Linear(4, 4), nn.ReLU6()),
        nn.Sequential(nn.Linear(4, 4), nn.Hardtanh(-2.0, 2.0)),
        nn.Sequential(nn.Linear(4, 4), nn.GELU(approximate="tanh")),
        nn.Sequential(nn.Linear(4, 4), nn.Softplus(beta=2.0)),
        nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=-1)),
        nn.Sequential(nn.ReLU(), nn.Linear(4, 4)),
        nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Tanh()),
        nn.Sequential(nn.Linear(4, 4), nn.Linear(5, 2)),
        nn.Sequential(),
        nn.Conv1d(1, 1, 3),
    ],
)
def test_unsupported_models_raise(model):
    with pytest.raises(ValueError):
        fpcore.from_torch(model, sigma_w2=1.0, sigma_b2=0.0, init="gaussian")


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
def test_predicted_spectrum_matches_autograd_jacobian(init):
    """Law of J^T J from fpcore vs the eigenvalues of one real model's J^T J (autograd, x ~ N(0, q0 I)).

    A ReLU/linear net of depth 3 (ReLU, ReLU, linear readout) at width N = 400. The tolerance is
    derived, not tuned: the finite network's rank is set by how many ReLUs are active, a
    Binomial(N, 1/2) count whose fraction has standard deviation 0.5 / sqrt(N) = 0.025, and the
    law's atom at 0 (1/2 here) moves with it; the minimum over the two ReLU layers adds a bias of
    about 0.56 of that; the bulk converges like L / N. Tolerance: 3.5 sigma + L / N = 0.095.
    Calibration on 12 other seeds at N = 400: KS 0.010-0.065 (mean 0.025 Gaussian, 0.034
    orthogonal); at N = 800 it roughly halves. The KS distance is dominated by the atom, so the
    scale of the bulk is checked separately through the mean eigenvalue (measured spread about
    5 % at this width; a wrong sigma_w2 convention shifts it by a factor of 2).
    """
    n, q0 = 400, 1.0
    arch = Architecture(n, (n, n), n, "relu", 2.0, 0.1, init)
    model = build_model(arch, seed=7, q0=q0, dtype=torch.float64)
    net = fpcore.from_torch(model)
    assert [a.name for a in net.activations] == ["relu", "relu", "linear"]
    spec = fpcore.jacobian_spectrum(net, gram="JtJ", n_points=300)

    x = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(11)) * math.sqrt(q0)
    jac = torch.autograd.functional.jacobian(model, x)
    assert jac.shape == (n, n)
    # Eigenvalues of J^T J as squared singular values of J: exact zeros (the rank deficit of the
    # ReLU layers) then come out at ~1e-32 relative, which ks_distance snaps onto the atom at 0;
    # eigvalsh(J^T J) leaves them at ~1e-16 relative, above ks_distance's zero threshold.
    eig = (torch.linalg.svdvals(jac) ** 2).numpy()

    sigma = 0.5 / math.sqrt(n)
    tol = 3.5 * sigma + net.depth / n
    ks = fpcore.ks_distance(spec, eig)
    assert ks < tol, f"KS {ks:.4f} >= {tol:.4f}"
    assert np.mean(eig) == pytest.approx(spec.mean, rel=0.2)
