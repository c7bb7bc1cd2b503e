"""Monte Carlo oracles: eigenvalues of ``J^T J`` for real random networks, and a KS distance.

The sampler follows the conventions of MATH.md section 1 exactly (fan-in weight variance,
variance-matched orthogonal init, ``x_0 ~ N(0, q_0 I)``), so that every convention of the
free-probability solver can be pinned against finite networks.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Protocol

import numpy as np
import scipy.linalg

from ._meanfield import mean_field
from ._network import Network, _check_gram

__all__ = ["sample_jacobian_eigenvalues", "ks_distance"]

_MODES = ("network", "model")

# J is renormalised by a power of two (exact in floating point) whenever its entries leave this
# window, so that products of hundreds of layers neither overflow nor underflow before the SVD.
_RESCALE_HI = 2.0**300
_RESCALE_LO = 2.0**-300

# Samples below this fraction of the largest sample count as exact zeros in ks_distance: an
# eigenvalue that is 0 in exact arithmetic comes out of the SVD around 1e-16..1e-13 times the scale.
_ZERO_RTOL = 1e-14  # round-off zeros: ~1e-30 relative from squared singular values, ~1e-16 from eigvalsh


def _haar_isometry(rng: np.random.Generator, n_out: int, n_in: int) -> np.ndarray:
    """Haar-distributed ``n_out x n_in`` matrix with orthonormal rows or columns (whichever fit).

    Reduced QR of a Gaussian matrix is Haar on the Stiefel manifold only once the columns of
    ``Q`` are multiplied by ``sign(diag(R))``; LAPACK's sign choice otherwise biases the law.
    """
    tall, short = max(n_out, n_in), min(n_out, n_in)
    q, r = np.linalg.qr(rng.standard_normal((tall, short)), mode="reduced")
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    q *= signs
    return q if n_out >= n_in else q.T


def _weights(rng: np.random.Generator, init: str, n_out: int, n_in: int, sigma_w2: float) -> np.ndarray:
    if init == "gaussian":
        return rng.standard_normal((n_out, n_in)) * math.sqrt(sigma_w2 / n_in)
    # Variance-matched: every entry of g O has variance sigma_w2 / n_in, as for Gaussian weights.
    g = math.sqrt(sigma_w2 * max(n_out, n_in) / n_in)
    return g * _haar_isometry(rng, n_out, n_in)


def _renormalise(j: np.ndarray, log2_scale: int) -> tuple[np.ndarray, int]:
    """Keep ``J = j * 2**log2_scale`` with ``j`` of moderate size (power-of-two steps are exact)."""
    peak = float(np.max(np.abs(j)))
    if peak == 0.0 or _RESCALE_LO <= peak <= _RESCALE_HI:
        return j, log2_scale
    _, e = math.frexp(peak)
    return np.ldexp(j, -e), log2_scale + e


def _singular_values(j: np.ndarray) -> np.ndarray:
    try:
        return scipy.linalg.svdvals(j, check_finite=False)
    except np.linalg.LinAlgError:  # gesdd occasionally fails to converge; gesvd is slower but robust
        return scipy.linalg.svd(j, compute_uv=False, check_finite=False, lapack_driver="gesvd")


def _one_jacobian_spectrum(
    net: Network, mode: str, gram: str, q: np.ndarray | None, rng: np.random.Generator, tick=None
) -> np.ndarray:
    widths = net.widths
    n_in, n_out = widths[0], widths[-1]

    x = None
    if mode == "network":
        if net.q0 == "fixed_point":
            # Choose the input variance that puts layer 1 at q*: sigma_w2 v + sigma_b2 = q*.
            v0 = (q[0] - net.sigma_b2[0]) / net.sigma_w2[0]
            if v0 > 0:
                x = rng.standard_normal(n_in) * math.sqrt(v0)
        else:
            x = rng.standard_normal(n_in) * math.sqrt(net.q0)

    j = None
    log2_scale = 0
    for l in range(net.depth):
        w = _weights(rng, net.init, widths[l + 1], widths[l], net.sigma_w2[l])
        act = net.activations[l]
        if mode == "model":
            h = rng.standard_normal(widths[l + 1]) * math.sqrt(q[l])
        else:
            b = rng.standard_normal(widths[l + 1]) * math.sqrt(net.sigma_b2[l])
            if x is None:
                # Only reached with q0="fixed_point" and q* <= sigma_b2, where no input variance
                # reaches q*: draw the first pre-activations directly from N(0, q*) instead.
                h = rng.standard_normal(widths[1]) * math.sqrt(q[0])
            else:
                with np.errstate(over="ignore", invalid="ignore"):
                    h = w @ x + b
            if not np.all(np.isfinite(h)):
                raise ValueError(
                    f"sample_jacobian_eigenvalues: the forward pass overflowed at layer {l + 1} of {net.depth} "
                    f"(activation {act.name!r}, sigma_w2 {net.sigma_w2[l]!r}): the pre-activations left the float range"
                )
            x = np.asarray(act.phi(h), dtype=float)
        d = np.asarray(act.dphi(h), dtype=float)
        dw = d[:, None] * w
        # Left-multiplying keeps every intermediate at N_l x N_0: cost sum_l N_l N_{l-1} N_0.
        j = dw if j is None else dw @ j
        j, log2_scale = _renormalise(j, log2_scale)
        if tick is not None:
            tick()

    s = _singular_values(j)
    top = float(np.max(s)) if s.size else 0.0
    if top > 0.0:
        # J = j 2^log2_scale: the largest eigenvalue is top^2 2^(2 log2_scale); refuse laws that
        # leave the float range rather than return inf (or all zeros)
        log2_top = 2.0 * (math.log2(top) + log2_scale)
        if not (-1020.0 < log2_top < 1023.0):
            raise ValueError(
                f"sample_jacobian_eigenvalues: the largest eigenvalue (2^{log2_top:.0f} = 10^{log2_top * math.log10(2):.0f}) "
                f"is outside the float range; rescale sigma_w2 (now {list(net.sigma_w2)!r})"
            )
    with np.errstate(over="ignore", under="ignore"):
        eig = np.ldexp(s * s, 2 * log2_scale)
    size = n_in if gram == "JtJ" else n_out
    out = np.zeros(size)
    # Both Gram matrices share the min(N_0, N_L) squared singular values; the rest are exact zeros.
    out[size - eig.size :] = np.sort(eig)
    if tick is not None:
        tick()
    return np.maximum(out, 0.0)


def sample_jacobian_eigenvalues(
    net: Network,
    gram: str = "JtJ",
    mode: str = "network",
    seed: int | np.random.Generator | None = None,
    n_samples: int = 1,
    progress: Callable[[int, int], object] | None = None,
) -> np.ndarray:
    """Eigenvalues of ``J^T J`` (or ``J J^T``) for random networks drawn with the widths of ``net``.

    Each network is drawn with the conventions of MATH.md section 1: weights with
    ``E[W_ij^2] = sigma_w2 / N_{l-1}`` (Gaussian, or variance-matched orthogonal ``g O`` with
    ``O`` Haar), biases ``N(0, sigma_b2)``, input ``x_0 ~ N(0, q0 I)``. The Jacobian
    ``J = D_L W_L ... D_1 W_1`` is formed exactly and its squared singular values are returned.

    Parameters
    ----------
    net : Network
        The network description (widths, activations, variances, init, ``q0``).
    gram : {"JtJ", "JJt"}
        ``"JtJ"`` returns the ``N_0`` eigenvalues of ``J^T J``; ``"JJt"`` the ``N_L`` eigenvalues
        of ``J J^T``. They share the non-zero eigenvalues and differ by zeros.
    mode : {"network", "model"}
        ``"network"``: a real forward pass, ``D_l = diag(phi_l'(h_l))`` from the actual
        pre-activations ``h_l = W_l x_{l-1} + b_l``. ``"model"``: the free-probability model, each
        ``D_l`` drawn independently of the weights with ``h_l ~ N(0, q_l)`` iid, ``q_l`` from
        :func:`fpcore.mean_field`. Both converge to the same limit as the widths grow.
    seed : int, numpy.random.Generator or None
        Seed or generator (passed to :func:`numpy.random.default_rng`).
    n_samples : int
        Number of independent networks.
    progress : callable or None
        Called as ``progress(done, total)`` after each weight matrix is multiplied into ``J`` and
        after each network's SVD: ``total = n_samples * (L + 1)`` steps (for progress bars; the
        result does not depend on it).

    Returns
    -------
    ndarray, shape (n_samples * N,)
        ``N = N_0`` (``"JtJ"``) or ``N_L`` (``"JJt"``). The eigenvalues of the networks one after
        the other (``.reshape(n_samples, N)`` gives one row per network), each block sorted
        ascending, all ``>= 0``. Exact zeros pad the ``|N_0 - N_L|`` structural zeros.

    Raises
    ------
    ValueError
        On a bad ``gram``, ``mode`` or ``n_samples``, if the forward pass overflows, or if the
        eigenvalues leave the float range (``sigma_w2 = 1e200`` over a few layers).

    Notes
    -----
    With ``q0="fixed_point"`` in network mode the input variance is ``(q* - sigma_b2) / sigma_w2``
    (``q*`` and the parameters of layer 1), so that ``q_1 = q*``; later layers follow the forward
    pass, as the mean-field recursion of :func:`fpcore.mean_field` does (see :class:`Network`). When
    that is not positive (``q* <= sigma_b2``) no input reaches ``q*``, and ``h_1 ~ N(0, q*)`` is
    drawn directly instead of ``W_1 x_0 + b_1``.

    Eigenvalues that are 0 in exact arithmetic (rank deficiency) come out of the SVD as round-off,
    about ``1e-16`` times the largest singular value (squared: tiny but not exactly 0).

    Examples
    --------
    >>> from fpcore import Network
    >>> net = Network([100, 200, 100], activation="relu", sigma_w2=2.0)
    >>> eig = sample_jacobian_eigenvalues(net, seed=0, n_samples=2)
    >>> eig.shape
    (200,)
    >>> bool(abs(eig.mean() - 1.0) < 0.2)  # mean = prod_l sigma_w2 E[D_l^2] * N_L / N_0 = 1
    True
    """
    _check_gram(gram)
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if not isinstance(net, Network):
        raise ValueError(f"net must be an fpcore.Network, got {type(net).__name__}")
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be a callable or None, got {progress!r}")
    rng = np.random.default_rng(seed)
    q = mean_field(net).q if (mode == "model" or net.q0 == "fixed_point") else None
    tick = None
    if progress is not None:
        total, done = int(n_samples) * (net.depth + 1), [0]

        def tick():
            done[0] += 1
            progress(done[0], total)

    return np.concatenate([_one_jacobian_spectrum(net, mode, gram, q, rng, tick) for _ in range(int(n_samples))])


class _HasCdf(Protocol):
    def cdf(self, x): ...


def ks_distance(spectrum: _HasCdf, samples) -> float:
    """Kolmogorov-Smirnov distance ``sup_x |F(x) - F_n(x)|`` between a law and samples.

    Parameters
    ----------
    spectrum : Spectrum or any object with a vectorised ``cdf(x)``
        The law; ``cdf`` must be the full right-continuous CDF, atom at 0 included.
    samples : array_like
        Samples (e.g. from :func:`sample_jacobian_eigenvalues`). When the law has an atom at 0
        (``cdf(0) > 0``), values below ``1e-14 * max|samples|`` count as exact zeros:
        rank-deficient Jacobians give round-off instead of 0. Without an atom at 0 every sample
        is compared as it is.

    Returns
    -------
    float
        The distance, in ``[0, 1]``.

    Notes
    -----
    Both CDFs are step-or-continuous and right-continuous, so the supremum is attained at, or
    just left of, a jump of either: the distinct sample values and 0 (the atom). Each is checked
    from both sides, ``F(t)`` against ``F_n(t)`` and ``F(t-)`` against ``F_n(t-)``, with
    ``F(t-)`` read at the next float below ``t``. A law with further atoms away from 0 is handled
    exactly: samples within a relative ``1e-9`` of an atom listed in ``spectrum.atoms`` are
    snapped onto it.

    Examples
    --------
    >>> from scipy import stats
    >>> class Uniform:
    ...     def cdf(self, x):
    ...         return stats.uniform.cdf(x)
    >>> round(ks_distance(Uniform(), [0.1, 0.3, 0.5, 0.7, 0.9]), 12)
    0.1
    """
    x = np.asarray(samples, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("samples must not be empty")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must be finite")
    # Round-off zeros are snapped to 0 only when the law has an atom there (F(0) > 0): a law
    # whose mass merely reaches down to 0 (GELU, SiLU...) has true eigenvalues that small.
    if float(np.asarray(spectrum.cdf(0.0), dtype=float)) > 0.0:
        x = np.where(np.abs(x) <= _ZERO_RTOL * np.max(np.abs(x)), 0.0, x)
    # Atoms away from 0 (e.g. orthogonal linear nets): samples there carry round-off too.
    atoms = [float(a) for a, _ in getattr(spectrum, "atoms", ()) if a != 0.0]
    for a in atoms:
        x = np.where(np.abs(x - a) <= 1e-9 * abs(a), a, x)
    x = np.sort(x)
    n = x.size

    t = np.union1d(x, [0.0] + atoms)
    ecdf_at = np.searchsorted(x, t, side="right") / n
    ecdf_before = np.searchsorted(x, t, side="left") / n
    t_before = np.nextafter(t, -np.inf)
    f_at = np.asarray(spectrum.cdf(t), dtype=float)
    f_before = np.asarray(spectrum.cdf(t_before), dtype=float)
    return float(max(np.max(np.abs(f_at - ecdf_at)), np.max(np.abs(f_before - ecdf_before))))
