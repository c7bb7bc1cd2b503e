"""The cheaper certificate and tail mass of non-rational equations stay what they were.

(a) ``_fastchain.joint_grid`` takes ``omega`` from bounds computed once on a larger polydisc and
reused by the next centres inside it: every segment it passes is one the per-centre test
(``_Joint.test``) passes or one whose ball holds the root (checked against a 40-digit solve), the
radii are the same, and spoiled starts are refused as by the per-centre test.
(b) ``_fastchain._log_potential_fast`` (the tail mass's log potentials in vectorised passes) is
the scalar kernel's sum to rounding, and both agree with mpmath.
"""

from __future__ import annotations

import numpy as np
import pytest

import fpcore
from fpcore import _fastchain
from fpcore._equation import build_equation
from fpcore._lilypad import _Joint, solve

mpmath = pytest.importorskip("mpmath")
pytestmark = pytest.mark.skipif(not _fastchain._HAVE_NUMBA, reason="compiled kernels")

NETS = {
    "gelu-square": fpcore.Network([500] * 4, "gelu", sigma_w2=1.5),  # contour rules
    "tanh-tapered": fpcore.Network([784, 400, 200, 100, 10], "tanh", sigma_w2=1.2),  # real atoms
}


def _grid(net, n=400):
    s = fpcore.jacobian_spectrum(net, n_points=n)
    eq = build_equation(net)
    x = s.x
    groups = np.searchsorted(np.array([b for _, b in s.support]), x, side="left")
    r = solve(eq, x.astype(complex), scale=s.lambda_max, groups=groups)
    return s, eq, x, r


def _grid_test(cj, eq, t, m, u):
    return _fastchain.joint_grid(np.ascontiguousarray(t), np.ascontiguousarray(m), np.ascontiguousarray(u), cj.Vc,
                                 cj.WVc, cj.aVc, cj.aWVc, cj.live, cj.k, cj.n, cj.a, cj.e, cj.e0, float(eq.log_c))


def _mp_root(eq, cj, z, m, u):
    from test_joint_certificate import _mp_newton

    return _mp_newton(eq, cj, z, m, u)


