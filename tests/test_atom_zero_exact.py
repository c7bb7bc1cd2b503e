"""The atom at 0 is the rational ``1 - rank / dim`` of the widths, as the float nearest it, so that
``quantile`` and ``cdf`` agree at the atom (issue #10; adversarial seed 3, draw [35])."""

import numpy as np
import pytest

import fpcore


@pytest.mark.parametrize("gram,widths", [("JJt", [1000, 1062, 1125, 1187, 1250]), ("JtJ", [1250, 1125, 1000])])
def test_atom_at_zero_is_the_rational_mass(gram, widths):
    # before: 1 - 1000/1250 = 0.19999999999999996, so quantile(0.2) was searched in the
    # continuous part and returned 3.1e-7 for draw [35] (the atom holds 0.2 exactly)
    net = fpcore.Network(widths, "leaky_relu", sigma_w2=2.7711639102409036, q0=5.003382134459407)
    s = fpcore.jacobian_spectrum(net, gram=gram, n_points=200)
    assert s.atom == 0.2 and s.atoms[0] == (0.0, 0.2)
    assert s.quantile(0.2) == 0.0
    assert s.cdf(0.0) == 0.2
    q = s.quantile(np.array([0.1, 0.2]))
    assert np.all(q == 0.0)


def test_atom_at_zero_of_one_orthogonal_layer_is_the_rational_mass():
    # the push-forward path (one orthogonal smooth layer, J^T J adds N_0 - N_1 zeros)
    net = fpcore.Network([1250, 1000], "tanh", init="orthogonal", q0=1.0)
    s = fpcore.jacobian_spectrum(net, gram="JtJ", n_points=100)
    assert s.atom == 0.2 and s.quantile(0.2) == 0.0 and s.cdf(0.0) == 0.2
