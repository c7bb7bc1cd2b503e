"""The curvature bound of the compiled rational test keeps the cancellations between clustered
roots (``_fastchain._lip_bound``, issue #11: hard-tanh cells at ``L = 50``).

Deep hard-tanh nets have one root per layer near ``-1`` (exponent ``+1``) and ``-1`` itself with
exponent ``-(L - 1)``; tapered nets add next to each root of a layer's law a root of its width
change with the opposite exponent. ``|g''| = |sum_j e_j / (w - a_j)^2|`` then nearly cancels, and
the term-by-term bound ``sum_j |e_j| / (|m - a_j| - r)^2`` was some ``L`` times too large: the
lilypads as much too small (orthogonal tapered ``L = 50``: 7254 lilypads for 1000 grid points)."""

import numpy as np
import pytest

import fpcore
from fpcore import _fastchain as F
from fpcore._equation import build_equation

pytestmark = pytest.mark.skipif(not F._HAVE_NUMBA, reason="compiled test")


def _tapered(L):
    return [max(1, round(784 * (10 / 784) ** (l / L))) for l in range(L + 1)]


NETS = {
    "hard-tanh orthogonal square L=50": fpcore.Network([1000] * 51, "hard_tanh", init="orthogonal"),
    "hard-tanh orthogonal tapered L=50": fpcore.Network(_tapered(50), "hard_tanh", init="orthogonal"),
    "hard-tanh gaussian tapered L=10": fpcore.Network(_tapered(10), "hard_tanh"),
    "relu square L=20": fpcore.Network([500] * 21, "relu", sigma_w2=2.0),
}


def _plain(m, r, a, e):
    return float(np.sum(np.abs(e) / (np.abs(m - a) - r) ** 2))


@pytest.mark.parametrize("name", sorted(NETS))
def test_bound_holds_on_its_ball(name):
    net = NETS[name]
    s = fpcore.jacobian_spectrum(net, n_points=200)
    eq = build_equation(net, "JJt")
    a, e = eq.roots.astype(float), eq.exps.astype(float)
    rng = np.random.default_rng(0)
    checked = 0
    for m in s._m_grid[np.isfinite(s._m_grid)][::7]:
        dmin = np.min(np.abs(m - a))
        for frac in (0.01, 0.3, 0.9):
            r = frac * dmin
            K = F._lip_bound(complex(m), r, a, e)
            assert K <= _plain(m, r, a, e) * (1 + 1e-12)
            # |g''| on the ball: its rim and inside (the maximum of |g''| lies on the rim)
            w = m + r * np.sqrt(rng.uniform(0, 1, 64)) * np.exp(2j * np.pi * rng.uniform(0, 1, 64))
            w = np.r_[w, m + r * np.exp(2j * np.pi * np.arange(64) / 64)]
            g2 = np.abs(np.sum(e / (w[:, None] - a) ** 2, axis=1))
            assert np.all(g2 <= K * (1 + 1e-9))
            checked += 1
    assert checked >= 30


def test_bound_keeps_the_cancellation_of_a_root_cluster():
    eq = build_equation(NETS["hard-tanh orthogonal square L=50"], "JJt")
    a, e = eq.roots.astype(float), eq.exps.astype(float)
    assert np.max(np.abs(e)) >= 40  # the root -1 with exponent -(L - 1)
    m = complex(5.7, -0.6)  # near the top edge (|M| large; the walk there goes in 1/m too)
    r = 0.1
    K = F._lip_bound(m, r, a, e)
    w = m + r * np.exp(2j * np.pi * np.arange(256) / 256)
    true = np.max(np.abs(np.sum(e / (w[:, None] - a) ** 2, axis=1)))
    assert true <= K
    assert K <= _plain(m, r, a, e) / 10  # the plain bound: some L times |g''|


@pytest.mark.parametrize("name", ["hard-tanh orthogonal square L=50", "hard-tanh orthogonal tapered L=50"])
def test_deep_hard_tanh_grid_takes_about_one_lilypad_a_point(name):
    s = fpcore.jacobian_spectrum(NETS[name], n_points=1000)
    assert s.stats.n_certified == 1000
    # (2751 and 7254 lilypads with the term-by-term bound, 1065 and 1148 with this one)
    assert s.stats.n_lilypads <= 1500
