"""The laws of ``D^2`` built fast (issue #11) are the laws built the slow way.

Building a law of ``D^2`` for a smooth activation used to evaluate ``phi'`` at complex arguments
everywhere (a complex-step derivative on a 20000-point probe grid, one-point bisections for the
turning points, a 24-point Cauchy integral per node for ``phi''`` and ``phi'''``), to find the
path's nodes by a vectorised Newton loop, and to tabulate the short rules' errors with complex
divisions. The fast build takes ``phi', phi'', phi'''`` in closed form on the real line
(:class:`fpcore._activations._Analytic`), finds the nodes and tabulates the errors in compiled
code (:mod:`fpcore._lawkernels`), and merges equal atoms before Gauss rules.

Each test below rebuilds the same objects through the slow path, kept here as the reference:
``phi'`` handed to the builder as a plain callable (complex evaluations for every derivative,
the fallback of :func:`fpcore._activations._real3`), the nodes by the old numpy iteration, the
error tables by a plain numpy table (:func:`_short_rule_errors_numpy`), the fine rule's Gauss
rule without merging. Rules must agree atom by atom to ``1e-12`` of their largest entry (measured: 1e-13), the
spectra of whole networks to ``1e-10``.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest

import fpcore
import fpcore._activations as A
from fpcore import _lawkernels

SMOOTH = ["tanh", "erf", "sigmoid", "gelu", "silu", "softplus", "selu", "elu"]
QS = [1e-4, 0.01, 0.34, 1.0, 2.1, 100.0, 1e4, 1e6]


# -- the slow path ------------------------------------------------------------------------------
def _sigma_nodes_numpy(k, h_lo, h_hi, A_, B, kap, cl, ce, hg):
    """The nodes of the contour rule by the vectorised safeguarded Newton iteration (the code
    :func:`fpcore._lawkernels.sigma_nodes` replaced)."""

    def sigma(h):
        r = np.sqrt(A_ * A_ + (B * h) ** 2)
        val = 0.5 * (h * r + A_ * A_ / B * np.arcsinh(B * h / A_)) if B > 0 else A_ * h
        der = r
        for h0, e0 in zip(cl, ce):
            val = val + kap * np.arcsinh((h - h0) / e0)
            der = der + kap / np.sqrt((h - h0) ** 2 + e0 * e0)
        return val, der

    lo, hi = np.full(k.size, h_lo), np.full(k.size, h_hi)
    hk = np.interp(k, sigma(hg)[0], hg)
    act = np.arange(k.size)
    prev = np.full(k.size, np.inf)
    for it in range(300):
        h_a = hk[act]
        v, d = sigma(h_a)
        fv = v - k[act]
        done = (np.abs(fv) <= 1e-12 * np.maximum(np.abs(k[act]), 1.0)) | (hi[act] - lo[act] <= 1e-15 * np.abs(h_a))
        if np.all(done):
            break
        act, h_a, fv, d = act[~done], h_a[~done], fv[~done], d[~done]
        below = fv < 0
        lo[act], hi[act] = np.where(below, h_a, lo[act]), np.where(below, hi[act], h_a)
        hn = h_a - fv / d
        newton = (hn >= lo[act]) & (hn <= hi[act]) & ((it < 4) | (np.abs(fv) <= 0.5 * prev[act]))
        prev[act] = np.abs(fv)
        hk[act] = np.where(newton, hn, 0.5 * (lo[act] + hi[act]))
    else:
        return hk, hk, False
    for _ in range(2):
        v, d = sigma(hk)
        hn = hk - (v - k) / d
        hk = np.where((hn >= lo) & (hn <= hi), hn, hk)
    return hk, 1.0 / sigma(hk)[1], True


def _fine_short_unmerged(dphi, q):
    return A.short_rule(*A._fine_rule(dphi, q), A.N_SHORT)


def _short_rule_errors_numpy(cv, cw, sv, sw, vmax, rhos, nth):
    """The short-check table with complex numpy sums (the library's kernel before it was compiled
    with the divisions written out): ``max |Phi_s - Phi_c|`` over ``nth + 1`` angles of the upper
    half of each Bernstein ellipse (foci ``0``, ``vmax``) in ``t = 1/u``, non-finite as inf."""
    th = np.pi * np.arange(nth + 1) / nth
    out = np.zeros(rhos.size)
    for j, r in enumerate(rhos):
        t = 0.5 * vmax * (1.0 + 0.5 * (r + 1.0 / r) * np.cos(th)) + 0.25j * vmax * (r - 1.0 / r) * np.sin(th)
        u = (1.0 / t)[:, None]
        with np.errstate(all="ignore"):
            pc = np.sum(cw * cv / (1.0 - u * cv), axis=1)
            ps = np.sum(sw * sv / (1.0 - u * sv), axis=1)
            d = np.abs(ps - pc)
        out[j] = np.max(np.where(np.isfinite(d), d, np.inf))
    return out


def _probe_range_numpy(hp, gp, d1, t_min, even):
    """The path's range off the probe grid as numpy did it (:func:`fpcore._lawkernels.probe_range`)."""
    if not (np.all(np.isfinite(gp)) and np.all(np.isfinite(d1))):
        return False, 0.0, 0.0, 0.0
    f = gp * gp
    vmax = float(f.max())
    if not vmax > 0:
        return False, vmax, 0.0, 0.0
    idx = np.flatnonzero(f >= t_min * vmax)
    if idx.size == 0:
        return False, vmax, 0.0, 0.0
    h_lo, h_hi = float(hp[max(idx[0] - 1, 0)]), float(hp[min(idx[-1] + 1, hp.size - 1)])
    if even:
        h_hi = max(h_hi, -h_lo)
        h_lo = -h_hi
    return True, vmax, h_lo, h_hi


