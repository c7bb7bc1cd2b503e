"""Initialisation tuner: criticality, spectrum targets certified by the engine, unreachable targets.

Spectrum-based checks use piecewise-linear activations (rational equations); tanh is checked
through the mean field and ``Activation.d2_moment`` (MATH.md section 6).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import fpcore
import fpcore._tune as tune_module
from fpcore._tune import TuneResult, criticality_measure, tune_init


def _chi(net):
    return fpcore.mean_field(net.replace(q0="fixed_point")).chi


# ---------------------------------------------------------------------------------------------
# Criticality
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q0", ["fixed_point", 1.0])
def test_tanh_criticality_gives_chi1_one(q0):
    net = fpcore.Network([50] * 4, "tanh", sigma_w2=1.0, sigma_b2=0.05, q0=q0)
    r = tune_init(net)
    assert isinstance(r, TuneResult)
    assert r.reachable, r.message
    assert r.target == "criticality" and r.spectrum is None and r.n_uncertified is None
    np.testing.assert_allclose(_chi(r.network), 1.0, rtol=0, atol=1e-8)
    assert abs(r.achieved - 1.0) <= 1e-8
    # only sigma_w2 changed
    assert r.network.q0 == q0 and r.network.widths == net.widths
    assert r.sigma_b2 == (0.05,) * 3 and r.sigma_w2 == r.network.sigma_w2
    assert r.sigma_w2[0] == pytest.approx(r.multiplier * 1.0, rel=1e-15)


def test_criticality_tunes_one_common_multiplier_of_per_layer_sigma_w2():
    net = fpcore.Network([40, 40, 40, 40], "relu", sigma_w2=[1.0, 2.0, 1.5])
    r = tune_init(net)
    assert r.reachable
    np.testing.assert_allclose(np.array(r.sigma_w2) / np.array(net.sigma_w2), r.multiplier, rtol=1e-14)
    # relu: chi_l = sigma_w2_l / 2, geometric mean 1
    assert math.prod(v / 2.0 for v in r.sigma_w2) == pytest.approx(1.0, rel=1e-12)
    assert criticality_measure(r.network) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("L", [2, 5, 10])
@pytest.mark.parametrize("init, s1", [("gaussian", -1.0), ("orthogonal", 0.0)])
def test_relu_spread_at_criticality_is_the_textbook_value(L, init, s1):
    """MATH.md section 6: var / mean^2 = L (mu_2 / mu_1^2 - 1 - s_1); Gaussian ReLU gives 2 L."""
    relu = fpcore.get_activation("relu")
    r = tune_init(fpcore.Network([64] * (L + 1), "relu", sigma_w2=1.3, init=init))
    assert r.reachable and r.sigma_w2[0] == pytest.approx(2.0, rel=1e-12)
    s = fpcore.jacobian_spectrum(r.network, n_points=32)
    mu1, mu2 = float(relu.d2_moment(1.0, 1)), float(relu.d2_moment(1.0, 2))
    expected = L * (mu2 / mu1**2 - 1.0 - s1)
    assert s.mean == pytest.approx(1.0, rel=1e-12)
    assert s.variance / s.mean**2 == pytest.approx(expected, rel=1e-6)
    if init == "gaussian":
        assert expected == 2 * L


def test_orthogonal_tanh_growth_rate_vanishes_as_q_star_goes_to_zero():
    """Orthogonal tanh at criticality: spread / L = mu_2 / mu_1^2 - 1 -> 0 as q* -> 0 (isometry)."""
    tanh = fpcore.get_activation("tanh")
    rates, qs = [], []
    for sb in (1e-1, 1e-2, 1e-3, 1e-4):
        r = tune_init(fpcore.Network([50] * 3, "tanh", sigma_w2=1.0, sigma_b2=sb, init="orthogonal", q0="fixed_point"))
        assert r.reachable, r.message
        mf = fpcore.mean_field(r.network)
        np.testing.assert_allclose(mf.chi, 1.0, atol=1e-8)
        q = float(mf.q[0])
        rates.append(float(tanh.d2_moment(q, 2)) / float(tanh.d2_moment(q, 1)) ** 2 - 1.0)
        qs.append(q)
    assert np.all(np.diff(qs) < 0)
    assert np.all(np.diff(rates) < 0) and rates[-1] > 0
    assert rates[-1] < 0.02 < 0.3 < rates[0]
    # Gaussian weights add 1 per layer (s_1 = -1): that contrast does not vanish
    assert all(rate + 1.0 > 1.0 for rate in rates)


# ---------------------------------------------------------------------------------------------
# The textbook edges at sigma_b2 = 0 (q* = 0): sigma_w2 = 1 / phi'(0)^2
# ---------------------------------------------------------------------------------------------
def _slope0(name):
    act = fpcore.get_activation(name)
    return float(np.mean(np.asarray(act.dphi(np.array([-1e-12, 1e-12]))) ** 2))


@pytest.mark.parametrize("name", ["tanh", "erf", "hard_tanh"])
@pytest.mark.parametrize("start", [0.5, 1.0, 3.0])
def test_odd_activations_without_bias_land_on_the_textbook_edge(name, start):
    """Issue 10 item 10: tanh was unreachable from 0.5, nan from 1.0, 1.0055 from 3.0; hard-tanh nan."""
    r = tune_init(fpcore.Network([50] * 4, name, sigma_w2=start, sigma_b2=0.0))
    assert r.reachable, r.message
    edge = 1.0 / _slope0(name)  # 1 for tanh, hard-tanh and erf(sqrt(pi)/2 x)
    assert r.sigma_w2 == pytest.approx((edge,) * 3, rel=1e-12)
    assert r.sigma_b2 == (0.0,) * 3
    assert r.achieved == pytest.approx(1.0, abs=1e-12)
    assert "edge of chaos" in r.message and f"sigma_w2 = {edge:.6g}" in r.message
    assert "multiplier" not in r.message
    if name != "erf":
        assert r.sigma_w2[0] == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("name", ["tanh", "erf", "hard_tanh", "selu"])
def test_zero_branch_closed_form_agrees_with_the_recursion(name):
    """Just inside the ordered phase the iterated mean field converges to q* = 0 and its chi_1
    equals the closed form sigma_w2 E[D^2 | q = 0] used at the edge itself."""
    a = _slope0(name)
    for frac in (0.5, 0.9):
        net = fpcore.Network([20] * 3, name, sigma_w2=frac / a, sigma_b2=0.0)
        mf = fpcore.mean_field(net.replace(q0="fixed_point"))
        assert np.all(mf.q < 1e-100)
        np.testing.assert_allclose(mf.chi, frac, rtol=1e-9)
        assert criticality_measure(net) == pytest.approx(frac, rel=1e-9)
    # at the edge the recursion converges only algebraically: the closed form still answers
    assert criticality_measure(fpcore.Network([20] * 3, name, sigma_w2=1.0 / a)) == pytest.approx(1.0, rel=1e-12)


def test_selu_edge_uses_both_sides_of_the_kink():
    """SELU at sigma_b2 = 0: E[D^2] -> lambda^2 (1 + alpha^2) / 2 = 2.097 as q -> 0, not phi'(0-)^2 = 3.09."""
    lam, alpha = 1.0507009873554805, 1.6732632423543772
    r = tune_init(fpcore.Network([30] * 3, "selu", sigma_w2=1.0, sigma_b2=0.0))
    assert r.reachable, r.message
    assert r.sigma_w2[0] == pytest.approx(2.0 / (lam**2 * (1.0 + alpha**2)), rel=1e-9)
    assert r.sigma_w2[0] == pytest.approx(0.4768, abs=1e-4)


