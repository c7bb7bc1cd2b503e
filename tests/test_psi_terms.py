"""The size of the terms of ``psi(u)`` (``_fastchain._psi_terms``, the rounding floor of a stalled
joint Newton run, :func:`fpcore._fastchain._schur_floor`) from squared magnitudes equals its
definition ``sum_k |w_k v_k u / (1 - u v_k)|`` taken with ``abs``, for real atoms, complex
(contour-rule) atoms and packed laws, also where the squares leave the float range."""

from __future__ import annotations

import numpy as np

from fpcore._fastchain import _pack_laws, _psi_terms_atoms, _psi_terms_packed


def _definition(u, v, w):
    t = 0.0
    for vk, wk in zip(v, w):
        q = 1.0 - u * vk
        if q != 0.0:
            t += abs(wk * vk * u / q)
    return t


def test_term_sizes_equal_the_abs_definition():
    rng = np.random.default_rng(5)
    for _ in range(300):
        K = int(rng.integers(1, 40))
        scale_u = 10.0 ** rng.uniform(-170, 170)
        u = complex(*rng.normal(size=2)) * scale_u
        v = np.abs(rng.normal(size=K)) * 10.0 ** rng.uniform(-150, 150)
        w = rng.dirichlet(np.ones(K))
        want = _definition(u, v, w)
        got = _psi_terms_atoms(u, v, w)
        assert abs(got - want) <= 1e-14 * want, (u, got, want)
        vc = v * np.exp(1j * rng.uniform(-0.3, 0.3, K))
        wc = w * np.exp(1j * rng.uniform(-0.3, 0.3, K))
        want_c = _definition(u, vc, wc)
        assert abs(_psi_terms_atoms(u, vc, wc) - want_c) <= 1e-14 * want_c
        P, kn = _pack_laws(vc[None, :], wc[None, :])
        assert abs(_psi_terms_packed(u, P[0], kn[0]) - want_c) <= 1e-14 * want_c


def test_an_atom_at_the_pole_is_left_out():
    v = np.array([0.5, 2.0])
    w = np.array([0.25, 0.75])
    assert _psi_terms_atoms(2.0 + 0j, v, w) == _definition(2.0 + 0j, v, w)
    assert np.isfinite(_psi_terms_atoms(2.0 + 0j, v, w))
