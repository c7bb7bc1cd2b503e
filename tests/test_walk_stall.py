"""A compiled walk that stalls far above a target near 0 reports the target unverified.

Walking down from far above to a real target ``t`` near 0 (an ELU net, tapered, with
``sigma_b2 = 1e-4``: 98.7 % of the mass in the atom at 0), the walk of ``_fastchain._gwalk`` stalls
far above ``t`` (at ``z = 5.9e-27 i`` for ``t = 0``) and keeps quartering its step, since
``_resize`` only gives up below ``1e-15 |t|``. Once the step falls below the rounding unit of
``z`` the proposal is ``z`` itself, Newton accepts it, and the next secant prediction divided by
``z - z_prev = 0``: numba raises ``ZeroDivisionError`` on a complex division by zero whatever its
error model, so ``solve`` at such targets, and ``Spectrum.cdf`` / ``Spectrum.quantile`` far below the
grid (ELU, SELU, softplus, GELU tapered nets), raised instead of reporting the points unverified.
"""

import warnings

import numpy as np
import pytest

import fpcore
from fpcore import _fastchain, _lilypad
from fpcore._edges import upper_edge
from fpcore._equation import build_equation

NET = fpcore.Network([400, 300, 200, 100, 50], "elu", sigma_w2=2.0, sigma_b2=1e-4)


@pytest.mark.skipif(not _fastchain._HAVE_NUMBA, reason="the compiled walks need numba")
def test_solve_at_and_near_zero_is_unverified_not_an_error():
    eq = build_equation(NET)
    # the two checks of _support_intervals below a lower edge lo, here floored to 0
    t = np.array([0.0, 0.0, 1e-300, 1e-40]) + 0j
    r = _lilypad.solve(eq, t, upper_edge(eq))
    assert not r.verified.any()
    assert np.all(np.isfinite(r.m))


@pytest.mark.skipif(not _fastchain._HAVE_NUMBA, reason="the compiled walks need numba")
def test_cdf_far_below_the_grid():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s = fpcore.jacobian_spectrum(NET, n_points=64)
        x = np.array([1e-300, 1e-100, 1e-40])
        assert x.max() < s.x[0]
        F = s.cdf(x)
    # no mass between 0 and these points beyond rounding: F is the atom at 0
    assert np.all(np.abs(F - s.atom) <= 1e-9)
