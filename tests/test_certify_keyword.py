"""``jacobian_spectrum(..., certify=False)``: the same solutions without the joint certificate."""

import numpy as np
import pytest

import fpcore

CASES = [
    fpcore.Network([400] * 6, activation="tanh", sigma_w2=1.5),
    fpcore.Network([400] * 5, activation="gelu", sigma_w2=2.0),
    fpcore.Network([300] * 4, activation="tanh", sigma_w2=1.0, sigma_b2=0.0, init="orthogonal"),
]


@pytest.mark.parametrize("net", CASES, ids=["tanh", "gelu", "orthogonal-tanh"])
def test_uncertified_call_gives_the_certified_values(net):
    cert = fpcore.jacobian_spectrum(net, n_points=120)
    fast = fpcore.jacobian_spectrum(net, n_points=120, certify=False)
    assert cert.stats.n_certified > 0  # the certificate ran and certified points
    assert fast.stats.n_certified == 0  # it did not run: nothing claimed certified
    assert fast.stats.n_verified + fast.stats.n_uncertified == fast.stats.n_points
    # every point verified in the certified call (certified or not) is verified here too
    assert fast.stats.n_uncertified == cert.stats.n_uncertified
    np.testing.assert_array_equal(fast.x, cert.x)
    np.testing.assert_allclose(fast.density, cert.density, rtol=1e-12, atol=1e-12 * np.max(cert.density))
    F_c, F_f = np.asarray(cert.cdf(cert.x)), np.asarray(fast.cdf(fast.x))
    np.testing.assert_allclose(F_f, F_c, rtol=0, atol=1e-12)
    assert fast.atom == cert.atom and fast.lambda_max == cert.lambda_max


def test_rational_networks_are_certified_either_way():
    net = fpcore.Network([400] * 6, activation="relu", sigma_w2=2.0)
    cert = fpcore.jacobian_spectrum(net, n_points=120)
    fast = fpcore.jacobian_spectrum(net, n_points=120, certify=False)
    assert fast.stats.n_certified == cert.stats.n_certified > 0
    np.testing.assert_array_equal(fast.density, cert.density)


@pytest.mark.parametrize("bad", [0, 1, "no", None])
def test_certify_must_be_a_bool(bad):
    with pytest.raises(ValueError, match="certify"):
        fpcore.jacobian_spectrum(fpcore.Network([50] * 3, activation="tanh"), n_points=16, certify=bad)
