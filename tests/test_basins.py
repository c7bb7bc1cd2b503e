"""Compiled Newton basins (fpcore._basins): roots are solutions, the lilypad step's start lies in
the basin of the root the chain follows (MATH.md section 4), previews and threads agree."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fpcore
from fpcore._basins import basins_of_equation
from fpcore._equation import build_equation
from fpcore._fastchain import _g, _gnewton


def _rational_residual(eq, z, m):
    g, _, _, _ = _g(complex(z), complex(m), eq.roots.astype(float), eq.exps.astype(float), float(eq.log_c))
    return abs(g - 2j * math.pi * round(g.imag / (2 * math.pi)))


def _general_residual(eq, z, m):
    """|log z - log M^{-1}(m)| with each u_g re-solved by the solver's joint Newton (full laws)."""
    V, W, kk, nn = eq.packed
    mu = np.array([g.law.mean for g in eq.ugroups])
    u = (kk * m / mu).astype(complex)
    rg, dps = np.empty(kk.size, complex), np.empty(kk.size, complex)
    m2, conv, r0, inner, _ = _gnewton(complex(z), complex(m), u, 60, 1e-13, eq.roots.astype(float),
                                      eq.exps.astype(float), float(eq.log_c), V, W, kk, nn, rg, dps)  # fmt: skip
    return abs(m2 - m) / max(abs(m), 1e-300), r0


def test_public_signature_is_compatible_and_iterations_optional():
    net = fpcore.Network([100] * 3, "relu")
    re, im = np.linspace(-2, 1, 30), np.linspace(-1.5, 1.5, 20)
    lab, roots = fpcore.newton_basins(net, 1.0 + 0.5j, re, im)
    assert lab.shape == (20, 30) and lab.dtype.kind == "i"
    assert roots.size >= 2 and np.all(np.diff(roots.real) >= 0)
    assert set(np.unique(lab)) <= set(range(-1, roots.size))
    lab2, roots2, its = fpcore.newton_basins(net, 1.0 + 0.5j, re, im, iterations=True)
    np.testing.assert_array_equal(lab, lab2)
    np.testing.assert_array_equal(roots, roots2)
    assert its.shape == lab.shape and np.all(its[lab >= 0] < 40) and np.all(its[lab < 0] == 40)
    from fpcore import _trace

    assert _trace.newton_basins is fpcore.newton_basins  # re-exported where it used to live


@pytest.mark.parametrize("widths, act", [([100] * 4, "relu"), ([200, 100, 300], "hard_tanh"), ([50] * 3, "linear")])
def test_rational_roots_solve_the_equation(widths, act):
    net = fpcore.Network(widths, act, sigma_w2=2.0 if act == "relu" else 1.0, sigma_b2=0.1 if act == "hard_tanh" else 0.0)
    eq = build_equation(net)
    z = 0.7 + 0.4j
    lab, roots, its = basins_of_equation(eq, z, np.linspace(-3, 2, 120), np.linspace(-2.5, 2.5, 120))
    assert roots.size >= 2
    for r in roots:
        assert _rational_residual(eq, z, r) <= 1e-8
    # distinct roots, each with a basin of its own
    assert np.min(np.abs(np.subtract.outer(roots, roots)) + np.eye(roots.size)) > 1e-6
    assert set(np.unique(lab[lab >= 0])) == set(range(roots.size))


