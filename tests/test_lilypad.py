"""The lilypad solver: the recorded chain, the Kantorovich test and the Newton basins."""

import numpy as np
import pytest

import fpcore
from fpcore._equation import build_equation
from fpcore._lilypad import kantorovich, solve

NETS = [
    fpcore.Network([200] * 4, "relu", sigma_w2=2.0),
    fpcore.Network([100, 300, 200], "linear", sigma_w2=1.3),
    fpcore.Network([200, 200, 200], "hard_tanh", sigma_w2=1.5, init="orthogonal", sigma_b2=0.2),
    fpcore.Network([200] * 21, "relu", sigma_w2=2.0),
]


@pytest.mark.parametrize("net", NETS)
def test_trace_is_a_certified_chain(net):
    spec = fpcore.jacobian_spectrum(net, n_points=100)
    lo, hi = spec.support[-1]
    x = lo + 0.7 * (hi - lo)
    tr = fpcore.lilypad_trace(net, x)
    eq = build_equation(net)
    assert tr.certified and tr.verified
    assert tr.centres[-1] == tr.target == complex(x)
    # the chain walks down toward the real axis, every step certified from the previous solution
    assert np.all(np.diff(tr.centres.imag) <= 0)
    ok, theta, eta = kantorovich(eq, tr.centres[1:], tr.solutions[:-1])
    assert np.all(ok) and np.all(theta <= 0.5)
    # rejected proposals really fail the test from the lilypad they were tried from
    if tr.rejected.size:
        ok_r, theta_r, _ = kantorovich(eq, tr.rejected, tr.solutions[tr.rejected_from])
        assert not np.any(ok_r)
    # each lilypad disc is certified: points on its rim pass the test
    rim = tr.centres[:-1, None] + 0.999 * tr.radii[:-1, None] * np.exp(1j * np.linspace(0, 2 * np.pi, 9))
    starts = np.repeat(tr.solutions[:-1], 9)
    assert np.all(kantorovich(eq, rim.ravel(), starts)[0])
    # same answer as the fast path
    F, d = spec._cdf_and_density(np.array([x]))
    assert tr.density == pytest.approx(d[0], rel=1e-10)
    assert tr.G == pytest.approx((1 + tr.m) / x)
    assert tr.newton[-1].size >= 2


def test_kantorovich_rejects_a_far_start():
    eq = build_equation(NETS[0])
    z = np.array([1.0 + 0j])
    # the solution at z = 1 is well inside the lower half-plane; a start in the upper
    # half-plane at distance 1 is not certified
    good = solve(eq, z, scale=10.0).m
    ok, theta, eta = kantorovich(eq, z, good + 1.0j)
    assert not ok[0]
    ok, theta, eta = kantorovich(eq, z, good)
    assert ok[0] and eta[0] < 1e-12


def test_certified_start_converges_to_the_physical_root():
    # From every lilypad, Newton at the next centre lands on the solution the chain records.
    net = NETS[1]
    tr = fpcore.lilypad_trace(net, 2.0)
    for k in range(1, len(tr)):
        iters = tr.newton[k]
        assert iters[0] == tr.solutions[k - 1]
    assert tr.solutions.imag[-1] < 0


def test_every_point_has_a_bounded_chain():
    s = fpcore.jacobian_spectrum(NETS[3], n_points=400)
    st = s.stats
    assert st.n_points == 400 and st.n_certified == 400 and st.n_uncertified == 0
    assert st.n_lilypads < 60 * st.n_points
    assert st.seconds > 0


def test_newton_basins_contain_the_chain():
    net = NETS[0]
    tr = fpcore.lilypad_trace(net, 1.0)
    k = len(tr) // 2
    z = tr.centres[k]
    re = np.linspace(tr.solutions[k].real - 1, tr.solutions[k].real + 1, 41)
    im = np.linspace(tr.solutions[k].imag - 1, tr.solutions[k].imag + 1, 41)
    labels, roots = fpcore.newton_basins(net, z, re, im)
    assert labels.shape == (41, 41)
    exact = solve(build_equation(net), np.array([z]), scale=10.0).m[0]
    phys = np.argmin(np.abs(roots - exact))
    assert abs(roots[phys] - exact) < 1e-8
    # the previous lilypad's solution (a certified start for z) lies in the physical basin
    j = np.argmin(np.abs(re - tr.solutions[k - 1].real))
    i = np.argmin(np.abs(im - tr.solutions[k - 1].imag))
    lab, roots1 = fpcore.newton_basins(net, z, [tr.solutions[k - 1].real], [tr.solutions[k - 1].imag])
    assert roots1[lab[0, 0]] == pytest.approx(exact, rel=1e-9)
    # every root is a solution of M^{-1}(m) = z
    eq = build_equation(net)
    for r in roots:
        d = r - eq.roots
        assert np.exp(eq.log_c + np.sum(eq.exps * np.log(d))) == pytest.approx(z, rel=1e-7)
    assert np.any(labels == phys) and 0 <= i < 41 and 0 <= j < 41