def _probe_slopes_numpy(hp, gp, d1, thr, h_hi, zeros_h, sat, h_c, j_c, lg_on, H):
    """alpha, beta, the sat range's end and the turning brackets as numpy did them
    (:func:`fpcore._lawkernels.probe_slopes`)."""
    f = gp * gp
    big = f >= thr
    with np.errstate(all="ignore"):
        lp = np.abs(2.0 * d1 / gp)
    if sat:
        lg1_hp = np.zeros(hp.size)
        lg1_hp[j_c:] = lg_on
        x = hp - h_c
        with np.errstate(all="ignore"):
            w = np.where(x > 0, np.exp(-1.0 / np.where(x > 0, x, 1.0)), 0.0)
            on = w > 0
            lsat = np.zeros(hp.size)
            lsat[on] = lg1_hp[on] + d1[on] / (gp[on] + 1.0)
            lp = np.maximum(lp, np.where(np.isfinite(lsat), np.sqrt(w) * np.abs(lsat), 0.0))
            rough = (hp > h_c) & (np.abs(gp * gp - 1.0) > 1e-14)
        if np.any(rough):
            sel = hp >= float(hp[np.flatnonzero(rough)[-1]])
            lgs = lg1_hp[sel]
            cum = np.r_[0.0, np.cumsum(0.5 * (lgs[1:] + lgs[:-1]) * np.diff(hp[sel]))]
            past = np.flatnonzero(~(cum > -7.0))
            h_hi = min(h_hi, float(hp[sel][past[0]]) if past.size else H)
    near = np.zeros(hp.size, dtype=bool)
    for h0 in zeros_h:
        near |= np.abs(hp - h0) < 0.5
    ok = big & ~near & np.isfinite(lp) & (hp <= h_hi)
    alpha = max(float(np.max(lp[ok & (np.abs(hp) <= 1.0)], initial=0.0)), 1e-3)
    rest = ok & (np.abs(hp) > 1.0)
    beta = float(np.max((lp[rest] - alpha) / np.abs(hp[rest]), initial=0.0))
    sg = np.sign(d1)
    sg = np.where(sg == 0, 1.0, sg)
    turn = np.flatnonzero((sg[1:] * sg[:-1] < 0) & big[1:] & big[:-1])
    return alpha, beta, h_hi, turn


