"""Adversarial check: random networks over the whole architecture space against Monte Carlo.

Each network is drawn at random (every activation in ``fpcore.ACTIVATIONS`` with random
parameters, both inits, both Gram matrices, depths 1-30, constant / rectangular / bottleneck /
tapered / expanding widths >= ``--min-width``, biases, per-layer mixtures of ``sigma_w2`` and
activations, ``q0`` or ``"fixed_point"``) and checked five ways:

* **monotone**: the CDF on a fine grid (log- and linearly spaced, plus the solver's own grid)
  never decreases (tolerance 1e-9);
* **quantile**: ``cdf(quantile(p)) >= p`` for ``p`` from 1e-6 to 0.999, and ``quantile(p)`` is
  the smallest such ``x`` (``cdf`` just below it is ``< p``);
* **moments**: the spectrum's mean (and, where a closed form applies: Gaussian weights, or
  orthogonal weights with square layers, MATH.md section 6) its variance, against an
  independent recursion: ``q_l`` and ``mu_k = E[phi'(sqrt(q_l) Z)^(2k)]`` by adaptive quadrature
  (``scipy.integrate.quad``), the mean ``prod_l sigma_l^2 mu_1`` (times ``N_L/N_0`` for ``J^T J``)
  and ``m_2 / m_1^2 - 1 = sum_l Lambda_l (mu_2/mu_1^2 - 1 - s_1)`` (``s_1 = -1`` Gaussian,
  ``0`` orthogonal; ``Lambda_l = N_0 / N_l``, ``N_L / N_l`` for ``J J^T``), a first-order
  S-transform expansion;
* **Monte Carlo mean**: the mean of pooled network Monte Carlo (``fpcore.sample_jacobian_eigenvalues``,
  ``--samples`` networks) within 3 standard errors of the theory (the standard error is the
  larger of the between-network one and the pooled-sample one); a mean that fails on
  ``--max-samples`` networks is decided on a fresh pool of ``--mean-samples`` (16), against
  Student's ``t`` critical value at the same 0.27 % level (3.59 for 16 networks): an SE
  estimated from 4 networks makes "3 SE" a 5.8 % test (:func:`mean_verdict`);
* **KS above the float floor**: ``sup |F - F_n|`` over ``t >= floor = 1e-12 * max(samples)``
  (below the floor Monte Carlo eigenvalues are round-off; the mass below it is compared once,
  ``F(floor)`` against the fraction of samples at or below it; samples within ``1e-9`` relative
  of an atom of the law are snapped onto it), at most ``--ks`` (0.02), or, for one orthogonal
  layer with ``N_1 <= N_0`` (whose eigenvalues are exact iid draws of the law), Kolmogorov's
  critical value at the 0.27 % level for that many draws where it is larger, on the pool of
  ``--max-samples`` (:func:`ks_tolerance`: 0.029 for 4 x 1004 draws). For networks whose laws
  of ``D^2`` have an atom at 0 (ReLU, hard-tanh) the part of the difference that the
  finite-width fluctuation of that atom explains is taken out first (:func:`ks_with_atom_band`,
  :func:`finite_width_atom_band`; such networks pool at least 3 Monte Carlo samples).

Both Monte Carlo checks that fail on fewer than ``--max-samples`` (4) networks are measured again
on a pool of that many, and only the pooled verdict counts. One network's eigenvalues carry the
sampling noise of its own ``D^2`` entries, ``N`` iid draws per layer, which the free convolution
does not smooth where one layer dominates (orthogonal weights, saturated layers): for seed 2's
orthogonal sigmoid draw [123] (``q_1 = 116``) the KS of four single networks was 0.016, 0.029,
0.011 and 0.009, and 0.009 pooled; for the orthogonal ELU draw [120] 0.013, 0.012, 0.018 and
0.008, and 0.003 pooled. Pooling shrinks that noise; it leaves the error of a wrong law.

A network is *flagged* (listed with its reason) when the library itself says it could not
certify or verify some points (``stats.n_uncertified > 0`` or a RuntimeWarning), refuses it with
a ``ValueError``, or the per-network time runs out. A failed check on a network where the library
warned about points it could not certify or verify is a *warned failure*; a failed check with no
such warning and no uncertified point is a *silent failure* (the ones that must not exist). A
quantile the library returns with a warning that it is an upper bound (far below the grid) is
not checked for minimality (``cdf`` of it must still be ``>= p``). Prints one row per network
that failed or was flagged, then a summary table.

Usage::

    python benchmarks/adversarial.py --n 150 --seed 1 --max-seconds 5400
    python benchmarks/adversarial.py --n 5 --seed 0 --activations relu,linear --min-width 300
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import integrate, stats

import fpcore

_QUANTILE_P = np.array([1e-6, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999])
_FLOOR = 1e-12


# -- drawing ---------------------------------------------------------------------------------
def _activation_name(rng: np.random.Generator, names: list[str]) -> str:
    name = str(rng.choice(names))
    if name == "leaky_relu":
        return f"leaky_relu:{rng.choice([0.01, 0.1, 0.2, 0.5]):g}"
    if name == "erf" and rng.random() < 0.4:
        return f"erf:{rng.choice([0.5, math.sqrt(math.pi) / 2, 2.0]):.6g}"
    if name == "elu" and rng.random() < 0.3:
        return f"elu:{rng.choice([0.5, 2.0]):g}"
    return name


def _widths(rng: np.random.Generator, depth: int, w0: int, spread: float = 0.6) -> tuple[list[int], str]:
    shape = str(rng.choice(["constant", "rectangular", "bottleneck", "tapered", "expanding"]))
    if shape == "constant":
        return [w0] * (depth + 1), shape
    if shape == "rectangular":
        return [int(w0 * rng.uniform(1.0, 1.0 + spread)) for _ in range(depth + 1)], shape
    if shape == "bottleneck":
        t = np.abs(np.linspace(-1.0, 1.0, depth + 1))
        return [int(w0 * (1.0 + spread * v)) for v in t], shape
    if shape == "tapered":
        return [int(w0 * (1.0 + spread - spread * l / max(depth, 1))) for l in range(depth + 1)], shape
    return [int(w0 * (1.0 + spread * l / max(depth, 1))) for l in range(depth + 1)], shape


def draw_network(rng: np.random.Generator, names: list[str], min_width: int, max_depth: int = 30, spread: float = 0.6):
    """One random ``(Network, gram, description)``: widths from ``min_width`` to
    ``(1 + spread) min_width``."""
    depth = int(min(max_depth, max(1, round(math.exp(rng.uniform(0.0, math.log(30.5)))))))
    widths, shape = _widths(rng, depth, min_width, spread)
    if rng.random() < 0.1 and depth > 1:
        act = [_activation_name(rng, names) for _ in range(depth)]
    else:
        act = _activation_name(rng, names)
    first = act[0] if isinstance(act, list) else act
    # around the edge of chaos of each family (sigma_w2 ~ 1/E[D^2]), in both phases
    base = {"relu": 2.0, "leaky_relu": 2.0, "selu": 1.0, "elu": 1.5, "gelu": 2.0, "silu": 3.0,
            "softplus": 3.0, "sigmoid": 12.0, "linear": 1.0}.get(first.split(":")[0], 1.0)
    if rng.random() < 0.25 and depth > 1:
        sw = list(base * np.exp(rng.uniform(-0.5, 0.5, depth)))
    else:
        sw = float(base * math.exp(rng.uniform(-0.5, 0.5)))
    sb = 0.0 if rng.random() < 0.5 else float(math.exp(rng.uniform(math.log(1e-3), math.log(1.0))))
    if rng.random() < 0.15 and depth > 1:
        sb = list(sb * rng.uniform(0.0, 2.0, depth))
    q0 = "fixed_point" if rng.random() < 0.25 else float(math.exp(rng.uniform(math.log(0.1), math.log(10.0))))
    init = str(rng.choice(["gaussian", "orthogonal"]))
    gram = str(rng.choice(["JtJ", "JJt"]))
    net = fpcore.Network(widths, act, sigma_w2=sw, sigma_b2=sb, init=init, q0=q0)
    return net, gram, shape


# -- independent moments ---------------------------------------------------------------------
def _gauss(f, q: float) -> float:
    """``E[f(sqrt(q) Z)]`` by adaptive quadrature in ``z`` (break at 0: kinks of SELU/ELU/ReLU;
    and at ``h = +-1, 2, 4, 8, 16``: the activations' own scale, which at large ``q`` is a sliver
    of width ``1/sqrt(q)`` in ``z`` that the quadrature missed with breaks at ``h = +-1`` only:
    GELU at ``q = 1.1e6`` gave ``E[phi'^2] = 0.49992`` against the asymptotic
    ``1/2 + 0.05627 / sqrt(q) = 0.5000533``)."""
    s = math.sqrt(q)
    g = lambda z: float(f(np.array([s * z]))[0]) * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)  # noqa: E731
    hs = (1.0, 2.0, 4.0, 8.0, 16.0)
    pts = sorted({0.0} | {c / s for h in hs for c in (-h, h) if abs(c / s) < 12.0})
    val = 0.0
    edges = [-12.0] + pts + [12.0]
    with warnings.catch_warnings():  # (epsrel 1e-12 is at rounding level: quad may say so)
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for a, b in zip(edges[:-1], edges[1:]):
            val += integrate.quad(g, a, b, limit=200, epsabs=0.0, epsrel=1e-12)[0]
    return val


def independent_moments(net: fpcore.Network, gram: str) -> tuple[float, float | None]:
    """Mean and (where the first-order formula applies) variance of the law, from ``q_l`` and
    ``mu_k`` by quadrature. ``q0="fixed_point"``: ``q_1`` is the first layer's fixed point, the
    later layers follow the recursion (the definition documented by :class:`fpcore.Network`)."""
    L, N = net.depth, net.widths
    acts = net.activations
    if net.q0 == "fixed_point":
        q = 1.0
        for _ in range(20000):
            qn = net.sigma_w2[0] * _gauss(lambda h: acts[0].phi(h) ** 2, q) + net.sigma_b2[0]
            if not math.isfinite(qn) or qn > 1e12:
                q = 1.0  # no fixed point: only the q-independent laws (ReLU...) accept this
                break
            done = abs(qn - q) <= 1e-13 * q or qn < 1e-300
            q = qn
            if done:
                break
        q = max(q, 1e-300)
    else:
        q = net.sigma_w2[0] * net.q0 + net.sigma_b2[0]
    mean, c = 1.0, 0.0
    s1 = -1.0 if net.init == "gaussian" else 0.0
    for l in range(L):
        if l > 0:
            q = net.sigma_w2[l] * _gauss(lambda h: acts[l - 1].phi(h) ** 2, q) + net.sigma_b2[l]
        mu1 = _gauss(lambda h: acts[l].dphi(h) ** 2, q)
        mu2 = _gauss(lambda h: acts[l].dphi(h) ** 4, q)
        mean *= net.sigma_w2[l] * mu1
        # S_{J^T J} = prod_l S_{D_l^2}(Lambda_l m) (N_{l-1}/N_l) / (sigma_l^2 (1 + Lambda_l m)) and
        # m_2/m_1^2 - 1 = -S'(0)/S(0)
        c += (N[0] / N[l + 1]) * (mu2 / mu1**2 - 1.0 - s1)
    r = N[-1] / N[0]  # m_k(J^T J) = r m_k(J J^T)
    ratio = 1.0 + c if gram == "JtJ" else (1.0 + c) * r
    if gram == "JtJ":
        mean *= r
    if net.init == "orthogonal" and len(set(N)) > 1:
        return mean, None
    return mean, mean**2 * (ratio - 1.0)


# -- checks ----------------------------------------------------------------------------------
_ATOM_Z = 3.0  # two-sided band of the finite-width atom: 3 standard deviations (as the mean check)
_BERNOULLI_MIN_SAMPLES = 3


def finite_width_atom_band(net: fpcore.Network, gram: str, n_samples: int, n_sim: int = 20000,
                           seed: int = 0) -> tuple[float, float] | None:
    """Range of the zero-eigenvalue fraction of ``n_samples`` pooled finite networks, when a law of
    ``D^2`` has an atom at 0 (``None`` otherwise: the atom is then fixed by the widths alone).

    Why KS needs it. The limit law's atom at 0 is ``1 - min(1, min_l p_l N_l / N_0)`` (MATH.md
    section 3). In a network of finite width the rank of ``J`` is ``min(N_0, ..., N_L, K_1,
    ..., K_L)`` (generic weights), where ``K_l ~ Binomial(N_l, p_l)`` counts the units of layer
    ``l`` with ``phi' != 0``. So the Monte Carlo atom fluctuates by ``sqrt(p (1 - p) / N)`` per
    layer (0.016 at ``N = 1000``, ``p = 1/2``), and the minimum over ``L`` layers is biased
    below ``p N``: for the square depth-6 ReLU net of seed 2's draw [12] the pooled atom is
    ``0.520 +- 0.010`` at ``N = 1000`` against 0.5 in the limit, so the limit law is 0.02 or more
    from every such sample in KS, at the floor and just above it (seeds 0-2 simulated 0.518,
    0.532, 0.534). Pooling more networks shrinks the fluctuation as ``1/sqrt(n)`` but not the
    bias, which goes as ``1/sqrt(N)``, slower than the ``L/N`` of the continuous part. This is a
    property of the finite networks, not an error of the law; like neural-tangents, which tests
    Monte Carlo against analytic results within a tolerance tied to the sample size, the KS of
    such networks leaves out the part of the difference that this band explains
    (:func:`ks_with_atom_band`): the band is the ``Phi(-3)`` and ``Phi(3)`` quantiles of the
    pooled zero fraction, by drawing the ``K_l`` ``n_sim`` times (exact model of the rank, no
    fitted constant), and only the difference observed at the floor is explained. The rank change moves that
    mass between the atom and the continuous part near 0: shifting every ``p_l`` of hard-tanh
    nets by 0.02 (depth 1, 3, 4 and 6; square, tapered, expanding) moves the limit law's CDF by
    0.0199 to 0.0204 in sup norm, i.e. by the change of the atom.
    """
    laws = fpcore.mean_field(net).laws
    p = np.array([min(1.0, float(law.p_nonzero)) for law in laws])
    if np.all(p >= 1.0 - 1e-9):  # (GELU's p_nonzero is 1 - 1e-11: quadrature, no atom)
        return None
    p[p >= 1.0 - 1e-9] = 1.0
    N = np.asarray(net.widths)
    dim = int(N[0] if gram == "JtJ" else N[-1])
    rng = np.random.default_rng(seed)
    K = rng.binomial(N[1:], p, size=(n_sim, n_samples, p.size))
    rank = np.minimum(int(N.min()), K.min(axis=-1))
    zero = 1.0 - np.minimum(rank, dim) / dim
    pooled = zero.mean(axis=1)
    lo, hi = np.quantile(pooled, [0.5 * math.erfc(_ATOM_Z / math.sqrt(2)), 1 - 0.5 * math.erfc(_ATOM_Z / math.sqrt(2))])
    return float(lo), float(hi)


def _has_zero_atoms(net: fpcore.Network) -> bool:
    """Whether a law of ``D^2`` has an atom at 0 (ReLU, hard-tanh): its mass fluctuates with the
    width (:func:`finite_width_atom_band`)."""
    return any(float(law.p_nonzero) < 1.0 - 1e-9 for law in fpcore.mean_field(net).laws)


_Z3_TWO_SIDED = math.erfc(3.0 / math.sqrt(2.0))  # 0.0027: the two-sided level of "3 standard errors"


def iid_eigenvalues(net: fpcore.Network) -> bool:
    """Whether each Monte Carlo network's non-zero eigenvalues are exact iid draws of the law.

    One orthogonal layer with orthonormal rows (``N_1 <= N_0``): ``W W^T = g^2 I``, so
    ``J J^T = g^2 D^2`` exactly, and ``h = g O x + b`` with ``O x ~ N(0, q_0 I)`` exactly (Haar
    rows), so the ``N_1`` eigenvalues are iid draws of ``g^2 phi'(h)^2``, ``h ~ N(0, q_1)``, at
    every width (the library's push-forward path, :mod:`fpcore._pushforward`). Nothing smooths
    them: their KS distance to the exact law follows Kolmogorov's distribution, of median
    ``0.83 / sqrt(n)`` (0.013 for the 4016 eigenvalues of seed 13's draw [46], which the fixed
    0.02 called a silent failure at 0.0227, p = 0.03 under the exact law)."""
    N = net.widths
    return net.depth == 1 and net.init == "orthogonal" and N[1] <= N[0]


def ks_tolerance(net: fpcore.Network, gram: str, n_pool: int, ks_tol: float) -> float:
    """The KS tolerance for ``n_pool`` pooled networks: ``ks_tol``, or, where the eigenvalues are
    iid draws of the law (:func:`iid_eigenvalues`), the larger of it and Kolmogorov's critical
    value at the two-sided 3-sigma level (0.27 %) for that many draws, times the non-zero part's
    mass (``N_1 / N_0`` for ``J^T J``: the exact zeros pad it).

    Elsewhere the free convolution makes the eigenvalues far more rigid than iid draws, and the
    critical value for iid draws would hide wrong laws: there ``ks_tol`` stays."""
    if not iid_eigenvalues(net):
        return ks_tol
    N = net.widths
    n = n_pool * N[1]
    weight = N[1] / N[0] if gram == "JtJ" else 1.0
    return max(ks_tol, weight * float(stats.kstwo.isf(_Z3_TWO_SIDED, n)))


def mean_verdict(per_net: np.ndarray, ev: np.ndarray, mean: float) -> tuple[float, float, float]:
    """``(|MC mean - mean| / SE, SE, critical value)`` for pooled networks (``per_net``: each
    network's eigenvalue mean).

    The SE is the larger of the between-network one and the pooled-sample one (as before), and
    the critical value is Student's ``t`` with ``n - 1`` degrees of freedom at the two-sided
    3-sigma level (0.27 %): the between-network SE of ``n`` networks is itself an estimate, and
    with 4 networks ``P(|t_3| > 3) = 0.058``, not 0.0027 (seed 13's draw [70], orthogonal SELU:
    four nets 0.276, 0.265, 0.253, 0.255 against the law's 0.24452 called "3.1 SE", the first
    of them picked by the 1-network screen; 200 fresh networks gave 0.24435 +- 0.0008, per-network
    means near normal with sd 0.0113)."""
    n = per_net.size
    se_between = float(np.std(per_net, ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    se_pooled = float(np.std(ev, ddof=1) / math.sqrt(ev.size))
    se = max(se_between, se_pooled, 1e-9 * abs(mean))  # (an exact isometry has std 0)
    crit = float(stats.t.isf(0.5 * _Z3_TWO_SIDED, n - 1)) if se == se_between and n > 1 else 3.0
    return abs(float(ev.mean()) - mean) / se, se, crit


def ks_above_floor(spec, ev: np.ndarray) -> tuple[float, float]:
    """KS distance over ``t >= floor`` (and the mass below the floor), and the floor."""
    at_floor, above, floor = _ks_parts(spec, ev)
    return max(abs(at_floor), above), floor


def _ks_parts(spec, ev: np.ndarray) -> tuple[float, float, float]:
    """``F_n(floor) - F(floor)`` (signed: the mass at or below the floor), ``sup |F - F_n|`` over
    ``t > floor``, and the floor."""
    ev = np.asarray(ev, dtype=float)
    # samples at an atom away from 0 carry round-off: snap them onto it (as fpcore.ks_distance)
    for a, _ in spec.atoms:
        if a > 0:
            ev = np.where(np.abs(ev - a) <= 1e-9 * a, a, ev)
    ev = np.sort(ev)
    n = ev.size
    floor = _FLOOR * max(float(ev[-1]), 1e-300)
    t = np.unique(np.r_[floor, ev[ev > floor]])
    ecdf_at = np.searchsorted(ev, t, side="right") / n
    ecdf_before = np.searchsorted(ev, t, side="left") / n
    f_at = np.asarray(spec.cdf(t), dtype=float)
    f_before = np.asarray(spec.cdf(np.nextafter(t[1:], -np.inf)), dtype=float)
    d = np.abs(f_at[1:] - ecdf_at[1:])
    if f_before.size:
        d = np.r_[d, np.abs(f_before - ecdf_before[1:])]
    return float(ecdf_at[0] - f_at[0]), float(np.max(d)) if d.size else 0.0, floor


def ks_with_atom_band(spec, ev: np.ndarray, band: tuple[float, float] | None) -> tuple[float, float]:
    """KS above the floor less what the finite-width atom at 0 explains (:func:`finite_width_atom_band`),
    and that explained part.

    The Monte Carlo mass at or below the floor exceeds the law's ``F(floor)`` by the pooled
    networks' atom excess ``a_N - atom``. The part of the difference ``F_n(floor) - F(floor)``
    that lies in the band's range ``[lo - atom, hi - atom]`` is explained; what lies outside it
    counts in full. Above the floor the same rank change has moved that much mass between the
    atom and the continuous part (moving ``p_l`` by ``delta`` moves ``F`` by ``delta`` in sup
    norm: see :func:`finite_width_atom_band`), so the KS there is reduced by the explained
    part, never by more than was observed in this sample.
    """
    at_floor, above, _ = _ks_parts(spec, ev)
    if band is None:
        return max(abs(at_floor), above), 0.0
    explained = min(max(at_floor, band[0] - spec.atom), band[1] - spec.atom)
    return max(abs(at_floor - explained), above - abs(explained)), abs(explained)


def _fine_grid(spec, n: int = 600) -> np.ndarray:
    lm = max(spec.lambda_max, 1e-300)
    g = np.r_[np.geomspace(1e-14 * lm, lm, n), np.linspace(0.0, 1.02 * lm, n)[1:], spec.x]
    for lo, hi in spec.support:
        g = np.r_[g, np.linspace(lo, hi, max(n // 12, 3))[1:-1]]
    return np.unique(g)


@dataclass
class Result:
    idx: int
    desc: str
    silent: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)  # failed checks where the library warned
    ks: float = float("nan")
    seconds: float = 0.0


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def _caused_by_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is this script's own alarm: raised inside a compiled (numba) call, the
    alarm's exception surfaces as a ``SystemError`` ("returned a result with an exception set")
    whose cause chain ends in :class:`_Timeout`; that is a timeout, not a crash of the library."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, _Timeout):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _untimed(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with this script's per-network alarm paused: the time limit is the
    library's (``--per-net-seconds``), not the Monte Carlo sampling's (which is bounded by the
    network's size and the number of pooled samples)."""
    left = signal.alarm(0) if hasattr(signal, "SIGALRM") else 0
    try:
        return fn(*args, **kwargs)
    finally:
        if left:
            signal.alarm(left)


def check(net: fpcore.Network, gram: str, n_samples: int, seed: int, ks_tol: float, n_points: int = 300,
          n_fine: int = 600, max_samples: int = 4, mean_samples: int = 16) -> tuple[list, list, float]:
    """Run every check on one network: (failed checks, flags, KS). A flag starting with
    ``"warned:"`` or ending in ``"uncertified"`` means the library said some of its values are
    not guaranteed (:func:`run` then counts the failed checks as warned, not silent)."""
    silent: list[str] = []
    flags: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            spec = fpcore.jacobian_spectrum(net, gram=gram, n_points=n_points)
        except ValueError as exc:
            return silent, [f"refused: {str(exc)[:80]}"], float("nan")
        if spec.stats.n_uncertified:
            flags.append(f"{spec.stats.n_uncertified} uncertified")
        # monotone CDF
        g = _fine_grid(spec, n_fine)
        F = np.asarray(spec.cdf(g))
        dF = np.diff(F)
        if np.any(dF < -1e-9) or np.any(~np.isfinite(F)):
            k = int(np.argmin(dF))
            silent.append(f"non-monotone: F({g[k]:.3g})={F[k]:.5f} > F({g[k + 1]:.3g})={F[k + 1]:.5f}")
        # quantiles
        # which quantiles the library says are upper bounds only (far below the grid: the
        # smallest p); those p are asked again one at a time (the points are memoised: cheap)
        bound = np.zeros(_QUANTILE_P.shape, dtype=bool)

        def _quantile(p):
            with warnings.catch_warnings(record=True) as qw:
                warnings.simplefilter("always")
                q = np.asarray(spec.quantile(p))
            caught.extend(w for w in qw if "upper bound of the quantile" not in str(w.message))
            return q, any("upper bound of the quantile" in str(w.message) for w in qw)

        qs, warned_bound = _quantile(_QUANTILE_P)
        for k in range(_QUANTILE_P.size if warned_bound else 0):
            bound[k] = _quantile(_QUANTILE_P[k])[1]
            # the warned p are the smallest ones above the atom at 0 (those inside it return 0
            # exactly, unwarned): stop at the first unwarned p above the atom
            if not bound[k] and qs[k] > 0:
                break
        if np.any(bound):
            flags.append(f"quantile upper bound (warned) for p = {', '.join(f'{v:g}' for v in _QUANTILE_P[bound])}")
        Fq = np.asarray(spec.cdf(qs))
        bad = np.flatnonzero(Fq < _QUANTILE_P - 1e-12)
        if bad.size:
            k = bad[0]
            silent.append(f"quantile: cdf(quantile({_QUANTILE_P[k]:g})={qs[k]:.3g}) = {Fq[k]:.4g}")
        below = np.asarray(spec.cdf(qs * (1.0 - 1e-6)))
        notmin = np.flatnonzero((qs > 0) & (below >= _QUANTILE_P + 1e-9) & ~bound)
        if notmin.size:
            k = notmin[0]
            silent.append(f"quantile not minimal: p={_QUANTILE_P[k]:g} x={qs[k]:.3g} F(x-)={below[k]:.4g}")
        # independent moments
        mean_ind, var_ind = independent_moments(net, gram)
        if not math.isclose(spec.mean, mean_ind, rel_tol=1e-6):
            silent.append(f"mean {spec.mean:.6g} vs independent {mean_ind:.6g}")
        if var_ind is not None and var_ind > 1e-12 * mean_ind**2:
            try:
                v = spec.variance
                if not math.isclose(v, var_ind, rel_tol=1e-4):
                    silent.append(f"variance {v:.6g} vs independent {var_ind:.6g}")
            except ValueError as exc:
                flags.append(f"variance refused: {str(exc)[:60]}")
        # Monte Carlo: a failed KS or mean with fewer than max_samples networks is measured again
        # on a pool of max_samples (see the module docstring: pooling shrinks sampling noise, not
        # a wrong law)
        n_first = max(n_samples, _BERNOULLI_MIN_SAMPLES) if _has_zero_atoms(net) else n_samples
        try:
            ev = _untimed(fpcore.sample_jacobian_eigenvalues, net, gram=gram, seed=seed, n_samples=n_first)
        except ValueError as exc:
            return silent, flags + [f"MC refused: {str(exc)[:60]}"], float("nan")
        n_pool = n_first
        while True:
            mc_fail = []
            per = ev.reshape(n_pool, -1).mean(axis=1)
            z, se, _ = mean_verdict(per, ev, spec.mean)
            mean_failed = z > 3.0  # a screen; a failure is measured again on mean_samples networks below
            if mean_failed:
                mc_fail.append(f"MC mean {ev.mean():.5g} vs {spec.mean:.5g} ({z:.1f} SE, {n_pool} samples)")
            band = finite_width_atom_band(net, gram, n_pool, seed=seed)
            ks, explained = ks_with_atom_band(spec, ev, band)
            # (Kolmogorov's critical value decides on the full pool only: a single network's
            # 0.057 would let a 4 % error of an iid law through unpooled)
            tol = ks_tolerance(net, gram, n_pool, ks_tol) if n_pool >= max_samples else ks_tol
            if ks > tol:
                why = f" (less {explained:.3f} explained by the finite-width atom at 0)" if explained else ""
                mc_fail.append(f"KS {ks:.3f} > {tol:.3g}{why} ({n_pool} samples)")
            if not mc_fail or n_pool >= max_samples:
                break
            try:
                more = _untimed(fpcore.sample_jacobian_eigenvalues, net, gram=gram, seed=seed + 7919,
                               n_samples=max_samples - n_pool)
            except ValueError as exc:
                return silent, flags + [f"MC refused: {str(exc)[:60]}"], float("nan")
            ev, n_pool = np.concatenate([ev, more]), max_samples
        if mean_failed and mean_samples > n_pool:
            # the verdict on the mean: a fresh pool (the failed one was picked for failing), its
            # SE from mean_samples networks and Student's t critical value (:func:`mean_verdict`)
            try:
                ev2 = _untimed(fpcore.sample_jacobian_eigenvalues, net, gram=gram, seed=seed + 104729,
                               n_samples=mean_samples)
            except ValueError as exc:
                return silent, flags + [f"MC refused: {str(exc)[:60]}"], float("nan")
            z, se, crit = mean_verdict(ev2.reshape(mean_samples, -1).mean(axis=1), ev2, spec.mean)
            mc_fail = [f for f in mc_fail if not f.startswith("MC mean")]
            if z > crit:
                mc_fail.append(f"MC mean {ev2.mean():.5g} vs {spec.mean:.5g} ({z:.1f} SE > {crit:.2f},"
                               f" {mean_samples} fresh samples)")
        silent.extend(mc_fail)
        if any(issubclass(w.category, RuntimeWarning) and "certified" in str(w.message) for w in caught):
            flags.append("warned: points not certified/verified")
    return silent, flags, ks


def run(n: int, seed: int, max_seconds: float, names: list[str], min_width: int, n_samples: int,
        ks_tol: float, per_net_seconds: float, max_depth: int = 30, out=sys.stdout, spread: float = 0.6,
        n_points: int = 300, n_fine: int = 600, only: set[int] | None = None,
        max_samples: int = 4, mean_samples: int = 16) -> list[Result]:
    """Draw ``n`` networks and check each (``only``: check just the draws with these indices,
    the others are drawn, to keep the sequence, and skipped)."""
    rng = np.random.default_rng(seed)
    n_drawn = 0
    t_start = time.perf_counter()
    results: list[Result] = []
    use_alarm = hasattr(signal, "SIGALRM") and per_net_seconds > 0
    if use_alarm:
        old = signal.signal(signal.SIGALRM, _alarm)
    try:
        i = 0
        while n_drawn < n and time.perf_counter() - t_start < max_seconds:
            i += 1
            try:
                net, gram, shape = draw_network(rng, names, min_width, max_depth, spread)
                fpcore.mean_field(net)
            except ValueError:
                continue  # a draw without a mean field (no fixed point, overflow): draw again
            except Exception as exc:  # noqa: BLE001 - a crash of the mean field is a finding too
                n_drawn += 1
                if only is not None and n_drawn - 1 not in only:
                    continue
                res = Result(n_drawn - 1, f"{net!r} gram={gram!r} [{shape}]")
                res.silent.append(f"crash in mean_field {type(exc).__name__}: {str(exc)[:80]}")
                results.append(res)
                print(f"[{res.idx:3d}] FAIL {res.desc}\n        {res.silent[0]}", file=out, flush=True)
                continue
            n_drawn += 1
            if only is not None and n_drawn - 1 not in only:
                continue
            desc = f"{net!r} gram={gram!r} [{shape}]"
            res = Result(n_drawn - 1, desc)
            t0 = time.perf_counter()
            if use_alarm:
                signal.alarm(int(per_net_seconds))
            try:
                res.silent, res.flags, res.ks = check(net, gram, n_samples, seed + i, ks_tol, n_points, n_fine,
                                                      max(max_samples, n_samples), mean_samples)
            except _Timeout:
                res.flags.append(f"timeout > {per_net_seconds:.0f} s")
            except Exception as exc:  # noqa: BLE001 - every crash is a finding
                if _caused_by_timeout(exc):
                    res.flags.append(f"timeout > {per_net_seconds:.0f} s (inside compiled code)")
                else:
                    res.silent.append(f"crash {type(exc).__name__}: {str(exc)[:80]}")
            finally:
                if use_alarm:
                    signal.alarm(0)
            res.seconds = time.perf_counter() - t0
            if res.silent and _library_warned(res.flags):
                res.warned, res.silent = [s for s in res.silent if not s.startswith("crash")], [
                    s for s in res.silent if s.startswith("crash")]
            results.append(res)
            status = "FAIL" if res.silent else ("warn" if res.warned else ("flag" if res.flags else "ok"))
            print(f"[{res.idx:3d}] {status:4s} ks={res.ks:.4f} {res.seconds:6.1f}s {desc}", file=out, flush=True)
            for s in res.silent:
                print(f"        FAIL {s}", file=out, flush=True)
            for s in res.warned:
                print(f"        fail (warned) {s}", file=out, flush=True)
            for s in res.flags:
                print(f"        flag {s}", file=out, flush=True)
    finally:
        if use_alarm:
            signal.signal(signal.SIGALRM, old)
    return results


def _library_warned(flags: list[str]) -> bool:
    """Whether the library said some values of this network are not guaranteed."""
    return any(f.startswith("warned:") or f.endswith("uncertified") for f in flags)


_CHECKS = [
    ("non-monotone CDF", ("non-monotone",)),
    ("quantile violations (cdf(q) < p)", ("quantile:",)),
    ("quantile not minimal (F jumps/decreases there)", ("quantile not minimal",)),
    ("independent mean/variance", ("mean", "variance")),
    ("MC mean > 3 SE", ("MC mean",)),
    ("KS above floor > tol", ("KS",)),
    ("crashes", ("crash",)),
]


def summary(results: list[Result]) -> str:
    cats = {
        "networks": len(results),
        "ok": sum(1 for r in results if not r.silent and not r.warned and not r.flags),
        "flagged only (library said so / refused / timeout)": sum(
            1 for r in results if r.flags and not r.silent and not r.warned),
        "warned failures (a check failed, the library warned)": sum(1 for r in results if r.warned and not r.silent),
    }
    for name, prefixes in _CHECKS:
        cats[f"  warned: {name}"] = sum(any(s.startswith(prefixes) for s in r.warned) for r in results)
    cats["silent failures (a check failed, no warning)"] = sum(1 for r in results if r.silent)
    for name, prefixes in _CHECKS:
        cats[f"  silent: {name}"] = sum(any(s.startswith(prefixes) for s in r.silent) for r in results)
    ks = np.array([r.ks for r in results if math.isfinite(r.ks)])
    lines = [f"{k:56s} {v:5d}" for k, v in cats.items()]
    if ks.size:
        lines.append(f"{'KS median / max':56s} {np.median(ks):.4f} / {ks.max():.4f}")
    lines.append(f"{'seconds total':56s} {sum(r.seconds for r in results):.0f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=150, help="number of networks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=7200.0, help="stop drawing after this many seconds")
    ap.add_argument("--per-net-seconds", type=float, default=300.0,
                    help="give up on one network after this many seconds of library calls (Monte Carlo not counted)")
    ap.add_argument("--activations", default=",".join(fpcore.ACTIVATIONS))
    ap.add_argument("--min-width", type=int, default=1000)
    ap.add_argument("--max-depth", type=int, default=30)
    ap.add_argument("--samples", type=int, default=2, help="networks pooled per Monte Carlo")
    ap.add_argument("--max-samples", type=int, default=4,
                    help="networks pooled when a Monte Carlo check fails with fewer (measured again)")
    ap.add_argument("--mean-samples", type=int, default=16,
                    help="fresh networks that decide a Monte Carlo mean that failed on --max-samples (Student's t)")
    ap.add_argument("--ks", type=float, default=0.02, help="KS tolerance above the float floor")
    ap.add_argument("--spread", type=float, default=0.6, help="widths from min-width to (1 + spread) min-width")
    ap.add_argument("--n-points", type=int, default=300, help="grid points of each spectrum")
    ap.add_argument("--n-fine", type=int, default=600, help="points of the CDF monotonicity grid (per spacing)")
    ap.add_argument("--only", default="", help="comma-separated draw indices to check (the others are skipped)")
    a = ap.parse_args(argv)
    names = [s for s in a.activations.split(",") if s]
    results = run(a.n, a.seed, a.max_seconds, names, a.min_width, a.samples, a.ks, a.per_net_seconds, a.max_depth,
                  spread=a.spread, n_points=a.n_points, n_fine=a.n_fine,
                  only={int(v) for v in a.only.split(",") if v} or None, max_samples=a.max_samples,
                  mean_samples=a.mean_samples)
    print("\nFailures and flags:")
    for r in results:
        if r.silent or r.warned or r.flags:
            print(f"[{r.idx:3d}] {r.desc}")
            for s in r.silent:
                print(f"      FAIL {s}")
            for s in r.warned:
                print(f"      fail (warned) {s}")
            for s in r.flags:
                print(f"      flag {s}")
    print("\nSummary:")
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
