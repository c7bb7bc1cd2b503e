"""Deep networks (L = 1000): the equation's structure and the edges of laws whose constants leave
the float range."""

import math

import numpy as np
from scipy.optimize import minimize_scalar

import fpcore
from fpcore._equation import build_equation


def test_scales_are_width_ratios():
    # k of each non-rational group is Lambda_l = N_0 / N_l (J^T J) or N_L / N_l (J J^T) exactly
    # (MATH.md section 3), the telescoped product of the dimension changes
    w = [784, 500, 300, 100, 10]
    net = fpcore.Network(w, "tanh", sigma_w2=[1.1, 1.3, 1.5, 1.7], init="gaussian")
    for gram, ref in (("JtJ", w[0]), ("JJt", w[-1])):
        eq = build_equation(net, gram)
        assert sorted(g.k for g in eq.ugroups) == sorted(ref / n for n in w[1:])
        assert all(g.n == 1 for g in eq.ugroups)


def test_deep_orthogonal_relu_alternating_top_edge():
    # orthogonal ReLU, widths 1000, 800, 1000, ... over 1000 layers: M^{-1}(inf) = C = 2.5^500 is
    # beyond the float range (log C = 804); the top edge is min_{m > 0} M^{-1}(m) (MATH.md section 3)
    L = 1000
    net = fpcore.Network([1000 if l % 2 == 0 else 800 for l in range(L + 1)], "relu", sigma_w2=2.0,
                         init="orthogonal")
    eq = build_equation(net)
    assert eq.log_c > 709.0 and eq.degree_at_infinity == 0
    s = fpcore.jacobian_spectrum(net, n_points=200)
    assert s.stats.n_certified == s.stats.n_points and s.stats.n_uncertified == 0
    assert s.atom == 0.6  # rank 400 of 1000: half of the 800 directions of the narrow layers

    def log_inv(t):
        m = math.exp(t)
        return eq.log_c + float(np.sum(eq.exps * np.log(np.abs(m - eq.roots))))

    r = minimize_scalar(log_inv, bounds=(-20.0, 20.0), method="bounded", options=dict(xatol=1e-10))
    assert abs(s.lambda_max - math.exp(r.fun)) <= 1e-8 * s.lambda_max


def test_deep_hard_tanh_equation_closed_form():
    # Gaussian square net with Bernoulli D^2 (MATH.md section 3):
    # M^{-1}(m) = (1 + m)/m prod_l sigma_w2 (p_l + m), p_l = erf(1 / sqrt(2 q_l)); 300 distinct p_l
    # (q_l decays slowly to 0) take build_equation's merge of many roots
    L, sw = 300, 1.0
    net = fpcore.Network([1000] * (L + 1), "hard_tanh", sigma_w2=sw)
    eq = build_equation(net)
    p = np.array([law.p_nonzero for law in eq.mean_field.laws])
    assert np.unique(p).size > 64
    for m in (0.3 + 0.2j, -0.5 + 1e-3j, 2.0 - 1.0j, -3.0 + 0.5j):
        ref = np.log(1 + m) - np.log(m) + L * math.log(sw) + np.sum(np.log(p + m))
        got = eq.log_c + np.sum(eq.exps * np.log(m - eq.roots))
        assert abs(np.exp(got - ref) - 1.0) < 1e-12  # (6e-14 measured)
