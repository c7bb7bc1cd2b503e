"""Gaps of leaky ReLU spectra followed on their real sheets (``fpcore._gaps``, issue #11 speed).

The grid points in a gap (``M`` real) each took a chain from far above (30 lilypads, some 300
Newton steps a point; a third of a tapered net's grid lies in gaps). ``_gaps.grid_discrete``
solves one of them from far above, finds how far its gap reaches on the same real sheets of the
``u_g`` (``F = M^{-1}`` monotone up to its first critical point) and solves the others there. The
law must not change: the same solutions as the chains from far above, the gap's edge a critical
value of ``M^{-1}`` on the real line and a true edge of the support, and Monte Carlo of real
networks."""

import math
import warnings

import numpy as np
import pytest

import fpcore
from fpcore import _activations, _fastchain, _gaps, _lilypad, _spectrum
from fpcore._equation import build_equation

pytestmark = pytest.mark.skipif(not _fastchain._HAVE_NUMBA, reason="the sheet sweep is compiled")


def _spectrum_with(net, sheets, monkeypatch, n_points=1000):
    monkeypatch.setattr(_lilypad, "_GAPS_ON_SHEETS", sheets)
    _activations._LAW_CACHE.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fpcore.jacobian_spectrum(net, n_points=n_points)


def _tapered(L):
    return [max(1, round(784 * (10 / 784) ** (l / L))) for l in range(L + 1)]


NETS = {
    "gaussian tapered L=2": fpcore.Network(_tapered(2), "leaky_relu", sigma_w2=2.0),
    "gaussian expanding L=2": fpcore.Network([100, 125, 156], "leaky_relu", sigma_w2=2.0),
    "gaussian bottleneck L=10": fpcore.Network([1000] * 5 + [250] + [1000] * 5, "leaky_relu", sigma_w2=2.0),
    "orthogonal tapered L=10": fpcore.Network(_tapered(10), "leaky_relu", sigma_w2=2.0, init="orthogonal"),
    "orthogonal expanding L=2": fpcore.Network([100, 125, 156], "leaky_relu", sigma_w2=2.0, init="orthogonal"),
    "orthogonal bottleneck L=2 slope 0.1": fpcore.Network([1000, 250, 1000], "leaky_relu:0.1", sigma_w2=2.0,
                                                          init="orthogonal"),
}


def _real(m):
    return -m.imag <= 1e-9 * np.abs(m)


@pytest.mark.parametrize("name", sorted(NETS))
def test_sheet_sweep_equals_the_chains_from_far_above(name, monkeypatch):
    net = NETS[name]
    old = _spectrum_with(net, False, monkeypatch)
    new = _spectrum_with(net, True, monkeypatch)
    assert np.array_equal(old.x, new.x)
    both = np.isfinite(old._m_grid) & np.isfinite(new._m_grid)
    assert np.count_nonzero(both) >= 990
    gap = both & _real(old._m_grid)
    assert np.count_nonzero(gap) >= 20  # (every net here has gaps on its grid)
    # the same solutions: in the gaps (real M) and in the support
    assert np.max(np.abs(new._m_grid[both] - old._m_grid[both]) / np.abs(old._m_grid[both])) <= 1e-9
    assert np.array_equal(_real(new._m_grid[both]), _real(old._m_grid[both]))
    assert np.max(np.abs(new._cdf_grid - old._cdf_grid)[both]) <= 1e-12
    # no point the other path solved is lost, and the sheets take no more Newton steps. (Before
    # grid_general's up-over-down walk from the left neighbour, the other path walked each gap point
    # from far above and the sheets took under half its steps; since, both take about as long:
    # 9-30 ms on these nets, the sheets 5-50 % fewer steps.)
    assert new.stats.n_uncertified <= old.stats.n_uncertified
    assert new.stats.n_newton_steps <= old.stats.n_newton_steps
    # in a gap the solution is exactly real and F is flat: no mass is lost there
    g_new = np.isfinite(new._m_grid) & _real(new._m_grid)
    runs = np.split(np.flatnonzero(g_new), np.flatnonzero(np.diff(np.flatnonzero(g_new)) > 1) + 1)
    for r in runs:
        if r.size > 1:
            assert np.ptp(new._cdf_grid[r]) <= 1e-12


@pytest.mark.parametrize("name", ["gaussian tapered L=2", "orthogonal bottleneck L=2 slope 0.1",
                                  "gaussian expanding L=2", "orthogonal expanding L=2"])
