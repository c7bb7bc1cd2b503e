"""``_fastchain.joint_dist`` (the compiled ``_Joint.dist``, the weighted distance of the
certificate's links and anchors) equals the numpy path ``_Joint.dist_numpy``: to rounding on
grid solutions and their neighbours (the distances the certificate compares with a radius), and
the same ``inf`` where a ratio is zero, infinite or ``nan``, or ``tau`` is 0."""

from __future__ import annotations

import numpy as np
import pytest

import fpcore
from fpcore import _fastchain
from fpcore._equation import build_equation
from fpcore._lilypad import _Joint, solve

pytestmark = pytest.mark.skipif(not _fastchain._HAVE_NUMBA, reason="compiled kernels")


def _kernel(xm, xu, ym, yu, tau):
    c = np.ascontiguousarray
    return _fastchain.joint_dist(c(xm, dtype=complex), c(xu, dtype=complex), c(ym, dtype=complex),
                                 c(yu, dtype=complex), c(tau, dtype=float))


@pytest.mark.parametrize("net", [
    fpcore.Network([784, 400, 200, 100, 10], "tanh", sigma_w2=1.05, sigma_b2=1e-4),
    fpcore.Network([500] * 4, "gelu", sigma_w2=2.0),
], ids=["tanh-tapered", "gelu-square"])
def test_joint_dist_equals_numpy_on_grid_neighbours(net):
    s = fpcore.jacobian_spectrum(net, n_points=300)
    eq = build_equation(net)
    groups = np.searchsorted(np.array([b for _, b in s.support]), s.x, side="left")
    r = solve(eq, s.x.astype(complex), scale=s.lambda_max, groups=groups)
    sel = np.flatnonzero(r.verified)
    m, u = r.m[sel], r.u[sel]
    cj = _Joint(eq)
    _, _, tau, _ = cj.test(s.x[sel].astype(complex), s.x[sel].astype(complex), m, u)
    for shift in (1, 2, 7):  # neighbours at one, two and seven grid steps
        a, b = np.arange(sel.size - shift), np.arange(shift, sel.size)
        want = _Joint.dist_numpy(m[b], u[b], m[a], u[a], tau[a])
        got = cj.dist(m[b], u[b], m[a], u[a], tau[a])
        fin = np.isfinite(want)
        assert np.array_equal(fin, np.isfinite(got))
        assert fin.mean() > 0.9
        # (log of a ratio near 1: both to an absolute rounding of a few 1e-16)
        assert np.allclose(got[fin], want[fin], rtol=1e-13, atol=1e-15)
    # a point against itself: 0
    assert np.all(cj.dist(m, u, m, u, tau) == 0.0)


def test_joint_dist_non_finite_cases():
    rng = np.random.default_rng(3)
    n, G = 64, 5
    xm = rng.normal(size=n) + 1j * rng.normal(size=n)
    ym = xm * np.exp(0.01 * (rng.normal(size=n) + 1j * rng.normal(size=n)))
    xu = rng.normal(size=(n, G)) + 1j * rng.normal(size=(n, G))
    yu = xu * np.exp(0.3 * (rng.normal(size=(n, G)) + 1j * rng.normal(size=(n, G))))
    tau = rng.uniform(0.1, 3.0, size=(n, G))
    xm[1] = 0.0
    ym[2] = 0.0
    xu[3, 2] = 0.0
    yu[4, 4] = 0.0
    xu[5, 0] = np.nan
    ym[6] = np.inf
    tau[7, 1] = 0.0
    xu[8, 3], yu[8, 3], tau[8, 3] = 1.0, 1.0, 0.0  # 0 / 0: nan
    xm[9] = -ym[9]  # on the branch cut: |log| = pi
    yu[10] = xu[10] * 1e300  # |log| large but finite
    with np.errstate(all="ignore"):
        want = _Joint.dist_numpy(xm, xu, ym, yu, tau)
    got = _kernel(xm, xu, ym, yu, tau)
    assert np.array_equal(np.isinf(want), np.isinf(got))
    assert not np.any(np.isnan(got))
    assert np.isinf(got[[1, 2, 3, 4, 5, 6, 7, 8]]).all()
    fin = np.isfinite(want)
    assert np.allclose(got[fin], want[fin], rtol=1e-14, atol=0)