def test_activations_that_do_not_decay_to_zero_are_searched_not_closed_form():
    # GELU grows like ReLU for large q: no q* = 0 branch; the numeric search reports why it fails
    r = tune_init(fpcore.Network([20] * 3, "gelu", sigma_w2=3.0, sigma_b2=0.0))
    assert not r.reachable and "fixed point q*" in r.message
    # with a bias the numeric search finds tanh's edge as before
    r = tune_init(fpcore.Network([20] * 3, "tanh", sigma_w2=3.0, sigma_b2=0.05))
    assert r.reachable and r.sigma_w2[0] == pytest.approx(1.760955, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Spectrum targets
# ---------------------------------------------------------------------------------------------
def test_quantile_ratio_search_is_bounded_and_never_reports_absurd_ratios():
    """Issue 10 item 10: quantile-ratio searches took 450-500 s and reported ratios up to 3.5e306
    (quantiles near 1e-303 extrapolated far below a deep chaotic tanh spectrum)."""
    net = fpcore.Network([50] * 6, "tanh", sigma_w2=1.5, sigma_b2=0.05)
    seen = []
    real = tune_module._safe_value

    def spy(name, target, s):
        v = real(name, target, s)
        seen.append(v)
        return v

    tune_module._safe_value = spy
    try:
        r = tune_init(net, {"quantile_ratio": (0.9, 0.1, 1e3)})
    finally:
        tune_module._safe_value = real
    assert not r.reachable and "quantile ratio" in r.message
    assert r.n_evaluations <= 60
    finite = [v for v in seen if math.isfinite(v)]
    assert finite and max(finite) < 1e30  # the lower quantile stays within 12 decades of the grid
    assert math.isfinite(r.achieved)
    # a reachable ratio on the same net is still found, and confirmed by the exact CDF
    r = tune_init(net, {"quantile_ratio": (0.9, 0.5, 200.0)}, n_points=32)
    assert r.reachable, r.message
    q9, q5 = r.spectrum.quantile([0.9, 0.5])
    assert q9 / q5 == pytest.approx(200.0, rel=1e-8)


def test_search_budget_stops_the_search_and_says_so():
    net = fpcore.Network([40] * 4, "tanh", sigma_w2=1.5, sigma_b2=0.05)
    r = tune_init(net, {"lambda_max": 1e12}, max_evaluations=5)
    assert not r.reachable and r.n_evaluations == 5
    assert "stopped after 5 evaluations" in r.message
    r = tune_init(net, {"lambda_max": 1e12}, max_seconds=1e-9)
    assert not r.reachable and r.n_evaluations <= 1


@pytest.mark.parametrize(
    "net",
    [
        fpcore.Network([60] * 4, "relu", sigma_w2=1.0),
        fpcore.Network([60] * 4, "hard_tanh", sigma_w2=1.0, sigma_b2=0.05, q0="fixed_point"),
    ],
    ids=["relu", "hard_tanh"],
)
def test_lambda_max_target_is_reached_and_certified(net):
    r = tune_init(net, {"lambda_max": 7.0}, n_points=64)
    assert r.reachable, r.message
    assert r.target == {"lambda_max": 7.0}
    assert r.achieved == pytest.approx(7.0, rel=1e-6)
    assert r.spectrum is not None and r.spectrum.lambda_max == pytest.approx(7.0, rel=1e-6)
    assert r.n_uncertified == 0 == r.spectrum.stats.n_uncertified
    again = fpcore.jacobian_spectrum(r.network, n_points=32)
    assert again.lambda_max == pytest.approx(7.0, rel=1e-6)


def test_relu_variance_target_scales_exactly():
    # sigma_w2 -> c sigma_w2 multiplies J^T J by c^L: variance by c^(2L)
    net = fpcore.Network([60] * 3, "relu", sigma_w2=2.0)
    base = fpcore.jacobian_spectrum(net, n_points=32).variance
    r = tune_init(net, {"variance": 0.5})
    assert r.reachable and r.achieved == pytest.approx(0.5, rel=1e-8)
    assert r.multiplier == pytest.approx((0.5 / base) ** (1.0 / 4.0), rel=1e-8)


def test_hard_tanh_spread_and_quantile_ratio_targets():
    net = fpcore.Network([60] * 3, "hard_tanh", sigma_w2=1.0, sigma_b2=0.05, q0="fixed_point")
    r = tune_init(net, {"spread": 2.5}, n_points=32)
    assert r.reachable, r.message
    s = r.spectrum
    assert s.variance / s.mean**2 == pytest.approx(2.5, rel=1e-8)
    r = tune_init(net, {"quantile_ratio": (0.9, 0.5, 20.0)}, n_points=32)
    assert r.reachable, r.message
    assert r.spectrum.quantile(0.9) / r.spectrum.quantile(0.5) == pytest.approx(20.0, rel=1e-8)


def test_relu_spread_is_unreachable_because_scale_invariant():
    net = fpcore.Network([60] * 4, "relu", sigma_w2=1.7)
    r = tune_init(net, {"spread": 1.0})
    assert not r.reachable
    assert "scale-invariant" in r.message and "relu" in r.message
    assert r.achieved == pytest.approx(2 * 3, rel=1e-6)  # 2L whatever sigma_w2
    assert r.network == net and r.multiplier == 1.0
    # the quantile ratio is scale-invariant too, and sigma_b2 cannot help either
    assert not tune_init(net, {"quantile_ratio": (0.9, 0.6, 3.0)}).reachable
    assert "scale-invariant" in tune_init(net, {"spread": 1.0}, tune_bias=True).message
    # a target that already holds is reached
    assert tune_init(net, {"spread": 6.0}, rtol=1e-6).reachable


def test_target_out_of_the_search_bounds_is_reported():
    net = fpcore.Network([60] * 3, "relu", sigma_w2=2.0)
    r = tune_init(net, {"lambda_max": 1e9}, max_factor=10.0)
    assert not r.reachable
    assert "no sigma_w2 between 0.2 and 20 reaches lambda_max = 1e+09" in r.message
    assert "multiplier" not in r.message  # the user's variable, not the search's
    assert r.multiplier == pytest.approx(10.0)  # the closest point found


def test_no_critical_point_before_the_fold_is_reported():
    # GELU with bias: the fixed point disappears (fold of the q map) while chi_1 is still < 1
    r = tune_init(fpcore.Network([20] * 3, "gelu", sigma_w2=1.0, sigma_b2=0.05, q0="fixed_point"))
    assert not r.reachable and r.achieved < 1.0
    assert "chi_1" in r.message


def test_tune_bias_keeps_criticality_and_reaches_orthogonal_hard_tanh_spread():
    """Orthogonal hard-tanh at criticality: spread = L (1/p - 1), p = P(|h| < 1) -> 1 as sigma_b2 -> 0."""
    L = 3
    net = fpcore.Network([60] * (L + 1), "hard_tanh", sigma_w2=1.0, sigma_b2=0.05, init="orthogonal", q0="fixed_point")
    r = tune_init(net, {"spread": 0.5}, tune_bias=True, n_points=32)
    assert r.reachable, r.message
    assert len(set(r.sigma_b2)) == 1 and r.sigma_b2[0] != 0.05
    mf = fpcore.mean_field(r.network)
    np.testing.assert_allclose(mf.chi, 1.0, atol=1e-8)
    p = mf.laws[0].p_nonzero
    assert L * (1.0 / p - 1.0) == pytest.approx(0.5, rel=1e-6)
    assert r.spectrum.variance / r.spectrum.mean**2 == pytest.approx(0.5, rel=1e-8)


def test_uncertified_final_spectrum_is_refused(monkeypatch):
    real = tune_module.jacobian_spectrum

    def flaky(net, gram="JtJ", n_points=1000):
        s = real(net, gram=gram, n_points=n_points)
        return dataclasses.replace(s, stats=dataclasses.replace(s.stats, n_uncertified=3))

    monkeypatch.setattr(tune_module, "jacobian_spectrum", flaky)
    r = tune_init(fpcore.Network([60] * 3, "relu"), {"lambda_max": 5.0}, n_points=32)
    assert not r.reachable and r.n_uncertified == 3
    assert "neither certified nor verified" in r.message
    assert r.achieved == pytest.approx(5.0, rel=1e-8)  # the value is there, the certificate is not


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------
_NET = fpcore.Network([10, 10], "relu")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(net="relu"), "net"),
        (dict(target="isometry"), "target"),
        (dict(target={"lambda_max": 1.0, "variance": 1.0}), "target"),
        (dict(target={"mean": 1.0}), "target"),
        (dict(target={"lambda_max": -1.0}), "lambda_max"),
        (dict(target={"variance": 0.0}), "variance"),
        (dict(target={"spread": float("nan")}), "spread"),
        (dict(target={"lambda_max": True}), "lambda_max"),
        (dict(target={"quantile_ratio": (0.9, 0.1)}), "quantile_ratio"),
        (dict(target={"quantile_ratio": (0.1, 0.9, 2.0)}), "p_lo < p_hi"),
        (dict(target={"quantile_ratio": (0.9, 0.0, 2.0)}), "p_lo"),
        (dict(target={"quantile_ratio": (1.5, 0.1, 2.0)}), "p_hi"),
        (dict(target={"quantile_ratio": (0.9, 0.1, 0.5)}), ">= 1"),
        (dict(target=["criticality"]), "target"),
        (dict(tune_bias="yes"), "tune_bias"),
        (dict(tune_bias=True), "tune_bias"),  # with target="criticality"
        (dict(rtol=0.0), "rtol"),
        (dict(rtol=2.0), "rtol"),
        (dict(max_factor=1.0), "max_factor"),
        (dict(n_points=4), "n_points"),
        (dict(gram="JJ"), "gram"),
        (dict(max_evaluations=2), "max_evaluations"),
        (dict(max_seconds=0.0), "max_seconds"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    args = dict(net=_NET, target="criticality")
    args.update(kwargs)
    with pytest.raises(ValueError, match=name.replace("(", r"\(")):
        tune_init(**args)