def test_gap_top_stays_in_the_gap_and_finds_its_edge(name):
    # From the first point of each gap run on the grid: every x in [x_0, x_c] is in the gap (M
    # from far above is real there), and where the scan ends at a critical value of M^{-1} on the
    # sheets (slope 0, not at a singular point where it stops short) that is the gap's edge: M is
    # not real just above it
    net = NETS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s = fpcore.jacobian_spectrum(net, n_points=1000)
    eq = s._eq
    V, W, k, n = eq.packed
    args = _gaps.discrete_args(V, W)
    a, e = eq.roots.astype(float), eq.exps.astype(float)
    gap = np.isfinite(s._m_grid) & _real(s._m_grid)
    # the first point of each gap run, and after each x_c the next grid point (as the sweep does)
    todo = list(np.flatnonzero(gap & ~np.r_[False, gap[:-1]]))
    edges = 0
    while todo:
        i = todo.pop(0)
        m0, u0 = s._m_grid[i].real, s._u_grid[i].real.copy()
        xc, mc = _gaps.gap_top(m0, u0, a, e, float(eq.log_c), V, W, k, n, *args)
        if not math.isfinite(xc):
            continue
        nxt = np.searchsorted(s.x, xc, side="right")
        if nxt < s.x.size and gap[nxt] and nxt not in todo:
            todo.append(nxt)
        assert xc > s.x[i] and mc < m0
        xs = np.geomspace(s.x[i], xc, 6)[1:-1]
        r = _lilypad.solve(eq, xs + 0j, scale=s.lambda_max)
        assert np.all(r.verified) and np.all(_real(r.m))
        assert np.all(np.diff(r.m.real) < 0) and r.m.real[-1] > mc  # (M decreases in a gap)
        sheets = np.array([_gaps._sheet_of(u0[g], args[0][g]) for g in range(k.size)])
        ug = u0.copy()
        v, sl, sg = _gaps._sheet_eval(mc, sheets, ug, a, e, float(eq.log_c), V, W, k, n, *args)
        assert sg > 0 and math.exp(v) == pytest.approx(xc, rel=1e-12)
        if abs(sl) * (m0 - mc) <= 1e-6:
            r = _lilypad.solve(eq, np.array([xc * (1 + 1e-3) + 0j]), scale=s.lambda_max)
            assert r.verified[0] and not _real(r.m)[0]
            edges += 1
    assert edges >= 1


