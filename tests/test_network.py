"""Network description, validation and mean field."""

import math

import numpy as np
import pytest

import fpcore


def test_defaults_and_per_layer():
    net = fpcore.Network([10, 20, 30], activation=["relu", "tanh"], sigma_w2=[2.0, 1.5], sigma_b2=0.1)
    assert net.depth == 2
    assert [a.name for a in net.activations] == ["relu", "tanh"]
    assert net.sigma_w2 == (2.0, 1.5) and net.sigma_b2 == (0.1, 0.1)
    assert net.replace(init="orthogonal").init == "orthogonal"
    assert hash(net) == hash(fpcore.Network([10, 20, 30], ["relu", "tanh"], [2.0, 1.5], 0.1))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(widths=[]), "widths"),
        (dict(widths=[10]), "widths"),
        (dict(widths=[10, 0]), "widths"),
        (dict(widths=[10, -3]), "widths"),
        (dict(widths=[10, 2.5]), "widths"),
        (dict(widths="10,10"), "widths"),
        (dict(widths=[10, 10], activation="swoosh"), "activation"),
        (dict(widths=[10, 10, 10], activation=["relu"]), "activation"),
        (dict(widths=[10, 10], sigma_w2=0.0), "sigma_w2"),
        (dict(widths=[10, 10], sigma_w2=float("nan")), "sigma_w2"),
        (dict(widths=[10, 10], sigma_w2=[1.0, 2.0]), "sigma_w2"),
        (dict(widths=[10, 10], sigma_b2=-1.0), "sigma_b2"),
        (dict(widths=[10, 10], sigma_b2=float("inf")), "sigma_b2"),
        (dict(widths=[10, 10], init="xavier"), "init"),
        (dict(widths=[10, 10], q0=0.0), "q0"),
        (dict(widths=[10, 10], q0="fixed"), "q0"),
        (dict(widths=[10, 10], activation="leaky_relu:1.5"), "slope"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fpcore.Network(**kwargs)


def test_bad_spectrum_arguments():
    net = fpcore.Network([10, 10])
    with pytest.raises(ValueError, match="gram"):
        fpcore.jacobian_spectrum(net, gram="JTJ")
    with pytest.raises(ValueError, match="n_points"):
        fpcore.jacobian_spectrum(net, n_points=3)
    with pytest.raises(ValueError, match="net"):
        fpcore.jacobian_spectrum([10, 10])
    with pytest.raises(ValueError, match="x"):
        fpcore.lilypad_trace(net, -1.0)
    with pytest.raises(ValueError, match="k"):
        fpcore.jacobian_spectrum(net, n_points=20).moment(-1)


def test_custom_activation_must_be_vectorised():
    def phi(x):
        return math.tanh(x)  # scalar only

    with pytest.raises(ValueError, match="vectorised"):
        fpcore.Network([10, 10], activation=(phi, lambda x: 1 - np.tanh(x) ** 2))
    with pytest.raises(ValueError, match="non-finite"):
        fpcore.Network([10, 10], activation=(np.tanh, lambda x: np.log(x)))


def test_mean_field_closed_forms():
    mf = fpcore.mean_field(fpcore.Network([5, 5, 5, 5], "relu", sigma_w2=2.0, sigma_b2=0.5, q0=1.0))
    # q_1 = 2 * 1 + 0.5, q_{l+1} = 2 q_l / 2 + 0.5
    assert mf.q == pytest.approx([2.5, 3.0, 3.5])
    assert mf.chi == pytest.approx([1.0, 1.0, 1.0])
    a = 0.7
    erf = fpcore.get_activation("erf", scale=a)
    q = np.array([0.3, 1.0, 4.0])
    assert erf.second_moment(q) == pytest.approx(2 / np.pi * np.arcsin(2 * a * a * q / (1 + 2 * a * a * q)), rel=1e-12)
    from fpcore._activations import gaussian_expectation

    assert gaussian_expectation(lambda h: erf.phi(h) ** 2, q) == pytest.approx(erf.second_moment(q), rel=1e-10)
    from scipy import integrate, stats

    ht = fpcore.get_activation("hard_tanh")
    for qq in q:  # kinks defeat Gauss-Hermite: adaptive quadrature split at the kinks
        k = 1 / np.sqrt(qq)
        ref = integrate.quad(lambda z: np.clip(np.sqrt(qq) * z, -1, 1) ** 2 * stats.norm.pdf(z), -40, 40, points=[-k, k])[0]
        assert ht.second_moment(qq) == pytest.approx(ref, rel=1e-10)


def test_fixed_point():
    tanh = fpcore.get_activation("tanh")
    net = fpcore.Network([5] * 4, tanh, sigma_w2=1.5, sigma_b2=0.05, q0="fixed_point")
    mf = fpcore.mean_field(net)
    q = mf.q[0]
    assert np.allclose(mf.q, q)
    assert 1.5 * float(tanh.second_moment(q)) + 0.05 == pytest.approx(q, rel=1e-12)
    # ReLU at sigma_w2 = 2 with bias: q grows linearly, no fixed point, but D^2 does not depend on q
    mf = fpcore.mean_field(fpcore.Network([5] * 3, "relu", sigma_w2=2.0, sigma_b2=0.1, q0="fixed_point"))
    assert np.all(np.isfinite(mf.q))


def test_import_fpcore_loads_no_ui_library():
    import subprocess
    import sys

    code = (
        "import sys, fpcore; fpcore.jacobian_spectrum(fpcore.Network([50, 50]), n_points=20);"
        "bad = [m for m in ('panel', 'holoviews', 'bokeh', 'param', 'matplotlib', 'torch') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
