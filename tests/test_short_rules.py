"""Short real rules standing for contour rules (Gaussian GELU, SiLU, softplus nets) and the
cache of the laws of ``D^2``."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fpcore
from fpcore import _lilypad as lp
from fpcore._activations import get_activation


def test_laws_of_builtin_activations_are_cached_and_custom_ones_are_not():
    assert get_activation("gelu").d2_law(1.37) is get_activation("gelu").d2_law(1.37)
    assert get_activation("leaky_relu:0.2").d2_law(1.0) is not get_activation("leaky_relu:0.3").d2_law(1.0)
    pair = (np.tanh, lambda x: 1.0 / np.cosh(x) ** 2)
    assert get_activation(pair).d2_law(1.0) is not get_activation(pair).d2_law(1.0)


@pytest.mark.parametrize("name", ["gelu", "silu", "softplus"])
@pytest.mark.parametrize("q", [0.5, 3.0])
def test_short_check_bounds_the_difference_outside_each_ellipse(name, q):
    # maximum modulus: outside E_rho (in t = 1/u) the short rule's psi / u differs from the
    # contour rule's by at most the table's value for rho; checked at random points outside
    law = get_activation(name).d2_law(q)
    vmax, rhos, e_psi, e_lp = law.short_check
    sv, sw = law.short
    cv, cw = law.cvalues, law.cweights
    rng = np.random.default_rng(0)
    for j in range(rhos.size):
        R = rhos[j] * (1.0 + rng.exponential(0.5, 200))
        th = rng.uniform(0.0, math.pi, 200)
        ez = R * np.exp(1j * th)
        t = 0.5 * vmax * (1.0 + 0.5 * (ez + 1.0 / ez))
        u = 1.0 / t
        ps = np.sum(sw * sv / (1.0 - u[:, None] * sv), axis=1)
        pc = np.sum(cw * cv / (1.0 - u[:, None] * cv), axis=1)
        assert np.max(np.abs(ps - pc)) <= e_psi[j] * (1.0 + 1e-6) + 1e-15


@pytest.mark.parametrize("act,widths", [("gelu", [1000] * 11), ("silu", [784, 400, 200, 100]),
                                        ("softplus", [1000] * 3)])
def test_short_rules_give_the_contour_rules_spectrum(act, widths, monkeypatch):
    net = fpcore.Network(widths, act, sigma_w2=2.0)
    s = fpcore.jacobian_spectrum(net, n_points=300)
    monkeypatch.setattr(lp, "_contour_short", lambda eq: False)
    ref = fpcore.jacobian_spectrum(net, n_points=300)
    assert np.array_equal(s.x, ref.x)
    assert np.max(np.abs(s.density - ref.density)) <= 1e-8 * np.max(ref.density)
    assert np.max(np.abs(s._cdf_grid - ref._cdf_grid)) <= 1e-9
    assert s.stats.n_uncertified == ref.stats.n_uncertified == 0
    assert s.stats.n_certified == ref.stats.n_certified
