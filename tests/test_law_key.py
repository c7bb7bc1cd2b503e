"""``D2Law.key``: how ``build_equation`` groups layers with equal laws of ``D^2`` (bytes of the
rounded arrays, as fast for 1800 atoms as for 35; the same groups as the tuples of floats)."""

from __future__ import annotations

import numpy as np

import fpcore
from fpcore._equation import build_equation


def _tapered(L: int) -> list[int]:
    return [max(1, round(784 * (10 / 784) ** (l / L))) for l in range(L + 1)]


def test_law_key_groups_equal_laws():
    """``D2Law.key`` (how ``build_equation`` groups equal laws) compares the laws' atoms and weights
    rounded to 15 decimals, as the tuples of their floats did: ``-0.0`` equals ``0.0``, a change
    in the 15th decimal or in the number of atoms does not."""
    from fpcore._activations import D2Law

    def tuple_key(lw):  # the key before it compared bytes
        return (lw.kind, tuple(np.round(lw.values, 15)), tuple(np.round(lw.weights, 15)))

    gelu = fpcore.get_activation("gelu")
    a, b = gelu.d2_law(1.3), gelu.d2_law(1.3000001)
    v, w = np.array([0.0, 0.25, 1.0]), np.array([0.5, 0.25, 0.25])
    laws = [a, b, D2Law("discrete", v, w, 0.5), D2Law("discrete", v.copy(), w.copy(), 0.5),
            D2Law("discrete", np.array([-1e-20, 0.25, 1.0]), w, 0.5),  # rounds to -0.0
            D2Law("discrete", v + 1e-14, w, 0.5), D2Law("discrete", v[:2], w[:2], 0.5),
            D2Law("discrete", v, np.array([0.5, 0.25, np.nan]), 0.5)]
    for x in laws:
        for y in laws:
            assert (x.key() == y.key()) == (tuple_key(x) == tuple_key(y)), (x.values[:3], y.values[:3])
    assert laws[2].key() == laws[4].key() != laws[5].key()
    # the groups of build_equation: layers with equal laws and equal k_g share one (leaky ReLU:
    # the same two atoms at every layer)
    for widths, act in (([300] * 5, "leaky_relu"), ([300, 300, 200, 200, 300], "leaky_relu"),
                        (_tapered(6), "tanh")):
        net = fpcore.Network(widths, act, sigma_w2=2.0 if act == "leaky_relu" else 1.05)
        eq = build_equation(net, "JtJ")
        old = {(tuple_key(lw), round(widths[0] / widths[l + 1], 12)) for l, lw in enumerate(eq.mean_field.laws)}
        assert len(eq.ugroups) == len(old)
    assert len(build_equation(fpcore.Network([300] * 5, "leaky_relu", sigma_w2=2.0), "JtJ").ugroups) == 1
