"""One orthogonal layer: the law of ``c phi'(sqrt(q) Z)^2`` itself (a push-forward of a Gaussian).

With orthonormal rows (``N_1 <= N_0``), ``W W^T = g^2 I`` and ``J J^T = g^2 D^2`` exactly, so the
law of ``J J^T`` is the push-forward of ``N(0, q_1)`` by ``h -> g^2 phi'(h)^2`` (and ``J^T J`` adds
the zero atom of the ``N_0 - N_1`` missing directions). No free convolution smooths it, so a
quadrature rule for ``D^2`` (what the lilypad solver needs) would turn it into atoms; here it is
computed from level sets instead:

    F(y) = P(f(Z) <= y),   f(z) = c phi'(sqrt(q) z)^2,

is a sum of ``Phi(z_i)`` over the points where ``f - y`` changes sign (found on a fine grid, then
refined by bisection of the predicate ``f(z) <= y`` to machine precision), and the density is
``sum_i N(z_i) / |f'(z_i)|``. Flat pieces of ``f`` (SELU and ELU have ``phi' = 1`` on ``h > 0``)
give atoms, which the same predicate counts exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
from scipy import special

_ZMAX = 9.0  # P(|Z| > 9) = 2e-19
_NGRID = 8001
_BISECT = 60
_BLOCK = 512


@dataclass(frozen=True)
class PushForward:
    """Law of ``c phi'(sqrt(q) Z)^2``, ``Z ~ N(0, 1)``."""

    dphi: Callable[[np.ndarray], np.ndarray]
    q: float
    c: float

    def f(self, z: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return self.c * np.asarray(self.dphi(math.sqrt(self.q) * z), dtype=float) ** 2

    @cached_property
    def _grid(self):
        """``f`` on the fine grid every level-set search starts from (computed once per law)."""
        z = np.linspace(-_ZMAX, _ZMAX, _NGRID)
        return z, self.f(z)

    def atoms(self) -> list[tuple[float, float]]:
        """Values taken on a set of positive probability (runs of equal grid values)."""
        z, fz = self._grid
        same = np.abs(np.diff(fz)) <= 1e-14 * np.maximum(np.abs(fz[1:]), 1e-300)
        out: list[tuple[float, float]] = []
        i = 0
        while i < same.size:
            if same[i]:
                j = i
                while j < same.size and same[j]:
                    j += 1
                if j - i >= 4:  # at least 4 grid cells: a flat piece, not a critical point
                    # (flat to double precision in the far tail, e.g. GELU' == 1 for z > 8, is
                    # ignored by the mass threshold)
                    y0 = float(fz[i])
                    mass = float(self.cdf(np.array([y0]))[0] - self.cdf(np.array([y0 * (1 - 1e-12) - 1e-300]))[0])
                    if mass > 1e-6 and all(abs(y0 - a) > 1e-12 * max(abs(a), 1e-300) for a, _ in out):
                        out.append((y0, mass))
                i = j
            else:
                i += 1
        return sorted(out)

    def range(self) -> tuple[float, float]:
        _, fz = self._grid
        return float(fz.min()), float(fz.max())

    def _crossings(self, y: np.ndarray):
        """For each ``y``: the points where ``f(z) <= y`` switches, with the switch direction."""
        z, fz = self._grid
        below = fz[None, :] <= y[:, None]
        iy, jz = np.nonzero(below[:, 1:] != below[:, :-1])
        a, b = z[jz].copy(), z[jz + 1].copy()
        left_below = below[iy, jz]
        for _ in range(_BISECT):
            c = 0.5 * (a + b)
            cb = self.f(c) <= y[iy]
            go_right = cb == left_below
            a = np.where(go_right, c, a)
            b = np.where(go_right, b, c)
        zc = 0.5 * (a + b)
        # entering {f <= y} when moving right: -Phi(z); leaving it: +Phi(z)
        sign = np.where(left_below, 1.0, -1.0)
        return iy, zc, sign, below[:, -1]

    def cdf(self, y: np.ndarray) -> np.ndarray:
        return self.cdf_and_density(y)[0]

    def cdf_and_density(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``F(y)`` and the density at ``y`` (any shape), in blocks of ``_BLOCK`` values."""
        y = np.asarray(y, dtype=float)
        flat = y.ravel()
        # many samples (a KS distance) share few distinct values after sorting; blocks bound memory
        F = np.empty_like(flat)
        dens = np.empty_like(flat)
        for i in range(0, flat.size, _BLOCK):
            F[i:i + _BLOCK], dens[i:i + _BLOCK] = self._block(flat[i:i + _BLOCK])
        return F.reshape(y.shape), dens.reshape(y.shape)

    def _block(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        iy, zc, sign, top = self._crossings(y)
        F = top.astype(float)  # the set {f <= y} reaches +inf (and Phi(-inf) = 0 adds nothing)
        np.add.at(F, iy, sign * special.ndtr(zc))
        h = 1e-6 * (1.0 + np.abs(zc))
        slope = np.abs(self.f(zc + h) - self.f(zc - h)) / (2.0 * h)
        with np.errstate(divide="ignore", invalid="ignore"):
            contrib = np.exp(-0.5 * zc * zc) / math.sqrt(2.0 * math.pi) / slope
        dens = np.zeros_like(y)
        ok = np.isfinite(contrib)
        np.add.at(dens, iy[ok], contrib[ok])
        return np.clip(F, 0.0, 1.0), dens