def _path_heights_numpy(g0, g1, g2, s, theta, sat, w, j_on, lg_on, lg1p_on, h_c, hk, tail_sign, m2):
    """The path's heights as numpy computed them (:func:`fpcore._lawkernels.path_heights`)."""
    with np.errstate(all="ignore"):
        if not sat:
            r = np.abs(g0) + 2.0 * np.abs(g1)
            r = np.where((r > 0) & np.isfinite(r), r, 1.0)
            g0, g1, g2 = g0 / r, g1 / r, g2 / r
            P, Pp = 2.0 * g0 * g1, 2.0 * (g1 * g1 + g0 * g2)
            F, Fp = m2 * g0 * g0 + 4.0 * g1 * g1, 2.0 * m2 * g0 * g1 + 8.0 * g1 * g2
            k = (m2 - 1.0) * m2
            E = 4.0 * g1 * g1 + g0**2 + k * g0**4 / F
            Ep = 8.0 * g1 * g2 + 2.0 * g0 * g1 + k * (4.0 * g0**3 * g1 * F - g0**4 * Fp) / F**2
            Y0 = -theta * P / E
            Y0p = -theta * (Pp * E - P * Ep) / E**2
        else:
            L = 2.0 * g1 / g0
            Lp = 2.0 * (g2 * g0 - g1 * g1) / (g0 * g0)
            on = np.zeros(hk.size, dtype=bool)
            on[j_on:] = w[j_on:] > 0
            Ls, lg1p = np.zeros(hk.size), np.zeros(hk.size)
            Ls[j_on:] = lg_on + g1[j_on:] / (g0[j_on:] + 1.0)
            lg1p[j_on:] = lg1p_on
            xs = hk - h_c
            wp = np.where(on, w / np.where(on, xs * xs, 1.0), 0.0)
            Lsp = np.where(on, lg1p + (g2 * (g0 + 1.0) - g1 * g1) / (g0 + 1.0) ** 2, 0.0)
            rad = np.sqrt(L * L + w * Ls * Ls)
            N = np.where(on, tail_sign * rad, L)
            Np = np.where(on, tail_sign * (L * Lp + 0.5 * wp * Ls * Ls + w * Ls * Lsp) / np.where(on, rad, 1.0), Lp)
            Y0 = -theta * N / (N * N + 1.0)
            Y0p = -theta * Np * (1.0 - N * N) / (N * N + 1.0) ** 2
        cap = 1.0 + (Y0 / (0.5 * s)) ** 2
        return Y0 / np.sqrt(cap), Y0p / cap**1.5


@pytest.fixture
def slow_path(monkeypatch):
    """Context in which laws are built the slow way (the cache is dropped on entry and exit)."""

    def plain(act):
        g = _analytic(act)
        return None if g is None else (lambda h: g(h))  # no closed-form derivatives

    _analytic = A._analytic_dphi
    A._LAW_CACHE.clear()
    monkeypatch.setattr(A, "_analytic_dphi", plain)
    monkeypatch.setattr(_lawkernels, "sigma_nodes", _sigma_nodes_numpy)
    monkeypatch.setattr(_lawkernels, "probe_range", _probe_range_numpy)
    monkeypatch.setattr(_lawkernels, "probe_slopes", _probe_slopes_numpy)
    monkeypatch.setattr(_lawkernels, "path_heights", _path_heights_numpy)
    monkeypatch.setattr(A, "_fine_short", _fine_short_unmerged)
    monkeypatch.setattr(_lawkernels, "short_rule_errors", _short_rule_errors_numpy)
    yield
    A._LAW_CACHE.clear()


def _build(name, q):
    A._LAW_CACHE.clear()
    law = fpcore.get_activation(name).d2_law(q)
    law.cvalues, law.short, law.short_check  # noqa: B018 - build everything a spectrum may use
    return law