def test_solve_on_sheets_inverts_the_sheet_function():
    net = NETS["gaussian tapered L=2"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s = fpcore.jacobian_spectrum(net, n_points=400)
    eq = s._eq
    V, W, k, n = eq.packed
    args = _gaps.discrete_args(V, W)
    a, e = eq.roots.astype(float), eq.exps.astype(float)
    i = np.flatnonzero(np.isfinite(s._m_grid) & _real(s._m_grid) & (s.x > s.support[0][0]))[0]
    m0, u0 = s._m_grid[i].real, s._u_grid[i].real.copy()
    xc, mc = _gaps.gap_top(m0, u0, a, e, float(eq.log_c), V, W, k, n, *args)
    xs = np.geomspace(s.x[i], xc, 12)[1:-1]
    uout = np.empty(k.size)
    for x in xs:
        m = _gaps._solve_on_sheets(x, m0, mc, u0, a, e, float(eq.log_c), V, W, k, n, *args, uout)
        assert mc < m < m0
        # psi_g(u_g) = k_g m with the exact two-atom psi, and M^{-1}(m) = x in product form
        for g in range(k.size):
            psi = np.sum(W[g] * uout[g] * V[g] / (1 - uout[g] * V[g]))
            assert psi == pytest.approx(k[g] * m, rel=1e-12)
        val = eq.log_c + np.sum(e * np.log(np.abs(m - a))) - np.sum(n * np.log(np.abs(uout)))
        assert math.exp(val) == pytest.approx(x, rel=1e-12)
        # and it is the physical M: the same as a chain from far above
        r = _lilypad.solve(eq, np.array([x + 0j]), scale=s.lambda_max)
        assert r.verified[0] and r.m[0] == pytest.approx(m, rel=1e-9)


def test_sheets_of_a_two_atom_law():
    v, w = np.array([1e-4, 1.0]), np.array([0.5, 0.5])
    P, vmax, vmin, p, S, mu1 = _gaps.discrete_args(v[None, :], w[None, :])
    assert np.array_equal(P[0], [1.0, 1e4])
    assert [_gaps._sheet_of(u, P[0]) for u in (-5.0, 0.5, 2.0, 9999.0, 2e4)] == [0, 0, 1, 1, 0]
    for wv in (-3.0, -0.5, 0.0, 2.0, 1e6):
        u, d = _gaps._u_sheet(wv, 1, v, w, P[0], vmax[0], vmin[0], p[0], S[0], mu1[0], np.nan)
        assert 1.0 < u < 1e4
        # psi(u) = wv in closed form (weights 1/2): (v1 + v2) u - 2 v1 v2 u^2 = 2 wv (1 - u v1)(1 - u v2)
        c2 = -2 * v[0] * v[1] - 2 * wv * v[0] * v[1]
        c1 = v[0] + v[1] + 2 * wv * (v[0] + v[1])
        roots = np.roots([c2, c1, -2 * wv])
        mid = roots[(roots.real > 1.0) & (roots.real < 1e4)].real
        assert mid.size == 1 and u == pytest.approx(mid[0], rel=1e-12)
        assert d == pytest.approx(np.sum(w * v / (1 - u * v) ** 2), rel=1e-12) and d > 0


@pytest.mark.parametrize("init,seed", [("gaussian", 3), ("orthogonal", 4)])
def test_leaky_relu_with_gaps_against_network_monte_carlo(init, seed, monkeypatch):
    # a bottleneck net whose spectrum has a gap (between the clusters at scale 1 and alpha^2):
    # network Monte Carlo at width 1000 within KS 0.02, and no eigenvalue mass in the gap
    net = fpcore.Network([1000, 1000, 250, 1000], "leaky_relu:0.1", sigma_w2=2.0, init=init)
    s = _spectrum_with(net, True, monkeypatch, n_points=600)
    assert s.stats.n_uncertified == 0
    assert len(s.support) >= 2
    ev = np.sort(fpcore.sample_jacobian_eigenvalues(net, mode="network", seed=seed, n_samples=2))
    assert fpcore.ks_distance(s, ev) <= 0.02
    lo, hi = s.support[0][1], s.support[1][0]
    inner = (ev > lo * 1.2) & (ev < hi / 1.2)
    assert np.count_nonzero(inner) <= 0.002 * ev.size
    assert s.cdf(np.sqrt(lo * hi)) == pytest.approx(s.cdf(lo * 1.001), abs=1e-9)


@pytest.mark.parametrize("slope", [0.01, 0.2])  # (0.1: a grid point sits on the edge 4 a^4 = 1e-4 x_max, where M = inf)
def test_orthogonal_square_two_layers_against_the_closed_form(slope):
    # J^T J = sigma_w2^2 D_1 O D_2^2 O^T D_1: M^{-1}(m) = sigma_w2^2 m / ((1 + m) u^2) with
    # psi(u) = m for the law (delta_{a^2} + delta_1) / 2 (square orthogonal layers, one group of
    # multiplicity 2). With psi = N / D, N = u (a^2 + 1 - 2 a^2 u) / 2, D = (1 - a^2 u)(1 - u),
    # M^{-1}(psi(u)) = x is x (N + D) u^2 = sigma_w2^2 N: a polynomial in u whose roots other than
    # 0 give M in closed form (a conjugate pair; M(x + i0) is the one with Im M < 0). Near the top
    # edge sigma_w2^2 = 4 M grows like (4 - x)^{-1/2} and joint Newton stalls on the rounding of
    # u_g next to the pole of psi_g: the grid's last points there were left unverified.
    net = fpcore.Network([1000] * 3, f"leaky_relu:{slope}", sigma_w2=2.0, init="orthogonal")
    _activations._LAW_CACHE.clear()
    s = fpcore.jacobian_spectrum(net, n_points=1000)
    assert s.stats.n_uncertified == 0
    assert s.stats.n_certified >= 950
    a2 = slope ** 2
    P = np.polynomial.polynomial
    N = P.polymul([0, 0.5], [a2 + 1, -2 * a2])
    D = P.polymul([1, -a2], [1, -1])
    worst = 0.0
    for x, m in zip(s.x, s._m_grid):
        us = P.polyroots(P.polysub(x * P.polymul(P.polyadd(N, D), [0, 0, 1]), 4.0 * N))
        us = us[np.abs(us) > 1e-12]
        ms = P.polyval(us, N) / P.polyval(us, D)
        if -m.imag > 1e-9 * abs(m):  # in the support: the one root with Im M < 0
            phys = ms[ms.imag < -1e-9 * np.abs(ms)]
            assert phys.size == 1
        else:  # below the lower edge 4 a^4 (the grid starts at 0 here): M real, a real root
            assert x < 4.0 * a2 ** 2 * (1 + 1e-9)
            phys = ms[np.abs(ms.imag) <= 1e-9 * np.abs(ms)]
            phys = phys[np.argsort(np.abs(phys - m))]
        worst = max(worst, abs(m - phys[0]) / abs(phys[0]))
    assert worst <= 1e-9
    assert s.x[-1] > 4.0 * (1 - 2e-4)  # (the grid reaches the edge, where |M| ~ 50)
