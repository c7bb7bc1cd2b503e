"""Edge cases of issue 10: each reproducer fails on the code before the fix and passes after.

Quantiles below their probability, per-layer fixed points, high moments, huge depths, the
phase diagram of kinked activations at sigma_b2 = 0, lilypad_trace radii, small input
checks, and the meaning of "erf".
"""

import math
import warnings
from math import comb

import numpy as np
import pytest
from scipy import special

import fpcore
from fpcore import _spectrum
from fpcore._meanfield import fixed_point

P = np.array([1e-6, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0])


def _quantile_contract(s, p=P, minimal=True):
    """quantile(p) = inf{x : F(x) >= p}: F at it is >= p, and (where F is monotone, which the
    continuous D^2 laws do not yet guarantee, issue 10 items 1-3) F just below it is < p."""
    q = np.asarray(s.quantile(p))
    F = np.asarray(s.cdf(q))
    assert np.all(F >= p), (p[F < p], q[F < p], F[F < p])
    if not minimal:
        return q
    below = np.asarray(s.cdf(q * (1.0 - 1e-9)))
    # (at the floor 1e-300 lambda_max the law's mass below is not resolved: F >= p is all we ask)
    pos = q > 1e-299 * s.lambda_max
    assert np.all(below[pos] < p[pos] + 1e-11), (p[pos], below[pos])
    return q


# -- 4. quantiles -----------------------------------------------------------------------------
def test_quantile_at_an_atom_away_from_zero_is_the_atom():
    # J^T J = 2.25 I exactly: the old quantile returned 2.2499999999999982 with cdf 0 there
    s = fpcore.jacobian_spectrum(fpcore.Network([500] * 3, "linear", sigma_w2=1.5, init="orthogonal"))
    assert s.quantile(0.5) == 2.25
    assert s.cdf(s.quantile(0.5)) == 1.0
    _quantile_contract(s)


def test_quantile_across_atoms_intervals_and_their_ends():
    # atom 0.2 at 0, one interval, atom 0.3 at 2.535 (the interval ends where F = 0.7)
    s = fpcore.jacobian_spectrum(fpcore.Network([1000, 1500, 800], "linear", sigma_w2=1.3, init="orthogonal"), n_points=200)
    (lo, up), = s.support
    assert s.quantile(0.7 + 1e-9) == pytest.approx(2.535, rel=1e-12)  # inside the top atom
    assert s.quantile(s.atom) == 0.0
    assert lo < s.quantile(s.atom + 1e-9) < lo * 1.01
    p_end = float(s.cdf(up))
    assert s.quantile(p_end) <= up
    _quantile_contract(s)


