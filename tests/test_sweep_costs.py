"""The grid sweep's fast paths against the full ones (issue 11, core speed).

* Expanding nets (no atom at 0): the lower edge is found on the real line (the scan of
  ``_edges.lower_edge`` once missed every edge within 0.2 of ``M = -1``, and the grid then spent
  one point in seven on vertical walks in the gap below it). The edge is checked against the
  solver's own equation and the law against the spectrum whose grid starts at 0, and Monte Carlo.
"""

import warnings

import numpy as np
import pytest

import fpcore
from fpcore import _edges, _spectrum
from fpcore._lilypad import solve


def _expanding(act, L, sw, sb, base=100):
    return fpcore.Network([round(base * 1.25**l) for l in range(L + 1)], act, sigma_w2=sw, sigma_b2=sb)


EXPANDING = [("tanh", 2, 1.05, 1e-4), ("tanh", 10, 1.05, 1e-4), ("erf", 10, 1.05, 1e-4), ("sigmoid", 2, 1.0, 0.0),
             ("silu", 10, 2.0, 0.0), ("softplus", 10, 2.0, 0.0), ("elu", 10, 1.5, 0.0), ("selu", 2, 1.0, 0.0)]


@pytest.mark.parametrize("act,L,sw,sb", EXPANDING, ids=[f"{a}-{L}" for a, L, _, _ in EXPANDING])
def test_expanding_lower_edge_against_grid_from_zero(act, L, sw, sb, monkeypatch):
    net = _expanding(act, L, sw, sb)
    s = fpcore.jacobian_spectrum(net)
    lo = s.support[0][0]
    assert lo > 0.0 and s.stats.n_uncertified == 0
    eq = s._eq
    # below the edge M is real and carries no mass; above it, M is not real
    x = lo * np.array([0.5, 0.99, 0.9999, 1.001, 1.01])
    r = solve(eq, x + 0j, scale=s.lambda_max)
    # deep in the gap (x = lo / 2) the walk from far above may end on the other real root: M
    # there below its value at 0.99 lo, where the physical M decreases from M(0) = -1; the sheet
    # check (_lilypad.physical_sheet) refuses it (it passed as verified before)
    assert np.all(r.verified[1:])
    if not r.verified[0]:
        assert r.m[0].real < r.m[1].real
    v = r.verified
    F = 1.0 - _spectrum._tail_mass(eq, r.m, r.u, r.short)
    real = -r.m.imag <= 1e-9 * np.abs(r.m)
    assert np.all(real[:3]) and not np.any(real[3:])
    assert np.all(np.abs(F[:3][v[:3]]) <= 1e-10)
    # the spectrum whose grid starts at 0 (the scan finding no edge): same law
    monkeypatch.setattr(_spectrum, "lower_edge", lambda eq, atom0: 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s0 = fpcore.jacobian_spectrum(net)
    if s0.x[0] < 0.98 * lo:  # (that grid stops at 1e-8 lambda_max)
        assert s0.support[0][0] == pytest.approx(lo, rel=2e-2)  # (the grid's resolution)
    xs = np.quantile(s.x, np.linspace(0.02, 0.98, 25))
    assert np.max(np.abs(s.cdf(xs) - s0.cdf(xs))) <= 1e-9
    inner = (s0.x > s.x[0]) & (s0.x < s.x[-1])
    assert np.max(np.abs(np.interp(s0.x[inner], s.x, s.density) - s0.density[inner])) <= 2e-2 * np.max(s.density)


def test_expanding_tanh_against_network_monte_carlo():
    net = _expanding("tanh", 3, 1.05, 1e-4, base=1000)
    s = fpcore.jacobian_spectrum(net, n_points=400)
    assert s.support[0][0] > 0.0
    ev = fpcore.sample_jacobian_eigenvalues(net, mode="network", seed=11, n_samples=1)
    assert fpcore.ks_distance(s, ev) <= 0.02
    # the smallest eigenvalue sits at the lower edge (finite-size spread ~ N^(-2/3))
    assert np.min(ev) == pytest.approx(s.support[0][0], rel=0.25)


# -- the CDF's tail mass: short real rules where they stand for the contour rules -------------
TAIL_NETS = [("gelu", [1000] * 51, 2.0, 0.0, "gaussian"), ("gelu", [784, 400, 200, 100], 2.0, 0.05, "gaussian"),
             ("silu", [round(100 * 1.25**l) for l in range(11)], 2.0, 0.0, "gaussian"),
             ("softplus", [1000] * 21, 2.0, 0.0, "gaussian"), ("selu", [1000, 1000, 250, 1000], 1.0, 0.0, "gaussian"),
             ("tanh", [784, 487, 303, 188, 117, 73, 45, 28, 17, 10], 1.05, 1e-4, "gaussian"),
             ("tanh", [400] * 11, 1.05, 1e-4, "orthogonal"), ("gelu", [1000] * 6, 2.0, 0.0, "orthogonal")]


@pytest.mark.parametrize("act,widths,sw,sb,init", TAIL_NETS, ids=[f"{t[0]}-{t[4]}-{len(t[1]) - 1}" for t in TAIL_NETS])
def test_tail_mass_short_rules_against_contour_rules(act, widths, sw, sb, init):
    from fpcore import _fastchain

    net = fpcore.Network(widths, act, sigma_w2=sw, sigma_b2=sb, init=init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s = fpcore.jacobian_spectrum(net, n_points=300)
    eq = s._eq
    ok = np.isfinite(s._m_grid)
    m, u = np.ascontiguousarray(s._m_grid[ok]), np.ascontiguousarray(s._u_grid[ok])
    _, _, k, n = eq.packed
    V, W = eq.packed_complex
    args = (eq.roots.astype(float), eq.exps.astype(float))
    full = _fastchain.tail_mass(m, u, *args, V, W, k, n)
    ts = eq.tail_short
    assert ts is not None
    mixed, used = _fastchain.tail_mass_mixed(m, u, *args, V, W, *ts, k, n, _spectrum._TAIL_SHORT_TOL)
    # the bound: each group within 1e-11 / pi; found within rounding
    assert np.max(np.abs(mixed - full)) <= k.size * _spectrum._TAIL_SHORT_TOL / np.pi
    assert np.max(np.abs(mixed - full)) <= 1e-12
    assert np.mean(used) >= 0.25 * k.size  # (the short rules are taken at most groups)
    # and the spectrum's own CDF on its grid is the contour rules' (or the short sweep's) to 1e-10
    if s._m_grid is not None and s.stats.n_uncertified == 0:
        assert np.max(np.abs(np.clip(1.0 - full, 0.0, 1.0) - s._cdf_grid[ok])) <= 1e-10


def test_tail_mass_skips_the_padding():
    from fpcore import _fastchain

    net = fpcore.Network([1000] * 31, "gelu", sigma_w2=2.0)  # contour laws and short real ones (q < 1e-4)
    s = fpcore.jacobian_spectrum(net, n_points=100)
    eq = s._eq
    V, W = eq.packed_complex
    _, _, k, n = eq.packed
    sizes = _fastchain.live_sizes(W)
    assert sizes.min() < sizes.max() == V.shape[1]
    m, u = np.ascontiguousarray(s._m_grid), np.ascontiguousarray(s._u_grid)
    args = (eq.roots.astype(float), eq.exps.astype(float))
    out = _fastchain.tail_mass(m, u, *args, V, W, k, n)
    # more padding: the same bits (the kernel stops at each row's last non-zero weight)
    wide = np.zeros((V.shape[0], V.shape[1] + 7), dtype=complex)
    Vw, Ww = wide.copy(), wide.copy()
    Vw[:, : V.shape[1]], Ww[:, : V.shape[1]] = V, W
    assert np.array_equal(_fastchain.tail_mass(m, u, *args, Vw, Ww, k, n), out)


# -- the sweep on short rules when some laws have no contour rule -----------------------------
# (Deep GELU / SiLU layers at q < 1e-4 have contour rules too since orth7: a net mixing contour
# laws with the exact two-atom laws of leaky ReLU is the case where some groups have none.)
MIXED = [(["gelu", "leaky_relu:0.1"] * 5, [1000] * 11, 2.0, 0.0),
         (["silu", "leaky_relu:0.2", "silu", "gelu"] * 2, [1000] * 9, 2.0, 0.0),
         (["gelu", "leaky_relu:0.1"] * 5, [800] + [1000] * 10, 2.0, 0.0)]


@pytest.mark.parametrize("act,widths,sw,sb", MIXED, ids=["gelu-leaky-10", "silu-leaky-gelu-8", "gelu-leaky-rect-10"])
def test_mixed_laws_short_sweep_against_contour_sweep(act, widths, sw, sb, monkeypatch):
    from fpcore import _lilypad

    net = fpcore.Network(widths, act, sigma_w2=sw, sigma_b2=sb)
    s = fpcore.jacobian_spectrum(net, n_points=400)
    eq = s._eq
    inuse = [eq._contour_in_use(g) for g in eq.ugroups]
    assert any(inuse) and not all(inuse)  # (the leaky ReLU layers: two real atoms)
    assert _lilypad._contour_short(eq)
    assert s.stats.n_uncertified == 0
    # the same grid swept with the contour rules only
    monkeypatch.setattr(_lilypad, "_contour_short", lambda eq: False)
    monkeypatch.setattr(eq.__class__, "tail_short", property(lambda self: None))
    s0 = fpcore.jacobian_spectrum(net, n_points=400)
    assert np.array_equal(s.x, s0.x)
    assert np.max(np.abs(s.density - s0.density)) <= 1e-8 * np.max(s.density)
    assert np.max(np.abs(s._cdf_grid - s0._cdf_grid)) <= 1e-10
    assert s.stats.n_certified == s0.stats.n_certified


# -- law building ------------------------------------------------------------------------------
def test_mean_field_chi_vectorised_per_activation():
    from fpcore import _meanfield

    nets = [fpcore.Network([100] * 7, ["tanh", "gelu", "tanh", "relu", "erf:0.7", "gelu"], sigma_w2=[1.0, 2.0, 1.2, 2.0, 1.1, 3e4],
                           sigma_b2=0.05),
            fpcore.Network([100] * 5, [fpcore.get_activation("tanh"), fpcore.get_activation("tanh"), "silu", "tanh"],
                           sigma_w2=1.05, sigma_b2=1e-4)]
    for net in nets:
        mf = _meanfield.mean_field(net)
        ref = [net.sigma_w2[l] * float(net.activations[l].d2_moment(mf.q[l])) for l in range(net.depth)]
        assert np.array_equal(mf.chi, np.array(ref))