def _same_rule(v_new, w_new, v_ref, w_ref, tol=1e-12):
    """Atom by atom to ``tol`` of the largest entry; the mass-defect atom at 0 (which carries
    ``1 - sum of the rest``: it may be exactly 0 in one build and dropped) is compared as mass."""
    v_new, w_new, v_ref, w_ref = (np.asarray(x) for x in (v_new, w_new, v_ref, w_ref))
    if v_new.size != v_ref.size:
        kn, kr = v_new != 0, v_ref != 0
        assert np.count_nonzero(kn) == np.count_nonzero(kr), (v_new.size, v_ref.size)
        assert abs(complex(np.sum(w_new)) - complex(np.sum(w_ref))) <= tol
        v_new, w_new, v_ref, w_ref = v_new[kn], w_new[kn], v_ref[kr], w_ref[kr]
    assert np.max(np.abs(v_new - v_ref)) <= tol * np.max(np.abs(v_ref))
    assert np.max(np.abs(w_new - w_ref)) <= tol * np.max(np.abs(w_ref))


# -- the pieces ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tanh", "erf", "erf:1.7", "sigmoid", "gelu", "silu", "softplus"])
def test_closed_form_derivatives_are_the_complex_ones(name):
    g = A._analytic_dphi(fpcore.get_activation(name))
    h = np.r_[np.linspace(-30.0, 30.0, 6001), 0.0, -1e-9, 1e-9]
    r0, r1, r2 = g.real3(h)
    c0, c1, c2 = A._real3(lambda z: g(z), h)  # complex step and Cauchy integral
    scale = np.abs(c0) + np.abs(c1) + np.abs(c2)
    ok = scale > 1e-250  # (below, the complex step and the Cauchy integral underflow)
    for a, b in ((r0, c0), (r1, c1), (r2, c2)):
        assert np.all(np.abs(a - b)[ok] <= 1e-11 * scale[ok])


@pytest.mark.parametrize("name", ["gelu", "silu", "tanh", "sigmoid"])
def test_turning_points_are_zeros_of_the_derivative(name):
    # the rule's clusters sit at the zeros of phi'' (GELU: +-sqrt(2); SiLU: +-2.39935728...;
    # tanh, sigmoid: 0), found by bracket refinement to rounding
    from scipy import optimize

    act = fpcore.get_activation(name)
    g = A._analytic_dphi(act)
    if name == "silu":
        expected = [optimize.brentq(lambda x: g.real3(np.array([x]))[1][0], a, b, xtol=1e-300, rtol=8.9e-16)
                    for a, b in ((-3.0, -2.0), (2.0, 3.0))]
    else:
        expected = {"gelu": [-math.sqrt(2.0), math.sqrt(2.0)], "tanh": [0.0], "sigmoid": [0.0]}[name]
    seen = []
    orig = _lawkernels.sigma_nodes

    def spy(*args):
        seen.append(args[6])
        return orig(*args)

    _lawkernels.sigma_nodes = spy
    try:
        assert A._contour_rule(g, 1.0, name in A._EVEN, act._zeros_in_z(1.0), A._LOG_MINUS_ONE.get(name)) is not None
    finally:
        _lawkernels.sigma_nodes = orig
    for x in expected:
        assert np.min(np.abs(seen[0] - x)) <= 4e-15 * max(1.0, abs(x))


@pytest.mark.parametrize("name", ["gelu", "silu", "softplus"])
@pytest.mark.parametrize("q", [0.34, 100.0, 1e4])
def test_merged_fine_rule_has_the_same_gauss_rule(name, q):
    dphi = fpcore.get_activation(name).dphi
    x1, w1 = A._fine_short(dphi, q)
    x0, w0 = _fine_short_unmerged(dphi, q)
    _same_rule(x1, w1, x0, w0, tol=1e-12)
    # and it is the Gauss rule of the fine law: moments of t / max to degree 2n - 1
    v, w = A._fine_rule(dphi, q)
    top = float(v.max())
    for k in range(2 * A.N_SHORT):
        assert abs(np.dot(w1, (x1 / top) ** k) - np.dot(w, (v / top) ** k)) <= 1e-12