@pytest.mark.parametrize("name", list(NETS))
def test_joint_grid_matches_the_per_centre_test(name):
    s, eq, x, r = _grid(NETS[name])
    cj = _Joint(eq)
    sel = np.flatnonzero(r.verified)
    t = x[sel].astype(complex)
    ok, R, tau = _grid_test(cj, eq, t, r.m[sel], r.u[sel])
    n = t.size
    nxt = np.minimum(np.arange(n) + 1, n - 1)
    prv = np.maximum(np.arange(n) - 1, 0)
    ends = (t, t[nxt], t[prv], 0.5 * (t + t[nxt]), 0.5 * (t + t[prv]))
    only_grid = []
    for c, zt in enumerate(ends):
        o2, R2, tau2, _ = cj.test(t, zt, r.m[sel], r.u[sel])
        assert np.array_equal(tau, tau2)
        both = ok[:, c] & o2
        assert np.allclose(R[both, c], R2[both], rtol=1e-12, atol=0)
        # the reused bounds never lose a segment the per-centre test passes (theta at 1/2 aside)
        assert np.count_nonzero(o2 & ~ok[:, c]) <= 0.01 * n
        only_grid.append(np.flatnonzero(ok[:, c] & ~o2))
    assert ok[:, 0].mean() > 0.9
    # own balls (column 0) hold the 40-digit root, also where only the reused bounds pass
    pick = np.unique(np.r_[only_grid[0][:3], np.flatnonzero(ok[:, 0])[:: max(1, n // 4)]])
    for p in pick:
        m_mp, u_mp = _mp_root(eq, cj, x[sel][p], r.m[sel][p], r.u[sel][p])
        d = max(abs(np.log(m_mp / r.m[sel][p])), np.max(np.abs(np.log(u_mp / r.u[sel][p])) / tau[p]))
        assert d <= R[p, 0] + 1e-15


@pytest.mark.parametrize("name", list(NETS))
def test_joint_grid_refuses_spoiled_starts(name):
    s, eq, x, r = _grid(NETS[name])
    cj = _Joint(eq)
    sel = np.flatnonzero(r.verified)
    t = x[sel].astype(complex)
    m, u = r.m[sel].copy(), r.u[sel].copy()
    bad = np.arange(5, sel.size, 20)
    for f_m, f_u in ((1.2, 1.0), (1.0, 0.8), (1 + 0.1j, 1.0), (5.0, 5.0)):
        mb, ub = m.copy(), u.copy()
        mb[bad] *= f_m
        ub[bad] *= f_u
        ok, R, tau = _grid_test(cj, eq, t, mb, ub)
        # where a spoiled start still passes, its own ball holds the true root
        hold = cj.dist(m[bad], u[bad], mb[bad], ub[bad], tau[bad]) <= R[bad, 0]
        assert np.all(hold | ~ok[bad, 0])
        if f_m == 5.0:
            assert not np.any(ok[bad, 0])
        else:
            assert ok[bad, 0].mean() <= 0.5
        # and the good points around them are as before
        good = np.setdiff1d(np.arange(sel.size), bad)
        ok0, R0, _ = _grid_test(cj, eq, t, m, u)
        assert np.array_equal(ok[good, 0], ok0[good, 0])


@pytest.mark.parametrize("name", list(NETS))
def test_fast_log_potential_matches_scalar_and_mpmath(name):
    eq = build_equation(NETS[name])
    V, W = eq.packed_complex
    K = _fastchain.live_sizes(W)
    vr, vi, wr, wi, cplx, r2, bits, mbits = _fastchain._split_rules(V, W)
    rng = np.random.default_rng(3)
    vmax = np.max(np.abs(V))
    us = (rng.uniform(0.01, 30.0, 40) / vmax) * np.exp(-1j * rng.uniform(1e-9, np.pi - 1e-9, 40))
    us = np.r_[us, 2.0 / vmax - 1e-14j, 1e3 / vmax - 1e-3j]
    for g in range(V.shape[0]):
        k = K[g]
        assert k > _fastchain._LP_SHORT  # the vectorised passes are what is compared
        for uu in us:
            a = _fastchain._log_potential_arg(uu.real, uu.imag, V[g, :k], W[g, :k])
            b = _fastchain._log_potential_fast(uu.real, uu.imag, vr[g, :k], vi[g, :k], wr[g, :k], wi[g, :k],
                                               cplx[g, :k], V[g, :k], W[g, :k], r2, bits, mbits)
            assert abs(a - b) <= 1e-13 * max(1.0, float(np.sum(np.abs(W[g, :k])))), (uu, a, b)
        # mpmath: Im sum w log(1 - u v), the argument of each factor continued as the kernels do
        for uu in us[:5]:
            with mpmath.workdps(30):
                tot = mpmath.mpf(0)
                for v, w in zip(V[g, :k], W[g, :k]):
                    f = 1 - mpmath.mpc(complex(uu)) * mpmath.mpc(complex(v))
                    ang = mpmath.arg(f)
                    if v.imag == 0 and w.imag == 0:
                        ang = ang if ang >= 0 else (mpmath.pi if f.real < 0 else mpmath.mpf(0))
                    elif ang < -mpmath.pi / 2:
                        ang += 2 * mpmath.pi
                    tot += mpmath.mpf(w.real) * ang + mpmath.mpf(w.imag) * mpmath.log(abs(f))
            b = _fastchain._log_potential_fast(uu.real, uu.imag, vr[g, :k], vi[g, :k], wr[g, :k], wi[g, :k],
                                               cplx[g, :k], V[g, :k], W[g, :k], r2, bits, mbits)
            assert abs(float(tot) - b) <= 1e-12 * max(1.0, float(np.sum(np.abs(W[g, :k]))))


def test_fast_log_potential_on_a_pole():
    # a rule of 50 real and 50 complex atoms; 1 - u v_j = 0 (rounded) for one atom: a real atom's
    # factor is 1 in the log part, a complex atom's |1 - u v|^2 may be 0 or subnormal (then the
    # scalar kernel): the two kernels agree, and off the poles too
    rng = np.random.default_rng(5)
    v = np.r_[rng.uniform(0.1, 2.0, 50), rng.uniform(0.1, 2.0, 50) * np.exp(-1j * rng.uniform(0.1, 1.0, 50))]
    w = np.r_[np.full(50, 0.01), 0.01 * np.exp(1j * rng.uniform(-1, 1, 50))]
    V, W = v[None, :].astype(complex), w[None, :].astype(complex)
    vr, vi, wr, wi, cplx, r2, bits, mbits = _fastchain._split_rules(V, W)
    assert cplx[0].sum() == 50
    for uu in (1.0 / v[7], 1.0 / v[70], 0.3 - 0.2j, 2.0 - 1e-15j):
        uu = complex(uu)
        a = _fastchain._log_potential_arg(uu.real, uu.imag, V[0], W[0])
        b = _fastchain._log_potential_fast(uu.real, uu.imag, vr[0], vi[0], wr[0], wi[0], cplx[0], V[0], W[0], r2,
                                           bits, mbits)
        assert (np.isnan(a) and np.isnan(b)) or abs(a - b) <= 1e-13 * max(1.0, abs(a)), (uu, a, b)
