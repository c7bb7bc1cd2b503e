"""A leaky ReLU component below ``1e-8 * lambda_max`` (adversarial draw 83, seed 42).

Orthogonal leaky ReLU, 3 tapered layers, ``J J^T``: the laws of ``D^2`` are ``{alpha^2, 1}``
(``alpha^2 = 1e-4``) in each layer, so components sit at ``alpha^0 .. alpha^6`` times the variance
products; the lowest (about 1e-11 .. 1e-8, 41 % of the mass) lies below ``_SMOOTH_DEPTH *
lambda_max``. Its lower edge was located (2.6e-11, no mass below) but the grid of a non-rational
equation stopped at ``1e-8 * lambda_max``: the support started at 3.6e-7, and ``cdf`` returned 0
and ``quantile`` that edge below it, silently (Monte Carlo KS 0.43). The grid now goes down to a
located lower edge."""

import warnings

import numpy as np

import fpcore


NET = fpcore.Network([1250, 1166, 1083, 1000], "leaky_relu",
                     sigma_w2=[2.88767078685372, 2.4620419705620007, 2.7819896126370955],
                     sigma_b2=0.3360964819370342, init="orthogonal", q0="fixed_point")


from test_leaky_compiled import _ks  # noqa: E402 - KS above 1e-12 lambda_max (the sample's float floor)


def test_lowest_leaky_component_found():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no uncertified point, no warning
        s = fpcore.jacobian_spectrum(NET, gram="JJt")
    assert s.atom == 0.0
    lo = s.support[0][0]
    assert 1e-11 < lo < 1e-10  # the alpha^6 component, not the alpha^4 one at 3.6e-7
    assert s.support[0][1] < 1e-6
    # mass below 1e-8 and between 1e-10 and 3.6e-7 (Monte Carlo: 40.6 % below 1e-8)
    assert 0.3 < float(s.cdf(1e-8)) < 0.417
    assert 0.0 < float(s.cdf(1e-10)) < float(s.cdf(1e-9)) < float(s.cdf(1e-8))
    assert float(s.quantile(0.2)) < 1e-8
    ev = fpcore.sample_jacobian_eigenvalues(NET, gram="JJt", seed=1, n_samples=2)
    assert _ks(s, ev) <= 0.03


def test_mass_below_the_located_support_warns(monkeypatch):
    # the old grid (stopping at _SMOOTH_DEPTH * lambda_max whatever the located edge): the
    # component it misses is not returned silently
    from fpcore import _spectrum
    grid = _spectrum._grid

    def shallow(lo, hi, n, depth=1e-10):
        return grid(lo, hi, n, max(depth, _spectrum._SMOOTH_DEPTH))

    monkeypatch.setattr(_spectrum, "_grid", shallow)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = fpcore.jacobian_spectrum(NET, gram="JJt")
    assert s.support[0][0] > 1e-7  # the old support: the alpha^6 component missed
    assert any("lies below the lowest located support" in str(x.message) for x in w)
