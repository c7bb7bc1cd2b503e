"""Orthogonal nets whose laws of ``D^2`` mix real atoms and contour rules are swept compiled
(issue #11 item 1: no vectorised fallback on the common path).

SiLU and GELU layers saturated by a large ``q`` (``sigma_w2`` of hundreds, or depth: ``q`` doubles
per layer at ``sigma_w2 = 4``) get no contour rule: their laws are two atoms at 0 and 1 or a Gauss
rule of up to 40 real atoms, while the less saturated layers keep their contour rules. Such
equations took the vectorised continuation on every grid point (SiLU, depth 100, widths
contracting by 8, ``sigma_w2 = 4``: 80 s CPU for 200 points). The compiled sweep
(``_fastchain.grid_general``) serves them now, its points kept only where the joint certificate
joins them to a chain from far above (:func:`fpcore._lilypad._keep_certified`); the others come
from the vectorised continuation as before. The law must not change: the density equal to the
vectorised path's, no point less certified, and Monte Carlo of a real net within KS 0.02.
"""

import warnings

import numpy as np
import pytest

import fpcore
from fpcore import _activations, _lilypad
from fpcore._equation import build_equation

# q ~ 1e11 at the last layer: one law of 5 real atoms, four contour rules
MIXED = fpcore.Network([1000] * 6, "silu", sigma_w2=400.0, init="orthogonal")
# two atoms, a 4-atom and a 40-atom Gauss rule, three contour rules
MIXED_BIAS = fpcore.Network([1000] * 7, "gelu", sigma_w2=400.0, sigma_b2=0.1, init="orthogonal")


def _spectrum(net, mixed, monkeypatch, n_points=200):
    monkeypatch.setattr(_lilypad, "_ORTHO_MIXED", mixed)
    _activations._LAW_CACHE.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fpcore.jacobian_spectrum(net, n_points=n_points)


@pytest.mark.parametrize("net", [MIXED, MIXED_BIAS], ids=["silu", "gelu-bias"])
def test_mixed_orthogonal_equation_takes_the_compiled_sweep(net):
    eq = build_equation(net, "JtJ")
    inuse = [eq._contour_in_use(g) for g in eq.ugroups]
    assert any(inuse) and not all(inuse) and not eq.smooth_path
    assert not _lilypad._all_contour(eq) and _lilypad._mixed_compiled(eq)


@pytest.mark.parametrize("net", [MIXED, MIXED_BIAS], ids=["silu", "gelu-bias"])
def test_compiled_sweep_equals_the_vectorised_path(net, monkeypatch):
    old = _spectrum(net, False, monkeypatch)
    new = _spectrum(net, True, monkeypatch)
    so, sn = old.stats, new.stats
    assert sn.n_certified + sn.n_verified + sn.n_uncertified == sn.n_points == 200
    # no point less certified or verified than on the vectorised path
    assert sn.n_certified >= so.n_certified and sn.n_uncertified <= so.n_uncertified
    assert sn.n_certified == 200
    np.testing.assert_allclose(new.x, old.x, rtol=1e-14)
    assert np.ravel(new.support) == pytest.approx(np.ravel(old.support), rel=1e-12)
    # (measured: 3e-15 relative where the density exceeds 1e-6 of its peak, 1e-11 in the far tail)
    big = old.density > 1e-6 * old.density.max()
    assert np.max(np.abs(new.density - old.density)[big] / old.density[big]) <= 1e-9
    assert np.max(np.abs(new.density - old.density)) <= 1e-12 * old.density.max()
    # between grid points: the compiled walks from the nearest grid point against the vectorised
    # ones (measured: 2e-15)
    lo, hi = old.support[0][0], old.support[-1][1]
    x = np.r_[np.geomspace(max(lo, 1e-9 * hi), hi, 30), np.linspace(lo, hi, 30)[1:-1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        monkeypatch.setattr(_lilypad, "_ORTHO_MIXED", False)
        F_old = old.cdf(x)
        monkeypatch.setattr(_lilypad, "_ORTHO_MIXED", True)
        assert np.max(np.abs(new.cdf(x) - F_old)) <= 1e-12


def test_uncertified_points_come_from_the_vectorised_path(monkeypatch):
    # the compiled sweep's points the certificate does not reach are not kept: with a certificate
    # that leaves every third point out, the grid is the vectorised path's there and the sweep's
    # (certified) elsewhere, and no point is less certified than on the vectorised path
    net = MIXED
    old = _spectrum(net, False, monkeypatch, n_points=100)
    certify_grid = _lilypad._certify_grid
    calls = []

    def partial(eq, t, groups, m, u, ok, *args, **kw):
        cert = certify_grid(eq, t, groups, m, u, ok, *args, **kw)
        if not calls:  # the compiled sweep's certificate (the fallback's is left whole)
            m[1::3] *= 1.0 + 1e-3  # a wrong root there would show if it were kept
            cert[1::3] = False
        calls.append(t.size)
        return cert

    monkeypatch.setattr(_lilypad, "_certify_grid", partial)
    new = _spectrum(net, True, monkeypatch, n_points=100)
    assert len(calls) == 2  # the compiled sweep's certificate, then the fallback's
    assert new.stats.n_certified == old.stats.n_certified == 100
    np.testing.assert_allclose(new.density, old.density, rtol=1e-9, atol=1e-12 * old.density.max())


def test_mixed_orthogonal_net_against_monte_carlo(monkeypatch):
    spec = _spectrum(MIXED_BIAS, True, monkeypatch, n_points=300)
    st = spec.stats
    assert st.n_certified == st.n_points == 300
    ev = fpcore.sample_jacobian_eigenvalues(MIXED_BIAS, mode="network", seed=2026, n_samples=2)
    # (measured 0.0092; the vectorised path gives the same law)
    assert fpcore.ks_distance(spec, ev) <= 0.02
    assert spec.cdf(spec.lambda_max) == 1.0
