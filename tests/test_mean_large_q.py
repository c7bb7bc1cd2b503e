"""``Spectrum.mean`` at large pre-activation variances, against mpmath.

The mean of ``J J^T`` is ``prod_l sigma_w^2 E[phi'(sqrt(q_l) Z)^2]``. It used to be the product of
the means of the laws' atoms: at ``q ~ 1e9`` and above the transition of a smooth activation's
``phi'`` (SiLU, GELU) is narrower than the atoms' spacing, and the atoms' mean was off by about
2e-6 relative per layer (adversarial seed 46, draw 12: a depth-30 SiLU net, mean off by 1.3e-6
with no warning). It is now the mean field's ``chi_l``, by quadrature that follows the scale of
``phi'`` (``gaussian_expectation``): below 1e-15 here.
"""

from __future__ import annotations

import mpmath as mp
import pytest

import fpcore

mp.mp.dps = 20


def _silu_dphi(h):
    s = 1 / (1 + mp.exp(-h))
    return s * (1 + h * (1 - s))


def _silu(h):
    return h / (1 + mp.exp(-h))


def _gelu_dphi(h):
    return mp.ncdf(h) + h * mp.npdf(h)


def _gelu(h):
    return h * mp.ncdf(h)


def _gauss(f, q):
    s = mp.sqrt(q)
    # panels at the scale of phi' (z ~ 1/sqrt(q)) and of the Gaussian
    return mp.quad(lambda z: f(s * z) * mp.exp(-z * z / 2), [-mp.inf, -5, -10 / s, 0, 10 / s, 5, mp.inf]) / mp.sqrt(2 * mp.pi)


@pytest.mark.parametrize("act, phi, dphi", [("silu", _silu, _silu_dphi), ("gelu", _gelu, _gelu_dphi)])
@pytest.mark.parametrize("q0", [3e9, 2e10])
def test_mean_at_large_q_is_the_exact_product(act, phi, dphi, q0):
    net = fpcore.Network([1000, 1000, 1000, 1000], act, sigma_w2=4.0, q0=q0)
    sw, q, exact = mp.mpf(4), 4 * mp.mpf(q0), mp.mpf(1)
    for layer in range(3):
        if layer > 0:
            q = sw * _gauss(lambda h: phi(h) ** 2, q)
        exact *= sw * _gauss(lambda h: dphi(h) ** 2, q)
    spectrum = fpcore.jacobian_spectrum(net, gram="JJt", n_points=200)
    assert spectrum.mean == pytest.approx(float(exact), rel=1e-12)
