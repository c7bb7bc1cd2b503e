"""The cost of ``Spectrum.quantile`` below the solver's grid is bounded.

Deep chaotic GELU (the dashboard's ``?activation=gelu&depth=60&sigma_w2=2.9``: width 400, q0 1)
has most of its mass far below the solver's grid (which stops at ``1e-8 lambda_max``). Each
quantile there used to be a walk over hundreds of decades from the grid (seconds each, and
``deciles`` did not finish in 120 s). Now the walks below the grid go down a ladder of verified
solutions (one short walk per rung, at most ``_LADDER_MAX`` rungs per spectrum, no long fallback
walks), and a quantile the ladder cannot reach is flagged with a warning.
"""

import warnings

import numpy as np

import fpcore
from fpcore import _lilypad, _spectrum


def test_deciles_of_deep_chaotic_gelu_are_bounded_and_exact(monkeypatch):
    net = fpcore.Network([400] * 61, "gelu", sigma_w2=2.9)
    s = fpcore.jacobian_spectrum(net, n_points=1500)
    assert s._cdf_grid[0] > 0.5  # most deciles lie below the grid: the case this test is about
    calls = {"near": 0, "lilypads": 0, "far": 0}
    near, far = _spectrum.solve_near, _lilypad.solve

    def counted_near(*a, **k):
        r = near(*a, **k)
        calls["near"] += 1
        calls["lilypads"] += r.n_lilypads
        return r

    def counted_far(*a, **k):  # the long walk from far above, the fallback of solve_near
        calls["far"] += 1
        return far(*a, **k)

    monkeypatch.setattr(_spectrum, "solve_near", counted_near)
    monkeypatch.setattr(_lilypad, "solve", counted_far)
    p = np.arange(1, 10) / 10.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = np.asarray(s.deciles)
    lad = s._cache["ladder"]
    assert lad["solves"] <= _spectrum._LADDER_MAX
    # bounded work: the ladder plus a bounded Newton search per decile, each a short walk
    assert calls["near"] <= _spectrum._LADDER_MAX + 2 * (_spectrum._QUANTILE_ITERS + 4)
    assert calls["lilypads"] <= 2000, calls
    assert calls["far"] == 0, calls
    flagged = [w for w in caught if "upper bound of the quantile" in str(w.message)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        F = np.asarray(s.cdf(q))
        below = np.asarray(s.cdf(q * (1.0 - 1e-9)))
    assert np.all(F >= p), (p, q, F)
    # every decile is minimal, except those below the lowest verified rung, which are flagged:
    # F one part in 1e9 below it is below p, or (where F is too flat for that: the median, at
    # 8e-143, where F moves by 3e-15 per 1e-9 of x, below F's own rounding, since the ladder
    # reaches it, joint Newton's floor near M(0) = -1/2 counted in) F is within the quantile's
    # documented tolerance of p (F - p <= 1e-12) and one part in 1e6 below it is below p
    lowest = min(lad["x"]) if lad["x"] else s.x[0]
    resolved = q > lowest
    in_atom = (q == 0.0) & (p <= s.atom)  # the atom at 0 (mass 0.49997): those deciles are exactly 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        below6 = np.asarray(s.cdf(q * (1.0 - 1e-6)))
    flat = (F - p <= 1e-12) & (below6 < p)
    assert np.all((below < p)[resolved] | flat[resolved]), (p, q, below, F - p, below6)
    assert np.count_nonzero(resolved & ~(below < p)) <= 1, (p, q, below)
    if not np.all(resolved | in_atom):
        assert flagged and lad["stop"] in ("unverified", "budget", "floor")
    else:
        assert not flagged


def test_huge_variances_raise_value_error_naming_the_arguments():
    # sigma_w2 = 1e200 (and q0 = 1e300) used to raise RuntimeError("upper edge: ...")
    import pytest

    for kw in (dict(sigma_w2=1e200), dict(q0=1e300), dict(sigma_w2=1e300)):
        with pytest.raises(ValueError, match="sigma_w2"):
            fpcore.jacobian_spectrum(fpcore.Network([100, 100, 100], "tanh", **kw), n_points=50)


def test_d2_moment_at_huge_variance():
    # E[sech^4(sqrt(q) Z)] = (4/3) / sqrt(2 pi q) (1 + O(1/q)): the mean field's moment was 5 %
    # off at q = 1e10 (panels too coarse below z ~ 1e-5)
    import math

    import pytest

    tanh = fpcore.get_activation("tanh")
    for q in (1e10, 1e16):
        assert float(tanh.d2_moment(q)) == pytest.approx(4.0 / 3.0 / math.sqrt(2 * math.pi * q), rel=1e-9)
