"""CDFs that never decrease (issue 10): nets of the adversarial check (seed 2) whose CDF fell
with no warning, each against network Monte Carlo with a fixed seed."""

import warnings

import numpy as np
import pytest

import fpcore


def _fine(s, n=600):
    lm = s.lambda_max
    return np.unique(np.r_[np.geomspace(1e-14 * lm, lm, n), np.linspace(0.0, 1.02 * lm, n)[1:], s.x])


@pytest.mark.parametrize("net,gram", [
    # real Gauss-Hermite atoms of the tanh / erf laws of D^2 split spurious intervals off the
    # hard lower edge of rectangular Gaussian nets: F(0.00165) = 0.20038 > F(0.00168) = 0.20029
    (fpcore.Network([1250, 1000], "tanh", sigma_w2=0.639267976159185, sigma_b2=0.10732036330939577,
                    q0=0.1932169537158632), "JtJ"),
    (fpcore.Network([1250, 1166, 1083, 1000], "tanh", sigma_w2=0.7098753002700411, q0=1.8471632676313632), "JtJ"),
    (fpcore.Network([1250, 1187, 1125, 1062, 1000], "erf", sigma_w2=0.7134361633207906,
                    sigma_b2=[0.023701249686652222, 0.03439376242739009, 0.04138536714158243, 0.048656757142880445],
                    q0="fixed_point"), "JJt"),
], ids=["tanh-1250-1000", "tanh-tapered", "erf-tapered-biases"])
def test_rectangular_gaussian_saturating_nets_have_monotone_cdfs(net, gram):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # nothing uncertified either
        s = fpcore.jacobian_spectrum(net, gram, n_points=300)
        F = np.asarray(s.cdf(_fine(s)))
    assert np.all(np.diff(F) >= -1e-12), np.min(np.diff(F))
    assert len(s.support) == 1, s.support
    ev = fpcore.sample_jacobian_eigenvalues(net, gram=gram, seed=7, n_samples=2)
    assert fpcore.ks_distance(s, ev) < 0.02


def test_interval_masses_are_read_in_the_gaps_not_at_the_edges():
    # orthogonal leaky ReLU with a bottleneck: two intervals and the atom 1/3 at 0; the mass of
    # the first one came from a verified solve 1e-10 inside its square-root bottom edge and
    # lost 0.016, so F fell from 0.6667 inside the interval to 0.6505 in the gap after it
    net = fpcore.Network([300, 200, 300], "leaky_relu:0.1", sigma_w2=2.0, init="orthogonal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s = fpcore.jacobian_spectrum(net, "JtJ", n_points=200)
        assert len(s.support) == 2
        (_, up), (lo, _) = s.support
        masses = s._interval_masses()
        assert sum(masses) == pytest.approx(1.0 - s.atom, abs=1e-12)
        F = np.asarray(s.cdf(_fine(s)))
        assert np.all(np.diff(F) >= -1e-12)
        gap = float(s.cdf(np.sqrt(up * lo)))
        assert gap == pytest.approx(float(s.cdf(up * (1 - 1e-6))), abs=1e-5)
    ev = fpcore.sample_jacobian_eigenvalues(net, "JtJ", seed=1, n_samples=20)
    assert abs(gap - np.mean(ev <= np.sqrt(up * lo))) < 0.01
