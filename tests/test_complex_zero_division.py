"""Compiled kernels never divide a complex number by an exact zero.

numba raises ``ZeroDivisionError("complex division by zero")`` on a complex division by zero
whatever its ``error_model`` (``"numpy"`` covers float division only; see also
tests/test_walk_stall.py). The Gauss-rule error bound ``_fastchain._gauss_error`` computed
``2 / (u vmax)`` and raised at ``u = 0`` (where its docstring promises 0: the pole ``1/u`` at
infinity), at ``vmax = 0`` and where the product underflows; so did
``fpcore._activations.gauss_error_bound`` and ``_fastchain.gauss_error_ok`` (the keep test of
``_lilypad.solve`` and of ``_edges``) on such ``u``.
"""

import numpy as np
import pytest

from fpcore import _fastchain
from fpcore._activations import gauss_error_bound

pytestmark = pytest.mark.skipif(not _fastchain._HAVE_NUMBA, reason="numba's complex division")


@pytest.mark.parametrize("u, vmax", [(0.0, 1.0), (0j, 2.5), (-1.0, 0.0), (1e-200, 1e-200), (-1e-200j, 1e-200)])
def test_gauss_error_bound_at_the_pole_at_infinity_is_zero(u, vmax):
    assert float(gauss_error_bound(u, vmax, 40)) == 0.0
    assert float(gauss_error_bound(u, vmax, 8)) == 0.0


def test_gauss_error_bound_elsewhere_unchanged():
    # the guard fires only on an exact zero product: tiny and ordinary u as before
    assert float(gauss_error_bound(1e-320, 1.0, 40)) == 0.0
    assert float(gauss_error_bound(1.5, 1.0, 40)) == np.inf
    b = float(gauss_error_bound(-1.0, 1.0, 8))
    assert 0.0 < b < 1e-3


def test_gauss_error_ok_with_zero_u():
    U = np.array([[0j, -1.0 + 0j], [0j, 0j]])
    m = np.array([1.0 + 0j, 1.0 + 0j])
    ok = _fastchain.gauss_error_ok(U, np.ones(2), np.ones(2), m, 8, 1e-12)
    assert ok.tolist() == [bool(float(gauss_error_bound(-1.0, 1.0, 8)) <= 1e-12), True]
