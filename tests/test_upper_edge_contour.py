"""The upper edge of orthogonal expanding smooth nets (adversarial check, stop 15).

``lambda_max`` is the minimum of ``M^{-1}(m)`` over ``m > 0``; for orthogonal expanding layers it
lies where ``u_g`` nears the pole of ``psi_g`` at ``1 / sup D^2``, which the real atoms of a
continuous law do not represent (tanh: the real atoms gave 1.25996 instead of 1.26676, and the CDF
jumped from 0.972 to 1 there). The edge is taken with the solver's contour rules.
"""

import warnings

import numpy as np
import pytest

import fpcore

N = fpcore.Network
CASES = [
    ("tanh-1L", N([2000, 2500], "tanh", sigma_w2=1.0179081694038263, sigma_b2=0.0, init="orthogonal",
                  q0=0.31373169059734235), "JtJ"),
    ("tanh-1L-JJt", N([2000, 2500], "tanh", sigma_w2=1.0179081694038263, sigma_b2=0.0, init="orthogonal",
                      q0=0.31373169059734235), "JJt"),
    ("erf-1L", N([2000, 2500], "erf", sigma_w2=1.5, sigma_b2=0.0, init="orthogonal", q0=0.5), "JtJ"),
    ("sigmoid-1L", N([2000, 2500], "sigmoid", sigma_w2=4.0, sigma_b2=0.0, init="orthogonal", q0=0.5), "JtJ"),
]


@pytest.mark.parametrize("name,net,gram", CASES, ids=[c[0] for c in CASES])
def test_upper_edge_closes_the_law(name, net, gram):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no point may be flagged here
        spec = fpcore.jacobian_spectrum(net, gram=gram, n_points=400)
    lm = spec.lambda_max
    F, d = spec._cdf_and_density(np.array([lm * (1 - 1e-6), lm * (1 - 1e-4)]))
    # the continuous mass is closed at the edge: no jump of F, a square-root density
    assert 1.0 - F[0] <= 1e-6, f"{name}: 1 - F(edge - 1e-6 edge) = {1 - F[0]:.3g}"
    assert d[0] <= 0.2 * d[1] + 1e-9, f"{name}: density {d[0]:.3g} at 1e-6, {d[1]:.3g} at 1e-4 below the edge"
    ev = fpcore.sample_jacobian_eigenvalues(net, gram=gram, mode="network", seed=7, n_samples=4)
    ks = fpcore.ks_distance(spec, ev)
    # (pre-fix: tanh KS 0.02 at every width, erf 0.027)
    assert ks <= 0.01, f"{name}: KS {ks:.4f}"
    # at most a finite-size overshoot (Tracy-Widom ~ N^(-2/3)) of the largest eigenvalue
    assert ev.max() <= lm * (1 + 2e-3), f"{name}: MC max {ev.max():.6f} above lambda_max {lm:.6f}"
