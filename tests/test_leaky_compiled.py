"""Orthogonal leaky ReLU nets are swept compiled (issue #11: leaky ReLU at the speed budget).

The law of ``D^2`` of leaky ReLU is two exact atoms (``a^2`` and 1, mass 1/2 each): its roots do
not crowd the real axis, so the compiled grid sweep (``_fastchain.grid_general``) serves orthogonal
nets as it serves Gaussian ones. Before, a plain orthogonal leaky ReLU net (no contour law in the
list) fell back to the vectorised continuation (about 1-6 s per spectrum). The compiled sweep must
give the same law: ``F`` equal to the vectorised path's to 1e-10, and Monte Carlo of real width-1000
networks (seeded) within KS 0.02."""

import warnings

import numpy as np
import pytest

import fpcore
from fpcore import _activations, _lilypad
from fpcore._equation import build_equation


def _spectrum(net, compiled, monkeypatch, n_points=1000):
    monkeypatch.setattr(_lilypad, "_ORTHO_COMPILED", compiled)
    _activations._LAW_CACHE.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fpcore.jacobian_spectrum(net, n_points=n_points)


def _ks(s, ev):
    ev = np.sort(np.asarray(ev, dtype=float))
    t = ev[ev >= 1e-12 * s.lambda_max]
    F, Fm = s.cdf(t), s.cdf(np.nextafter(t, -np.inf))
    hi = np.searchsorted(ev, t, side="right") / ev.size
    lo = np.searchsorted(ev, t, side="left") / ev.size
    return float(max(np.max(np.abs(F - hi)), np.max(np.abs(Fm - lo))))


NETS = {
    "square L=2": fpcore.Network([1000] * 3, "leaky_relu", sigma_w2=2.0, init="orthogonal"),
    "square L=10": fpcore.Network([1000] * 11, "leaky_relu", sigma_w2=2.0, init="orthogonal"),
    "tapered L=4": fpcore.Network([784, 261, 87, 29, 10], "leaky_relu", sigma_w2=2.0, init="orthogonal"),
    "bottleneck L=3": fpcore.Network([1000, 1000, 250, 1000], "leaky_relu:0.1", sigma_w2=2.0, init="orthogonal"),
}


def test_orthogonal_leaky_relu_takes_the_compiled_sweep():
    eq = build_equation(NETS["square L=2"], "JtJ")
    assert not eq.smooth_path and not eq.uses_contour
    assert _lilypad._all_contour(eq)


@pytest.mark.parametrize("name", sorted(NETS))
def test_compiled_sweep_equals_the_vectorised_path(name, monkeypatch):
    net = NETS[name]
    old = _spectrum(net, False, monkeypatch)
    new = _spectrum(net, True, monkeypatch)
    st = new.stats
    assert st.n_certified + st.n_verified + st.n_uncertified == st.n_points == 1000
    # the compiled sweep leaves no more points unverified than the vectorised one
    assert st.n_uncertified <= old.stats.n_uncertified
    assert len(new.support) == len(old.support) and len(new.atoms) == len(old.atoms)
    assert np.ravel(new.support) == pytest.approx(np.ravel(old.support), rel=1e-9, abs=1e-12)
    assert np.ravel(new.atoms) == pytest.approx(np.ravel(old.atoms), rel=1e-12, abs=1e-12)
    lo, hi = new.support[0][0], new.support[-1][1]
    x = np.geomspace(max(lo, 1e-9 * hi), hi, 300)
    assert np.max(np.abs(new.cdf(x) - old.cdf(x))) <= 1e-10


@pytest.mark.parametrize("widths,seed,n_samples", [([1000] * 3, 0, 8), ([1000, 1000, 500, 1000], 1, 2)])
def test_orthogonal_leaky_relu_against_monte_carlo(widths, seed, n_samples, monkeypatch):
    # (square: F rises by about 1/2 within a few 1e-3 of 4 a^2 sigma_w2^2 = 0.04, where 2000
    # eigenvalues of one seed stray by 0.024 and 8000 by 0.011; width 2000 gives 0.006)
    net = fpcore.Network(widths, "leaky_relu:0.1", sigma_w2=2.0, init="orthogonal")
    s = _spectrum(net, True, monkeypatch, n_points=600)
    st = s.stats
    assert st.n_certified + st.n_verified + st.n_uncertified == 600
    assert st.n_certified >= 300
    ev = fpcore.sample_jacobian_eigenvalues(net, seed=seed, n_samples=n_samples)
    assert _ks(s, ev) <= 0.02
