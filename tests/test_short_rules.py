"""Short real rules standing for contour rules (Gaussian GELU, SiLU, softplus, ELU, SELU nets)
and the cache of the laws of ``D^2``."""

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


def _check_tables(name: str, q: float):
    """The short check's table ``(vmax, rhos, e_psi)``, the short rule and the contour rule of the
    law of ``D^2`` of ``name`` at ``q``."""
    law = get_activation(name).d2_law(q)
    return (*law.short_check, law.short, (law.cvalues, law.cweights))


def _outside_ellipse(rng, vmax: float, rho: float, spread: float, n: int):
    """``n`` random ``u = 1/t`` with ``t`` in the upper half plane outside the Bernstein ellipse
    ``E_rho`` of ``[0, vmax]`` (``t = vmax (1 + (w + 1/w)/2) / 2``, ``|w| = R >= rho``); returns
    ``(u, R)``."""
    R = rho * (1.0 + rng.exponential(spread, n))
    ez = R * np.exp(1j * rng.uniform(0.0, math.pi, n))
    return 1.0 / (0.5 * vmax * (1.0 + 0.5 * (ez + 1.0 / ez))), R


@pytest.mark.parametrize("name", ["gelu", "silu", "softplus", "selu", "elu", "elu:0.5"])
@pytest.mark.parametrize("q", [0.5, 3.0, 30.0])
def test_short_check_bounds_the_difference_outside_each_ellipse(name, q):
    # maximum modulus: outside E_rho (in t = 1/u) the short rule's psi / u differs from the
    # contour rule's by at most the table's value for rho; checked at random points outside
    vmax, rhos, e_psi, (sv, sw), (cv, cw) = _check_tables(name, q)
    rng = np.random.default_rng(0)
    for j in range(rhos.size):
        u, _ = _outside_ellipse(rng, vmax, rhos[j], 0.5, 200)
        ps = np.sum(sw * sv / (1.0 - u[:, None] * sv), axis=1)
        pc = np.sum(cw * cv / (1.0 - u[:, None] * cv), axis=1)
        # (plus the rounding floor of the sums, far below the check's tolerance 1e-11)
        assert np.max(np.abs(ps - pc)) <= e_psi[j] * (1.0 + 1e-6) + 1e-14 * np.max(np.abs(pc))


def _lp(u, v, w):
    """``sum w log(1 - u v)`` with arguments in ``(-pi/2, 3 pi/2)`` (the solver's convention)."""
    om = 1.0 - u[:, None] * v
    ang = np.angle(om)
    ang = np.where(ang < -0.5 * math.pi, ang + 2.0 * math.pi, ang)
    return np.sum(w * (np.log(np.abs(om)) + 1j * ang), axis=1)


@pytest.mark.parametrize("name,q", [("gelu", 0.5), ("silu", 3.0), ("selu", 1.0), ("selu", 30.0), ("elu", 3.0),
                                    ("elu:0.5", 1.0)])
def test_log_potential_bound_holds_outside_each_ellipse(name, q):
    # the log potentials' difference is bounded by integrating psi's from u = 0 (_lp_bound): at
    # random points outside each ellipse (in t = 1/u, upper half) the bound holds
    from fpcore import _fastchain

    vmax, rhos, e_psi, (sv, sw), (cv, cw) = _check_tables(name, q)
    rng = np.random.default_rng(1)
    for j in range(rhos.size):
        u, R = _outside_ellipse(rng, vmax, rhos[j], 0.3, 100)
        lc = _lp(u, cv, cw)
        diff = np.abs(_lp(u, sv, sw) - lc)
        # the table row the check uses: the largest rho_l at most the point's
        bound = np.array([_fastchain._lp_bound(complex(ui), vmax, rhos, e_psi, int(np.searchsorted(rhos, r, "right") - 1))
                          for ui, r in zip(u, R)])
        assert np.all(diff <= bound * (1.0 + 1e-6) + 1e-14 * np.max(np.abs(lc)))
        # the bound is not vacuous: within a few times the table's psi entry times |u|
        assert np.all(bound <= e_psi[j] * np.abs(u) * (1.0 + 1e-12))


