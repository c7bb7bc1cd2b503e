"""Faster builds of the laws of ``D^2`` give the same bits (issue #11, law build speed).

Two parts of a law's build were rewritten for speed with the same floating-point operations in
the same order, so their results must be bit-identical to the code they replace, kept here
verbatim as the reference:

* the short Gauss rules (:func:`fpcore._fastchain.gauss_rule`): the plain Stieltjes recurrence's
  passes over the atoms fused into two per step, and the check of its moments computed atoms
  outer, moments inner (four atoms at a time) instead of moments outer;
* the contour rule's probe grid (:func:`fpcore._activations._contour_rule`): the merge of
  ``np.linspace(-H, H, 4001)`` with the 16001-point grid ``_PROBE80`` takes only the points of
  ``_PROBE80`` strictly inside ``(-H, H)`` instead of all of them clipped to ``[-H, H]``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fpcore
from fpcore import _activations as A
from fpcore import _fastchain, _lawkernels

pytestmark = pytest.mark.skipif(not _fastchain._HAVE_NUMBA, reason="the compiled kernels need numba")


def _old_gauss_rule_once(values, weights, n, passes):
    """:func:`fpcore._fastchain._gauss_rule_once` before the fusion (verbatim)."""
    K = values.size
    total = weights.sum()
    Q = np.zeros((n, K))
    alpha = np.zeros(n)
    beta = np.zeros(n)
    for k in range(K):
        Q[0, k] = math.sqrt(weights[k] / total)
    size = n
    v = np.empty(K)
    vmax = values.max()
    for j in range(n):
        for k in range(K):
            v[k] = values[k] * Q[j, k]
        s = 0.0
        for k in range(K):
            s += Q[j, k] * v[k]
        alpha[j] = s
        if passes == 0:
            for k in range(K):
                v[k] -= s * Q[j, k]
                if j > 0:
                    v[k] -= beta[j - 1] * Q[j - 1, k]
        for _ in range(passes):
            for i in range(j + 1):
                c = 0.0
                for k in range(K):
                    c += Q[i, k] * v[k]
                for k in range(K):
                    v[k] -= c * Q[i, k]
        if j + 1 < n:
            b = 0.0
            for k in range(K):
                b += v[k] * v[k]
            b = math.sqrt(b)
            beta[j] = b
            if b <= 1e-14 * vmax:
                size = j + 1
                break
            for k in range(K):
                Q[j + 1, k] = v[k] / b
    off = np.zeros(size)
    off[: size - 1] = beta[: size - 1]
    lam, z = _fastchain._gw_ql(alpha[:size].copy(), off)
    w = np.empty(size)
    for j in range(size):
        lam[j] = max(lam[j], 0.0)
        w[j] = z[j] * z[j] * total
    return lam, w


def _old_check(values, weights, x, w, n):
    """The moment check of :func:`fpcore._fastchain.gauss_rule` before the loop interchange
    (verbatim): the largest difference of the moments and whether the rule passes."""
    top = values.max()
    total = weights.sum()
    worst = 0.0
    pv = np.ones(values.size)
    px = np.ones(x.size)
    for k in range(min(2 * n, 2 * x.size)):
        a = 0.0
        for i in range(values.size):
            a += weights[i] * pv[i]
            pv[i] *= values[i] / top
        b = 0.0
        for i in range(x.size):
            b += w[i] * px[i]
            px[i] *= x[i] / top
        worst = max(worst, abs(a - b))
    return worst, worst <= 1e-12 * total


_old_once = _fastchain.numba.njit(error_model="numpy")(_old_gauss_rule_once) if _fastchain._HAVE_NUMBA else None
_old_chk = _fastchain.numba.njit(error_model="numpy")(_old_check) if _fastchain._HAVE_NUMBA else None


def _old_gauss_rule(values, weights, n):
    x, w = _old_once(values, weights, n, 0)
    if _old_chk(values, weights, x, w, n)[1]:
        return x, w, False
    x, w = _old_once(values, weights, n, 2)
    return x, w, True


def _laws():
    """Discrete laws that the short rules see: the fine and composite rules of smooth
    activations, random laws, and laws packed near one value (which fail the check and take
    full reorthogonalisation), of sizes not a multiple of 4 too."""
    rng = np.random.default_rng(11)
    out = []
    for name, q in [("gelu", 1e-6), ("gelu", 0.34), ("silu", 100.0), ("softplus", 2.0), ("silu", 1e4)]:
        act = fpcore.get_activation(name)
        out.append((f"fine {name} {q:g}",) + A._fine_rule(act.dphi, q))
        zeros = act._zeros_in_z(math.sqrt(q))
        out.append((f"composite {name} {q:g}",) + A._d2_rule(act.dphi, q, zeros))
    for K in (41, 97, 258, 1003):
        v = rng.uniform(0.0, 2.0, K)
        out.append((f"uniform {K}", v, rng.uniform(0.1, 1.0, K)))
        out.append((f"log-spread {K}", 10.0 ** rng.uniform(-40.0, 0.0, K), rng.uniform(0.1, 1.0, K)))
        out.append((f"packed {K}", 1.0 + 1e-9 * rng.standard_normal(K), np.full(K, 1.0 / K)))
        out.append((f"two clusters {K}", np.r_[1e-12 * rng.uniform(size=K // 2), 1.0 + 1e-10 * rng.uniform(size=K - K // 2)],
                    rng.uniform(0.1, 1.0, K)))
    return out


@pytest.mark.parametrize("n", [40, 7])
def test_gauss_rule_bit_identical_to_the_unfused_kernels(n):
    # (none of these laws fails the check -- 3000 random laws did not either -- so the
    # reorthogonalised rule is compared directly, and the check's sums below)
    for label, v, w in _laws():
        v, w = np.ascontiguousarray(v, dtype=float), np.ascontiguousarray(w, dtype=float)
        x_new, w_new = _fastchain.gauss_rule(v, w, n)
        x_old, w_old, _ = _old_gauss_rule(v, w, n)
        assert np.array_equal(x_new, x_old), label
        assert np.array_equal(w_new, w_old), label
        for passes in (0, 1, 2):
            a, b = _fastchain._gauss_rule_once(v, w, n, passes), _old_once(v, w, n, passes)
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), (label, passes)
        # the check's largest moment difference, old loops and new sums
        x0, w0 = _old_once(v, w, n, 0)
        nk = min(2 * n, 2 * x0.size)
        top = float(v.max())
        worst = 0.0
        for d in np.abs(_fastchain._power_sums(v, w, top, nk) - _fastchain._power_sums(x0, w0, top, nk)):
            worst = max(worst, float(d))
        assert worst == _old_chk(v, w, x0, w0, n)[0], label


def test_power_sums_are_the_old_checks_sums():
    rng = np.random.default_rng(3)
    for K in (1, 3, 4, 5, 8, 77, 400):
        v = 10.0 ** rng.uniform(-30.0, 0.5, K)
        w = rng.uniform(0.0, 1.0, K)
        top = float(v.max())
        a = _fastchain._power_sums(v, w, top, 80)
        ref = np.zeros(80)
        pv = np.ones(K)
        for k in range(80):
            s = 0.0
            for i in range(K):
                s += w[i] * pv[i]
                pv[i] *= v[i] / top
            ref[k] = s
        assert np.array_equal(a, ref), K


def test_probe_grid_is_the_clipped_merge():
    """The probe grid built from the points of ``_PROBE80`` strictly inside ``(-H, H)`` is the
    merge with all of them clipped to ``[-H, H]``, for ``H`` at, between and beyond its points."""
    P = A._PROBE80
    Hs = [9.0 * math.sqrt(q) for q in (1e-30, 1e-13, 1e-6, 0.01, 0.34, 2.0, 100.0, 1e4, 3e5)]
    Hs += [0.01, 0.015, 1.0, 79.99, 80.0, 80.01, 1e3, float(P[8000 + 1234])]
    for H in Hs:
        old = _lawkernels.union_sorted2(np.linspace(-H, H, 4001), np.clip(P, -H, H))
        inner = P[int(np.searchsorted(P, -H, side="right")):int(np.searchsorted(P, H, side="left"))]
        new = _lawkernels.union_sorted2(np.linspace(-H, H, 4001), inner)
        assert np.array_equal(old, new), H
