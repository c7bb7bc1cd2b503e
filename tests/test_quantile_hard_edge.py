"""Off-grid points next to an edge where ``|M|`` grows without bound (issue #11, Part 2).

Two ReLU layers with orthogonal weights: ``J J^T = 4 P Q P`` for two free projections of trace
1/2 (``D^2`` is Bernoulli(1/2) with or without bias), whose law is an atom 1/2 at 0 and half the
arcsine law on ``(0, 4)``: ``F(x) = 1/2 + arcsin(sqrt(x / 4)) / pi``. At the top edge
``M^{-1}(m) = 4 (1 + 1 / (4 m (m + 1)))`` tends to 4 as ``m -> infinity``, so ``M ~ (4 - x)^{-1/2}``
there. Certified walks in ``m`` toward such a point take lilypads of about ``1 / |m|^2`` of the
distance to the edge (400 of them did not reach ``x = 4 - 1e-5``: 1.7 s a point, 27 s for
``quantile(0.999)``); in ``w = 1 / conj(m)`` the edge is an ordinary square-root edge."""

import math
import warnings

import numpy as np
import pytest

import fpcore
from fpcore import _fastchain, _lilypad


def _net():
    return fpcore.Network([1000, 1000, 1000], "relu", sigma_w2=2.0, sigma_b2=0.0058, init="orthogonal", q0=0.2)


def _cdf_exact(x):
    return 0.5 + np.arcsin(np.sqrt(np.clip(np.asarray(x) / 4.0, 0.0, 1.0))) / math.pi


def _quantile_exact(p):
    return 4.0 * np.sin(math.pi * (np.asarray(p) - 0.5)) ** 2


@pytest.fixture(scope="module")
def spectrum():
    return fpcore.jacobian_spectrum(_net())


@pytest.mark.parametrize("p", [0.9, 0.99, 0.999, 0.9999, 0.99999])
def test_quantile_near_the_hard_edge_matches_the_arcsine_law(spectrum, p):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no point left uncertified on the way
        q = spectrum.quantile(p)
        F = spectrum.cdf(q)
    # the quantile's definition (F(q) >= p, to the search's tolerance) and the closed form: the
    # exact CDF at q is p to 1e-9 (q itself: 4 - q ~ (1 - p)^2, so relative to 4 - q)
    assert F >= p
    assert abs(_cdf_exact(q) - p) <= 1e-9
    assert abs(q - _quantile_exact(p)) <= 1e-6 * (4.0 - _quantile_exact(p))


def test_cdf_next_to_the_hard_edge_certified_by_short_walks(spectrum):
    x = 4.0 - np.array([1e-4, 1e-5, 1e-7, 1e-9])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F = spectrum.cdf(x)
    assert np.max(np.abs(F - _cdf_exact(x))) <= 1e-9
    if not _fastchain._HAVE_NUMBA:
        return
    # the walks from the top grid point arrive, certified, in a bounded number of lilypads (the
    # vectorised walk in m took 400 and stopped short of 4 - 1e-5)
    g, m0, _ = spectrum._starts()
    r = _lilypad.solve_near(spectrum._eq, x, spectrum.lambda_max, np.full(x.size, g[-1]), np.full(x.size, m0[-1]),
                            fallback=False)
    assert np.all(r.certified)
    assert r.n_lilypads <= 100 * x.size
