"""The compiled sweep's cost savings keep its results: packed contour rules sum to the complex
ones, and every point the sweep accepts passes the a-posteriori checks at the point it returns.

``grid_general`` packs complex laws into real rows (``_fastchain._pack_laws``: ``Re v``, ``Im v``,
``Re wv``, ``Im wv``) so the law sums vectorise, and its Newton runs no longer evaluate every law
once more at the accepted point when the last iterate's residuals already pass (they stand for the
point one step of at most ``tol`` beyond it). The second is checked here from outside: the
residuals at the returned ``(m, u)``, recomputed with the unpacked laws, are below the sweep's
acceptance bound at every accepted point.
"""

import numpy as np
import pytest

import fpcore
from fpcore import _fastchain

pytestmark = pytest.mark.skipif(not _fastchain._HAVE_NUMBA, reason="the compiled sweep needs numba")


def test_packed_sums_equal_complex_sums():
    rng = np.random.default_rng(3)
    K, G = 257, 3
    V = rng.uniform(0.0, 1.2, (G, K)) + 1j * rng.uniform(-0.3, 0.3, (G, K))
    W = (rng.uniform(0.0, 1.0, (G, K)) + 1j * rng.uniform(-0.1, 0.1, (G, K))) / K
    V[:, -5:] = 0.0  # zero-weight padding atoms, as in laws padded to the longest one
    W[:, -5:] = 0.0
    V[1, -40:] = W[1, -40:] = 0.0  # a shorter law: more padding
    W[2, 7] = 0.0  # a zero weight inside a law is summed (only the trailing padding is skipped)
    P, n = _fastchain._pack_laws(V, W)
    assert P.shape == (G, 4, K)
    assert n.tolist() == [K - 5, K - 40, K - 5]  # each law's atoms, without the padding
    for u in (0.3 - 0.2j, -2.0 - 1e-3j, 5.0 - 4.0j, 0.8 - 1e-9j):
        for g in range(G):
            s, d = _fastchain._psi_sums_complex(u.real, u.imag, V[g], W[g])
            sp, dp = _fastchain._psi_sums_packed(u.real, u.imag, P[g], n[g])
            ref_s = np.sum(W[g] * V[g] / (1 - u * V[g]))
            ref_d = np.sum(W[g] * V[g] / (1 - u * V[g]) ** 2)
            scale_s = np.sum(np.abs(W[g] * V[g] / (1 - u * V[g])))
            scale_d = np.sum(np.abs(W[g] * V[g] / (1 - u * V[g]) ** 2))
            assert abs(sp - ref_s) <= 1e-13 * scale_s and abs(s - ref_s) <= 1e-13 * scale_s
            assert abs(dp - ref_d) <= 1e-13 * scale_d and abs(d - ref_d) <= 1e-13 * scale_d
            t = _fastchain._psi_terms_atoms(u, V[g], W[g])
            assert _fastchain._psi_terms_packed(u, P[g], n[g]) == pytest.approx(t, rel=1e-13)
            assert t == pytest.approx(scale_s * abs(u), rel=1e-12)
    # real atoms and packed laws pass through
    Vr = V.real.copy()
    assert _fastchain._pack_laws(Vr, W.real)[0] is Vr
    assert _fastchain._pack_laws(P, n)[0] is P and _fastchain._pack_laws(P, n)[1] is n


CASES = [("silu", "orthogonal", [400, 400, 400]), ("tanh", "gaussian", [784, 300, 100, 10]),
         ("gelu", "gaussian", [300, 600, 300])]


@pytest.mark.parametrize("act,init,widths", CASES, ids=[f"{a}-{i}-{len(w) - 1}" for a, i, w in CASES])
def test_sweep_points_pass_checks_where_returned(monkeypatch, act, init, widths):
    net = fpcore.Network(widths, act, sigma_w2=1.05 if act == "tanh" else 2.0, init=init)
    calls = []
    sweep = _fastchain.grid_general

    def spy(*args):
        out = sweep(*args)
        calls.append((args, tuple(np.copy(o) for o in out)))  # (the caller updates them in place)
        return out

    monkeypatch.setattr(_fastchain, "grid_general", spy)
    s = fpcore.jacobian_spectrum(net, n_points=400)
    assert s.stats.n_uncertified == 0
    assert calls
    for args, (m, u, ok, counts) in calls:
        x, a, e, log_c, V, W, kk, nn = args[0], args[4], args[5], args[6], args[7], args[8], args[9], args[10]
        assert ok.mean() > 0.9 and counts[1] > 0
        sel = np.flatnonzero(ok)
        res, inner = _fastchain.residuals_general(x[sel] + 0j, m[sel], np.ascontiguousarray(u[sel]), a, e, log_c,
                                                  V, W, kk, nn)
        assert np.all(res <= _fastchain._RES_ACCEPT), res.max()
        assert np.all(inner <= _fastchain._RES_ACCEPT), inner.max()
        assert np.all(m[sel].imag <= 1e-10 * np.abs(m[sel]))