@pytest.mark.parametrize("name", ["selu", "elu", "elu:0.5"])
@pytest.mark.parametrize("q", [0.01, 1.0, 30.0, 1000.0])
def test_elu_selu_short_rules_keep_the_atom_and_the_moments(name, q):
    # the atom a_+^2 (mass 1/2) stays exact; the Gauss rule of the rest has the contour rule's
    # moments (exact to rounding): at q = 30 and 1000 the real atoms were scaled by the rule's
    # overshoot of the lumped tail (3e-6 and 6e-4 off)
    act = get_activation(name)
    law = act.d2_law(q)
    sv, sw = law.short
    a2 = (1.0507009873554805 if name == "selu" else 1.0) ** 2
    assert sv.size == 41 and sv[-1] == a2 and sw[-1] == 0.5
    assert np.all(sw > 0) and np.all(sv >= 0)
    cv, cw = law.cvalues, law.cweights
    for k in (0, 1, 2, 3):
        exact = complex(np.dot(cw, cv**k)).real
        assert float(np.dot(sw, sv**k)) == pytest.approx(exact, rel=1e-13)
        assert float(np.dot(law.weights, law.values**k)) == pytest.approx(exact, rel=1e-13)
    assert float(np.dot(sw, sv)) == pytest.approx(float(act.d2_moment(q)), rel=1e-10)


@pytest.mark.parametrize("act,widths", [("gelu", [1000] * 11), ("silu", [784, 400, 200, 100]),
                                        ("softplus", [1000] * 3), ("selu", [1000] * 3), ("elu", [1000] * 11),
                                        ("selu", [784, 400, 200, 100]), ("elu:0.5", [500, 300, 700])])
def test_short_rules_give_the_contour_rules_spectrum(act, widths, monkeypatch):
    net = fpcore.Network(widths, act, sigma_w2=2.0)
    s = fpcore.jacobian_spectrum(net, n_points=300)
    assert lp._contour_short(s._eq)
    monkeypatch.setattr(lp, "_contour_short", lambda eq: False)
    ref = fpcore.jacobian_spectrum(net, n_points=300)
    assert np.array_equal(s.x, ref.x)
    assert np.max(np.abs(s.density - ref.density)) <= 1e-8 * np.max(ref.density)
    assert np.max(np.abs(s._cdf_grid - ref._cdf_grid)) <= 1e-9
    assert s.stats.n_uncertified == ref.stats.n_uncertified == 0
    # a point is certified where a certified chain (anchor chains, link walks) reaches it: which
    # points that is depends on the path's walks and on borderline steps decided in floating
    # point (freshly compiled and cached numba kernels differ in the last bits), so the two paths
    # certify nearly, not exactly, the same points (measured: softplus [1000]*3 211 / 214, SELU
    # [1000]*3 217 / 208 of 300); the short path must not lose the certificate
    assert s.stats.n_certified >= 0.9 * ref.stats.n_certified


@pytest.mark.parametrize("widths,pays", [([784, 89, 10], False), ([1000] * 11, True)])
def test_short_sweep_is_skipped_where_the_short_rules_rarely_hold(widths, pays, monkeypatch):
    # a tapered SELU net at L = 2 has every u_g near the laws' cut: the probe finds the short
    # rules standing for the contour rules at under half its points and the grid is swept with
    # the contour rules alone; the square deep net keeps the short sweep. Same spectrum either way.
    seen = []
    orig = lp._short_rules_pay

    def spy(*args):
        seen.append(orig(*args))
        return seen[-1]

    monkeypatch.setattr(lp, "_short_rules_pay", spy)
    net = fpcore.Network(widths, "selu", sigma_w2=1.0)
    s = fpcore.jacobian_spectrum(net, n_points=300)
    assert seen == [pays]
    monkeypatch.setattr(lp, "_contour_short", lambda eq: False)
    ref = fpcore.jacobian_spectrum(net, n_points=300)
    assert np.max(np.abs(s._cdf_grid - ref._cdf_grid)) <= 1e-9
    assert s.stats.n_uncertified == ref.stats.n_uncertified == 0
