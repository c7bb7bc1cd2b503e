"""The upper edge of orthogonal expanding smooth nets (adversarial check, stop 15).

``lambda_max`` is the minimum of ``M^{-1}(m)`` over ``m > 0``; for orthogonal expanding layers it
lies where ``u_g`` nears the pole of ``psi_g`` at ``1 / sup D^2``, which the real atoms of a
continuous law do not represent (tanh: the real atoms gave 1.25996 instead of 1.26676, and the CDF
jumped from 0.972 to 1 there). The edge is taken with the solver's contour rules.
"""

import warnings

import numpy as np
import pytest

import fpcore

N = fpcore.Network
CASES = [
    ("tanh-1L", N([2000, 2500], "tanh", sigma_w2=1.0179081694038263, sigma_b2=0.0, init="orthogonal",
                  q0=0.31373169059734235), "JtJ"),
    ("tanh-1L-JJt", N([2000, 2500], "tanh", sigma_w2=1.0179081694038263, sigma_b2=0.0, init="orthogonal",
                      q0=0.31373169059734235), "JJt"),
    ("erf-1L", N([2000, 2500], "erf", sigma_w2=1.5, sigma_b2=0.0, init="orthogonal", q0=0.5), "JtJ"),
    ("sigmoid-1L", N([2000, 2500], "sigmoid", sigma_w2=4.0, sigma_b2=0.0, init="orthogonal", q0=0.5), "JtJ"),
]


@pytest.mark.parametrize("name,net,gram", CASES, ids=[c[0] for c in CASES])
def test_upper_edge_closes_the_law(name, net, gram):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no point may be flagged here
        spec = fpcore.jacobian_spectrum(net, gram=gram, n_points=400)
    lm = spec.lambda_max
    F, d = spec._cdf_and_density(np.array([lm * (1 - 1e-6), lm * (1 - 1e-4)]))
    # the continuous mass is closed at the edge: no jump of F, a square-root density
    assert 1.0 - F[0] <= 1e-6, f"{name}: 1 - F(edge - 1e-6 edge) = {1 - F[0]:.3g}"
    assert d[0] <= 0.2 * d[1] + 1e-9, f"{name}: density {d[0]:.3g} at 1e-6, {d[1]:.3g} at 1e-4 below the edge"
    ev = fpcore.sample_jacobian_eigenvalues(net, gram=gram, mode="network", seed=7, n_samples=4)
    ks = fpcore.ks_distance(spec, ev)
    # (pre-fix: tanh KS 0.02 at every width, erf 0.027)
    assert ks <= 0.01, f"{name}: KS {ks:.4f}"
    # at most a finite-size overshoot (Tracy-Widom ~ N^(-2/3)) of the largest eigenvalue
    assert ev.max() <= lm * (1 + 2e-3), f"{name}: MC max {ev.max():.6f} above lambda_max {lm:.6f}"


# -- the fast path (compiled contour evaluation, bracket grown from the real atoms' minimum) ------
def _reference_upper_edge(eq):
    """The upper edge by the contour rules' reference path: numpy :func:`_log_inverse_contour`
    (``hi0`` probed per call) for the check at the real atoms' minimum, else the 161-point scan
    of ``log m`` in ``[-40, 40]`` refined by brentq (:func:`_upper_edge_contour` with no
    evaluator), else the real atoms' edge: the path :func:`upper_edge` took before the fast one."""
    import math

    from fpcore import _edges

    edge, m_star = _edges._upper_edge_atoms(eq)
    v, sl, _ = _edges._log_inverse_contour(eq, np.array([m_star]))
    if abs(float(v[0]) - math.log(edge)) <= 1e-10 and abs(float(sl[0]) * m_star) <= 1e-8:
        return edge, "check"
    contour = _edges._upper_edge_contour(eq)
    return (contour, "scan") if contour is not None else (edge, "atoms")


def _matrix_net(act, init, widths, sw, sb):
    return N(widths, act, sigma_w2=sw, sigma_b2=sb, init=init)


