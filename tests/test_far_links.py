"""The certificate's far links (``fpcore._lilypad._certify_rule``): a link whose single test has
``theta >= _LINK_THETA_LONG`` is walked only where it can add certified points or spare a vertical
chain. It certifies the grid points that walking every far link before the anchors certifies (the
rule up to stop 28), with at most as many walks, and the components that get vertical chains are
delimited by the links themselves."""

from __future__ import annotations

import numpy as np
import pytest

import fpcore
from fpcore import _lilypad


def _tapered(L: int) -> list[int]:
    return [max(1, round(784 * (10 / 784) ** (l / L))) for l in range(L + 1)]


NETS = {
    # runs of verified points whose far links fail (a walk each, up front)
    "tanh-orthogonal-tapered-10": fpcore.Network(_tapered(10), "tanh", sigma_w2=1.05, sigma_b2=1e-4, init="orthogonal"),
    # an 11-point component joined by far links inside such a run gets its own vertical chain
    "sigmoid-orthogonal-tapered-50": fpcore.Network(_tapered(50), "sigmoid", sigma_w2=1.0, init="orthogonal"),
    "leaky-relu-orthogonal-tapered-2": fpcore.Network(_tapered(2), "leaky_relu", sigma_w2=2.0, init="orthogonal"),
    # two large components joined by a far link: one vertical chain for both
    "silu-gaussian-tapered-10": fpcore.Network(_tapered(10), "silu", sigma_w2=2.0),
}


def _certify(net, monkeypatch, up_front: bool):
    """The certified mask of the grid, the number of far links walked and of vertical chains."""
    monkeypatch.setattr(_lilypad, "_FAR_LINKS_UP_FRONT", up_front)
    masks, far, vertical = [], [0], [0]
    walk, vert, grid = _lilypad._Joint.walk, _lilypad._Joint.vertical, _lilypad._certify_grid

    def counting_walk(self, z0, m0, u0, t, max_rounds, theta=None):
        if max_rounds == _lilypad._LINK_ROUNDS_FAR:
            far[0] += np.size(t)
        return walk(self, z0, m0, u0, t, max_rounds, theta)

    def counting_vertical(self, t, *args, **kwargs):
        vertical[0] += np.size(t)
        return vert(self, t, *args, **kwargs)

    def keeping_grid(*args, **kwargs):
        masks.append(grid(*args, **kwargs))
        return masks[-1]

    monkeypatch.setattr(_lilypad._Joint, "walk", counting_walk)
    monkeypatch.setattr(_lilypad._Joint, "vertical", counting_vertical)
    monkeypatch.setattr(_lilypad, "_certify_grid", keeping_grid)
    s = fpcore.jacobian_spectrum(net, n_points=1000)
    monkeypatch.undo()
    return np.concatenate(masks), far[0], vertical[0], s


@pytest.mark.parametrize("name", list(NETS))
def test_far_links_walked_where_they_count_certify_the_same_points(name, monkeypatch):
    net = NETS[name]
    before, far_before, _, s0 = _certify(net, monkeypatch, up_front=True)
    after, far_after, _, s1 = _certify(net, monkeypatch, up_front=False)
    assert np.array_equal(before, after), (name, int(before.sum()), int(after.sum()))
    assert far_after <= far_before
    assert s1.stats.n_certified == s0.stats.n_certified and s1.stats.n_uncertified == 0
    x = np.geomspace(1e-6, float(s0.lambda_max), 9) * 0.999
    np.testing.assert_array_equal(s1.cdf(x), s0.cdf(x))  # (the certificate moves no value)


def test_far_links_are_spared_inside_runs_that_stay_verified(monkeypatch):
    """Orthogonal tanh, tapered, L = 50: 224 points stay verified, in runs of 19 to 158 points
    whose far links nearly all fail. Walked up front: 363 far links (measured at stop 29); now
    those at the runs' ends and every seventh inside them: 91."""
    net = fpcore.Network(_tapered(50), "tanh", sigma_w2=1.05, sigma_b2=1e-4, init="orthogonal")
    mask, far_before, chains_before, _ = _certify(net, monkeypatch, up_front=True)
    after, far_after, chains_after, _ = _certify(net, monkeypatch, up_front=False)
    assert np.count_nonzero(~mask) >= 100  # (the case still has its verified runs)
    assert np.array_equal(mask, after)
    assert far_after < far_before / 3, (far_before, far_after)
    assert chains_after <= chains_before


def test_components_are_delimited_by_their_links(monkeypatch):
    """SiLU, Gaussian, tapered, L = 10: two large components joined by a far link. The link is
    walked before their vertical chains (one chain for both), and a component is the points
    joined both ways (``fwd[i]``: ``i - 1 -> i``, ``bwd[i - 1]``: ``i -> i - 1``; an off-by-one
    split the point pair at a failed link into a component of its own, so two chains ran)."""
    mask, _, chains, s = _certify(NETS["silu-gaussian-tapered-10"], monkeypatch, up_front=False)
    assert mask.all() and s.stats.n_certified == 1000
    assert chains == 1


def test_leaky_relu_tapered_points_reach_their_anchor():
    """The off-by-one cut a 10-point run of Gaussian leaky ReLU (tapered, L = 2) off from its
    anchor: 990 of 1000 certified before, 999 after (measured at stop 29)."""
    net = fpcore.Network(_tapered(2), "leaky_relu", sigma_w2=2.0)
    assert fpcore.jacobian_spectrum(net, n_points=1000).stats.n_certified >= 999
