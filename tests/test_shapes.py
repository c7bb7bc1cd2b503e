"""Rectangular, tapered, expanding and bottleneck nets: support, edges and density of the rational
path against closed forms (MATH.md section 6), Monte Carlo, and the vectorised solver."""

from math import sqrt

import numpy as np
import pytest

import fpcore
from fpcore import _fastchain, _lilypad
from fpcore._equation import build_equation


def free_projections(a, b, lam):
    """Edges and density of the continuous part of ``P Q P`` (free projections of ranks ``a``, ``b``)."""
    lm = a + b - 2 * a * b - 2 * sqrt(a * b * (1 - a) * (1 - b))
    lp = a + b - 2 * a * b + 2 * sqrt(a * b * (1 - a) * (1 - b))
    d = np.sqrt(np.maximum((lp - lam) * (lam - lm), 0.0)) / (2 * np.pi * lam * (1 - lam))
    return lm, lp, d


@pytest.mark.parametrize("n0,n1,n2", [(300, 1000, 400), (500, 1000, 250), (800, 1000, 900)])
def test_rectangular_orthogonal_linear_is_two_free_projections(n0, n1, n2):
    # N_1 > N_0, N_2: J^T J = (N_1/N_0) O_1^T P_2 O_1, whose non-zero eigenvalues are those of
    # P_1 P_2 P_1 in N_1 dims (P_1 = O_1 O_1^T, P_2 = O_2^T O_2: free projections of ranks
    # a = N_0/N_1, b = N_2/N_1), scaled by 1/a. In N_0 dims the density at x is f(a x).
    a, b = n0 / n1, n2 / n1
    s = fpcore.jacobian_spectrum(fpcore.Network([n0, n1, n2], "linear", sigma_w2=1.0, init="orthogonal"))
    lm, lp, _ = free_projections(a, b, np.array([0.5]))
    atom1 = max(a + b - 1, 0.0) / a  # the atom of P Q P at 1, in N_0 dims
    assert s.atom == pytest.approx(max(0.0, 1 - min(a, b) / a), abs=1e-12)
    assert len(s.support) == 1 and s.support[0] == pytest.approx((lm / a, lp / a), rel=1e-9)
    inner = (s.x > s.support[0][0] * (1 + 1e-3)) & (s.x < s.support[0][1] * (1 - 1e-3))
    _, _, f = free_projections(a, b, a * s.x[inner])
    assert np.max(np.abs(s.density[inner] / f - 1)) <= 1e-6
    if atom1 > 0:
        assert any(abs(loc - 1 / a) < 1e-9 and m == pytest.approx(atom1, abs=1e-12) for loc, m in s.atoms)
    assert s.stats.n_certified == s.stats.n_points


@pytest.mark.parametrize("n0,n1", [(400, 1000), (1000, 4000), (700, 800)])
def test_rectangular_gaussian_layer_is_marchenko_pastur(n0, n1):
    c = n1 / n0
    s = fpcore.jacobian_spectrum(fpcore.Network([n0, n1], "linear", sigma_w2=1.0))
    assert len(s.support) == 1
    assert s.support[0] == pytest.approx(((sqrt(c) - 1) ** 2, (sqrt(c) + 1) ** 2), rel=1e-10)


def test_orthogonal_relu_depth_two_is_an_arcsine_law():
    # D_2 O_2 D_1 O_1 with sigma_w2 = 2: J^T J ~ 4 P Q P, free projections of rank 1/2: atom 1/2
    # at 0 and density 1/(2 pi sqrt(y(1-y))) / 4 at x = 4y; edges 0 and 4 (M(x) -> infinity at 4).
    s = fpcore.jacobian_spectrum(fpcore.Network([1000] * 3, "relu", sigma_w2=2.0, init="orthogonal"))
    assert s.atom == pytest.approx(0.5)
    assert len(s.support) == 1 and s.support[0] == pytest.approx((0.0, 4.0), abs=1e-12)
    y = s.x / 4
    inner = (y > 1e-6) & (y < 1 - 1e-4)
    exact = 1.0 / (2 * np.pi * np.sqrt(y[inner] * (1 - y[inner]))) / 4
    assert np.max(np.abs(s.density[inner] / exact - 1)) <= 1e-6
    assert s.stats.n_certified == s.stats.n_points