@pytest.mark.parametrize(
    "net,gram",
    [
        (fpcore.Network([100, 100, 100], "linear", sigma_w2=1.0), "JtJ"),  # F ~ x^(1/3) near 0
        (fpcore.Network([300, 200, 300], "relu", sigma_w2=2.0, sigma_b2=0.1), "JtJ"),  # atom at 0
        (fpcore.Network([400] * 3, "tanh", sigma_w2=1.5, sigma_b2=0.05), "JJt"),
        (fpcore.Network([1000, 1100, 1200], "leaky_relu", sigma_w2=1.3, q0=0.18), "JtJ"),
    ],
    ids=["fuss-catalan", "relu-atom", "tanh", "leaky-expanding"],
)
def test_cdf_of_quantile_is_at_least_p(net, gram):
    rational = net.activations[0].family in ("linear", "relu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s = fpcore.jacobian_spectrum(net, gram, n_points=100)
        _quantile_contract(s, P if rational else np.array([1e-3, 0.1, 0.5, 0.9, 1.0]), minimal=rational)


def _count_cdf_calls(monkeypatch) -> list[int]:
    """Record the size of every ``Spectrum._cdf_and_density`` call (one solve each) until
    ``monkeypatch.undo()``."""
    calls: list[int] = []
    orig = _spectrum.Spectrum._cdf_and_density

    def counted(self, x):
        calls.append(np.size(x))
        return orig(self, x)

    monkeypatch.setattr(_spectrum.Spectrum, "_cdf_and_density", counted)
    return calls


def test_quantile_far_below_the_grid_is_bounded_work(monkeypatch):
    # p far below the grid's lowest F (the old search took 146 s for such p on a tanh net):
    # Fuss-Catalan, F(x) ~ x^(1/3), grid down to 1e-10 lambda_max where F ~ 1e-3
    s = fpcore.jacobian_spectrum(fpcore.Network([100, 100, 100], "linear", sigma_w2=1.0), n_points=100)
    calls = _count_cdf_calls(monkeypatch)
    p = np.array([1e-9, 1e-6, 1e-4])
    q = s.quantile(p)
    assert len(calls) <= 1 + 1 + 5 + _spectrum._QUANTILE_ITERS  # pieces, grid, descent, search
    monkeypatch.undo()
    assert np.all(s.cdf(q) >= p)
    # minimal: F there is p up to the CDF's own round-off (1 - tail mass: 1e-16 absolute)
    np.testing.assert_allclose(s.cdf(q), p, rtol=1e-6)


def test_tiny_quantile_of_a_tanh_net_is_bounded_work_and_honest(monkeypatch):
    # issue #10 item 4: quantile(1e-6) of a tanh net without atom took 146 s and returned 1.1e-149
    # with cdf 5.6e-4, no warning. Now: a bounded ladder below the grid, cdf(q) >= p, and a
    # warning that q is only an upper bound where the ladder stops before F < p
    s = fpcore.jacobian_spectrum(fpcore.Network([400] * 3, "tanh", sigma_w2=1.5, sigma_b2=0.05), "JJt", n_points=100)
    calls = _count_cdf_calls(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = s.quantile(1e-6)
    monkeypatch.undo()
    assert len(calls) <= 2 + _spectrum._QUANTILE_ITERS and s._cache["ladder"]["solves"] <= _spectrum._LADDER_MAX
    F = s.cdf(q)
    assert F >= 1e-6
    if F > 1e-6 * (1 + 1e-6):
        assert any("upper bound of the quantile" in str(w.message) for w in caught)


def test_quantile_below_the_grid_refuses_solutions_whose_cdf_rises_again():
    # 12-layer orthogonal softplus, J^T J (atom 1/2 at 0, then F ~ linear in log x over 100
    # decades): the ladder below the grid kept verified solutions whose F rose again far below
    # (F = 0.52 at 6e-113, 1.0 at 6e-141: u beyond what the rule of D^2 resolves), so that
    # quantile(0.7) = 6.3e-141 with cdf 1.0 and quantile(0.6) = 2e-142 with cdf 0.63, no warning
    net = fpcore.Network([1000] + [500] * 12, "softplus", sigma_w2=3.0, init="orthogonal")
    s = fpcore.jacobian_spectrum(net, "JtJ", n_points=300)
    p = np.array([0.5001, 0.6, 0.7])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = np.asarray(s.quantile(p))
        F = np.asarray(s.cdf(q))
        # (p = 0.6 lies below 6e-53, where the lumped tails of the softplus laws decide F: a
        # warned upper bound since the lump guard, see test_lumped_tails.py)
        assert np.all(F >= p) and F[2] <= p[2] + 1e-9, (q, F)
        assert s.cdf(q[2] * (1 - 1e-9)) < p[2]
        # F is not resolved down to the atom: p = 0.5001 gets a warned upper bound
        assert any("upper bound of the quantile" in str(w.message) for w in caught)
        x = np.geomspace(1e-160, s.lambda_max, 120)
        Fx = np.asarray(s.cdf(x))
    assert np.all(np.diff(Fx) >= -1e-9)
    assert np.all((Fx >= s.atom) & (Fx <= 1.0))


# -- 5. per-layer fixed points ---------------------------------------------------------------
def test_fixed_point_with_per_layer_parameters_is_the_first_layers_q_propagated():
    net = fpcore.Network([883, 1009, 316, 631, 488], "erf", sigma_w2=[1.1059, 1.5965, 1.6898, 0.8417],
                         init="orthogonal", q0="fixed_point")
    q = fpcore.mean_field(net).q
    act = net.activations[0]
    assert q[0] == pytest.approx(fixed_point(act, 1.1059, 0.0), rel=1e-13)
    for l in range(1, 4):
        assert q[l] == pytest.approx(net.sigma_w2[l] * float(act.second_moment(q[l - 1])), rel=1e-13)
    # identical layers stay exactly at q*
    same = fpcore.Network([50] * 5, "tanh", sigma_w2=1.7, sigma_b2=0.1, q0="fixed_point")
    qs = fpcore.mean_field(same).q
    assert np.all(qs == qs[0])


def test_fixed_point_with_per_layer_parameters_agrees_with_the_sampler():
    # the net (widths halved for time) with the old erf scale: mean 0.956 against
    # Monte Carlo 1.406 before, when each layer took its own q*
    net = fpcore.Network([442, 505, 158, 316, 244], "erf:0.886226925452758", sigma_w2=[1.1059, 1.5965, 1.6898, 0.8417],
                         init="orthogonal", q0="fixed_point")
    mean = fpcore.jacobian_spectrum(net, "JJt", n_points=50).mean
    ev = fpcore.sample_jacobian_eigenvalues(net, "JJt", seed=7, n_samples=6).reshape(6, -1).mean(axis=1)
    se = ev.std(ddof=1) / math.sqrt(ev.size)
    assert abs(ev.mean() - mean) <= 4.0 * se + 0.02 * mean, (mean, ev.mean(), se)


def test_fixed_point_of_a_first_layer_without_one_is_propagated_to_the_next_layers():
    # adversarial seed-2 draw [116]: leaky ReLU with sigma_w2 (1 + a^2) / 2 = 1.6 > 1 and no bias
    # has no finite fixed point (fixed_point returns its start, q_1 = 1); the tanh layer after it
    # was snapped to q_1 as if q_1 were q* (mean 2.285, KS 0.105 against Monte Carlo, no silent
    # check caught it) instead of following the recursion to q_2 = 1.6 (mean 1.892)
    net = fpcore.Network([1000] * 3, ["leaky_relu:0.2", "tanh"], sigma_w2=3.076277021420871, init="orthogonal",
                         q0="fixed_point")
    q = fpcore.mean_field(net).q
    assert q[0] == 1.0
    assert q[1] == pytest.approx(net.sigma_w2[1] * (1 + 0.2**2) / 2, rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a point or two near 0 only verified
        s = fpcore.jacobian_spectrum(net, "JJt", n_points=200)
    ev = fpcore.sample_jacobian_eigenvalues(net, "JJt", seed=3, n_samples=4)
    per = ev.reshape(4, -1).mean(axis=1)
    se = per.std(ddof=1) / 2.0
    assert abs(ev.mean() - s.mean) <= 3.0 * se, (s.mean, ev.mean(), se)
    assert fpcore.ks_distance(s, ev) < 0.02


# -- 7. moments -------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [10, 40, 50, 100])
def test_high_moments_of_fuss_catalan_are_exact(k):
    s = fpcore.jacobian_spectrum(fpcore.Network([100] * 3, "linear", sigma_w2=1.0), n_points=50)
    assert s.moment(k) == pytest.approx(comb(3 * k, k) / (2 * k + 1), rel=1e-9)


def test_moment_that_cannot_be_resolved_raises():
    s = fpcore.jacobian_spectrum(fpcore.Network([100] * 3, "linear", sigma_w2=1.0), n_points=50)
    with pytest.raises(ValueError, match="moment"):
        s.moment(100_000)


# -- 8. huge depths ---------------------------------------------------------------------------
def test_depth_3000_below_the_float_range_raises_a_clear_error():
    # prod chi_l = 10^-899: the old code died with ZeroDivisionError in _grid
    net = fpcore.Network([100] * 3001, "gelu", sigma_w2=2.0)
    with pytest.raises(ValueError, match="float range"):
        fpcore.jacobian_spectrum(net, n_points=50)


def test_depth_3000_rational_nets_have_the_closed_form_top_edge():
    # sum_l log sigma_w2 = 2079 for ReLU at sigma_w2 = 2: exp(log_c) overflowed in _outer_edges
    # (OverflowError) although M^{-1} ~ m^L / m has no finite limit and C is not used
    L = 3000
    m = np.exp(np.linspace(-12.0, 0.0, 200001))
    for act, sw2, log_inv in (
            ("relu", 2.0, lambda m: np.log1p(m) - np.log(m) + L * np.log1p(2.0 * m)),
            ("linear", 1.0, lambda m: np.log1p(m) - np.log(m) + L * np.log1p(m))):
        s = fpcore.jacobian_spectrum(fpcore.Network([500] * (L + 1), act, sigma_w2=sw2), n_points=200)
        assert s.stats.n_certified == s.stats.n_points and s.cdf(s.lambda_max) == 1.0
        # lambda_max = min_{m > 0} M^{-1}(m) (MATH.md section 3; linear: Fuss-Catalan (L+1)^{L+1}/L^L)
        assert s.lambda_max == pytest.approx(np.exp(np.min(log_inv(m))), rel=1e-8)
    assert s.lambda_max == pytest.approx(np.exp((L + 1) * np.log(L + 1) - L * np.log(L)), rel=1e-12)


def test_grid_of_a_tiny_interval_is_finite_and_increasing():
    for hi in (1e-315, 1e-300, 1e-200, 1.0, 1e300):  # 1e-315 * 1e-10 underflows to 0
        x = _spectrum._grid(0.0, hi, 100, 1e-10)
        assert np.all(np.isfinite(x)) and np.all(np.diff(x) > 0) and x[0] > 0 and x[-1] < hi


def test_deep_ordered_net_without_bias_has_a_mean_field():
    # q decays geometrically and underflows: the law of D^2 is its q -> 0 limit
    mf = fpcore.mean_field(fpcore.Network([10] * 3001, "gelu", sigma_w2=2.0))
    assert np.all(mf.q > 0) and np.all(np.isfinite(mf.chi))
    assert mf.chi[-1] == pytest.approx(2.0 * 0.25, rel=1e-9)  # sigma_w2 phi'(0)^2


# -- 10. phase diagram of a kinked activation --------------------------------------------------
def test_selu_chi1_at_zero_bias_uses_the_limit_of_e_dphi2():
    lam, alpha = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
    lim = lam * lam * (1.0 + alpha * alpha) / 2.0  # E[phi'(sqrt(q) Z)^2] as q -> 0: 2.097
    d = fpcore.phase_diagram("selu", np.linspace(0.2, 1.0, 41), [0.0, 0.1])
    ordered = d.q_star[0] == 0.0
    assert np.any(ordered)
    np.testing.assert_allclose(d.chi1[0, ordered], d.sigma_w2[ordered] * lim, rtol=1e-9)
    row0 = d.boundary[d.boundary[:, 1] == 0.0]
    assert row0[:, 0] == pytest.approx([1.0 / lim], rel=1e-6)  # 0.4768, not 1 / phi'(0-)^2 = 0.3235


# -- 12. small things -------------------------------------------------------------------------
def test_cdf_and_fraction_above_refuse_nan():
    s = fpcore.jacobian_spectrum(fpcore.Network([100, 100], "relu"), n_points=50)
    with pytest.raises(ValueError, match="nan"):
        s.cdf(float("nan"))
    with pytest.raises(ValueError, match="nan"):
        s.cdf([0.5, float("nan")])
    with pytest.raises(ValueError, match="nan"):
        s.fraction_above(float("nan"))


@pytest.mark.parametrize("bad", ["elu:-1", "elu:0", "elu:nan", "erf:-2", "erf:0", "leaky_relu:1.5", "leaky_relu:-0.1"])
def test_activation_parameters_are_validated(bad):
    with pytest.raises(ValueError, match="activation"):
        fpcore.get_activation(bad)


def test_activation_keyword_it_does_not_take_is_refused():
    with pytest.raises(ValueError, match="takes no parameter"):
        fpcore.get_activation("relu", slope=0.2)
    with pytest.raises(ValueError, match="only the parameter 'alpha'"):
        fpcore.get_activation("elu", slope=0.2)


def test_complex_dphi_is_refused():
    with pytest.raises(ValueError, match="real floats"):
        fpcore.Network([10, 10], (np.tanh, lambda x: (1.0 - np.tanh(x) ** 2) + 0j))


def test_monte_carlo_eigenvalues_outside_the_float_range_raise():
    with pytest.raises(ValueError, match="float range"):
        fpcore.sample_jacobian_eigenvalues(fpcore.Network([50, 50, 50], "linear", sigma_w2=1e200), seed=0)
    with pytest.raises(ValueError, match="float range"):
        fpcore.sample_jacobian_eigenvalues(fpcore.Network([50, 50, 50], "linear", sigma_w2=1e-200), seed=0)


def test_ks_distance_keeps_tiny_samples_of_a_law_without_an_atom():
    # log-uniform law on [1e-30, 1]: half its mass below 1e-15 times the largest sample
    class LogUniform:
        def cdf(self, x):
            x = np.asarray(x, dtype=float)
            with np.errstate(divide="ignore"):
                return np.clip((np.log10(np.maximum(x, 0.0)) + 30.0) / 30.0, 0.0, 1.0)

    x = 10.0 ** np.random.default_rng(0).uniform(-30.0, 0.0, 4000)
    assert fpcore.ks_distance(LogUniform(), x) < 0.03  # the old snapping to 0 gave about 0.5


def test_ks_distance_still_snaps_round_off_zeros_onto_an_atom_at_zero():
    s = fpcore.jacobian_spectrum(fpcore.Network([1000, 500], "linear", sigma_w2=1.0), n_points=100)
    ev = fpcore.sample_jacobian_eigenvalues(s.network, seed=3)
    ev[:500] = np.abs(ev[:500]) + 1e-17  # round-off where the law has its atom of mass 1/2
    assert fpcore.ks_distance(s, ev) < 0.03


# -- 13. erf means erf(x) ---------------------------------------------------------------------
def test_erf_means_erf_of_x_and_erf_a_is_scaled():
    x = np.linspace(-3.0, 3.0, 13)
    act = fpcore.get_activation("erf")
    np.testing.assert_allclose(act.phi(x), special.erf(x), rtol=0, atol=0)
    np.testing.assert_allclose(act.dphi(x), 2.0 / math.sqrt(math.pi) * np.exp(-x * x), rtol=1e-15)
    a = 0.5
    scaled = fpcore.get_activation("erf:0.5")
    np.testing.assert_allclose(scaled.phi(x), special.erf(a * x), rtol=0, atol=0)
    assert scaled.spec == "erf:0.5" and act.spec == "erf"
    # MATH.md section 6 at a = 1
    q = 0.7
    assert act.second_moment(q) == pytest.approx(2 / np.pi * np.arcsin(2 * q / (1 + 2 * q)), rel=1e-14)
    assert act.d2_moment(q, 2) == pytest.approx((4 / np.pi) ** 2 / math.sqrt(1 + 8 * q), rel=1e-14)
    # the erf phase boundary at sigma_b2 = 0 is sigma_w2 = pi / 4 (chi_1 = sigma_w2 * 4 / pi)
    d = fpcore.phase_diagram("erf", np.linspace(0.5, 1.0, 11), [0.0])
    assert d.boundary[:, 0] == pytest.approx([math.pi / 4], rel=1e-6)


def test_network_repr_names_the_activation_parameter():
    net = fpcore.Network([10, 10], "erf:2.0")
    assert "'erf:2.0'" in repr(net)
    assert "'leaky_relu:0.2'" in repr(net.replace(activation="leaky_relu:0.2"))


def test_readme_says_which_formula_each_activation_name_means():
    import pathlib

    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = text[text.index("| name |"):]
    table = table[: table.index("\n\n")]
    for name in fpcore.ACTIVATIONS:
        assert f"`{name}`" in table, name
    assert "`erf(x)`" in table and "`erf(a x)`" in table


# -- 11. lilypad_trace: the certified disks contain the chain ---------------------------------
@pytest.mark.parametrize("where", [1 - 1e-9, 1 - 1e-3, 0.5])
def test_lilypad_disks_are_certified_and_contain_the_next_centre(where):
    from fpcore._equation import build_equation
    from fpcore._lilypad import kantorovich

    net = fpcore.Network([400, 300, 200], "relu", init="orthogonal")
    s = fpcore.jacobian_spectrum(net, "JJt", n_points=100)
    lo, hi = s.support[-1]
    x = hi * where if where > 0.9 else lo + where * (hi - lo)
    tr = fpcore.lilypad_trace(net, x, gram="JJt")
    assert tr.certified
    # before: 33 zero radii and steps up to 1e296 times the stated radius at the upper edge
    assert np.all(tr.radii > 0)
    steps = np.abs(np.diff(tr.centres))
    assert np.all(steps <= tr.radii[:-1])
    # every point of each disk passes the solver's own test from that lilypad's solution
    eq = build_equation(net, "JJt")
    rim = tr.centres[:, None] + 0.999 * tr.radii[:, None] * np.exp(1j * np.linspace(0, 2 * np.pi, 13))
    ok = kantorovich(eq, rim.ravel(), np.repeat(tr.solutions, 13))[0]
    assert np.all(ok)


def test_lilypad_trace_at_an_atom_is_not_certified():
    net = fpcore.Network([400, 200], "relu", init="orthogonal")  # J J^T: atom of mass 1/2 at 2
    assert any(abs(loc - 2.0) < 1e-12 for loc, _ in fpcore.jacobian_spectrum(net, "JJt", n_points=50).atoms)
    tr = fpcore.lilypad_trace(net, 2.0, gram="JJt")
    assert not tr.certified and not tr.verified
    assert tr.density == math.inf


@pytest.mark.parametrize("name", ["silu", "gelu"])
def test_laws_with_zeros_of_dphi_at_huge_variance(name):
    # adversarial draw (deep mixed net, sigma_w2 8-18): q reached 1e16 and building the law of
    # D^2 crashed with an IndexError (the window around a zero of phi' was narrower than the
    # finest geometric panel). For q -> inf, phi'(h)^2 -> 1{h > 0}: E[D^2] -> 1/2.
    law = fpcore.get_activation(name).d2_law(1e8)
    assert abs(law.mean - 0.5) < 1e-3
