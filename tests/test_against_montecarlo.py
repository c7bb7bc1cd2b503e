"""The computed laws against real networks (network Monte Carlo, width >= 1000, fixed seeds).

A real forward pass gives D from the pre-activations. At width ~1000 the finite-size KS
distance of one network is about 0.005-0.015 (fluctuations of the fraction of active units
are O(1/sqrt(N)) per layer); the bound 0.02 of the acceptance criteria holds with margin only
when the law is right: a 20% error in sigma_w2 alone moves the KS distance past 0.03
(test_a_wrong_law_is_detected).
"""

import numpy as np
import pytest

import fpcore

CASES = [
    # (id, network, gram, n_samples)
    ("gauss-relu-rect-bias", fpcore.Network([1000, 1500, 1000, 1200], "relu", sigma_w2=2.0, sigma_b2=0.1), "JtJ", 1),
    ("orth-relu-square", fpcore.Network([1000] * 4, "relu", sigma_w2=2.0, init="orthogonal"), "JtJ", 1),
    ("gauss-hardtanh-rect-bias", fpcore.Network([1000, 1200, 800], "hard_tanh", sigma_w2=1.5, sigma_b2=0.05), "JtJ", 1),
    ("orth-hardtanh-bias", fpcore.Network([1000] * 3, "hard_tanh", sigma_w2=1.2, sigma_b2=0.1, init="orthogonal", q0=0.5), "JtJ", 2),
    ("gauss-linear-rect", fpcore.Network([1000, 2000, 500], "linear", sigma_w2=1.0), "JtJ", 1),
    ("orth-linear-rect-atoms", fpcore.Network([1000, 1500, 800], "linear", sigma_w2=1.3, init="orthogonal"), "JtJ", 1),
    ("gauss-leaky-bias", fpcore.Network([1000] * 4, "leaky_relu:0.2", sigma_w2=2.0, sigma_b2=0.05), "JtJ", 2),
    ("orth-leaky-rect", fpcore.Network([1000, 1200, 1000], "leaky_relu:0.1", sigma_w2=2.0, init="orthogonal"), "JtJ", 2),
    ("gauss-relu-jjt", fpcore.Network([1200, 1000, 800], "relu", sigma_w2=2.0, sigma_b2=0.2), "JJt", 1),
]


@pytest.mark.parametrize("name,net,gram,n", CASES, ids=[c[0] for c in CASES])
def test_ks_against_network_monte_carlo(name, net, gram, n):
    spec = fpcore.jacobian_spectrum(net, gram=gram, n_points=300)
    ev = fpcore.sample_jacobian_eigenvalues(net, gram=gram, mode="network", seed=12345, n_samples=n)
    ks = fpcore.ks_distance(spec, ev)
    assert ks <= 0.02, f"{name}: KS {ks:.4f}"
    # points in gaps or at edges of the verified (non-rational) path may stay flagged
    assert spec.stats.n_uncertified <= 0.03 * spec.stats.n_points


def test_a_wrong_law_is_detected():
    net = fpcore.Network([1000, 1500, 1000, 1200], "relu", sigma_w2=2.0, sigma_b2=0.1)
    ev = fpcore.sample_jacobian_eigenvalues(net, seed=12345)
    wrong = fpcore.jacobian_spectrum(net.replace(sigma_w2=2.4), n_points=300)
    assert fpcore.ks_distance(wrong, ev) > 0.03
