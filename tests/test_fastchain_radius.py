"""The compiled rational chain (``_fastchain.grid_chain``) keeps each next centre inside the
current certified disk (#10 item 11), and that disk is certified: the Kantorovich test passes from
the centre's solution at every point of its rim."""

from __future__ import annotations

import numpy as np
import pytest

import fpcore
from fpcore import _fastchain as F
from fpcore._equation import build_equation
from fpcore._lilypad import _far_shift, _inverted, kantorovich

pytestmark = pytest.mark.skipif(not F._HAVE_NUMBA, reason="compiled chain")

NETS = [
    (fpcore.Network([400, 300, 200], "relu", init="orthogonal"), "JJt"),  # the #10 item 11 reproducer
    (fpcore.Network([500] * 11, "relu", sigma_w2=2.0), "JtJ"),
    (fpcore.Network([int(100 * 1.25 ** l) for l in range(11)], "linear"), "JJt"),
    (fpcore.Network([784, 500, 300, 100, 10], "hard_tanh", init="orthogonal"), "JtJ"),
]


def _chain(net, gram, n_points=400):
    s = fpcore.jacobian_spectrum(net, gram=gram, n_points=n_points)
    eq = build_equation(net, gram)
    x = s.x
    groups = np.searchsorted(np.array([b for _, b in s.support]), x, side="left").astype(np.int64)
    A, E = eq.roots.astype(float), eq.exps.astype(float)
    B, EB, lcb = _inverted(eq)
    Y = F.start_height(np.array([x.min(), x.max(), 0.0]), float(s.lambda_max), float(eq.mean), _far_shift(eq),
                       A, E, float(eq.log_c))
    out, ok, cnt, worst = F.grid_chain(x, groups, Y, eq.mean, _far_shift(eq), A, E, float(eq.log_c), B, EB, lcb, 400)
    return s, eq, x, out, ok, worst


@pytest.mark.parametrize("net,gram", NETS)
def test_compiled_chain_steps_stay_in_the_lilypad(net, gram):
    s, eq, x, out, ok, worst = _chain(net, gram)
    assert ok.mean() > 0.95
    assert 0.0 < worst <= 1.0


@pytest.mark.parametrize("net,gram", NETS[:2])
def test_compiled_disk_is_certified_on_its_rim(net, gram):
    s, eq, x, out, ok, worst = _chain(net, gram, 200)
    A, E = eq.roots.astype(float), eq.exps.astype(float)
    rng = np.random.default_rng(0)
    checked = 0
    for i in np.flatnonzero(ok)[::10]:
        # a centre above the axis with its solution (as in a vertical walk) and one on the grid
        for z in (complex(x[i], 0.05 * s.lambda_max), complex(x[i], 0.0)):
            m = out[i] if z.imag == 0 else fpcore._lilypad.solve(eq, np.array([z]), s.lambda_max).m[0]
            for exact in (False, True):
                R = F._disk_radius(z, m, A, E, float(eq.log_c), exact)
                if R <= 0:
                    continue
                zr = z + 0.999 * R * np.exp(1j * rng.uniform(0, 2 * np.pi, 8))
                assert all(F._test(w, m, A, E, float(eq.log_c))[0] for w in zr)
                okn, _, _ = kantorovich(eq, zr, np.full(zr.size, m))
                assert np.all(okn)
                checked += 1
    assert checked > 10
