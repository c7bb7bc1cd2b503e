"""Phase diagram: closed forms of MATH.md section 6 (erf), the tanh and ReLU edges of chaos."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import optimize

import fpcore
from fpcore._meanfield import fixed_point
from fpcore._phase import PhaseDiagram, phase_diagram


def _erf_forms(a: float):
    """MATH.md section 6: E[erf(a h)^2] and mu_1 = E[D^2] for h ~ N(0, q)."""

    def V(q):
        return (2.0 / np.pi) * np.arcsin(2.0 * a * a * q / (1.0 + 2.0 * a * a * q))

    def mu1(q):
        return (4.0 * a * a / np.pi) / np.sqrt(1.0 + 4.0 * a * a * q)

    return V, mu1


# ---------------------------------------------------------------------------------------------
# erf(a x): everything in closed form
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [None, 0.7, 2.0])
def test_erf_fixed_point_and_chi1_match_closed_forms(scale):
    act = fpcore.get_activation("erf") if scale is None else fpcore.get_activation("erf", scale=scale)
    a = act.params[0]
    V, mu1 = _erf_forms(a)
    sw = np.linspace(0.3, 4.0, 38)
    sb = np.linspace(0.0, 0.5, 11)
    d = phase_diagram(act, sw, sb)
    SW, SB = np.meshgrid(sw, sb)
    q = d.q_star
    assert np.all(np.isfinite(q)) and np.all(q >= 0)
    np.testing.assert_allclose(q, SW * V(q) + SB, rtol=1e-13, atol=0)
    np.testing.assert_allclose(d.chi1, SW * mu1(q), rtol=1e-13, atol=0)
    # an independent scalar solve of the closed-form equation (the positive fixed point is unique)
    for i in (1, 5, 10):
        for j in (0, 17, 37):
            w, b = SW[i, j], SB[i, j]
            ref = optimize.brentq(lambda x: w * V(x) + b - x, b, w + b, xtol=1e-300, rtol=1e-15)
            assert q[i, j] == pytest.approx(ref, rel=1e-12)
    # sigma_b2 = 0: q* = 0 on the ordered side (chi1 = sigma_w2 * 4 a^2 / pi < 1), q* > 0 beyond it
    slope0 = sw * 4.0 * a * a / np.pi
    assert np.all(q[0, slope0 < 1 - 1e-9] == 0.0)  # (sigma_w2 = 1 is the critical point itself)
    assert np.all(q[0, slope0 > 1 + 1e-9] > 0.0)


def test_erf_boundary_lies_on_the_closed_form_critical_line():
    act = fpcore.get_activation("erf")
    a = act.params[0]
    V, _ = _erf_forms(a)
    d = phase_diagram(act, np.linspace(0.5, 4.0, 60), np.linspace(0.0, 1.0, 25))
    assert d.boundary.shape == (25, 2)  # one crossing per row
    w, b = d.boundary[:, 0], d.boundary[:, 1]
    # chi1 = 1  <=>  sqrt(1 + 4 a^2 q) = 4 a^2 w / pi; then sigma_b2 = q - w V(q)
    q = ((4.0 * a * a * w / np.pi) ** 2 - 1.0) / (4.0 * a * a)
    np.testing.assert_allclose(q - w * V(q), b, atol=1e-9)
    assert np.all(np.diff(b) > 0)  # sorted by sigma_b2
    assert np.all(np.diff(w) > 0)  # the critical sigma_w2 grows with the bias


# ---------------------------------------------------------------------------------------------
# tanh
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("grid", [np.linspace(0.5, 3.0, 26), np.linspace(0.55, 3.05, 26)])
def test_tanh_edge_of_chaos_without_bias_is_sigma_w2_one(grid):
    d = phase_diagram("tanh", grid, [0.0, 0.05])
    row0 = d.boundary[d.boundary[:, 1] == 0.0]
    assert row0.shape == (1, 2)
    # chi1 - 1 ~ (sigma_w2 - 1)^2 on the chaotic side: the crossing is determined to ~sqrt(eps)
    assert row0[0, 0] == pytest.approx(1.0, abs=1e-6)
    ordered = grid < 1.0
    assert np.all(d.q_star[0, ordered] == 0.0)
    np.testing.assert_allclose(d.chi1[0, ordered], grid[ordered], rtol=1e-14)
    assert np.all(d.ordered[0, ordered]) and np.all(d.chaotic[0, grid > 1.0])


def test_tanh_agrees_with_fixed_point_and_d2_moment():
    act = fpcore.get_activation("tanh")
    sw = np.linspace(0.5, 4.0, 15)
    sb = np.array([0.0, 0.01, 0.1, 0.5])
    d = phase_diagram(act, sw, sb)
    for i in (1, 2, 3):
        for j in (0, 5, 14):
            q = fixed_point(act, float(sw[j]), float(sb[i]))
            assert d.q_star[i, j] == pytest.approx(q, rel=1e-10)
            assert d.chi1[i, j] == pytest.approx(sw[j] * float(act.d2_moment(q)), rel=1e-10)
    # the boundary point of each biased row is where chi1 = 1
    for w, b in d.boundary[d.boundary[:, 1] > 0]:
        q = fixed_point(act, float(w), float(b))
        assert w * float(act.d2_moment(q)) == pytest.approx(1.0, abs=1e-9)


def test_custom_activation_pair_matches_builtin_tanh():
    sw, sb = np.linspace(0.5, 3.0, 9), [0.0, 0.2]
    custom = phase_diagram((np.tanh, lambda x: 1.0 / np.cosh(x) ** 2), sw, sb)
    builtin = phase_diagram("tanh", sw, sb)
    np.testing.assert_allclose(custom.q_star, builtin.q_star, rtol=1e-12, atol=0)
    np.testing.assert_allclose(custom.chi1, builtin.chi1, rtol=1e-12)


def test_grid_200_by_200_shape_and_speed():
    sw, sb = np.linspace(0.5, 4.0, 200), np.linspace(0.0, 0.5, 200)
    phase_diagram("tanh", sw[:5], sb[:5])  # import and first-call costs out of the timing
    t0 = time.perf_counter()
    d = phase_diagram("tanh", sw, sb)
    seconds = time.perf_counter() - t0
    assert isinstance(d, PhaseDiagram) and d.activation == "tanh"
    assert d.q_star.shape == d.chi1.shape == (200, 200)
    assert d.sigma_w2.shape == (200,) and d.sigma_b2.shape == (200,)
    assert d.boundary.ndim == 2 and d.boundary.shape[1] == 2 and d.boundary.shape[0] == 200
    assert np.all(np.isfinite(d.q_star)) and np.all(np.isfinite(d.chi1))
    assert d.phase.shape == (200, 200)
    # about 0.08 s here; a loose bound that still catches per-cell quadrature (several seconds)
    assert seconds < 2.0


# ---------------------------------------------------------------------------------------------
# Linear family: chi1 does not depend on q
# ---------------------------------------------------------------------------------------------
def test_relu_chi1_is_half_sigma_w2_even_where_q_diverges():
    sw = np.array([0.5, 1.0, 1.9, 2.0, 2.5, 4.0])
    sb = np.array([0.0, 0.1, 1.0])
    d = phase_diagram("relu", sw, sb)
    SW, SB = np.meshgrid(sw, sb)
    np.testing.assert_array_equal(d.chi1, SW / 2.0)
    below = SW < 2.0
    np.testing.assert_allclose(d.q_star[below], SB[below] / (1.0 - SW[below] / 2.0), rtol=1e-15)
    assert np.all(np.isinf(d.q_star[SW > 2.0]))
    assert np.isnan(d.q_star[0, 3])  # sigma_w2 = 2, sigma_b2 = 0: every q is a fixed point
    assert np.all(np.isinf(d.q_star[1:, 3]))  # sigma_w2 = 2, sigma_b2 > 0: linear growth
    np.testing.assert_array_equal(d.boundary, [[2.0, 0.0], [2.0, 0.1], [2.0, 1.0]])
    assert d.phase[1].tolist() == ["ordered", "ordered", "ordered", "critical", "chaotic", "chaotic"]


@pytest.mark.parametrize("name, mu1", [("linear", 1.0), ("leaky_relu:0.2", 0.5 * (1 + 0.04))])
def test_linear_family_boundary(name, mu1):
    sw = np.linspace(0.25, 3.0, 12)
    d = phase_diagram(name, sw, [0.0, 0.3])
    np.testing.assert_allclose(d.chi1, np.tile(sw * mu1, (2, 1)), rtol=1e-15)
    np.testing.assert_allclose(d.boundary[:, 0], 1.0 / mu1, rtol=1e-14)


def test_unbounded_smooth_activation_marks_divergent_cells():
    # GELU behaves like ReLU for large q: past the fold of the q map there is no finite fixed point
    d = phase_diagram("gelu", [1.0, 6.0], [0.1])
    assert np.isfinite(d.q_star[0, 0]) and np.isfinite(d.chi1[0, 0])
    assert np.isinf(d.q_star[0, 1]) and np.isnan(d.chi1[0, 1])
    assert d.phase[0].tolist() == ["ordered", "undefined"]


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(sigma_w2_grid=[0.0, 1.0]), "sigma_w2_grid"),
        (dict(sigma_w2_grid=[-1.0, 1.0]), "sigma_w2_grid"),
        (dict(sigma_w2_grid=[1.0, float("nan")]), "sigma_w2_grid"),
        (dict(sigma_w2_grid=[2.0, 1.0]), "sigma_w2_grid"),
        (dict(sigma_w2_grid=[1.0, 1.0]), "sigma_w2_grid"),
        (dict(sigma_w2_grid=[]), "sigma_w2_grid"),
        (dict(sigma_w2_grid=[[1.0, 2.0]]), "sigma_w2_grid"),
        (dict(sigma_w2_grid="1.0"), "sigma_w2_grid"),
        (dict(sigma_w2_grid=[True, 2.0]), "sigma_w2_grid"),
        (dict(sigma_w2_grid=1.0), "sigma_w2_grid"),
        (dict(sigma_b2_grid=[-0.1, 0.0]), "sigma_b2_grid"),
        (dict(sigma_b2_grid=[0.0, float("inf")]), "sigma_b2_grid"),
        (dict(sigma_b2_grid=["a"]), "sigma_b2_grid"),
        (dict(activation="nope"), "activation"),
        (dict(activation=(np.tanh, 3)), "activation"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    args = dict(activation="tanh", sigma_w2_grid=[1.0, 2.0], sigma_b2_grid=[0.0, 0.1])
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        phase_diagram(args["activation"], args["sigma_w2_grid"], args["sigma_b2_grid"])
