"""The upper edge of nets whose laws of ``D^2`` carry short real rules (GELU, SiLU, softplus,
ELU, SELU): a guard on :func:`fpcore._edges.upper_edge`, which takes ``lambda_max`` there with the
laws' real atoms, not with the contour rules the solver uses.

Where the two disagreed the law would either continue past ``lambda_max`` (mass lost: the CDF
jumps to 1 there) or stop short of it (a gap below ``lambda_max``). Both are measured with the
solver's own equation, independently of how the edge was found: above the edge ``M(x + i0)`` is
real and the tail mass ``mu((x, inf))`` is 0; just below it the tail is positive and, at a
square-root edge, falls as ``d^(3/2)`` (a factor ``10^1.5 = 31.6`` from ``d = 1e-2`` to
``1e-3``). Monte Carlo of real networks (width 1000) adds an independent check: no more than a
finite-size overshoot of eigenvalues above ``lambda_max``, and the largest eigenvalue near the
law's ``1 - 1/(2N)`` quantile.

Measured on 30 nets (these 5 activations x Gaussian / orthogonal x one expanding layer, depth 4
square, depth 8 tapered): tail ratios 31.4-31.8 (a square-root edge) except where
``lambda_max`` is an atom (orthogonal ELU, one expanding layer: the atom at ``g^2``), mass above
``lambda_max (1 + 1e-4)`` below 1e-14, and Monte Carlo maxima (2 networks) 0.85-1.06 of
``lambda_max``; for the orthogonal SELU depth-8 net whose maxima reached 1.055, 6 networks at
``N_0 = 700`` and 1400, real and model Monte Carlo, gave maxima 0.83-1.07 of ``lambda_max`` with
means 0.93-0.98 (its ``1 - 1/(2N)`` quantile: 0.95-0.97): finite-width fluctuation, no excess.
Below the edge, ``int_0^lambda_max (1 - F)`` is the analytic mean to 2.4e-6.
"""

import math
import warnings

import numpy as np
import pytest

import fpcore
from fpcore._lilypad import solve
from fpcore._spectrum import _tail_mass

N = fpcore.Network
CASES = [
    ("gelu-gauss-1L", N([1000, 1500], "gelu", sigma_w2=2.0, sigma_b2=0.05, q0=1.0)),
    ("gelu-ortho-L4", N([1000] * 5, "gelu", sigma_w2=2.0, sigma_b2=0.05, init="orthogonal", q0=1.0)),
    ("silu-ortho-1L", N([1000, 1500], "silu", sigma_w2=3.0, sigma_b2=0.05, init="orthogonal", q0=1.0)),
    ("silu-gauss-L4", N([1000] * 5, "silu", sigma_w2=3.0, sigma_b2=0.05, q0=1.0)),
    ("softplus-ortho-1L", N([1000, 1500], "softplus", sigma_w2=3.0, sigma_b2=0.05, init="orthogonal", q0=1.0)),
    ("elu-gauss-L4", N([1000] * 5, "elu", sigma_w2=1.5, sigma_b2=0.05, q0=1.0)),
    ("selu-ortho-L4", N([1000] * 5, "selu", sigma_w2=1.0, sigma_b2=0.05, init="orthogonal", q0=1.0)),
]


@pytest.mark.parametrize("name,net", CASES, ids=[c[0] for c in CASES])
def test_short_rule_edge_closes_the_law(name, net):
    assert any(law._short_src is not None for law in fpcore.mean_field(net).laws)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no point may be flagged here
        spec = fpcore.jacobian_spectrum(net, n_points=300)
    lam = spec.lambda_max
    assert not any(a >= lam * (1 - 1e-9) for a, _ in spec.atoms)  # the edge of the continuous part
    # above the edge: M real, no mass
    above = lam * np.array([1 + 1e-4, 1 + 1e-3, 1 + 1e-2])
    r = solve(spec._eq, above.astype(complex), scale=lam)
    assert np.all(r.verified), name
    tail_above = _tail_mass(spec._eq, r.m, r.u, r.short)
    assert np.max(np.abs(tail_above)) <= 1e-12, f"{name}: mass {tail_above} above lambda_max"
    dens_above = -((1.0 + r.m) / above).imag / math.pi
    assert np.max(dens_above) <= 1e-9 * np.max(spec.density), f"{name}: density {dens_above} above lambda_max"
    # below: a square-root edge (no gap, no jump of F)
    tail = 1.0 - np.asarray(spec.cdf(lam * np.array([1 - 1e-3, 1 - 1e-2])))
    assert tail[0] > 0.0 and 25.0 <= tail[1] / tail[0] <= 40.0, f"{name}: tails {tail}"
    # the mass closes at lambda_max: int_0^lambda_max (1 - F) dx is the analytic mean (mass beyond
    # the edge would be missing from it, at least its mass times lambda_max); 2.4e-6 at most on
    # these nets (trapezoid rule on about 2800 points)
    x = np.unique(np.r_[spec.x, np.linspace(0.0, lam, 2001), np.geomspace(1e-9 * lam, lam, 500)])
    mean = np.trapezoid(1.0 - np.asarray(spec.cdf(x)), x) + x[0] * (1.0 - spec.atom)
    assert mean == pytest.approx(spec.mean, rel=2e-5), name
    # Monte Carlo of real networks: at most a finite-size overshoot above lambda_max
    ev = fpcore.sample_jacobian_eigenvalues(net, seed=7, n_samples=2).reshape(2, -1)
    n = ev.shape[1]
    assert np.all(np.sum(ev > lam * (1 + 0.02), axis=1) <= 2), f"{name}: MC maxima {ev[:, -1]} vs {lam}"
    q = float(spec.quantile(1.0 - 0.5 / n))
    assert 0.8 * q <= np.mean(ev[:, -1]) <= 1.1 * q, f"{name}: MC maxima {ev[:, -1]}, quantile {q}"
