"""The contour-rule band of the split certificate (``_lilypad._certify_grid``) against the band to
the middle of the interval it first replaces.

With Gaussian weights and contour rules (GELU, SiLU) most grid points are certified for the
equation with the laws' short rules; the few near 0 that need the contour rules are joined by
links to a vertical chain with the contour rules. The anchor of that chain is first placed
``_NEAR_REACH`` grid points past them (a band of about 100 points) instead of in the middle of
the interval (about 500), and the middle is tried where that leaves one of them uncertified.
"""

import numpy as np
import pytest

import fpcore
from fpcore import _lilypad
from fpcore._lilypad import solve

NETS = [("gelu", 10), ("silu", 10), ("gelu", 2)]


@pytest.mark.parametrize("act,L", NETS, ids=[f"{a}-{L}" for a, L in NETS])
def test_near_anchor_certifies_what_the_middle_anchor_does(act, L, monkeypatch):
    net = fpcore.Network([1000] * (L + 1), act, sigma_w2=2.0)
    s = fpcore.jacobian_spectrum(net)
    eq, x = s._eq, np.asarray(s.x)
    groups = np.zeros(x.size, dtype=np.int64)
    seen = []
    orig = _lilypad._certify_rule

    def spy(eq_, cj, t, *args, **kw):
        seen.append((t.size, cj.V.shape[1]))
        return orig(eq_, cj, t, *args, **kw)

    monkeypatch.setattr(_lilypad, "_certify_rule", spy)
    near = solve(eq, x + 0j, scale=s.lambda_max, groups=groups)
    bands = [n for n, k in seen if n < x.size]
    seen.clear()
    monkeypatch.setattr(_lilypad, "_NEAR_REACH", 10**9)  # the band to the middle only
    mid = solve(eq, x + 0j, scale=s.lambda_max, groups=groups)
    np.testing.assert_array_equal(near.m, mid.m)
    np.testing.assert_array_equal(near.certified, mid.certified)
    assert np.count_nonzero(near.certified) >= 0.98 * x.size
    assert bands or act == "gelu" and L == 2  # (L = 2: most points need the contour rules, no split)
    if bands:  # the split was taken: the first band is the short one
        assert bands[0] < min(n for n, k in seen if n < x.size)