@pytest.mark.parametrize("name", ["gelu", "selu", "softplus", "tanh"])
def test_short_check_table_is_the_old_kernel(name):
    law = _build(name, 2.1)
    vmax, rhos, e_new = law.short_check
    sv, sw = law.short
    e_old = _short_rule_errors_numpy(np.ascontiguousarray(law.cvalues), np.ascontiguousarray(law.cweights),
                                     np.ascontiguousarray(sv, dtype=float), np.ascontiguousarray(sw, dtype=float),
                                     vmax, rhos, 48)
    e_old = np.maximum.accumulate((2.0 * e_old)[::-1])[::-1]
    # the entries are differences of two sums of ~1000 terms: equal to their rounding
    scale = float(np.sum(np.abs(law.cweights * law.cvalues))) / (1.0 - 1.0 / rhos[0]) ** 2
    assert np.all(np.abs(e_new - e_old) <= 1e-6 * e_old + 1e-13 * scale)


# -- whole laws ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SMOOTH)
def test_laws_equal_the_slow_construction(name, slow_path, monkeypatch):
    ref = {q: _build(name, q) for q in QS}
    ref_deep = {q: law.deep_tails() for q, law in ref.items()}
    monkeypatch.undo()  # the fast path
    for q in QS:
        new = _build(name, q)
        old = ref[q]
        assert new.kind == old.kind and new.contour_needed == old.contour_needed
        _same_rule(new.values, new.weights, old.values, old.weights)
        if old.cvalues is not None:
            _same_rule(new.cvalues, new.cweights, old.cvalues, old.cweights)
        _same_rule(*new.short, *old.short)
        if old.short_check is not None:
            e_new, e_old = new.short_check[2], old.short_check[2]
            scale = float(np.sum(np.abs(old.cweights * old.cvalues))) / (1.0 - 1.0 / old.short_check[1][0]) ** 2
            # (a short rule equal to 1e-13 moves the table's largest entry by as much, times |Phi|)
            assert np.all(np.abs(e_new - e_old) <= 1e-6 * e_old + 1e-11 * scale), (q, e_new, e_old)
        if ref_deep[q] is not None:
            deep = new.deep_tails()
            _same_rule(deep.cvalues, deep.cweights, ref_deep[q].cvalues, ref_deep[q].cweights)


# -- whole spectra ------------------------------------------------------------------------------
NETS = [
    dict(widths=[600] * 4, activation="gelu", sigma_w2=2.0, sigma_b2=0.0),
    dict(widths=[784, 400, 200, 100], activation="silu", sigma_w2=2.0, sigma_b2=0.1),
    dict(widths=[500] * 4, activation="tanh", sigma_w2=1.5, sigma_b2=0.05, init="orthogonal"),
    dict(widths=[500] * 3, activation="softplus", sigma_w2=2.0, sigma_b2=0.0),
    dict(widths=[500, 400, 300], activation="selu", sigma_w2=1.0, sigma_b2=0.0, init="orthogonal"),
]


@pytest.mark.parametrize("spec", NETS, ids=[f"{n['activation']}-{n.get('init', 'gaussian')}" for n in NETS])
def test_spectra_equal_the_slow_construction(spec, slow_path, monkeypatch):
    net = fpcore.Network(**spec)
    ref = fpcore.jacobian_spectrum(net, n_points=200)
    monkeypatch.undo()
    A._LAW_CACHE.clear()
    new = fpcore.jacobian_spectrum(net, n_points=200)
    # (the grid follows the support's edges, found from the laws: equal to rounding)
    assert np.max(np.abs(new.x - ref.x) / ref.x) <= 1e-10
    assert np.max(np.abs(new.cdf(ref.x) - ref.cdf(ref.x))) <= 1e-10
    assert np.max(np.abs(new.density - ref.density)) <= 1e-10 * np.max(ref.density)
    assert new.lambda_max == pytest.approx(ref.lambda_max, rel=1e-10)
    assert new.mean == pytest.approx(ref.mean, rel=1e-10)
    assert new.atom == pytest.approx(ref.atom, abs=1e-12)
    assert new.stats.n_uncertified == ref.stats.n_uncertified