def _expanding(L):
    return [round(100 * 1.25**l) for l in range(L + 1)]


@pytest.mark.parametrize("act,sw2,gap,inside", [("relu", 2.0, [0.3, 1.0, 3.8], [3.9, 50.0, 130.0]),
                                                ("hard_tanh", 1.0, [1.0, 1.8, 2.0], [2.1, 5.0, 8.0]),
                                                ("linear", 1.0, [1.0, 7.0], [8.0, 20.0, 140.0])])
def test_deep_expanding_support_is_one_interval(act, sw2, gap, inside):
    # Depth 50, widths 100 * 1.25^l: the support is one interval; the spectrum's interval must
    # agree with certified solves on both sides of its lower edge (M real below, not above).
    net = fpcore.Network(_expanding(50), act, sigma_w2=sw2)
    s = fpcore.jacobian_spectrum(net)
    assert len(s.support) == 1
    lo, hi = s.support[0]
    assert max(gap) < lo < min(inside) and hi > max(inside)
    eq = build_equation(net)
    r = _lilypad.solve(eq, np.array(gap + inside, dtype=complex), scale=hi)
    assert np.all(r.certified)
    im = -r.m.imag / np.abs(r.m)
    assert np.all(im[: len(gap)] < 1e-12) and np.all(im[len(gap):] > 1e-6)
    assert s.stats.n_uncertified == 0 and s.stats.n_certified == s.stats.n_points
    assert s.cdf(lo * (1 - 1e-9)) == pytest.approx(s.atom, abs=1e-9)


NETS = [
    fpcore.Network([784, 323, 133, 55, 23, 10], "relu", sigma_w2=2.0),
    fpcore.Network([784, 323, 133, 55, 23, 10], "hard_tanh", sigma_w2=1.0, init="orthogonal"),
    fpcore.Network(_expanding(6), "linear", sigma_w2=1.0),
    fpcore.Network(_expanding(4), "relu", sigma_w2=2.0, init="orthogonal"),
    fpcore.Network([1000, 1000, 250, 1000, 1000], "relu", sigma_w2=2.0),
    fpcore.Network([1000, 1000, 250, 1000, 1000], "linear", sigma_w2=1.0, init="orthogonal"),
    fpcore.Network([300, 1000, 500, 500], "hard_tanh", sigma_w2=1.5, sigma_b2=0.1),
]


@pytest.mark.parametrize("net", NETS, ids=lambda n: f"{n.activations[0].name}-{n.init}-{len(n.widths) - 1}")
@pytest.mark.parametrize("gram", ["JtJ", "JJt"])
def test_compiled_path_equals_the_vectorised_one(net, gram, monkeypatch):
    fast = fpcore.jacobian_spectrum(net, gram=gram)
    monkeypatch.setattr(_fastchain, "_HAVE_NUMBA", False)
    slow = fpcore.jacobian_spectrum(net, gram=gram)
    assert len(fast.support) == len(slow.support)
    np.testing.assert_allclose(np.array(fast.support), np.array(slow.support), rtol=1e-8)
    assert fast.lambda_max == pytest.approx(slow.lambda_max, rel=1e-9)
    np.testing.assert_allclose(fast.x, slow.x, rtol=1e-8)
    np.testing.assert_allclose(fast.density, slow.density, rtol=1e-7, atol=1e-9 * fast.density.max())
    np.testing.assert_allclose(fast._cdf_grid, slow._cdf_grid, atol=1e-9)
    # every point of the compiled path is certified (the vectorised solver leaves a few
    # uncertified on some of these nets); atoms-only laws have no solved points
    assert fast.stats.n_uncertified == 0 and fast.stats.n_verified == 0
    assert fast.stats.n_certified == (fast.stats.n_points if fast.support else 0)


