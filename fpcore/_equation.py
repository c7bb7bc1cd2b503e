"""The equation ``M^{-1}(m) = z`` of a network's Jacobian spectrum (MATH.md sections 2-3).

The S-transform of ``J^T J`` (or ``J J^T``) is assembled layer by layer with the
multiplicative rule ``S_ab = S_a S_b`` and the dimension-change rule
``S_A(m) = (1 + m)/(c + m) S_B(m/c)``. Every building block is a ratio of linear factors in
``m`` except the S-transform of a ``D^2`` law that is not Bernoulli; for those we keep one
unknown per (law, scale) group, ``u_g = chi_g(k_g m)``, i.e. ``psi_g(u_g) = k_g m``.

The result is

    M^{-1}(m) = C * prod_j (m - a_j)^{e_j} * prod_g u_g^{-n_g}

with real ``a_j <= 0``, integer exponents ``e_j`` and multiplicities ``n_g``: product form, never
expanded, so depth 500 neither overflows nor loses digits (identical layers share one factor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from ._activations import N_SHORT, D2Law
from ._meanfield import MeanField, mean_field
from ._network import Network, _check_gram

__all__ = ["Equation", "build_equation"]


@dataclass(frozen=True)
class UGroup:
    """A non-rational ``D^2`` factor: ``psi(u) = sum_i w_i u v_i / (1 - u v_i) = k m``."""

    values: np.ndarray
    weights: np.ndarray
    k: float
    n: int
    law: D2Law

    def psi(self, u, v=None, w=None):
        """``psi(u)`` and ``psi'(u)`` for arrays ``u`` (any shape); atoms ``v``, ``w`` (default the
        real ones)."""
        if v is None:
            v, w = self.values, self.weights
        t = 1.0 - u[..., None] * v
        r = v / t
        return np.sum(w * u[..., None] * r, axis=-1), np.sum(w * r / t, axis=-1)

    def log_potential(self, u):
        """``E[log(1 - u D^2)]`` (principal branch; ``Im(1 - u D^2) > 0`` on the physical branch)."""
        return np.sum(self.weights * np.log(1.0 - u[..., None] * self.values), axis=-1)


@dataclass(frozen=True)
class Equation:
    """``M^{-1}(m) = C prod_j (m - a_j)^{e_j} prod_g u_g^{-n_g}`` for one network and Gram choice."""

    log_c: float
    roots: np.ndarray  # a_j, sorted decreasing (0 first when present)
    exps: np.ndarray  # e_j (float array of integers)
    ugroups: tuple[UGroup, ...]
    mean: float
    atoms: tuple[tuple[float, float], ...]  # (location, mass), location 0 first when present
    dim: int
    mean_field: MeanField
    smooth_path: bool = False  # Gaussian weights: M(x + i0) varies smoothly along the grid
    # Gaussian weights and square layers: real atoms of the D^2 laws hold where they match the
    # moments (D2Law.contour_needed false). With rectangular layers the spectrum has a hard lower
    # edge where u_g nears the laws' cut: the real atoms there split off spurious intervals and
    # F decreased (tapered Gaussian tanh / erf, issue 10), so those nets take the contour rules.
    real_atoms_ok: bool = False

    @cached_property
    def packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The ``D^2`` groups as padded arrays: atoms ``V`` and weights ``W`` (G, K; padding has
        weight 0), scales ``k`` and multiplicities ``n`` (G,)."""
        V, W = _padded([(g.values, g.weights) for g in self.ugroups])
        k = np.array([g.k for g in self.ugroups], dtype=float)
        n = np.array([float(g.n) for g in self.ugroups])
        return V, W, k, n

    @cached_property
    def packed_complex(self) -> tuple[np.ndarray, np.ndarray]:
        """:attr:`packed`'s ``V``, ``W`` for the complex-plane solver: each continuous law by its
        contour rule (complex atoms, :attr:`D2Law.cvalues`) where it has one, accurate up to the
        real axis; the real atoms otherwise. Complex arrays."""
        if not self.uses_contour:
            V, W, _, _ = self.packed
            return V, W
        rules = [(g.law.cvalues, g.law.cweights) if self._contour_in_use(g) else (g.values, g.weights)
                 for g in self.ugroups]
        V, W = _padded(rules, complex)
        return V, W

    def _contour_in_use(self, g: UGroup) -> bool:
        """Whether :attr:`packed_complex` takes group ``g``'s contour rule."""
        return bool(g.law.has_contour and (g.law.contour_needed or not self.real_atoms_ok)
                    and g.law.cvalues is not None)

    @cached_property
    def tail_short(self) -> tuple | None:
        """What :func:`fpcore._fastchain.tail_mass_mixed` needs to take a group's log potential
        from its short real rule where that stands for its contour rule: the short rules ``Vs``,
        ``Ws`` (complex, zero-padded), ``check`` (the groups whose contour rule is in use and has a
        table :attr:`D2Law.short_check`) and the tables ``vmax``, ``rhos``, ``e_psi`` (G rows;
        zeros where ``check`` is false); ``None`` when no group has such a rule."""
        if not self.uses_contour:
            return None
        checks = [g.law.short_check if self._contour_in_use(g) else None for g in self.ugroups]
        if not any(c is not None for c in checks):
            return None
        L = max(c[1].size for c in checks if c is not None)
        G = len(self.ugroups)
        check = np.array([c is not None for c in checks])
        vmax, rhos, e_psi = np.zeros(G), np.zeros((G, L)), np.zeros((G, L))
        rules = []
        for g, (grp, c) in enumerate(zip(self.ugroups, checks)):
            if c is None or c[1].size != L:
                check[g] = False
                rules.append((np.zeros(0), np.zeros(0)))
                continue
            vmax[g], rhos[g], e_psi[g] = c
            rules.append(grp.law.short)
        Vs, Ws = _padded(rules, complex)
        return Vs, Ws, check, vmax, rhos, e_psi

    @cached_property
    def lumps(self) -> tuple[np.ndarray, np.ndarray]:
        """``(v_lump, mass)`` per group: the contour rules lump the law below ``v_lump =
        _T_MIN max|f|`` into real atoms of total mass ``mass`` (exact mass and mean), which stand
        for that part only while ``|u_g| v_lump << 1`` (:func:`fpcore._lilypad.lumps_ok`). Zeros
        where a group has no contour rule."""
        from ._activations import _T_MIN

        G = len(self.ugroups)
        vl, ms = np.zeros(G), np.zeros(G)
        if self.uses_contour:
            V, W = self.packed_complex
            for g in range(G):
                vmax = float(np.max(np.abs(V[g]))) if V.shape[1] else 0.0
                if not np.iscomplexobj(V) or not np.any(V[g].imag != 0):
                    continue  # real atoms: no contour rule, no lump
                lump = (V[g].imag == 0) & (V[g].real > 0) & (V[g].real <= _T_MIN * vmax * (1 + 1e-9))
                vl[g], ms[g] = _T_MIN * vmax, float(np.sum(W[g][lump].real))
        return vl, ms

    @cached_property
    def deep_tails(self) -> "Equation | None":
        """The same equation with each contour law's path run on far below ``_T_MIN f_max``
        (:meth:`D2Law.deep_tails`), so that its lumped tails are too light to matter
        (:func:`fpcore._lilypad.lump_cdf_bound`); ``None`` when no law has such a rule. Longer
        rules: used only below the grid, where the short lumps no longer stand for the law
        (sigmoid at ``q = 94``: 3 % of the law of ``D^2`` lies below its lump at ``1e-19``)."""
        if not self.uses_contour:
            return None
        groups, changed = [], False
        for g in self.ugroups:
            deep = g.law.deep_tails() if g.law.has_contour else None
            if deep is not None and deep.cvalues is not None:
                groups.append(UGroup(values=g.values, weights=g.weights, k=g.k, n=g.n, law=deep))
                changed = True
            else:
                groups.append(g)
        if not changed:
            return None
        return replace(self, ugroups=tuple(groups))

    @cached_property
    def uses_contour(self) -> bool:
        """Whether the complex-plane solver uses contour rules: always with orthogonal weights
        (no Marchenko-Pastur factor keeps ``u_g`` off the cut), with Gaussian weights where a
        law's real atoms are not accurate enough (:attr:`D2Law.contour_needed`)."""
        return any(g.law.has_contour and (g.law.contour_needed or not self.real_atoms_ok)
                   and g.law.cvalues is not None for g in self.ugroups)

    @cached_property
    def packed_short(self) -> tuple[np.ndarray, np.ndarray]:
        """:attr:`packed`'s ``V``, ``W`` with each law replaced by its short Gauss rule
        (:attr:`D2Law.short`)."""
        # (with contour rules in use, a group on its real atoms keeps them: they are the complex-
        # plane solver's rule for it, so the short rules' equation differs only in the contour groups)
        keep = [self.uses_contour and not self._contour_in_use(g) for g in self.ugroups]
        return _padded([g.law.short if not kp and (len(g.values) > N_SHORT or g.law._short_src is not None)
                        else (g.values, g.weights) for g, kp in zip(self.ugroups, keep)])

    @property
    def rational(self) -> bool:
        return not self.ugroups

    @property
    def ep(self) -> np.ndarray:
        return np.maximum(self.exps, 0.0)

    @property
    def en(self) -> np.ndarray:
        return np.maximum(-self.exps, 0.0)

    @property
    def degree_at_infinity(self) -> float:
        return float(self.exps.sum())

    def inverse_real(self, m: np.ndarray) -> np.ndarray:
        """``M^{-1}(m)`` for real ``m`` in a rational equation (used for edges)."""
        m = np.asarray(m, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = m[..., None] - self.roots
            sign = np.prod(np.sign(d) ** self.exps, axis=-1)
            return sign * np.exp(self.log_c + np.sum(self.exps * np.log(np.abs(d)), axis=-1))


def _padded(rules: list[tuple[np.ndarray, np.ndarray]], dtype=float) -> tuple[np.ndarray, np.ndarray]:
    """Atoms and weights of several laws as (G, K) arrays, zero-padded (weight 0 adds nothing)."""
    K = max((len(v) for v, _ in rules), default=0)
    V, W = np.zeros((len(rules), K), dtype=dtype), np.zeros((len(rules), K), dtype=dtype)
    for i, (v, w) in enumerate(rules):
        V[i, : len(v)] = v
        W[i, : len(v)] = w
    return V, W


class _RatS:
    """A product ``exp(logc) prod (m - a)^e prod_g S_{D_g^2}(k_g m)`` of S-transform factors.

    ``laws`` lists the layers whose ``D^2`` factor is not rational; their scales ``k`` are not
    carried along: each dimension change from ``n'`` to ``n`` dimensions divides a factor's ``k``
    by ``n'/n``, so the factor of layer ``l`` (``k = 1`` in its own ``N_l`` dimensions) ends with
    ``k = dim / N_l`` exactly (telescoping), which :func:`build_equation` sets. (Rescaling the list
    at each of the ``2 L`` dimension changes cost O(L^2): 0.2 s at ``L = 1000``.)"""

    __slots__ = ("logc", "roots", "laws")

    def __init__(self, logc=0.0, roots=None, laws=None):
        self.logc = logc
        self.roots: dict[float, float] = dict(roots or {})
        self.laws: list[int] = list(laws or [])  # layer indices

    def mul(self, other: "_RatS") -> "_RatS":
        # merge the shorter list of roots into the longer (each merge scans the longer one)
        big, small = (self, other) if len(self.roots) >= len(other.roots) else (other, self)
        out = _RatS(self.logc + other.logc, big.roots, self.laws + other.laws)
        for a, e in small.roots.items():
            _add_root(out.roots, a, e)
        return out

    def subst(self, c: float) -> "_RatS":
        """``S(m / c)``."""
        # distinct roots stay distinct (apart by more than the merge tolerance) when all are
        # scaled by c: no merging needed
        out = _RatS(self.logc, {a * c: e for a, e in self.roots.items()}, self.laws)
        out.logc -= sum(self.roots.values()) * math.log(c)
        return out

    def dimchange(self, c: float) -> "_RatS":
        """S-transform in ``n`` dimensions from the one in ``n' = c n`` dimensions."""
        out = self.subst(c)
        _add_root(out.roots, -1.0, 1.0)
        _add_root(out.roots, -c, -1.0)
        return out


def _add_root(roots: dict, a: float, e: float) -> None:
    # Roots built from width ratios agree to rounding only: merge within a relative 1e-12.
    if len(roots) > 32:  # deep nets with one root per layer: one vectorised scan
        keys = np.fromiter(roots, dtype=float, count=len(roots))
        hit = np.flatnonzero(np.abs(a - keys) <= 1e-12 * np.maximum(np.maximum(1.0, abs(a)), np.abs(keys)))
        if hit.size:
            b = float(keys[hit[0]])
            roots[b] += e
            if roots[b] == 0:
                del roots[b]
        else:
            roots[a] = e
        return
    # (d <= 1e-12 max(1, |a|, |b|) without max() and with the exact hit first: 3/4 of
    # build_equation's time went to this loop's builtins)
    tol = 1e-12 * abs(a) if abs(a) > 1.0 else 1e-12
    for b in ([a] if a in roots else list(roots)):
        d = abs(a - b)
        if d <= tol or d <= 1e-12 * abs(b):
            roots[b] += e
            if roots[b] == 0:
                del roots[b]
            return
    roots[a] = e


def _merged_roots(a: np.ndarray, e: np.ndarray) -> dict[float, float]:
    """``{root: exponent}`` of ``prod (m - a_i)^e_i``: roots within a relative 1e-12 of a cluster's
    first root (in entry order) merged into it (roots built from width ratios agree to rounding
    only, as in :func:`_add_root`), zero exponents dropped."""
    out: dict[float, float] = {}
    if a.size <= 64:
        for a_, e_ in zip(a.tolist(), e.tolist()):
            _add_root(out, a_, e_)
        return out
    order = np.argsort(a, kind="stable")
    v, w = a[order], e[order]
    i, n = 0, v.size
    while i < n:
        # the cluster starting at v[i]: every root within the tolerance of v[i] (sorted: a run)
        j = i + 1
        while j < n and v[j] - v[i] <= 1e-12 * max(1.0, abs(v[i]), abs(v[j])):
            j += 1
        tot = float(np.sum(w[i:j]))
        if tot != 0.0:
            out[float(v[i + int(np.argmin(order[i:j]))])] = tot  # (the root entered first)
        i = j
    return out


def _s_d2(law: D2Law, layer: int) -> _RatS:
    if law.kind == "bernoulli":
        p, c = law.p_nonzero, law.scale
        s = _RatS(-math.log(c))
        _add_root(s.roots, -1.0, 1.0)
        _add_root(s.roots, -p, -1.0)
        return s
    # S_{D^2}(k m) = (m + 1/k) m^{-1} u with psi(u) = k m (k = 1 here; build_equation sets k = dim / N_l)
    return _RatS(0.0, {-1.0: 1.0, 0.0: -1.0}, [layer])


def _s_wwt(init: str, sigma_w2: float, n_out: int, n_in: int) -> _RatS:
    """S-transform of ``W W^T`` (``n_out x n_out``), entries of variance ``sigma_w2 / n_in``."""
    rho = n_out / n_in
    if init == "gaussian":
        return _RatS(-math.log(sigma_w2 * rho), {-1.0 / rho: -1.0})
    g2 = sigma_w2 * max(n_out, n_in) / n_in
    if n_out <= n_in:
        return _RatS(-math.log(g2))
    s = _RatS(-math.log(g2))
    _add_root(s.roots, -1.0, 1.0)
    _add_root(s.roots, -n_in / n_out, -1.0)
    return s


_ATOM_MIN = 1e-12  # masses below this are rounding of a vanishing atom (sum exactly 1)


def _atoms_away_from_zero(net: Network, mf: MeanField, gram: str) -> list[tuple[float, float]]:
    """The atoms of the law of ``J^T J`` / ``J J^T`` away from 0 (orthogonal weights), layer by
    layer from the exact rules for atoms of free products (Bercovici and Voiculescu 1998):

    * ``mu ⊠ nu`` has an atom at ``a b != 0`` iff ``mu({a}) + nu({b}) > 1``, of mass
      ``mu({a}) + nu({b}) - 1`` (at most one pair ``(a, b)`` per point);
    * ``W A W^T`` with ``W = g O``: orthonormal columns (``N_l >= N_{l-1}``) keep the atoms of
      ``g^2 A`` with masses times ``N_{l-1} / N_l``; orthonormal rows compress ``g^2 A`` by a free
      projection of ratio ``t = N_l / N_{l-1}``, which keeps an atom of mass ``m > 1 - t`` with
      mass ``(m - 1 + t) / t``;

    and ``J_l J_l^T = D_l (W_l J_{l-1} J_{l-1}^T W_l^T) D_l`` (law ``D_l^2 ⊠ .``, the Haar
    rotations make them free). Gaussian weights have none: the Marchenko-Pastur law has no atom
    away from 0, and neither has any free product with it."""
    if net.init != "orthogonal":
        return []
    N = net.widths
    atoms = {1.0: 1.0}  # J_0 J_0^T = I in N_0 dims
    for l in range(1, net.depth + 1):
        n_in, n_out = N[l - 1], N[l]
        g2 = net.sigma_w2[l - 1] * max(n_out, n_in) / n_in
        if n_out >= n_in:
            w_atoms = {g2 * a: m * n_in / n_out for a, m in atoms.items()}
        else:
            t = n_out / n_in
            w_atoms = {g2 * a: (m - (n_in - n_out) / n_in) / t for a, m in atoms.items()
                       if m - (n_in - n_out) / n_in > _ATOM_MIN}
        new: dict[float, float] = {}
        for d, md in mf.laws[l - 1].point_masses:
            for b, mb in w_atoms.items():
                if md + mb - 1.0 > _ATOM_MIN:
                    new[d * b] = new.get(d * b, 0.0) + md + mb - 1.0
        atoms = new
        if not atoms:
            return []
    scale = 1.0 if gram == "JJt" else N[-1] / N[0]
    return sorted((a, min(m * scale, 1.0)) for a, m in atoms.items())


def build_equation(net: Network, gram: str = "JtJ", mf: MeanField | None = None) -> Equation:
    """Assemble ``M^{-1}`` for ``net`` (see module docstring)."""
    _check_gram(gram)
    mf = mean_field(net) if mf is None else mf
    N = net.widths
    L = net.depth
    # S of J_L J_L^T, layer by layer: J_l J_l^T = D_l W_l (J_{l-1} J_{l-1}^T) W_l^T D_l, i.e. in
    # N_{l-1} dims X_l = S_{W_l^T D_l^2 W_l} (the layer's few factors) times the product so far,
    # then the dimension change to N_l dims. The product's roots are not rescaled at each of the
    # 2L dimension changes (O(L^2) at depth 1000: 1.4 s of hard-tanh's 3.2 s): a root ``a`` that
    # enters in ``n`` dims ends at ``a n / dim`` in the final ``dim`` dims, and its factor
    # (m - a)^e picks up ``(n / dim)^-e`` on the way (S(m / c) = c^-e (m - a c)^e), both by
    # telescoping; the roots are merged once at the end (_merged_roots).
    dim = N[L] if gram == "JJt" else N[0]
    logc = 0.0
    ra: list[float] = []  # roots of S, each in the dims where it entered
    re_: list[float] = []  # their exponents
    rn: list[float] = []  # those dims
    laws: list[int] = []
    for l in range(1, L + 1):
        law = mf.laws[l - 1]
        inner = _s_d2(law, l - 1).mul(_s_wwt(net.init, net.sigma_w2[l - 1], N[l], N[l - 1]))
        X = inner.dimchange(N[l] / N[l - 1])  # W^T D^2 W, N_{l-1} dims
        logc += X.logc
        laws += X.laws
        for a_, e_ in X.roots.items():
            ra.append(a_), re_.append(e_), rn.append(N[l - 1])
        # dimchange to N_l dims (J_l J_l^T): (1 + m) / (c + m) with c = N_{l-1} / N_l
        ra += [-1.0, -N[l - 1] / N[l]]
        re_ += [1.0, -1.0]
        rn += [N[l], N[l]]
    if gram == "JtJ":
        ra += [-1.0, -N[L] / N[0]]
        re_ += [1.0, -1.0]
        rn += [N[0], N[0]]
    rn_ = np.asarray(rn, dtype=float) / dim
    ex = np.asarray(re_, dtype=float)
    logc -= float(np.dot(ex, np.log(rn_)))

    # M^{-1}(m) = (1 + m) m^{-1} / S(m)
    roots = _merged_roots(np.r_[np.asarray(ra, dtype=float) * rn_, -1.0, 0.0], np.r_[-ex, 1.0, -1.0])
    a = np.array(sorted(roots, reverse=True), dtype=float)
    e = np.array([roots[x] for x in a], dtype=float)
    S = _RatS(logc, None, laws[::-1])  # (the groups in the order of the old assembly: last layer first)

    groups: dict[tuple, list] = {}
    for layer in S.laws:
        lw = mf.laws[layer]
        k = dim / N[layer + 1]  # Lambda_l = N_0 / N_l for J^T J (N_L / N_l for J J^T): see _RatS
        key = (lw.key(), round(k, 12))
        if key in groups:
            groups[key][2] += 1
        else:
            groups[key] = [lw, k, 1]
    ugroups = tuple(
        UGroup(values=lw.values[lw.weights > 0], weights=lw.weights[lw.weights > 0], k=k, n=n, law=lw)
        for lw, k, n in groups.values()
    )

    # chi_l = sigma_w^2 E[D_l^2] by the mean field's quadrature, not the law's atoms: at large q
    # (SiLU with q ~ 1e10, the transition of phi' narrower than the atoms' spacing) the atoms'
    # mean was off by up to 1.2e-6 per layer and a depth-30 net's mean by 1.3e-6 (adversarial
    # seed 46, draw 12); contour rules and closed forms agree with chi to rounding.
    prod = math.prod(float(c) for c in mf.chi)
    mean = prod * (N[L] / N[0] if gram == "JtJ" else 1.0)

    # Rank bound (MATH.md section 3): rank J = min(N_0, min_l p_l N_l, min_l rank W_l).
    rank = float(N[0])
    for l in range(1, L + 1):
        rank = min(rank, mf.laws[l - 1].p_nonzero * N[l], float(min(N[l], N[l - 1])))
    # (dim - rank) / dim, not 1 - rank / dim: the mass is then the float nearest the rational
    # (N_L - N_0) / N_L, e.g. exactly 0.2 for 1000 -> 1250, not 0.19999999999999996, so that
    # quantile(0.2) = 0 sits in the atom
    atom0 = max(0.0, (dim - rank) / dim)
    atoms = [(0.0, atom0)] if atom0 > 1e-15 else []
    away = _atoms_away_from_zero(net, mf, gram)
    if away and ugroups:
        atoms += away
    elif ugroups and L == 1 and net.init == "orthogonal" and N[1] <= N[0] and mf.laws[0].kind != "continuous":
        # One orthogonal layer with orthonormal rows: J J^T = g^2 D^2 exactly, a purely atomic law
        # (J^T J adds the zero atom of the missing N_0 - N_1 directions).
        law = mf.laws[0]
        g2 = net.sigma_w2[0] * N[0] / N[0]  # g^2 = sigma_w2 max(N_1, N_0) / N_0 = sigma_w2
        scale = 1.0 if gram == "JJt" else N[1] / N[0]
        atoms = [(0.0, (N[0] - N[1]) / N[0])] if gram == "JtJ" and N[1] < N[0] else []
        atoms += [(g2 * v, w * scale) for v, w in sorted(zip(law.values, law.weights)) if w > 0]
        if atoms and atoms[0][0] == 0.0 and len(atoms) > 1 and atoms[1][0] == 0.0:
            atoms = [(0.0, atoms[0][1] + atoms[1][1])] + atoms[2:]
    elif not ugroups and e.sum() == 0:
        # M^{-1}(infinity) = C finite: a pole of M, i.e. an atom at C of mass -sum e_j a_j.
        mass = float(-np.dot(e, a))
        if mass > 1e-14:
            atoms.append((math.exp(-S.logc), min(mass, 1.0)))
    return Equation(
        log_c=-S.logc,
        roots=a,
        exps=e,
        ugroups=ugroups,
        mean=mean,
        atoms=tuple(atoms),
        dim=dim,
        mean_field=mf,
        smooth_path=net.init == "gaussian",
        real_atoms_ok=net.init == "gaussian" and len(set(net.widths)) == 1,
    )
