"""The a-posteriori check of a verified point refuses roots on the wrong sheet
(``_lilypad.physical_sheet``): where ``M`` is real (a gap, or beyond the largest eigenvalue) the
physical ``M`` decreases in ``x``; the other real root of ``M^{-1}(m) = x`` past the critical point
of ``M^{-1}`` has residuals as small and ``Im M`` as close to 0, and the old check (``Im M <=
1e-10 |M|``) took it."""

from __future__ import annotations

import numpy as np
import pytest

import fpcore
from fpcore import _fastchain
from fpcore._equation import build_equation
from fpcore._lilypad import TOL_VERIFY, _General, physical_sheet, solve


@pytest.mark.parametrize("net", [
    fpcore.Network([500] * 3, "gelu", sigma_w2=1.5),
    fpcore.Network([784, 400, 200], "tanh", sigma_w2=1.2),
], ids=["gelu-square", "tanh-tapered"])
def test_wrong_sheet_real_root_is_refused(net, monkeypatch):
    s = fpcore.jacobian_spectrum(net, n_points=200)
    eq = build_equation(net)
    ev = _General(eq)
    x = np.array([1.3 * s.lambda_max + 0j])  # beyond the support: M real, two real roots
    phys = solve(eq, x, scale=s.lambda_max)
    assert phys.verified[0]
    # the other real root: joint Newton from starts past the physical one
    wrong = None
    for m0 in np.geomspace(1.5 * phys.m[0].real, 50.0 * phys.m[0].real, 40):
        m = np.array([m0 + 0j])
        mn, un, conv, res, inner, _, _ = ev.newton(x, m, ev.start_u(m), 60)
        if conv[0] and abs(mn[0] - phys.m[0]) > 1e-3 * abs(phys.m[0]) and abs(mn[0].imag) < 1e-9 * abs(mn[0]):
            wrong = (mn, un, res, inner)
            break
    assert wrong is not None, "no second real root found"
    mn, un, res, inner = wrong
    # it passes every residual check and the old sign test ...
    assert res[0] <= TOL_VERIFY and inner[0] <= TOL_VERIFY and mn[0].imag <= TOL_VERIFY * abs(mn[0])
    # ... it is a root where M^{-1} increases: M(x) there would increase with x
    h = 1e-6 * x[0].real
    mh, _, convh, *_ = ev.newton(x + h, mn, un, 60)
    assert convh[0] and (mh[0].real - mn[0].real) > 0
    assert not physical_sheet(ev, x, mn, un)[0]
    # the physical root passes; its M decreases
    assert physical_sheet(ev, x, phys.m, phys.u)[0]
    mp_, _, convp, *_ = ev.newton(x + h, phys.m, phys.u, 60)
    assert convp[0] and (mp_[0].real - phys.m[0].real) < 0
    # the numpy slope (no numba) says the same
    monkeypatch.setattr(_fastchain, "_HAVE_NUMBA", False)
    assert not physical_sheet(ev, x, mn, un)[0]
    assert physical_sheet(ev, x, phys.m, phys.u)[0]


def test_sheet_check_keeps_every_grid_point():
    # inside the support Im M < 0 (passes as before); the grid of a spectrum keeps all its points
    net = fpcore.Network([500] * 3, "gelu", sigma_w2=1.5)
    s = fpcore.jacobian_spectrum(net, n_points=300)
    assert s.stats.n_verified + s.stats.n_certified == 300
    eq = build_equation(net)
    ev = _General(eq)
    x = np.array([0.5 * s.lambda_max, 2.0 * s.lambda_max]) + 0j
    r = solve(eq, x, scale=s.lambda_max)
    assert np.all(r.verified)
    assert np.all(physical_sheet(ev, x, r.m, r.u))