@pytest.mark.parametrize(
    "net",
    [
        fpcore.Network([200] * 4, "relu", sigma_w2=2.0),
        fpcore.Network([200] * 4, "tanh", sigma_w2=1.0),
        fpcore.Network([200] * 4, "gelu", sigma_w2=2.0),
        fpcore.Network([200] * 4, "leaky_relu:0.2", sigma_w2=2.0),
    ],
    ids=["relu", "tanh", "gelu", "leaky_relu"],
)
def test_each_lilypad_start_lies_in_the_basin_of_the_chain_s_root(net):
    """MATH.md section 4: Newton from the previous lilypad's solution converges to the new one."""
    s = fpcore.jacobian_spectrum(net, n_points=40)
    tr = fpcore.lilypad_trace(net, float(s.quantile(0.6)))
    eq = build_equation(net)
    K = len(tr.centres)
    for k in sorted({1, K // 2, K - 1}):
        its = np.asarray(tr.newton[k]).ravel()
        if its.size == 0:
            continue
        m0, sol = complex(its[0]), complex(tr.solutions[k])
        half = max(3.0 * abs(sol - m0), 1e-3 * max(abs(m0), 1e-12))
        n = 41  # the centre pixel is m0 exactly
        re = np.linspace(m0.real - half, m0.real + half, n)
        im = np.linspace(m0.imag - half, m0.imag + half, n)
        lab, roots = fpcore.newton_basins(net, tr.centres[k], re, im)
        c = lab[n // 2, n // 2]
        assert c >= 0
        # the root Newton reaches from m0 is the one the chain follows: the root nearest to the
        # recorded solution (intermediate solutions are single Newton steps, not polished), inside
        # the Kantorovich ball B(m0, 2 eta) where the step was certified
        assert int(np.argmin(np.abs(roots - sol))) == c
        ball = float(tr.m_radii[k])
        if math.isfinite(ball) and ball > 0:
            assert abs(roots[c] - m0) <= ball * (1 + 1e-9)
        if k == K - 1:
            assert abs(roots[c] - sol) <= 1e-7 * max(abs(sol), 1e-12)
        if not eq.rational:
            step, r0 = _general_residual(eq, tr.centres[k], roots[c])
            assert step <= 1e-8 and r0 <= 1e-8


def test_several_roots_several_basins_for_relu_tanh_gelu():
    for act, sw in (("relu", 2.0), ("tanh", 1.0), ("gelu", 2.0)):
        net = fpcore.Network([300] * 6, act, sigma_w2=sw)
        # around the physical solution M(z), where the lilypad view looks (far from it the joint
        # Newton of smooth activations often stalls: those pixels are labelled -1, not guessed)
        tr = fpcore.lilypad_trace(net, float(fpcore.jacobian_spectrum(net, n_points=40).quantile(0.75)))
        m, z = complex(tr.solutions[-2]), complex(tr.centres[-2])
        g = np.linspace(-0.6, 0.6, 96)
        lab, roots = fpcore.newton_basins(net, z, m.real + g, m.imag + g)
        labels = np.unique(lab[lab >= 0])
        assert roots.size >= 2 and labels.size >= 2, act
        assert np.mean(lab >= 0) > 0.5, act


def test_block_preview_and_threads_agree_with_the_full_image():
    net = fpcore.Network([300] * 6, "relu", sigma_w2=2.0)
    eq = build_equation(net)
    re, im = np.linspace(-2, 1, 200), np.linspace(-1.5, 1.5, 200)
    full, roots, _ = basins_of_equation(eq, 0.9 + 0.3j, re, im)
    prev, roots_p, _ = basins_of_equation(eq, 0.9 + 0.3j, re, im, block=4)
    thr, roots_t, _ = basins_of_equation(eq, 0.9 + 0.3j, re, im, block=4, threads=2)
    np.testing.assert_allclose(roots_p, roots, rtol=1e-6)
    assert np.mean(prev == full) > 0.99
    np.testing.assert_array_equal(thr, prev)
    np.testing.assert_allclose(roots_t, roots_p, rtol=1e-6)


def _by_root(labels, roots):
    """Each pixel's root (nan where Newton did not converge): comparable across runs whose root
    lists differ."""
    out = np.full(labels.shape, complex(np.nan, np.nan))
    out[labels >= 0] = roots[labels[labels >= 0]]
    return out


def _same_root(a, b):
    return (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= 1e-6 * np.abs(a))


@pytest.mark.parametrize("act, p, steps", [("gelu", 0.1, (-2, -5)), ("silu", 0.5, (1, -2))])
def test_checked_short_rules_draw_the_full_law_s_basins(act, p, steps):
    """GELU and SiLU (laws of over a thousand atoms): each Newton step uses a law's 16-node Gauss
    rule only where its error bound allows, so every pixel reaches the root the full laws' Newton
    reaches, in the dashboard's windows. (The 16-node rules used at every step, as before this
    check, coloured these frames with roots of another equation: 0 % of the pixels agreed at the
    GELU chain's last steps, 79-93 % at SiLU's.) Also with the dashboard's preview blocks and
    threads on a finer grid, sampled."""
    from dashboard import basins as B

    net = fpcore.Network([300] * 11, act, sigma_w2=2.0)
    eq = build_equation(net)
    tr = fpcore.lilypad_trace(net, float(fpcore.jacobian_spectrum(net, n_points=60).quantile(p)))
    assert max(g.values.size for g in eq.ugroups) > 1000
    for k in steps:
        k = k % len(tr.centres)
        centre, half = B.basin_window(net, "JtJ", tr, k)
        g = np.linspace(-half, half, 32)
        re, im, z = centre.real + g, centre.imag + g, complex(tr.centres[k])
        full = _by_root(*basins_of_equation(eq, z, re, im, 24, atoms=0)[:2])
        checked = _by_root(*basins_of_equation(eq, z, re, im, 24, atoms=16)[:2])
        assert np.all(_same_root(full, checked)), k
        g2 = np.linspace(-half, half, 32 * 4 - 3)
        lab, roots, _ = basins_of_equation(eq, z, centre.real + g2, centre.imag + g2, 24, block=4, atoms=16,
                                           threads=2)  # fmt: skip
        assert np.mean(_same_root(full, _by_root(lab, roots)[::4, ::4])) >= 0.98, k


def test_short_rules_keep_the_chain_s_root():
    net = fpcore.Network([200] * 5, "gelu", sigma_w2=2.0)
    eq = build_equation(net)
    tr = fpcore.lilypad_trace(net, float(fpcore.jacobian_spectrum(net, n_points=40).quantile(0.5)))
    k = len(tr.centres) // 2
    sol = complex(tr.solutions[k])
    g = np.linspace(-0.05, 0.05, 21) * max(abs(sol), 1e-3)
    _, roots, _ = basins_of_equation(eq, tr.centres[k], sol.real + g, sol.imag + g, atoms=16)
    assert np.min(np.abs(roots - sol)) <= 1e-6 * abs(sol)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(re=[[1.0]]), "re and im"),
        (dict(im=[]), "re and im"),
        (dict(re=[np.nan, 1.0]), "finite"),
        (dict(max_iter=0), "max_iter"),
        (dict(max_iter=True), "max_iter"),
        (dict(z=0.0), "z"),
        (dict(z="a"), "z"),
        (dict(block=0), "block"),
        (dict(gram="JJ"), "gram"),
        (dict(net="relu"), "net"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    args = dict(net=fpcore.Network([10, 10], "relu"), z=1.0 + 1.0j, re=np.linspace(-1, 1, 4), im=np.linspace(-1, 1, 4))
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        fpcore.newton_basins(args.pop("net"), args.pop("z"), args.pop("re"), args.pop("im"), **args)


def _chain_root(tr, k, r) -> bool:
    """``r`` is the root the chain follows at step ``k``: inside the step's Kantorovich ball (which
    holds exactly one root; a verified chain's step has none: within twice the Newton step of its
    start) and, at the last step (solved to full precision), the solution."""
    start, sol, rad = complex(tr.newton[k][0]), complex(tr.solutions[k]), float(tr.m_radii[k])
    if not tr.certified and not np.isfinite(rad):
        rad = 2.0 * abs(sol - start)
    if k == len(tr.centres) - 1 and abs(r - sol) > 1e-6 * abs(sol):
        return False
    return bool(np.isfinite(rad) and abs(r - start) <= rad * (1 + 1e-9))


def test_nearest_other_start_equals_the_full_grid_s_nearest_other_label():
    """The window probe's outward walk (stopped at the first start that reaches another root)
    gives the distance the whole grid's labels give."""
    from fpcore._basins import nearest_other_start

    for act, sw in (("relu", 2.0), ("tanh", 1.0)):
        net = fpcore.Network([200] * 5, act, sigma_w2=sw)
        eq = build_equation(net)
        tr = fpcore.lilypad_trace(net, float(fpcore.jacobian_spectrum(net, n_points=40).quantile(0.75)))
        for k in (1, len(tr.centres) - 1):
            z, sol, start = complex(tr.centres[k]), complex(tr.solutions[k]), complex(tr.newton[k][0])
            for half in (0.5 * abs(sol - start) + 1e-3 * abs(sol), 2.0 * abs(sol)):
                g = np.linspace(-half, half, 40)
                lab1, root, _ = basins_of_equation(eq, z, np.array([sol.real]), np.array([sol.imag]), 24)
                assert lab1[0, 0] == 0 and _chain_root(tr, k, root[0]), (act, k)
                lab, roots, _ = basins_of_equation(eq, z, start.real + g, start.imag + g, 24)
                X, Y = np.meshgrid(g, g)
                other = ~_same_root(_by_root(lab, roots), np.full(lab.shape, root[0]))
                assert np.any(~other)  # (the start's neighbours reach the chain's root)
                want = float(np.min(np.hypot(X[other], Y[other]))) if np.any(other) else math.inf
                got = nearest_other_start(eq, z, root[0], start.real + g, start.imag + g, start, 24)
                assert got == pytest.approx(want, rel=1e-12), (act, k, half)


@pytest.mark.parametrize("act, sw, pixels", [("relu", 2.0, 128), ("tanh", 1.0, 96), ("gelu", 2.0, 64)])
def test_dashboard_frames_agree_with_the_reference_computation(act, sw, pixels):
    """The dashboard's fast frame (log-form kernel for rational equations, checked short Gauss
    rules, quadtree blocks of 4, two row slabs, probe-sized window) against the reference: Newton
    from every pixel with the full laws at every step, one thread. The same root at >= 99 % of
    the pixels, and the chain's root (the one in the step's Kantorovich ball; at the last step the
    solver's solution, to 1e-6) among the roots of both."""
    from dashboard import basins as B

    net = fpcore.Network([200] * 6, act, sigma_w2=sw)
    eq = build_equation(net)
    tr = fpcore.lilypad_trace(net, float(fpcore.jacobian_spectrum(net, n_points=40).quantile(0.75)))
    for k in (1, len(tr.centres) // 2, len(tr.centres) - 1):
        B._frame_cached.cache_clear()
        f = B.compute_frame(net, "JtJ", tr, k, n=pixels)
        z, sol = complex(tr.centres[k]), complex(tr.solutions[k])
        lab, roots, _ = basins_of_equation(eq, z, f.re, f.im, B.MAX_ITER, block=1, atoms=0, threads=1)
        agree = np.mean(_same_root(_by_root(lab, roots), _by_root(f.labels, f.roots)))
        assert agree >= 0.99, (act, k, agree)
        for rs in (roots, f.roots):
            assert any(_chain_root(tr, k, r) for r in rs), (act, k)
        # the Newton start (the window's centre) reaches the chain's root in the fast frame
        c = f.labels[pixels // 2, pixels // 2]
        assert c >= 0 and _chain_root(tr, k, f.roots[c]), (act, k)


@pytest.mark.parametrize(
    "act, sw, steps",
    [("tanh", 1.0, (1, 2, -1)), ("gelu", 2.0, (2, -1)), ("leaky_relu:0.2", 2.0, (1, -1)), ("silu", 2.0, (1,))],
)
def test_one_log_kernel_draws_the_log_sum_kernel_s_basins(act, sw, steps):
    """The joint-Newton kernel with one complex log per step (the factors of ``M^{-1}`` as one
    scaled product, the short rules' bound test against per-step thresholds) against the kernel
    it replaced (``tests/basins_reference.py``: one log per factor, the bound table searched per
    group), Newton from every pixel of the dashboard's windows: the same root (or none) at every
    pixel but a tiny fraction of boundary pixels, the same roots, the same step counts nearly
    everywhere."""
    from basins_reference import reference_basins

    from dashboard import basins as B

    net = fpcore.Network([300] * 9, act, sigma_w2=sw)
    eq = build_equation(net)
    tr = fpcore.lilypad_trace(net, float(fpcore.jacobian_spectrum(net, n_points=40).quantile(0.5)))
    for k in steps:
        k = k % len(tr.centres)
        centre, half = B.basin_window(net, "JtJ", tr, k)
        g = np.linspace(-half, half, 48)
        re, im, z = centre.real + g, centre.imag + g, complex(tr.centres[k])
        lab0, roots0, its0 = reference_basins(eq, z, re, im, 24)
        lab1, roots1, its1 = basins_of_equation(eq, z, re, im, 24)
        same = _same_root(_by_root(lab0, roots0), _by_root(lab1, roots1))
        assert np.mean(same) >= 0.998, (act, k, np.mean(same))
        assert np.mean(its0 == its1) >= 0.99, (act, k)
        hit = np.abs(np.subtract.outer(roots1, roots0)) <= 1e-6 * np.abs(roots0)
        assert np.all(hit.any(axis=1)), (act, k)  # every root found is one of the reference's


def test_product_residual_gives_the_log_sums_newton_step():
    """``r_0`` from one scaled product equals the sum of the factors' logs modulo ``2 pi i``, so
    the kernel's first Newton step equals the log-sum kernel's (``tests/basins_reference.py``),
    with a deep net's large exponent (binary powers) and with a non-integer exponent (the log
    sums are taken). (Far out the first step itself is ill-conditioned, ``r_g ~ -k_g m`` cancel:
    the product's renormalisation is checked on its own below.)"""
    from basins_reference import _general_pixel_reference

    from fpcore._basins import _MAX_ROOTS, _equation_arrays, _general_pixel

    rng = np.random.default_rng(7)
    for net in (fpcore.Network([200] * 6, "tanh"), fpcore.Network([200] * 61, "gelu", sigma_w2=2.0)):
        eq = build_equation(net)
        a, e, general = _equation_arrays(eq, 16)
        G = general[8].size
        for e_use in (e, e + np.where(np.arange(e.size) == 1, 0.5, 0.0)):
            for scale in (1e-3, 1.0, 10.0):
                m0 = complex(*rng.normal(size=2)) * scale
                z = complex(*rng.normal(size=2))
                steps = []
                for kernel, extra in ((_general_pixel, (np.zeros(2, dtype=np.int64),)), (_general_pixel_reference, ())):
                    u, rg, dps = (np.empty(G, complex) for _ in range(3))
                    roots = np.empty(_MAX_ROOTS, complex)
                    m1, used, ok = kernel(m0, z, a, e_use, float(eq.log_c), *general, 1, u, rg, dps, roots, 0, *extra)
                    steps.append(m1)
                assert np.isfinite(steps[1]) and steps[1] != m0, (str(net), scale)
                assert abs(steps[0] - steps[1]) <= 1e-9 * abs(steps[1]), (str(net), scale, steps)


def test_scaled_product_equals_the_sum_of_logs():
    """The kernel's product ``P 2^E`` of factors ``d^n`` (:func:`_mulpow`, :func:`_renorm`) has
    ``log(P) + E log 2 = sum n log d`` modulo ``2 pi i``, where the plain product would overflow
    or underflow (``|d|`` from 1e-150 to 1e150, as ``|m| < _ESCAPE``; exponents up to 1000 of
    either sign). (Beyond, a first square can overflow: the kernel then takes the log sums.)"""
    from fpcore._basins import _LN2, _mulpow, _renorm

    rng = np.random.default_rng(11)
    for _ in range(200):
        P, E, want = 1.0 + 0.0j, 0, 0.0j
        for _ in range(int(rng.integers(1, 12))):
            d = complex(*rng.normal(size=2)) * 10.0 ** rng.uniform(-150, 150)
            n = int(rng.choice([1, -1, 2, 5, -7, 60, 1000, -1000]))
            P, E = _renorm(P * d, E) if n == 1 else _mulpow(P, E, d, n)
            want += n * complex(math.log(abs(d)), math.atan2(d.imag, d.real))
        got = complex(math.log(abs(P)) + E * _LN2, math.atan2(P.imag, P.real))
        diff = got - want
        diff -= 2j * math.pi * round(diff.imag / (2 * math.pi))
        assert abs(diff) <= 1e-12 * max(1.0, abs(want)), (got, want)


def test_fixed_length_row_sums_and_magnitude_equal_the_generic_ones():
    """The kernel's fixed-length sums of a 16-node rule (``_row_sums_short``) and its row sums
    equal ``_fastchain._psi_sums`` of the same row, and ``_mag`` equals ``abs`` (also where
    ``|x|^2`` leaves the float range and at 0)."""
    from fpcore._basins import _SHORT_ATOMS, _equation_arrays, _mag, _row_sums, _row_sums_short
    from fpcore._fastchain import _psi_sums

    eq = build_equation(fpcore.Network([200] * 4, "gelu", sigma_w2=2.0))
    _, _, (Vs, Ws, Vm, Wm, V, W, *_) = _equation_arrays(eq, _SHORT_ATOMS)
    assert Vs.shape[1] == _SHORT_ATOMS
    rng = np.random.default_rng(3)
    for _ in range(20):
        u = complex(*rng.normal(size=2)) * 10.0 ** rng.uniform(-3, 1)
        for g in range(Vs.shape[0]):
            want = _psi_sums(u.real, u.imag, Vs[g], Ws[g])
            for got in (_row_sums_short(u.real, u.imag, Vs, Ws, g), _row_sums(u.real, u.imag, Vs, Ws, g)):
                for a, b in zip(got, want):
                    assert abs(a - b) <= 1e-13 * max(abs(b), 1e-300), (u, g, got, want)
            want_full = _psi_sums(u.real, u.imag, V[g], W[g])
            got_full = _row_sums(u.real, u.imag, V, W, g)
            for a, b in zip(got_full, want_full):
                assert abs(a - b) <= 1e-12 * max(abs(b), 1e-300), (u, g)
    for x in (0j, 3 - 4j, 1e-160 + 1e-160j, 1e200 - 3e200j, complex(5e-324, 0), -2.5 + 0j):
        assert _mag(x) == pytest.approx(abs(x), rel=1e-15, abs=0.0), x


def test_threshold_with_a_hint_equals_the_binary_search():
    """The kernel's rule threshold looked up from its last index (``_threshold_hint``) is the
    smallest ellipse size of the table whose bound is within the tolerance (``inf`` if none),
    for every tolerance, whatever the hint, and returns the answer's index as the next hint."""
    from fpcore._basins import _bound_table, _threshold_hint

    def _threshold(tab, row, lim):  # the definition, by a scan
        ok = np.flatnonzero(tab[row] <= lim)
        return tab[0, ok[0]] if ok.size else np.inf

    tab = _bound_table(16, 96)
    rng = np.random.default_rng(3)
    lims = np.concatenate([10.0 ** rng.uniform(-300, 5, 400), tab[1, ::7], tab[2, ::5], [0.0, np.inf]])
    hint = np.zeros(2, dtype=np.int64)
    for lim in lims:
        for row in (1, 2):
            for h in (int(hint[row - 1]), int(rng.integers(0, tab.shape[1])), 0, tab.shape[1] - 1):
                hint[row - 1] = h
                got, hint[row - 1] = _threshold_hint(tab, row, float(lim), h)
                want = _threshold(tab, row, float(lim))
                assert got == want or (math.isinf(got) and math.isinf(want)), (lim, row, h, got, want)
                if math.isfinite(got):
                    assert tab[0, hint[row - 1]] == got