_EXPANDING = lambda L: [round(100 * 1.25**l) for l in range(L + 1)]  # noqa: E731
_TAPERED = lambda L: [max(1, round(784 * (10 / 784) ** (l / L))) for l in range(L + 1)]  # noqa: E731
FAST_CASES = [(c[0], c[1], c[2]) for c in CASES] + [
    # (the benchmark matrix's nets: tanh and erf at 1.05 / 1e-4, sigmoid at 1 / 0)
    ("tanh-gauss-expanding-10", _matrix_net("tanh", "gaussian", _EXPANDING(10), 1.05, 1e-4), "JtJ"),
    ("tanh-gauss-tapered-2", _matrix_net("tanh", "gaussian", _TAPERED(2), 1.05, 1e-4), "JtJ"),
    ("tanh-orth-square-10", _matrix_net("tanh", "orthogonal", [1000] * 11, 1.05, 1e-4), "JtJ"),
    ("erf-orth-square-10", _matrix_net("erf", "orthogonal", [1000] * 11, 1.05, 1e-4), "JtJ"),
    ("sigmoid-orth-expanding-50", _matrix_net("sigmoid", "orthogonal", _EXPANDING(50), 1.0, 0.0), "JtJ"),
]


@pytest.mark.parametrize("name,net,gram", FAST_CASES, ids=[c[0] for c in FAST_CASES])
def test_fast_upper_edge_is_the_reference_one(name, net, gram):
    from fpcore import _edges
    from fpcore._equation import build_equation

    eq = build_equation(net, gram)
    assert eq.uses_contour
    ref, how = _reference_upper_edge(eq)
    assert ref is not None
    fast = _edges.upper_edge(eq)
    assert fast == pytest.approx(ref, rel=1e-12), f"{name} ({how}): {fast!r} vs {ref!r}"
    if how == "scan":
        # the compiled evaluator on the scan's own path gives the same edge too
        assert _edges._upper_edge_contour(eq, _edges._contour_line(eq)) == pytest.approx(ref, rel=1e-12)


_LINE_CASES = FAST_CASES[:1] + FAST_CASES[-3:]


@pytest.mark.parametrize("name,net,gram", _LINE_CASES, ids=[c[0] for c in _LINE_CASES])
def test_compiled_contour_line_is_the_numpy_one(name, net, gram):
    """:func:`_contour_line` against :func:`_log_inverse_contour` on a scan through the minimum,
    the pole's neighbourhood and beyond the rules' end (NaN on both)."""
    from fpcore import _edges
    from fpcore._equation import build_equation

    eq = build_equation(net, gram)
    ms = np.exp(np.linspace(-40.0, 40.0, 161))
    fast = _edges._contour_line(eq)(ms)
    ref = _edges._log_inverse_contour(eq, ms)
    for a, b in zip(fast[:2], ref[:2]):
        np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b))
        ok = np.isfinite(b)
        assert ok.sum() >= 40
        np.testing.assert_allclose(a[ok], b[ok], rtol=1e-11, atol=1e-12 * np.max(np.abs(b[ok])))


@pytest.mark.parametrize("shift", [-3.0, -0.5, 0.0, 0.5, 2.0, 30.0])
def test_walk_from_a_distant_start_finds_the_scans_edge(shift):
    """The bracket walked from ``t0`` finds the scan's minimum from starts far (in ``log m``) on
    either side of it, also from where no rule holds (``+2``, ``+30``: the slope is NaN there)."""
    import math

    from fpcore import _edges
    from fpcore._equation import build_equation

    eq = build_equation(FAST_CASES[0][1], "JtJ")
    line = _edges._contour_line(eq)
    scan = _edges._upper_edge_contour(eq, line)
    _, m_star = _edges._upper_edge_atoms(eq)
    t0 = min(math.log(m_star) + shift, 39.0)
    if shift >= 2.0:
        assert not np.isfinite(line(np.array([math.exp(t0)]))[1][0])
    assert _edges._upper_edge_contour_near(line, t0) == pytest.approx(scan, rel=1e-13)


@pytest.mark.parametrize("act,sw,sb", [("erf", 3.39, 0.0), ("sigmoid", 3.25, 0.3), ("tanh", 1.0, 0.0)])
def test_no_contour_minimum_keeps_the_real_atoms_edge(act, sw, sb):
    """One square orthogonal layer: ``J^T J`` has the law of ``D^2`` (a hard edge at ``sup D^2``);
    ``M^{-1}`` has no minimum where the contour rules hold, the walk gives up, the scan finds
    none, and the real atoms' edge stands (as on the reference path)."""
    import math

    from fpcore import _edges
    from fpcore._equation import build_equation

    eq = build_equation(N([1000, 1000], act, sigma_w2=sw, sigma_b2=sb, init="orthogonal"))
    line = _edges._contour_line(eq)
    edge, m_star = _edges._upper_edge_atoms(eq)
    assert _edges._upper_edge_contour_near(line, math.log(m_star)) is None
    assert _edges._upper_edge_contour(eq, line) is None
    assert _edges.upper_edge(eq) == edge == _reference_upper_edge(eq)[0]
