"""Lower edge of smooth nets whose narrowest layer is last and whose laws of ``D^2`` have shrunk.

SiLU and GELU nets at ``sigma_w2 = 2`` halve ``q`` at every layer: after some 20 layers ``D^2``
sits near ``1/4`` with a lumped atom of 1e-19 at 0 (the derivative vanishes far out in the
tail). ``psi_g``'s branch ``(-inf, 0) -> (-p, 0)`` then ends at ``-p / k_g``, and the last
layer's end is ``M(0^-) = atom - 1`` itself: ``lower_edge`` found an empty scan interval and
returned 0, and the grid of the benchmark's tapered MLP (784 -> 10, depth 50) started at 0 with
611 of its 1000 points in the gap below the bulk (over 10 s). Through ``u_g = infinity`` the real
branch goes on (``psi_g`` is analytic in ``1/u_g`` there), and with orthogonal weights a pole of
the rational part at each ``-N_l / N_0`` cancels ``u_g``'s zero: the edge lies beyond them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fpcore
from fpcore import _edges
from fpcore._equation import build_equation


def _tapered(L: int) -> list[int]:
    # benchmarks/bench_matrix.py's "tapered" profile
    return [max(1, round(784 * (10 / 784) ** (l / L))) for l in range(L + 1)]


def _edge(net: fpcore.Network) -> float:
    eq = build_equation(net, "JtJ")
    atom0 = eq.atoms[0][1] if eq.atoms and eq.atoms[0][0] == 0.0 else 0.0
    return _edges.lower_edge(eq, atom0)


def _check_support(spec, edge: float) -> None:
    st = spec.stats
    assert st.n_certified + st.n_verified == st.n_points == 1000
    lo = spec.support[0][0]
    assert lo == edge > 0.0  # the grid starts at the edge, which passed the solver's check
    assert spec.cdf(lo) - spec.atom <= 1e-9  # no mass below it
    assert spec.cdf(0.5 * lo) == pytest.approx(spec.atom, abs=1e-12)
    assert np.all(spec.x > lo)
    # a square-root edge: the density is positive right above it
    assert spec.density[0] > 0.0


@pytest.mark.parametrize("init", ["orthogonal", "gaussian"])
def test_deep_net_narrow_last_layer_against_network_monte_carlo(init):
    # 21 layers: q_L = 2e-5; the last layer (500 of 1000) bounds the rank
    net = fpcore.Network([1000] * 21 + [500], "silu", sigma_w2=2.0, init=init)
    edge = _edge(net)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no uncertified point
        spec = fpcore.jacobian_spectrum(net, n_points=1000)
    if init == "orthogonal":
        _check_support(spec, edge)  # 1.02e-9, the top edge 1.09e-4
    else:
        # 1.66e-16: below the grid's depth (1e-8 of the top edge) the edge moves no grid point
        # and the grid runs from 0, as before
        assert spec.support[0][0] == 0.0
        assert spec.stats.n_certified + spec.stats.n_verified == 1000
        assert spec.cdf(0.5 * edge) == pytest.approx(spec.atom, abs=1e-12)
    ev = fpcore.sample_jacobian_eigenvalues(net, mode="network", seed=2026, n_samples=2)
    assert fpcore.ks_distance(spec, ev) <= 0.02  # 0.009 (orthogonal), 0.008 (Gaussian)
    nz = ev[ev > 1e-14 * ev.max()]
    assert nz.size == 1000
    # finite-width eigenvalues spill a little past the edge (0.4 % and 0.1 % of them here), not more
    assert np.mean(nz < edge) <= 0.01
    assert np.mean(nz < 0.5 * edge) == 0.0


@pytest.mark.parametrize("act,lo,hi", [("silu", 7.2e-15, 7.4e-15), ("gelu", 6.6e-13, 6.9e-13)])
def test_benchmark_tapered_mlp_depth_50(act, lo, hi):
    # The benchmark matrix's cell: orthogonal, 784 -> 10 over 50 layers. The edge lies where the
    # solver's density (grid from 0, before the fix) rose from 1e-11 to 1e11 of its peak:
    # between 7.28e-15 and 7.37e-15 for SiLU.
    net = fpcore.Network(_tapered(50), act, sigma_w2=2.0, init="orthogonal")
    edge = _edge(net)
    assert lo < edge < hi
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        spec = fpcore.jacobian_spectrum(net, n_points=1000)
    _check_support(spec, edge)


@pytest.mark.parametrize("q0", [1e-4, 1e-10])
def test_shallow_net_edge_at_the_bulks_pole_is_not_trusted(q0):
    # Three layers at small q: past u = infinity the real branch's critical point lies where u_g
    # reaches the pole of its law's lowest atom, a tail of weight 1e-12 that double precision
    # cannot see (q0 = 1e-4: x = 0.1086 near m = -4.8, above the gap the grid finds, 0.1082):
    # no edge from the real line; the grid finds the gap, as before.
    net = fpcore.Network([2000, 1600, 1300, 1000], "silu", sigma_w2=2.0, init="orthogonal", q0=q0)
    assert _edge(net) == 0.0


def test_law_whose_bulk_reaches_zero_keeps_edge_zero():
    # q of order 1 in the last layer: D^2 has a density down to 0 and the support touches 0
    # (Monte Carlo's smallest eigenvalues are 1e-7 of the largest).
    net = fpcore.Network(_tapered(3), "silu", sigma_w2=2.0, init="orthogonal")
    assert _edge(net) == 0.0
