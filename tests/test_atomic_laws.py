"""Orthogonal leaky-ReLU nets whose law of ``D^2`` is purely atomic away from 0 (#10 item 9).

``[40, 10, 10]``, ``J J^T``: ``g^4 D_2 O D_1^2 O^T D_2`` with ``D^2`` in ``{alpha^2, 1}`` (mass 1/2
each), a free product of two two-atom laws: no atom in the limit (``1/2 + 1/2 - 1 = 0``), a
continuous law on ``(0, 4]``. Narrowing ``[64, 16, 10]`` nets: continuous pieces with gaps. Both
against seeded network Monte Carlo at the same width ratios (widths x 25 and x 100: the KS of the narrowing net at width 250 is 0.025, a finite-width effect at its lowest edge)."""

from __future__ import annotations

import numpy as np
import pytest

import fpcore


def _mc(widths, gram, n_samples=3):
    net = fpcore.Network(widths, "leaky_relu", init="orthogonal")
    return np.asarray(fpcore.sample_jacobian_eigenvalues(net, n_samples=n_samples, gram=gram, seed=1)).ravel()


def test_two_atom_free_product_has_mass_above_one():
    s = fpcore.jacobian_spectrum(fpcore.Network([40, 10, 10], "leaky_relu", init="orthogonal"), gram="JJt")
    ev = _mc([1000, 250, 250], "JJt", n_samples=4)
    assert s.support and s.lambda_max == pytest.approx(4.0, rel=1e-3)
    assert all(m < 1e-9 for _, m in s.atoms)
    p = np.mean(ev > 1.0)
    se = np.sqrt(p * (1 - p) / ev.size)
    assert abs(s.fraction_above(1.0) - p) <= 3 * se + 0.01, (s.fraction_above(1.0), p)
    assert abs(s.mean - ev.mean()) <= 3 * ev.std() / np.sqrt(ev.size)


@pytest.mark.parametrize("gram", ["JJt", "JtJ"])
def test_narrowing_leaky_relu_against_monte_carlo(gram):
    s = fpcore.jacobian_spectrum(fpcore.Network([64, 16, 10], "leaky_relu", init="orthogonal"), gram=gram)
    ev = _mc([6400, 1600, 1000], gram, n_samples=1)
    assert fpcore.ks_distance(s, ev) <= 0.02
    assert s.fraction_above(1.0) == pytest.approx(np.mean(ev > 1.0), abs=0.02)