def test_leaky_relu_grid_is_certified_by_the_joint_test():
    # the grid is certified by the joint (m, u) Kantorovich test (tests/test_joint_certificate.py);
    # the recorded trace keeps the a-posteriori chain: verified, not certified
    s = fpcore.jacobian_spectrum(fpcore.Network([300] * 4, "leaky_relu:0.2", sigma_w2=2.0), n_points=200)
    assert s.stats.n_certified > 0.5 * s.stats.n_points
    assert s.stats.n_certified + s.stats.n_verified == s.stats.n_points
    tr = fpcore.lilypad_trace(fpcore.Network([300] * 4, "leaky_relu:0.2", sigma_w2=2.0), 0.5)
    assert tr.verified and not tr.certified


@pytest.mark.parametrize(
    "net",
    [
        fpcore.Network([300] * 2, "linear", sigma_w2=1.0),
        fpcore.Network([300, 500, 200, 400], "relu", sigma_w2=2.0, sigma_b2=0.1),
        # its lower edge is a critical value at 1.6e-14 (lambda_max = 140): at the float floor, so 0
        # on both paths (the compiled scan resolved it, the vectorised one did not)
        fpcore.Network([300] * 21, "hard_tanh", sigma_w2=1.3, sigma_b2=0.05),
        fpcore.Network([300, 450, 200], "linear", sigma_w2=1.3, init="orthogonal"),
        fpcore.Network([300] * 6, "relu", sigma_w2=2.0, init="orthogonal"),
    ],
)
def test_compiled_chains_agree_with_the_vectorised_solver(net, monkeypatch):
    from fpcore import _fastchain

    fast = fpcore.jacobian_spectrum(net, n_points=300)
    monkeypatch.setattr(_fastchain, "_HAVE_NUMBA", False)
    slow = fpcore.jacobian_spectrum(net, n_points=300)
    assert fast.stats.n_certified == fast.stats.n_points and fast.stats.n_uncertified == 0
    np.testing.assert_allclose(fast.x, slow.x, rtol=1e-12)  # edges: bisection vs brentq, to rounding
    np.testing.assert_allclose(fast.density, slow.density, rtol=1e-8, atol=1e-12 * fast.density.max())
    np.testing.assert_allclose(fast._cdf_grid, slow._cdf_grid, atol=1e-12)
    np.testing.assert_allclose(np.array(fast.support), np.array(slow.support), rtol=1e-10)


def test_compiled_test_rejects_a_start_outside_the_basin():
    from fpcore import _fastchain
    from fpcore._equation import build_equation

    eq = build_equation(fpcore.Network([300] * 4, "linear", sigma_w2=1.0))
    a, e = eq.roots.astype(float), eq.exps.astype(float)
    z = 2.0 + 0.5j
    from fpcore._lilypad import solve

    m = solve(eq, np.array([z]), scale=10.0).m[0]
    assert _fastchain._test(z, m * (1 + 1e-6), a, e, float(eq.log_c))[0]
    assert not _fastchain._test(z, np.conj(m), a, e, float(eq.log_c))[0]  # the unphysical root's side


_SMOOTH_NETS = [
    fpcore.Network([300] * 6, "tanh", sigma_w2=1.0),
    fpcore.Network([300, 450, 200], "sigmoid", sigma_w2=4.0, sigma_b2=0.5),
    fpcore.Network([300] * 4, "leaky_relu:0.2", sigma_w2=2.0, sigma_b2=0.05),
    fpcore.Network([300] * 11, "selu", sigma_w2=1.0, q0="fixed_point"),
    # a sequential continuation along the real axis from a gap (M real) into the bulk followed a
    # real root across the whole bulk here (CDF stuck at 0.556, an early version of the compiled
    # sweep): gaps are entered from far above
    fpcore.Network([208, 325, 93, 156], "sigmoid", sigma_w2=1.6883949347535636, sigma_b2=0.3, q0="fixed_point"),
    # long laws (refined onto the zeros of phi'): solved with their short Gauss rules
    fpcore.Network([300] * 6, "gelu", sigma_w2=2.0),
    fpcore.Network([300, 200, 400], "silu", sigma_w2=2.0, sigma_b2=0.05),
]


@pytest.mark.parametrize("net", _SMOOTH_NETS)
def test_compiled_grid_sweep_agrees_with_walks_from_far_above(net, monkeypatch):
    """The compiled sweep (secant predictor along the grid, walks from far above at the first
    point and into gaps) finds the roots that the vectorised walks from far above, one per grid
    point, reach with the full D^2 laws."""
    from fpcore import _fastchain
    from fpcore._lilypad import solve
    from fpcore._spectrum import _tail_mass

    fast = fpcore.jacobian_spectrum(net, n_points=300)
    eq = fast._eq
    monkeypatch.setattr(_fastchain, "_HAVE_NUMBA", False)
    ref = solve(eq, fast.x.astype(complex), scale=fast.lambda_max)
    assert fast.stats.n_uncertified == 0
    assert ref.verified.mean() >= 0.97
    ok = ref.verified
    F_ref = 1.0 - _tail_mass(eq, ref.m, ref.u)
    np.testing.assert_allclose(fast._cdf_grid[ok], np.clip(F_ref[ok], 0, 1), atol=1e-10)
    # inside the support the roots agree; in a gap several real roots give the same CDF
    inside = ok & (fast.density > 0) & (-ref.m.imag > 1e-9 * np.abs(ref.m))
    assert inside.sum() >= 0.5 * fast.x.size  # the sigmoid nets have gaps far below the bulk
    np.testing.assert_allclose(fast._m_grid[inside], ref.m[inside], rtol=1e-8)


