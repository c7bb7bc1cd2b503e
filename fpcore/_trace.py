"""The lilypad chain of one target, recorded for teaching and testing, and Newton basins."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._edges import upper_edge
from ._equation import Equation, build_equation
from ._lilypad import _Rational, solve
from ._network import Network, _check_gram

__all__ = ["LilypadTrace", "lilypad_trace", "newton_basins"]

from ._basins import newton_basins  # noqa: E402,F401  (compiled, in its own module; re-exported here)


@dataclass(frozen=True)
class LilypadTrace:
    """The chain of lilypads the solver walked to reach ``M(x + i0)``.

    Attributes
    ----------
    target : complex
        ``x + 0j``.
    centres : ndarray of complex, shape (K,)
        Lilypad centres ``z_k``, from far above the real axis down to the target.
    solutions : ndarray of complex, shape (K,)
        ``m_k``, the (Newton) solution held at ``z_k``.
    radii : ndarray of float, shape (K,)
        Certified radius of each lilypad in the z-plane: for every ``z`` within ``radii[k]`` of
        ``z_k``, ``m_k`` passes the solver's Kantorovich test, and the next centre lies in that
        disk (the solver caps each step at it). Rational equations; for verified equations it is
        the distance to the next centre.
    m_radii : ndarray of float, shape (K,)
        Radius ``2 eta`` of the Kantorovich ball in the m-plane of the step that produced ``m_k``
        (``nan`` for the start). Rational equations only: the steps of a non-rational equation's
        chain are verified by their residuals, not by a Kantorovich test, so they have no ball
        (``nan`` at every step).
    rejected : ndarray of complex
        Proposals that failed the test; ``rejected_from[i]`` is the lilypad they were tried from.
    newton : tuple of ndarray
        Newton iterates ``m`` of each step (the last one includes the final polishing).
    certified : bool
        Kantorovich-certified at every step (rational equations). False at an atom of the law
        (``M`` has a pole there: no solution at ``x + i0``; ``density`` is then ``inf``).
    verified : bool
        Certified, or verified a posteriori (residual and sign checks).
    m, G : complex
        ``M`` and the Cauchy transform ``G = (1 + M)/z`` at the target.
    density : float
        ``-Im G / pi``.
    """

    target: complex
    centres: np.ndarray
    solutions: np.ndarray
    radii: np.ndarray
    m_radii: np.ndarray
    rejected: np.ndarray
    rejected_from: np.ndarray
    newton: tuple
    certified: bool
    verified: bool
    m: complex
    G: complex
    density: float
    network: Network
    gram: str

    def __len__(self) -> int:
        return int(self.centres.size)


def _z_radius(ev: _Rational, z: complex, m: complex) -> float:
    """Radius of the lilypad at ``z`` for the start ``m``: the largest ``R`` such that ``m``
    passes the solver's Kantorovich test (:meth:`_Rational.test`, any of its certificates whose
    region is a function of ``|g|`` or a triangle bound) for every ``|z' - z| <= R``
    (:meth:`_Rational.disk_radius`, the same radius that caps the solver's steps)."""
    st = ev.at(np.array([m], dtype=complex))
    zz = np.array([z], dtype=complex)
    _, _, _, gamma = ev.max_step(st, zz, np.array([1.0 + 0j]), np.array([0.0]))
    return float(ev.disk_radius(st, zz, gamma)[0])


def lilypad_trace(net: Network, x: float, gram: str = "JtJ") -> LilypadTrace:
    """Record the lilypad chain that solves ``M^{-1}(m) = x + i0``.

    The same algorithm as :func:`jacobian_spectrum` run on one point, with every accepted and
    rejected step kept, so the dashboard can animate exactly what the solver did.

    Parameters
    ----------
    net : Network
    x : float
        Target on the positive real axis.
    gram : {"JtJ", "JJt"}

    Examples
    --------
    >>> import fpcore
    >>> tr = fpcore.lilypad_trace(fpcore.Network([200] * 4, "relu"), 1.0)
    >>> tr.certified, bool(tr.centres[-1] == 1.0), tr.density > 0
    (True, True, True)
    """
    _check_gram(gram)
    if not isinstance(net, Network):
        raise ValueError(f"net must be an fpcore.Network, got {type(net).__name__}")
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"x must be a positive float, got {x!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"x must be a positive float, got {x!r}")
    eq = build_equation(net, gram)
    try:
        scale = upper_edge(eq)
    except (RuntimeError, ValueError):
        scale = eq.mean
    r = solve(eq, np.array([complex(x)]), scale=max(scale, x), record=True)
    tr = r.trace
    centres = np.array(tr["centres"], dtype=complex)
    sols = np.array(tr["solutions"], dtype=complex)
    m = complex(r.m[0])
    if eq.rational:
        ev = _Rational(eq)
        # the radius each step was capped by, and the final lilypad's at the polished solution
        radii = np.append(np.asarray(tr["radii"], dtype=float), _z_radius(ev, centres[-1], m))
    else:
        radii = np.append(np.abs(np.diff(centres)), 0.0)
    G = (1.0 + m) / x
    certified, verified = bool(r.certified[0]), bool(r.verified[0])
    density = max(-G.imag / math.pi, 0.0)
    at_atom = any(loc > 0 and abs(x - loc) <= 1e-9 * loc for loc, mass in eq.atoms if mass > 0)
    if at_atom:
        # M has a pole at an atom: no solution exists at x + i0, whatever the chain reached
        certified = verified = False
        density = math.inf
    return LilypadTrace(
        target=complex(x),
        centres=centres,
        solutions=sols,
        radii=radii,
        # (a verified chain's recorded step lengths are no Kantorovich balls: none is claimed)
        m_radii=2.0 * np.array(tr["eta"], dtype=float) if eq.rational else np.full(centres.size, np.nan),
        rejected=np.array(tr["rejected"], dtype=complex),
        rejected_from=np.array(tr["rejected_from"], dtype=int),
        newton=tuple(np.asarray(a, dtype=complex) for a in tr["newton"]),
        certified=certified,
        verified=verified,
        m=m,
        G=G,
        density=density,
        network=net,
        gram=gram,
    )