# -- the compiled kernels against numpy ----------------------------------------------------------
@pytest.mark.parametrize("name", ["tanh", "erf", "erf:1.7", "sigmoid", "gelu", "silu", "softplus"])
def test_compiled_closed_forms_are_the_numpy_ones(name):
    # _lawkernels.real3 and complex_dphi: the closed forms of _r3tanh, _cdtanh, ... compiled
    g = A._analytic_dphi(fpcore.get_activation(name))
    h = np.r_[np.linspace(-800.0, 800.0, 4001), np.linspace(-30.0, 30.0, 6001), 0.0, -0.0, 1e-300, -1e-300]
    with np.errstate(all="ignore"):
        ref = g._r3(h)
    new = _lawkernels.real3(g.kind, g.scale, h)
    scale = np.abs(ref[0]) + np.abs(ref[1]) + np.abs(ref[2])
    for a, b in zip(new, ref):
        assert np.all(np.abs(a - b) <= 1e-14 * scale + 1e-300), name  # (subnormals: absolute)
    if name != "gelu":  # (GELU's complex erfc stays scipy's)
        z = (np.linspace(-40.0, 40.0, 2001)[:, None] + 1j * np.array([-0.45, -0.05, 0.0, 0.05, 0.45])).ravel()
        with np.errstate(all="ignore"):
            zref = g._c(z)
        znew = _lawkernels.complex_dphi(g.kind, g.scale, z)
        # (exp(-(a z)^2), exp(-2 z): the argument's rounding times |argument| is the condition)
        tol = 1e-15 * (10.0 + np.abs(z) ** 2) * np.abs(zref) + 1e-290
        assert np.all(np.abs(znew - zref) <= tol), name


@pytest.mark.parametrize("name,q", [("silu", 100.0), ("gelu", 2.0), ("tanh", 0.34)])
def test_sigma_nodes_solve_sigma_to_rounding(name, q):
    # every node solves sigma(h_k) = k to the rounding of h_k (next to a zero's cluster sigma'
    # is ~1e9: there the Newton step below the rounding of h stops the iteration) and dh is
    # 1 / sigma'(h_k)
    seen = []
    orig = _lawkernels.sigma_nodes

    def spy(*args):
        out = orig(*args)
        seen.append((args, out))
        return out

    act = fpcore.get_activation(name)
    g = A._analytic_dphi(act)
    _lawkernels.sigma_nodes = spy
    try:
        assert A._contour_rule(g, q, name in A._EVEN, act._zeros_in_z(math.sqrt(q)), A._LOG_MINUS_ONE.get(name)) is not None
    finally:
        _lawkernels.sigma_nodes = orig
    (k, h_lo, h_hi, A_, B, kap, cl, ce, hg), (hk, dh, ok) = seen[0]
    assert ok and np.all(np.diff(hk) > 0)
    v, d = _lawkernels.sigma_values(hk, A_, B, kap, cl, ce)
    assert np.all(np.abs(v - k) <= np.maximum(1e-12 * np.maximum(np.abs(k), 1.0), 8e-16 * np.abs(hk) * d))
    # (1 / sigma' to the rounding of h_k: sigma' moves by sigma'' eps |h_k|, 3e-8 of itself
    # next to a cluster of scale e_0 ~ 5e-9)
    d2 = np.array([_lawkernels._sigma2(x, A_, B, kap, cl, ce)[2] for x in hk])
    assert np.all(np.abs(dh * d - 1.0) <= 1e-12 + 8e-16 * np.abs(hk) * np.abs(d2) / d)