@pytest.mark.parametrize("widths,act,sw2,init", [([600, 900, 300, 900, 600], "relu", 2.0, "gaussian"),
                                                 ([784, 600, 400, 200, 100], "relu", 2.0, "orthogonal"),
                                                 ([400, 500, 625, 781], "hard_tanh", 1.0, "gaussian")])
def test_rectangular_nets_against_monte_carlo(widths, act, sw2, init):
    net = fpcore.Network(widths, act, sigma_w2=sw2, init=init)
    s = fpcore.jacobian_spectrum(net)
    ev = fpcore.sample_jacobian_eigenvalues(net, seed=0, n_samples=3)
    assert fpcore.ks_distance(s, ev) <= 0.03
    assert s.stats.n_certified == s.stats.n_points


def test_depth_1000_rational_nets_are_certified():
    for act, sw2 in (("relu", 2.0), ("linear", 1.0)):
        s = fpcore.jacobian_spectrum(fpcore.Network([1000] * 1001, act, sigma_w2=sw2))
        assert s.stats.n_certified == s.stats.n_points and s.stats.n_uncertified == 0
        assert s.cdf(s.lambda_max) == 1.0


def test_depth_1000_tanh_net_is_certified():
    # Near-critical tanh with bias, depth 1000 (602 distinct laws of D^2): summed apart, the logs
    # of m^{-e_0} and prod_g u_g^{n_g} (about 10^4 each) left a rounding residue in log M^{-1}
    # above the 1e-10 acceptance of a step, and every walk of the compiled solver failed.
    net = fpcore.Network([500] * 1001, "tanh", sigma_w2=1.05, sigma_b2=1e-4)
    s = fpcore.jacobian_spectrum(net)
    assert s.stats.n_certified == s.stats.n_points and s.stats.n_uncertified == 0
    assert np.all(np.diff(s._cdf_grid) >= -1e-12) and s.cdf(s.lambda_max) == 1.0
    # the mean of the law, prod_l sigma_w2 E[D_l^2] (MATH.md section 3), from the grid density
    x = np.r_[0.0, s.x, s.lambda_max]
    rho = np.r_[0.0, s.density, 0.0]
    assert np.sum(0.5 * (x[1:] * rho[1:] + x[:-1] * rho[:-1]) * np.diff(x)) == pytest.approx(s.mean, rel=2e-2)


def test_top_edge_below_an_atom_at_infinity_limit():
    # Orthogonal hard-tanh, square, L = 10: M^{-1}(m) -> C = 1 as m -> infinity with an atom at 1;
    # the continuous part ends below it, at a critical value of M^{-1} (M real in between).
    net = fpcore.Network([1000] * 11, "hard_tanh", sigma_w2=1.0, init="orthogonal")
    s = fpcore.jacobian_spectrum(net)
    assert any(abs(loc - 1.0) < 1e-12 and w > 0.1 for loc, w in s.atoms)
    assert len(s.support) == 1
    lo, hi = s.support[0]
    assert 0.9 < hi < 1.0
    xs = np.array([hi * (1 - 1e-3), 0.5 * (hi + 1.0), hi + 0.9 * (1.0 - hi)])
    r = _lilypad.solve(build_equation(net), xs.astype(complex), scale=1.0)
    assert np.all(r.certified)
    im = -r.m.imag / np.abs(r.m)
    # in the gap the root is real: its imaginary part is Newton's rounding residue (about 1e-12
    # relative since chains stop at each certified radius), 1e11 times below the bulk's
    assert im[0] > 1e-6 and np.all(im[1:] < 1e-10)
    # and the exact CDF carries no mass between the top edge and the atom at 1
    F = s.cdf(np.array([hi, 0.5 * (hi + 1.0), 1.0 - 1e-9]))
    assert np.ptp(F) < 1e-12 and F[0] + s.atoms[-1][1] == pytest.approx(1.0, abs=1e-12)
    assert s.stats.n_certified == s.stats.n_points
