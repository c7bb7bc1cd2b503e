"""Newton basins of ``f_z`` in the m-plane, compiled: the picture behind each lilypad step.

For a fixed ``z`` every pixel ``m_0`` of a window runs Newton's method on the equation
``M^{-1}(m) = z`` and is labelled by the root it converges to (MATH.md section 4: the Kantorovich
ball of a certified step lies inside the basin of the root the chain follows).

* **Rational equations** (linear, ReLU, hard-tanh layers): Newton on the log-form map the solver
  certifies, ``g(m) = log z - log C - sum_j e_j log(m - a_j)``, ``m <- m - g / g'``, with ``g``
  taken on the branch nearest to 0 at each iterate (every branch has the same derivative and its
  zeros are solutions).
* **Non-rational equations** (leaky ReLU, smooth activations): the joint Newton of the solver
  (``_fastchain._gnewton``) on ``(m, u_1, ..., u_G)`` with ``psi_g(u_g) = k_g m`` and the same
  log-form ``r_0``, started at ``u_g = k_g m_0 / E[D_g^2]`` (the solver's far start). The arrow
  Jacobian makes one step ``O(G K)`` for ``K`` atoms per law. Laws longer than ``_MAX_ATOMS``
  atoms (GELU, SiLU) are replaced by their short Gauss rules (``Equation.packed_short``), whose
  roots agree with the full laws' to the Gauss error bound away from the real axis: a picture,
  not a certificate.

A pixel converges when a Newton step is below ``1e-10`` relative and the residual below ``1e-8``;
its limits are merged into roots within ``1e-6`` relative (in compiled code, first come first
served, then ranked by real part, then imaginary part). The kernels are serial, release the GIL (``nogil``) and are
cached by numba next to the sources.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._activations import N_SHORT, short_rule
from ._equation import Equation, _padded, build_equation
from ._fastchain import _g, _gres, _jit
from ._network import Network, _check_gram

__all__ = ["newton_basins"]

_TWO_PI = 2.0 * math.pi
_STEP_TOL = 1e-10  # relative Newton step at convergence
_RES_TOL = 1e-8  # |log-form residual| (and relative inner residuals) at convergence
_MERGE = 1e-6  # limits within this relative distance are one root
_MAX_ROOTS = 1024  # distinct limits kept per frame (more are labelled -1)
_MAX_ATOMS = 64  # longer laws of D^2 use their short Gauss rules
_MAX_PIXELS = 4_000_000
_ESCAPE = 1e150  # |m| beyond this: Newton diverged


@_jit
def _rational_pixel(m, z, a, e, log_c, max_iter):
    """Log-form Newton from ``m``: (limit, steps used, converged)."""
    for it in range(max_iter):
        g, gp, dmin, cut = _g(z, m, a, e, log_c)
        if not (math.isfinite(gp.real) and math.isfinite(gp.imag)) or abs(gp) == 0.0:
            return m, max_iter, False
        g = g - 1j * _TWO_PI * math.floor(g.imag / _TWO_PI + 0.5)
        dm = g / gp
        if not (math.isfinite(dm.real) and math.isfinite(dm.imag)):
            return m, max_iter, False
        m = m - dm
        if abs(m) > _ESCAPE:
            return m, max_iter, False
        if abs(dm) <= _STEP_TOL * max(abs(m), 1e-300):
            r, gp, dmin, cut = _g(z, m, a, e, log_c)
            r = r - 1j * _TWO_PI * math.floor(r.imag / _TWO_PI + 0.5)
            return m, it + 1, abs(r) <= _RES_TOL
    return m, max_iter, False


@_jit
def _general_pixel(m, z, a, e, log_c, V, W, kk, nn, mu, max_iter, u, rg, dps):
    """Joint Newton on ``(m, u)`` from ``m``, ``u_g = k_g m / E[D_g^2]``: (limit, steps, converged)."""
    G = kk.size
    for g in range(G):
        u[g] = kk[g] * m / mu[g]
    for it in range(max_iter):
        r0, gp = _gres(z, m, u, a, e, log_c, V, W, kk, nn, rg, dps)
        if not (math.isfinite(r0.real) and math.isfinite(r0.imag) and math.isfinite(gp.real)):
            return m, max_iter, False
        r0 = r0 - 1j * _TWO_PI * math.floor(r0.imag / _TWO_PI + 0.5)
        num = r0
        den = gp
        for g in range(G):
            if u[g] * dps[g] == 0.0:
                return m, max_iter, False
            c = nn[g] / (u[g] * dps[g])
            num -= c * rg[g]
            den += c * kk[g]
        if den == 0.0:
            return m, max_iter, False
        dm = -num / den
        if not (math.isfinite(dm.real) and math.isfinite(dm.imag)):
            return m, max_iter, False
        m = m + dm
        if abs(m) > _ESCAPE:
            return m, max_iter, False
        small = abs(dm) <= _STEP_TOL * max(abs(m), 1e-300)
        for g in range(G):
            du = (kk[g] * dm - rg[g]) / dps[g]
            u[g] = u[g] + du
            if not (abs(du) <= _STEP_TOL * abs(u[g])):
                small = False
        if small:
            r0, gp = _gres(z, m, u, a, e, log_c, V, W, kk, nn, rg, dps)
            r0 = r0 - 1j * _TWO_PI * math.floor(r0.imag / _TWO_PI + 0.5)
            ok = abs(r0) <= _RES_TOL
            for g in range(G):
                if not (abs(rg[g]) <= _RES_TOL * max(abs(kk[g] * m), 1e-300)):
                    ok = False
            return m, it + 1, ok
    return m, max_iter, False


@_jit
def _label(m, ok, roots, nr, merge):
    """Root index of a limit (a new root if none is within ``merge``): (label, roots in use)."""
    if not ok or not (math.isfinite(m.real) and math.isfinite(m.imag)):
        return -1, nr
    for r in range(nr):
        if abs(m - roots[r]) <= merge * max(abs(roots[r]), 1e-300):
            return r, nr
    if nr < roots.size:
        roots[nr] = m
        return nr, nr + 1
    return -1, nr


@_jit
def _basin_image(re, im, rows, cols, rational, z, a, e, log_c, V, W, kk, nn, mu, max_iter, merge, labels, its,
                 roots):  # fmt: skip
    """Fill ``labels`` and ``its`` (ny, nx). Newton runs at the lattice ``rows x cols``; a block
    between neighbouring lattice lines whose four corners share a label is filled with it (steps
    interpolated), every other block is computed pixel by pixel. Returns the number of roots."""
    G = kk.size
    u = np.empty(G, dtype=np.complex128)
    rg = np.empty(G, dtype=np.complex128)
    dps = np.empty(G, dtype=np.complex128)
    done = np.zeros(labels.shape, dtype=np.bool_)
    nr = 0
    for i in rows:
        for j in cols:
            m0 = complex(re[j], im[i])
            if rational:
                m, used, ok = _rational_pixel(m0, z, a, e, log_c, max_iter)
            else:
                m, used, ok = _general_pixel(m0, z, a, e, log_c, V, W, kk, nn, mu, max_iter, u, rg, dps)
            lab, nr = _label(m, ok, roots, nr, merge)
            labels[i, j] = lab
            its[i, j] = used if lab >= 0 else max_iter
            done[i, j] = True
    for bi in range(rows.size - 1):
        r0 = rows[bi]
        r1 = rows[bi + 1]
        for bj in range(cols.size - 1):
            c0 = cols[bj]
            c1 = cols[bj + 1]
            lab = labels[r0, c0]
            same = labels[r0, c1] == lab and labels[r1, c0] == lab and labels[r1, c1] == lab
            for i in range(r0, r1 + 1):
                for j in range(c0, c1 + 1):
                    if done[i, j]:
                        continue
                    if same:
                        ty = (i - r0) / (r1 - r0)
                        tx = (j - c0) / (c1 - c0)
                        v = ((1 - ty) * ((1 - tx) * its[r0, c0] + tx * its[r0, c1])
                             + ty * ((1 - tx) * its[r1, c0] + tx * its[r1, c1]))  # fmt: skip
                        labels[i, j] = lab
                        its[i, j] = int(v + 0.5)
                    else:
                        m0 = complex(re[j], im[i])
                        if rational:
                            m, used, ok = _rational_pixel(m0, z, a, e, log_c, max_iter)
                        else:
                            m, used, ok = _general_pixel(m0, z, a, e, log_c, V, W, kk, nn, mu, max_iter, u, rg,
                                                         dps)  # fmt: skip
                        lab2, nr = _label(m, ok, roots, nr, merge)
                        labels[i, j] = lab2
                        its[i, j] = used if lab2 >= 0 else max_iter
                    done[i, j] = True
    return nr


def _equation_arrays(eq: Equation, atoms: int = _MAX_ATOMS):
    a = np.ascontiguousarray(eq.roots, dtype=float)
    e = np.ascontiguousarray(eq.exps, dtype=float)
    if eq.rational:
        return a, e, None
    V, W, kk, nn = eq.packed
    if atoms < N_SHORT and V.shape[1] > atoms:
        V, W = _padded([short_rule(g.values, g.weights, atoms) if g.values.size > atoms else (g.values, g.weights)
                        for g in eq.ugroups])  # fmt: skip
    elif V.shape[1] > atoms:
        V, W = eq.packed_short
    mu = np.array([g.law.mean for g in eq.ugroups], dtype=float)
    return a, e, tuple(np.ascontiguousarray(v, dtype=float) for v in (V, W, kk, nn, mu))


def _lattice(n: int, block: int) -> np.ndarray:
    idx = np.arange(0, n, block, dtype=np.int64)
    return idx if idx[-1] == n - 1 else np.append(idx, n - 1)


def basins_of_equation(
    eq: Equation, z: complex, re: np.ndarray, im: np.ndarray, max_iter: int = 40, block: int = 1,
    atoms: int = _MAX_ATOMS, threads: int = 1,
):
    """Newton basins of ``M^{-1}(m) = z`` for an assembled equation: ``(labels, roots, iterations)``
    as in :func:`newton_basins`.

    ``block > 1`` runs Newton on every ``block``-th row and column first and fills each block whose
    four corners reach the same root with that root (steps interpolated); the other blocks are
    computed pixel by pixel. A basin island smaller than a block that touches none of its corners
    is missed: a preview, several times faster where basins are large. ``atoms`` caps the atoms
    per law of ``D^2``: longer laws are replaced by their Gauss rules with that many nodes (the
    40-node rules of ``Equation.packed_short`` from 40 on), a picture of a nearby equation.
    ``threads > 1`` splits the rows into that many slabs run in parallel threads.
    """
    re = np.ascontiguousarray(re, dtype=float)
    im = np.ascontiguousarray(im, dtype=float)
    shape = (im.size, re.size)
    labels = np.full(shape, -1, dtype=np.int64)
    its = np.full(shape, int(max_iter), dtype=np.int64)
    found = np.empty(_MAX_ROOTS, dtype=np.complex128)
    a, e, general = _equation_arrays(eq, int(atoms))
    if general is None:
        empty = np.zeros((0, 0))
        V, W, kk, nn, mu = empty, empty, np.zeros(0), np.zeros(0), np.zeros(0)
    else:
        V, W, kk, nn, mu = general
    rows, cols = _lattice(im.size, block), _lattice(re.size, block)
    args = (general is None, complex(z), a, e, float(eq.log_c), V, W, kk, nn, mu, int(max_iter), _MERGE)
    nslab = min(int(threads), max(1, (rows.size - 1) // 4)) if threads else 1
    if nslab <= 1:
        with np.errstate(all="ignore"):
            nr = int(_basin_image(re, im, rows, cols, *args, labels, its, found))
        roots = found[:nr]
    else:
        # row slabs on lattice lines, each in its own thread (the kernel releases the GIL); the
        # slabs' roots are merged afterwards with the same tolerance
        cuts = np.linspace(0, rows.size - 1, nslab + 1).round().astype(int)
        parts = []

        def run(p: int):
            r = rows[cuts[p]: cuts[p + 1] + 1]
            lo, hi = int(r[0]), int(r[-1]) + 1
            lab = np.full((hi - lo, re.size), -1, dtype=np.int64)
            it = np.full((hi - lo, re.size), int(max_iter), dtype=np.int64)
            fd = np.empty(_MAX_ROOTS, dtype=np.complex128)
            with np.errstate(all="ignore"):
                n = int(_basin_image(re, im[lo:hi], r - lo, cols, *args, lab, it, fd))
            return lo, hi, lab, it, fd[:n]

        with ThreadPoolExecutor(max_workers=nslab) as pool:
            parts = list(pool.map(run, range(nslab)))
        merged: list[complex] = []
        for p, (lo, hi, lab, it, fd) in enumerate(parts):
            if p > 0:  # the shared lattice row belongs to the slab above (as in one pass)
                lo, lab, it = lo + 1, lab[1:], it[1:]
            remap = np.empty(fd.size + 1, dtype=np.int64)
            remap[-1] = -1
            for q, m in enumerate(fd):
                hit = next((i for i, r in enumerate(merged) if abs(m - r) <= _MERGE * max(abs(r), 1e-300)), -1)
                if hit < 0 and len(merged) < _MAX_ROOTS:
                    merged.append(complex(m))
                    hit = len(merged) - 1
                remap[q] = hit
            labels[lo:hi] = remap[np.where(lab >= 0, lab, fd.size)]
            its[lo:hi] = it
        nr = len(merged)
        roots = np.array(merged, dtype=np.complex128)
    order = np.lexsort((roots.imag, roots.real))
    rank = np.empty(nr + 1, dtype=np.int64)
    rank[order] = np.arange(nr)
    rank[nr] = -1
    labels = rank[np.where(labels >= 0, labels, nr)]
    its = np.where(labels >= 0, its, int(max_iter))
    return labels, roots[order], its


def newton_basins(
    net: Network, z: complex, re, im, gram: str = "JtJ", max_iter: int = 40, *, iterations: bool = False,
    block: int = 1,
):
    """Basins of attraction of Newton's method for ``f_z`` in the m-plane (compiled).

    Newton runs from every start ``m = re[j] + 1j * im[i]``: for rational equations (linear,
    ReLU, hard-tanh layers) with the solver's log-form map ``m <- m - g/g'``,
    ``g = log(z / M^{-1}(m))``; for the others (leaky ReLU, smooth activations) the solver's joint
    Newton on ``(m, u_1, ..., u_G)`` from ``u_g = k_g m / E[D_g^2]``. Starts that converge to the
    same root share a label.

    Parameters
    ----------
    net : Network
    z : complex
        The point ``z`` of ``M^{-1}(m) = z``.
    re, im : array_like, 1-D
        Real and imaginary parts of the starts (pixel centres).
    gram : {"JtJ", "JJt"}
    max_iter : int
        Newton steps per start (1 to 10000).
    iterations : bool
        Also return the Newton steps each start used (for shading).
    block : int
        1 (default): Newton from every start. ``block > 1``: a preview that runs Newton on every
        ``block``-th row and column and fills blocks whose four corners reach the same root
        (see :func:`fpcore._basins.basins_of_equation`).

    Returns
    -------
    labels : ndarray of int, shape (len(im), len(re))
        Index into ``roots``, or -1 where Newton did not converge in ``max_iter`` steps.
    roots : ndarray of complex
        Distinct limits found, sorted by real part (then imaginary part).
    iterations : ndarray of int, shape (len(im), len(re))
        Only with ``iterations=True``: steps used (``max_iter`` where Newton did not converge).

    Examples
    --------
    >>> import fpcore, numpy as np
    >>> lab, roots = fpcore.newton_basins(fpcore.Network([100] * 3, "relu"), 1.0 + 0.5j,
    ...                                   np.linspace(-2, 1, 30), np.linspace(-1.5, 1.5, 30))
    >>> lab.shape, roots.size >= 1
    ((30, 30), True)
    >>> lab, roots, its = fpcore.newton_basins(fpcore.Network([100] * 3, "tanh"), 1.0 + 0.5j,
    ...                                        np.linspace(-2, 1, 30), np.linspace(-1.5, 1.5, 30),
    ...                                        iterations=True)
    >>> bool(np.all(its[lab >= 0] < 40))
    True
    """
    _check_gram(gram)
    if not isinstance(net, Network):
        raise ValueError(f"net must be an fpcore.Network, got {type(net).__name__}")
    try:
        z = complex(z)
    except (TypeError, ValueError):
        raise ValueError(f"z must be a complex number, got {z!r}") from None
    if not (math.isfinite(z.real) and math.isfinite(z.imag)) or z == 0:
        raise ValueError(f"z must be a finite non-zero complex number, got {z!r}")
    re = np.asarray(re, dtype=float)
    im = np.asarray(im, dtype=float)
    if re.ndim != 1 or im.ndim != 1 or re.size == 0 or im.size == 0:
        raise ValueError("re and im must be non-empty 1-D arrays")
    if not (np.all(np.isfinite(re)) and np.all(np.isfinite(im))):
        raise ValueError("re and im must be finite")
    if re.size * im.size > _MAX_PIXELS:
        raise ValueError(f"re and im: at most {_MAX_PIXELS} starts, got {re.size} x {im.size}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1 or max_iter > 10_000:
        raise ValueError(f"max_iter must be an integer in [1, 10000], got {max_iter!r}")
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 1 <= block <= 64:
        raise ValueError(f"block must be an integer in [1, 64], got {block!r}")
    eq = build_equation(net, gram)
    labels, roots, its = basins_of_equation(eq, z, re, im, int(max_iter), int(block))
    return (labels, roots, its) if iterations else (labels, roots)