_EDGE_NETS = _SMOOTH_NETS[:4] + _SMOOTH_NETS[5:]  # GELU, SiLU: short rules on both paths


@pytest.mark.parametrize("net", _EDGE_NETS)
def test_compiled_edges_agree_with_the_vectorised_ones(net, monkeypatch):
    from fpcore import _edges, _fastchain
    from fpcore._equation import build_equation

    eq = build_equation(net)
    fast = _edges.upper_edge(eq)
    monkeypatch.setattr(_fastchain, "_HAVE_NUMBA", False)
    assert fast == pytest.approx(_edges.upper_edge(eq), rel=1e-12)


@pytest.mark.parametrize("numba", [True, False])
def test_grid_solvers_enter_gaps_from_far_above(numba, monkeypatch):
    """Deep sigmoid nets have gaps far below the bulk (an artefact of the atomic D^2 law, but a
    root of its equation). The level schedule used to walk into and out of them along the real
    axis and, at 4 of these 400 points, kept a real root where the walks from far above find the
    density (CDF off by 0.0099); both grid solvers now enter and leave gaps from far above."""
    from fpcore import _fastchain
    from fpcore._lilypad import solve
    from fpcore._spectrum import _tail_mass

    net = fpcore.Network([198, 145, 339, 139, 193, 275, 242, 80], "sigmoid", sigma_w2=2.41)
    monkeypatch.setattr(_fastchain, "_HAVE_NUMBA", numba)
    s = fpcore.jacobian_spectrum(net, "JJt", n_points=400)
    monkeypatch.setattr(_fastchain, "_HAVE_NUMBA", False)
    ref = solve(s._eq, s.x.astype(complex), scale=s.lambda_max)
    ok = ref.verified & np.isfinite(s._m_grid)
    assert ok.sum() >= 390
    F_ref = np.clip(1.0 - _tail_mass(s._eq, ref.m, ref.u), 0.0, 1.0)
    np.testing.assert_allclose(s._cdf_grid[ok], F_ref[ok], atol=1e-10)


def test_edges_ignore_slopes_at_rounding_level():
    """Far from the roots the slope of log M^{-1} cancels to ~1e-14: its sign is noise. Two
    orthogonal leaky-ReLU nets of the study crashed on it (brentq on a bracket whose signs did not
    survive re-evaluation). For the second, J J^T = sigma^2 W_2 D^2 W_2^T: lambda_max = sigma^2."""
    a = fpcore.jacobian_spectrum(fpcore.Network([64, 64, 64], "leaky_relu", sigma_w2=1.483694, init="orthogonal"))
    assert a.cdf(a.lambda_max) == 1.0 and np.isfinite(a.lambda_max)
    net = fpcore.Network([64, 16, 10], ["leaky_relu", "linear"], sigma_w2=[1.614459, 1.0], sigma_b2=[0.2, 0.0],
                         init="orthogonal")
    assert fpcore.jacobian_spectrum(net, "JJt").lambda_max == pytest.approx(1.614459, rel=1e-9)


@pytest.mark.parametrize("net", NETS[:2] + [fpcore.Network([200] * 6, "tanh", sigma_w2=1.0),
                                             fpcore.Network([200] * 6, "gelu", sigma_w2=2.0)])
def test_trace_claims_a_kantorovich_ball_only_for_tested_steps(net):
    """``m_radii`` is the radius ``2 eta`` of each step's Kantorovich ball where the step passed
    the test (rational equations), and nan where no test was made: the verified chain of a
    smooth activation records step lengths, which are no balls (the dashboard draws none)."""
    spec = fpcore.jacobian_spectrum(net, n_points=60)
    tr = fpcore.lilypad_trace(net, float(spec.quantile(0.6)))
    assert np.isnan(tr.m_radii[0]) and tr.m_radii.size == len(tr)
    if build_equation(net).rational:
        assert tr.certified
        assert np.all(np.isfinite(tr.m_radii[1:]) & (tr.m_radii[1:] > 0))
        # (that each ball holds the root Newton reaches from the step's start:
        # test_basins.test_each_lilypad_start_lies_in_the_basin_of_the_chain_s_root)
    else:
        assert tr.verified and not tr.certified
        assert np.all(np.isnan(tr.m_radii))
