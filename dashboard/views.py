"""Pure view functions: results in, plot data / tables / text out.

Nothing here touches Panel, Bokeh models or a server. Each ``*_data`` function turns results into
the columns of the glyphs of one plot (plain dicts of NumPy arrays, keyed by glyph) plus its axis
ranges and labels; :mod:`dashboard.plots` draws them with Bokeh and updates the data sources in
place, so a slider move costs one data patch per glyph instead of a re-rendered plot. Every
function accepts ``None`` for a missing result and returns the same keys with empty columns.
"""

from __future__ import annotations

import functools
import io
import json
import math

import numpy as np
import pandas as pd

import fpcore

from .state import GRAMS, MonteCarlo, Result, log_axis_start

__all__ = [
    "N_DECILES",
    "density_curve",
    "density_data",
    "left_data",
    "decile_data",
    "cdf_data",
    "metrics",
    "metrics_frame",
    "meanfield_data",
    "phase_grid",
    "phase_data",
    "zplane_data",
    "mplane_data",
    "frame_caption",
    "title",
    "spectrum_csv",
    "metrics_json",
]

N_DECILES = 9
N_BASIN_COLOURS = 14  # root i is drawn with colour i % N_BASIN_COLOURS; -1 (no convergence) is grey
_EMPTY = np.zeros(0)


def _cols(**columns) -> dict:
    return {k: np.asarray(v, dtype=float) for k, v in columns.items()}


# --------------------------------------------------------------------------------------------
# Density and CDF


def density_curve(spectrum, log_x: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of the absolutely continuous part: ``rho`` on a linear axis, ``x rho`` on a log axis.

    On a log axis the density with respect to ``ln x`` (``x rho(x)``) is drawn, so that areas under
    the curve are still probabilities.
    """
    x = np.asarray(spectrum.x, float)
    y = np.asarray(spectrum.density, float)
    if log_x:
        keep = x > 0
        x, y = x[keep], x[keep] * y[keep]
    return x, y


def x_window(spectrum, log_x: bool, x_from: float | None = None) -> tuple[float, float]:
    """Axis range of the spectrum plots: the support (up to ``lambda_max``), with a margin.

    On a log axis the left end is :func:`dashboard.state.log_axis_start` (just below the solver's
    grid), or ``x_from`` when that is smaller (the user extended the axis).
    """
    x = np.asarray(spectrum.x, float)
    lmax = float(spectrum.lambda_max)
    hi = lmax if math.isfinite(lmax) and lmax > 0 else (float(x.max()) if x.size else 1.0)
    if log_x:
        lo = log_axis_start(spectrum)
        if x_from is not None and 0 < x_from < lo:
            lo = float(x_from)
        return lo, hi * 1.5
    return 0.0, hi * 1.05


def _x_from(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _mc_histogram(mc: MonteCarlo | None, lo: float, hi: float, log_x: bool, bins: int = 60) -> dict:
    if mc is None:
        return _cols(left=_EMPTY, right=_EMPTY, top=_EMPTY)
    ev = np.asarray(mc.eigenvalues, float)
    n = max(ev.size, 1)
    if log_x:
        edges = np.geomspace(lo, hi, bins + 1)
        counts, _ = np.histogram(ev, bins=edges)
        top = counts / n / np.diff(np.log(edges))  # density per unit ln(lambda), like the curve
    else:
        pos = ev[ev > 1e-9 * max(hi, 1e-300)]  # the zero eigenvalues belong to the atom
        edges = np.linspace(lo, hi, bins + 1)
        counts, _ = np.histogram(pos, bins=edges)
        top = counts / n / np.diff(edges)
    return _cols(left=edges[:-1], right=edges[1:], top=top)


def decile_data(result: Result | None, log_x: bool = True) -> dict:
    """Decile marks of the density plot: segments ``(x, y0, y1)`` from the axis up to the curve."""
    if result is None:
        return _cols(x=_EMPTY, y0=_EMPTY, y1=_EMPTY)
    x, y = density_curve(result.spectrum, log_x)
    deciles = np.asarray(result.deciles, float)
    if log_x:
        deciles = deciles[deciles > 0]  # deciles inside the atom sit at 0, off a log axis
    dec_y = np.interp(deciles, x, y, left=0.0, right=0.0) if x.size else np.zeros_like(deciles)
    return _cols(x=deciles, y0=np.zeros_like(deciles), y1=dec_y)


def density_data(
    result: Result | None, mc: MonteCarlo | None = None, log_x: bool = True, target=None, x_from=None
) -> dict:
    """Glyph columns of the density plot.

    Keys: ``curve`` (x, y), ``mc`` (left, right, top: Monte Carlo histogram), ``atom`` (x, y0, y1: the point mass at 0 drawn as a bar whose height is the mass
    times the curve's maximum; at the left edge on a log axis), ``atom_label`` and ``lmax_label``
    (x, y, text), ``lmax`` (x, y0, y1), ``target`` (x, y0, y1), plus ``x_range``, ``y_range``,
    ``x_label``, ``y_label``, ``atom_mass`` and ``lambda_max``. The decile marks come from
    :func:`decile_data` (they need the CDF, which the app computes after the curve is shown).
    """
    y_label = "λ·ρ(λ)   (density per unit ln λ)" if log_x else "density ρ(λ)"
    out = {"y_label": y_label, "x_label": "eigenvalue λ"}
    if result is None:
        empty3 = _cols(x=_EMPTY, y0=_EMPTY, y1=_EMPTY)
        out.update(
            curve=_cols(x=_EMPTY, y=_EMPTY), mc=_mc_histogram(None, 0, 1, log_x), atom=empty3,
            lmax=empty3, target=empty3, atom_label={"x": _EMPTY, "y": _EMPTY, "text": []},
            lmax_label={"x": _EMPTY, "y": _EMPTY, "text": []},
            x_range=(1e-3, 10.0) if log_x else (0.0, 10.0), y_range=(0.0, 1.0), atom_mass=0.0, lambda_max=math.nan,
        )  # fmt: skip
        return out
    s = result.spectrum
    x, y = density_curve(s, log_x)
    lo, hi = x_window(s, log_x, _x_from(x_from))
    hist = _mc_histogram(mc, lo, hi, log_x)
    finite = y[np.isfinite(y)]
    ymax = float(finite.max()) if finite.size else 1.0
    if hist["top"].size and np.isfinite(hist["top"]).any():
        # A histogram of a density singular at 0 can dwarf the curve; let it raise the axis a bit only.
        ymax = max(ymax, min(float(np.nanmax(hist["top"])), 3.0 * ymax))
    ymax = ymax if ymax > 0 else 1.0
    atom, lmax = float(s.atom), float(s.lambda_max)
    atom_x = lo if log_x else 0.0
    none3, none_label = _cols(x=_EMPTY, y0=_EMPTY, y1=_EMPTY), {"x": _EMPTY, "y": _EMPTY, "text": []}
    atom_cols, atom_label, lmax_cols, lmax_label = none3, none_label, none3, none_label
    if atom > 0:
        h = min(atom, 1.0) * ymax
        atom_cols = _cols(x=[atom_x], y0=[0.0], y1=[h])
        where = "λ = 0, off the log axis" if log_x else "λ = 0"
        atom_label = {"x": np.array([atom_x]), "y": np.array([h]), "text": [f" atom at {where}: mass {atom:.3g}"]}
    if math.isfinite(lmax):
        lmax_cols = _cols(x=[lmax], y0=[0.0], y1=[ymax * 1.12])
        lmax_label = {"x": np.array([lmax]), "y": np.array([ymax * 1.02]), "text": [f"λ_max = {lmax:.4g} "]}
    tx = float(target) if target is not None and math.isfinite(target) and target > 0 else None
    target_cols = _cols(x=[tx], y0=[0.0], y1=[ymax * 1.1]) if tx is not None else _cols(x=_EMPTY, y0=_EMPTY, y1=_EMPTY)
    out.update(
        curve=_cols(x=x, y=y),
        mc=hist,
        atom=atom_cols,
        lmax=lmax_cols,
        target=target_cols,
        atom_label=atom_label,
        lmax_label=lmax_label,
        x_range=(lo, hi),
        y_range=(0.0, ymax * 1.12),
        atom_mass=atom,
        lambda_max=lmax,
    )
    return out


def left_data(left: dict | None, log_x: bool = True) -> dict:
    """What lies left of the log axis: ``curve`` (x, y: ``lambda rho`` of the extension, from the
    exact CDF), ``label`` (x, y, text: the hidden mass at the axis's top-left corner) and ``mass``.

    ``left`` is :meth:`dashboard.state._Computed.left_of` (None on a linear axis, where nothing is
    hidden: the atom is drawn at 0 and the axis reaches ``lambda_max``).
    """
    empty = {"curve": _cols(x=_EMPTY, y=_EMPTY), "label": {"x": _EMPTY, "y": _EMPTY, "text": []}, "mass": 0.0,
             "text": ""}  # fmt: skip
    if left is None or not log_x:
        return empty
    out = dict(empty, curve=_cols(x=left["x"], y=left["y"]), mass=float(left["mass"]))
    mass, atom = float(left["mass"]), float(left["atom"])
    start = float(left["x"][0]) if len(left["x"]) else float(left["lo"])
    if mass >= 5e-4:
        atom_part = f" (atom at 0: {atom:.1%})" if atom > 0 else ""
        text = f"← {mass:.1%} of the mass lies left of λ = {start:.2g}{atom_part}"
        if len(left["x"]) == 0:
            text += "\n    to see more of it, extend the axis (“Log λ axis from”)"
        if left.get("uncertified"):
            text += "\n    (some CDF points left of the grid are uncertified)"
        out["text"] = text
        out["label"] = {"x": np.array([start]), "y": np.array([np.nan]), "text": [text]}
    return out


def _cdf_points(result: Result, log_x: bool) -> tuple[np.ndarray, np.ndarray]:
    spectrum = result.spectrum
    x = np.asarray(spectrum.x, float)
    keep = x > 0 if log_x else x >= 0
    x, F = x[keep], np.asarray(result.cdf_grid, float)[keep]
    if not log_x:
        # The jump of height `atom` at 0 is part of the CDF.
        x = np.concatenate([[0.0, 0.0], x])
        F = np.concatenate([[0.0, float(spectrum.atom)], F])
    return x, F


def cdf_data(result: Result | None, mc: MonteCarlo | None = None, log_x: bool = True, x_from=None) -> dict:
    """Glyph columns of the CDF plot: ``curve`` (x, y), ``mc`` (x, y: empirical CDF), ``deciles`` (x, y).

    The CDF is the spectrum's exact one on its grid; on an extended log axis (``x_from``) it starts
    at ``x_from`` (the exact CDF there).
    """
    out = {"x_label": "eigenvalue λ", "y_label": "F(λ) = P(eigenvalue ≤ λ)", "y_range": (0.0, 1.02)}
    if result is None:
        out.update(curve=_cols(x=_EMPTY, y=_EMPTY), mc=_cols(x=_EMPTY, y=_EMPTY), deciles=_cols(x=_EMPTY, y=_EMPTY),
                   x_range=(1e-3, 10.0) if log_x else (0.0, 10.0))  # fmt: skip
        return out
    s = result.spectrum
    x, F = _cdf_points(result, log_x)
    lo, hi = x_window(s, log_x, _x_from(x_from))
    if log_x and lo < log_axis_start(s) and result.computed is not None:
        ext = result.computed.left_of(log_axis_start(s), lo)
        if len(ext["x"]):
            edges = np.geomspace(lo, log_axis_start(s), len(ext["x"]) + 1)
            Fe = ext["mass"] + np.concatenate([[0.0], np.cumsum(ext["y"] * np.diff(np.log(edges)))])
            x, F = np.concatenate([edges, x]), np.concatenate([Fe, F])
    dx, dy = np.asarray(result.deciles, float), np.arange(1, N_DECILES + 1) / (N_DECILES + 1)
    if log_x:
        keep = dx > 0
        dx, dy = dx[keep], dy[keep]
    ex = ey = _EMPTY
    if mc is not None:
        ev = np.sort(np.asarray(mc.eigenvalues, float))
        step = max(1, ev.size // 2000)
        ex, ey = ev[::step], ((np.arange(ev.size) + 1) / ev.size)[::step]
        if log_x:
            ex = np.clip(ex, lo, None)  # the atom's zero eigenvalues sit at the left edge
    out.update(curve=_cols(x=x, y=F), mc=_cols(x=ex, y=ey), deciles=_cols(x=dx, y=dy), x_range=(lo, hi))
    return out


# --------------------------------------------------------------------------------------------
# Metrics and downloads


def _fmt(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.3e}"
    return f"{v:.5g}"


def metrics(result: Result | None, mc: MonteCarlo | None = None, left: dict | None = None,
            pending: bool = False) -> dict:
    """The numbers of the metrics table as a JSON-serialisable dict (every one from the Spectrum).

    ``left`` (:meth:`dashboard.state._Computed.left_of`) adds the mass left of the log axis.
    ``pending=True`` (the served app, on its event loop) computes nothing slow: a variance its job
    has not delivered yet is ``None`` (and named in ``"not_computed"``).
    """
    if result is None:
        return {}
    s = result.spectrum
    c = result.computed
    variance = c.__dict__.get("variance") if (pending and c is not None) else None
    if variance is None and not (pending and c is not None):
        variance = c.variance if c is not None else float(s.variance)
    net = result.network
    st = result.stats if hasattr(result, "stats") else s.stats
    cert_pending = bool(getattr(result, "certificate_pending", False))
    out = {
        "network": {
            "widths": list(net.widths),
            "activation": sorted({a.name for a in net.activations}),
            "sigma_w2": list(net.sigma_w2),
            "sigma_b2": list(net.sigma_b2),
            "init": net.init,
            "q0": net.q0,
            "gram": result.gram,
        },
        "mean": float(s.mean),
        "variance": None if variance is None else float(variance),
        "lambda_max": float(s.lambda_max),
        "atom_at_0": float(s.atom),
        "deciles": [float(v) for v in np.asarray(result.deciles, float)],
        "fraction_above_1": float(result.fraction_above_1),
        "solver": {
            "n_points": int(st.n_points),
            "n_lilypads": int(st.n_lilypads),
            "n_newton_steps": int(st.n_newton_steps),
            "n_rejected": int(st.n_rejected),
            "n_certified": int(st.n_certified),
            "n_verified": int(st.n_verified),
            "n_uncertified": int(st.n_uncertified),
            "solver_seconds": float(st.seconds),
            "certificate_pending": cert_pending,
        },
        "compute_seconds": float(result.seconds),
        "from_cache": bool(result.cached),
    }
    if variance is None:
        out["not_computed"] = ["variance"]
    if left is not None:
        out["mass_left_of_log_axis"] = {"below": float(left["x"][0]) if len(left["x"]) else float(left["lo"]),
                                        "mass": float(left["mass"])}  # fmt: skip
    if mc is not None:
        out["monte_carlo"] = {
            "sampled_widths": list(mc.sampled_widths),
            "n_networks": int(mc.n_samples),
            "n_eigenvalues": int(np.asarray(mc.eigenvalues).size),
            "ks_distance": float(mc.ks),
            "seconds": float(mc.seconds),
        }
    return out


def metrics_frame(result: Result | None, mc: MonteCarlo | None = None, left: dict | None = None,
                  pending: bool = False, variance_note: str = "") -> pd.DataFrame:
    """The metrics table: one row per quantity (with its notation) and its formatted value
    (``pending``: see :func:`metrics`; a missing variance reads ``variance_note`` or "computing…")."""
    m = metrics(result, mc, left, pending=pending)
    if not m:
        return pd.DataFrame({"quantity": [], "value": []})
    st = m["solver"]
    rows = [
        ("mean E[λ] = tr(JᵀJ)/N₀" if result.gram == "JtJ" else "mean E[λ] = tr(JJᵀ)/N_L", _fmt(m["mean"])),
        ("variance Var[λ]", _fmt(m["variance"]) if m["variance"] is not None else (variance_note or "computing…")),
        ("λ_max (right edge)", _fmt(m["lambda_max"])),
        ("atom at 0, μ({0})", _fmt(m["atom_at_0"])),
        ("deciles λ(0.1) … λ(0.9)", ", ".join(_fmt(v) for v in m["deciles"])),
        ("P(λ > 1): singular values of J above 1", _fmt(m["fraction_above_1"])),
        *([(f"mass left of the log axis (λ < {_fmt(m['mass_left_of_log_axis']['below'])})",
            _fmt(m["mass_left_of_log_axis"]["mass"]))] if "mass_left_of_log_axis" in m else []),
        ("solver: grid points", _fmt(st["n_points"])),
        ("solver: lilypads / Newton steps", f"{_fmt(st['n_lilypads'])} / {_fmt(st['n_newton_steps'])}"),
        ("solver: rejected steps (halved)", _fmt(st["n_rejected"])),
        ("solver: certified / verified / uncertified", f"{st['n_certified']:,} / {st['n_verified']:,} / {st['n_uncertified']:,}"
         + (" (certificate running…)" if st["certificate_pending"] else "")),
        ("solver time", f"{1000 * st['solver_seconds']:.1f} ms"),
        ("compute time (spectrum + mean field)", f"{1000 * m['compute_seconds']:.1f} ms" + (" (cached)" if m["from_cache"] else "")),
    ]  # fmt: skip
    if "monte_carlo" in m:
        mcm = m["monte_carlo"]
        w = mcm["sampled_widths"]
        rows += [
            ("Monte Carlo widths", ", ".join(str(v) for v in w[:6]) + (", …" if len(w) > 6 else "")),
            ("Monte Carlo eigenvalues", f"{mcm['n_eigenvalues']:,} from {mcm['n_networks']} network(s)"),
            ("KS distance sup |F_MC − F|", _fmt(mcm["ks_distance"])),
            ("Monte Carlo time", f"{mcm['seconds']:.2f} s"),
        ]
    return pd.DataFrame(rows, columns=["quantity", f"value ({GRAMS[result.gram]})"])


def spectrum_csv(result: Result | None) -> str:
    """``x, density, cdf`` of the current spectrum as CSV text (network, atom and ``lambda_max`` in a comment line)."""
    if result is None:
        return "x,density,cdf\n"
    s = result.spectrum
    x = np.asarray(s.x, float)
    buf = io.StringIO()
    buf.write(f"# {s.network!r}, gram={result.gram}, atom_at_0={float(s.atom)!r}, lambda_max={float(s.lambda_max)!r}\n")
    buf.write("x,density,cdf\n")
    F = np.asarray(result.cdf_grid, float)
    for xi, di, fi in zip(x, np.asarray(s.density, float), F):
        buf.write(f"{float(xi)!r},{float(di)!r},{float(fi)!r}\n")
    return buf.getvalue()


def metrics_json(result: Result | None, mc: MonteCarlo | None = None, left: dict | None = None,
                 pending: bool = False) -> str:
    """:func:`metrics` as indented JSON."""
    return json.dumps(metrics(result, mc, left, pending=pending), indent=2, default=str)


def certificate_text(result: Result | None) -> str:
    """What holds for the density shown: verified only while its certificate runs (a served page
    shows a smooth network's density before its joint certificate is done), then the certified
    run's counts. Never claims a certificate that has not run.

    Examples
    --------
    >>> certificate_text(None)
    ''
    """
    if result is None:
        return ""
    if getattr(result, "certificate_pending", False):
        return ("Density **verified** a posteriori at every grid point (residual and sign checks); "
                "the Kantorovich certificate is running…")
    st = result.stats if hasattr(result, "stats") else result.spectrum.stats
    n, c, v, u = int(st.n_points), int(st.n_certified), int(st.n_verified), int(st.n_uncertified)
    if c == 0 and v == 0 and u == 0:
        return ""  # (no continuous part: nothing solved)
    if c == n:
        return f"All {n:,} grid points **certified** (Kantorovich)."
    parts = [f"{c:,} of {n:,} grid points **certified** (Kantorovich)"]
    if v:
        parts.append(f"{v:,} verified a posteriori")
    if u:
        parts.append(f"{u:,} **uncertified**")
    return ", ".join(parts) + "."


def title(result: Result | None) -> str:
    """A one-line description of the network."""
    if result is None:
        return "no spectrum yet"
    net = result.network
    acts = sorted({a.name for a in net.activations})
    w = net.widths
    widths = f"N = {w[0]}" if len(set(w)) == 1 else f"N₀ = {w[0]}, …, N_L = {w[-1]} (min {min(w)}, max {max(w)})"
    q0 = "q₀ = q* (fixed point)" if net.q0 == "fixed_point" else f"q₀ = {net.q0:g}"
    return (
        f"{GRAMS[result.gram]} of {', '.join(acts)} network: L = {net.depth}, {widths}, {net.init} weights, "
        f"σ_w² = {net.sigma_w2[0]:g}, σ_b² = {net.sigma_b2[0]:g}, {q0}"
    )


# --------------------------------------------------------------------------------------------
# Mean field and phase diagram


def meanfield_data(result: Result | None) -> dict:
    """Per-layer ``q_l`` and ``chi_l`` columns with their axis ranges."""
    if result is None:
        return {"q": _cols(layer=_EMPTY, q=_EMPTY), "chi": _cols(layer=_EMPTY, chi=_EMPTY),
                "layer_range": (0.5, 1.5), "q_range": (0.0, 1.0), "chi_range": (0.0, 1.2)}  # fmt: skip
    mf = result.mean_field
    q, chi = np.asarray(mf.q, float), np.asarray(mf.chi, float)
    layers = np.arange(1, q.size + 1, dtype=float)
    qmax = float(np.nanmax(q)) if np.isfinite(q).any() else 1.0
    cmax = float(np.nanmax(chi)) if np.isfinite(chi).any() else 1.0
    cmin = float(np.nanmin(chi)) if np.isfinite(chi).any() else 1.0
    return {
        "q": _cols(layer=layers, q=q),
        "chi": _cols(layer=layers, chi=chi),
        "layer_range": (0.5, q.size + 0.5),
        "q_range": (0.0, qmax * 1.1 if qmax > 0 else 1.0),
        "chi_range": (min(0.0, cmin), max(1.2, cmax * 1.1)),
    }


PHASE_SW2 = np.linspace(0.1, 6.0, 60)
PHASE_SB2 = np.linspace(0.0, 2.0, 41)


@functools.lru_cache(maxsize=32)
def phase_grid(activation: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(sigma_w2, sigma_b2, q_star, chi1, boundary)`` of an activation on a fixed grid (cached).

    ``q_star`` and ``chi1`` have shape ``(len(sigma_b2), len(sigma_w2))``; ``boundary`` is a
    ``(K, 2)`` array of ``(sigma_w2, sigma_b2)`` points on ``chi1 = 1``. Uses
    :func:`fpcore.phase_diagram` where it exists; otherwise iterates the mean-field map
    ``q -> sigma_w2 E[phi(sqrt(q) Z)^2] + sigma_b2`` on the whole grid at once with the
    activation's own moments (``Activation.second_moment`` / ``d2_moment``); ``q_star`` is NaN
    where the iteration runs away.
    """
    sw, sb = PHASE_SW2, PHASE_SB2
    if hasattr(fpcore, "phase_diagram"):
        pdg = fpcore.phase_diagram(activation, sw, sb)
        return (
            np.asarray(pdg.sigma_w2, float),
            np.asarray(pdg.sigma_b2, float),
            np.asarray(pdg.q_star, float),
            np.asarray(pdg.chi1, float),
            np.asarray(pdg.boundary, float).reshape(-1, 2),
        )
    act = fpcore.get_activation(activation)
    SW, SB = np.meshgrid(sw, sb)
    q = np.ones_like(SW)
    with np.errstate(all="ignore"):
        for _ in range(400):
            q_new = SW * np.asarray(act.second_moment(np.clip(q, 1e-12, 1e12)), float) + SB
            done = np.allclose(q_new, q, rtol=1e-9, atol=1e-12, equal_nan=True)
            q = q_new
            if done:
                break
        q = np.where(np.isfinite(q) & (q < 1e8), q, np.nan)
        chi = SW * np.asarray(act.d2_moment(np.nan_to_num(q, nan=1.0)), float)
        if act.d2_depends_on_q:
            chi = np.where(np.isfinite(q), chi, np.nan)
    return sw, sb, q, chi, _chi_boundary(sw, sb, chi)


def _chi_boundary(sw, sb, chi) -> np.ndarray:
    """Points where ``chi1`` crosses 1 along each row of constant ``sigma_b2`` (linear interpolation)."""
    pts = []
    for i, b in enumerate(sb):
        row = chi[i] - 1.0
        for j in range(len(sw) - 1):
            a0, a1 = row[j], row[j + 1]
            if np.isfinite(a0) and np.isfinite(a1) and a0 * a1 <= 0 and a0 != a1:
                t = a0 / (a0 - a1)
                pts.append((sw[j] + t * (sw[j + 1] - sw[j]), b))
                break
    return np.array(pts, float).reshape(-1, 2)


def phase_data(activation: str) -> dict:
    """The phase diagram of ``activation``: image of ``log10 chi1`` (clipped to [-1, 1]) and the ``chi1 = 1`` curve."""
    sw, sb, q, chi, boundary = phase_grid(activation)
    with np.errstate(all="ignore"):
        logchi = np.log10(chi)
    dw, db = sw[1] - sw[0], sb[1] - sb[0]
    x0, y0 = sw[0] - dw / 2, sb[0] - db / 2
    return {
        "image": {"image": [logchi], "q_star": [q], "x": [x0], "y": [y0], "dw": [sw[-1] - sw[0] + dw],
                  "dh": [sb[-1] - sb[0] + db]},  # fmt: skip
        "boundary": _cols(x=boundary[:, 0], y=boundary[:, 1]),
        "x_range": (x0, sw[-1] + dw / 2),
        "y_range": (y0, sb[-1] + db / 2),
    }


# --------------------------------------------------------------------------------------------
# Lilypads


def _frame(trace, k) -> int:
    return int(min(max(int(k), 0), len(trace.centres) - 1))


def zplane_window(trace, k: int) -> tuple[float, float, float, float]:
    """Square window ``(x0, y0, x1, y1)`` of the z-plane for frame ``k``: follows the chain down to the axis."""
    c = complex(trace.centres[k])
    r = float(trace.radii[k]) if np.isfinite(trace.radii[k]) else 0.0
    x = float(trace.target.real)
    # scaled from the trace (dash-views): tiny spectra (GELU, L = 100) keep their disks in view
    span = max(1.6 * r, 1.15 * abs(c.imag), 1.15 * abs(c.real - x), 0.6 * abs(x), 1e-300)
    return x - span, -0.25 * span, x + span, 1.75 * span


def zplane_data(trace, k: int = 0) -> dict:
    """The z-plane at frame ``k``: lilypads ``0..k-1`` (``disks``), the current one, the path, rejections, target."""
    if trace is None:
        e = _cols(x=_EMPTY, y=_EMPTY)
        return {"disks": _cols(x=_EMPTY, y=_EMPTY, r=_EMPTY), "current": _cols(x=_EMPTY, y=_EMPTY, r=_EMPTY),
                "path": e, "rejected": e, "target": e, "x_range": (-1.0, 1.0), "y_range": (-0.25, 1.75)}  # fmt: skip
    k = _frame(trace, k)
    c = np.asarray(trace.centres, complex)[: k + 1]
    r = np.asarray(trace.radii, float)[: k + 1]
    rej = np.asarray(trace.rejected, complex).ravel()
    if rej.size:
        rej = rej[np.asarray(trace.rejected_from, int).ravel() <= k]
    t = complex(trace.target)
    x0, y0, x1, y1 = zplane_window(trace, k)
    return {
        "disks": _cols(x=c.real[:-1], y=c.imag[:-1], r=r[:-1]),
        "current": _cols(x=c.real[-1:], y=c.imag[-1:], r=r[-1:]),
        "path": _cols(x=c.real, y=c.imag),
        "rejected": _cols(x=rej.real, y=rej.imag),
        "target": _cols(x=[t.real], y=[t.imag]),
        "x_range": (x0, x1),
        "y_range": (y0, y1),
    }


def mplane_data(trace, k: int = 0, basins=None) -> dict:
    """The m-plane at frame ``k``: Newton basins of ``f_{z_k}``, roots, Kantorovich ball, Newton iterates.

    ``basins`` is ``(re, im, labels, roots)`` from :func:`dashboard.state.compute_basins`; the image
    holds ``label % N_BASIN_COLOURS`` (``-1`` where Newton did not converge).
    """
    e2 = _cols(x=_EMPTY, y=_EMPTY)
    if basins is not None:
        re, im, labels, roots = basins[:4]
        labels = np.asarray(labels)
        # dash-views: an RGBA frame (colour by root, shade by Newton steps) when the frame has one
        img = getattr(basins, "rgba", None)
        if img is None:
            img = np.where(labels >= 0, labels % N_BASIN_COLOURS, -1).astype(float)
        roots = np.asarray(roots, complex).ravel()
        dx = (re[-1] - re[0]) / max(len(re) - 1, 1)
        dy = (im[-1] - im[0]) / max(len(im) - 1, 1)
        x0, y0 = float(re[0] - dx / 2), float(im[0] - dy / 2)
        w, h = float(re[-1] - re[0] + dx), float(im[-1] - im[0] + dy)
        image = {"image": [img], "x": [x0], "y": [y0], "dw": [w], "dh": [h]}
        x_range, y_range = (x0, x0 + w), (y0, y0 + h)
        roots_cols = _cols(x=roots.real, y=roots.imag)
    else:
        image = {"image": [np.zeros((1, 1), np.uint32)], "x": [0.0], "y": [0.0], "dw": [0.0], "dh": [0.0]}
        x_range, y_range = (-1.0, 1.0), (-1.0, 1.0)
        roots_cols = e2
    out = {"basins": image, "roots": roots_cols, "x_range": x_range, "y_range": y_range}
    if trace is None:
        out.update(ball=_cols(x=_EMPTY, y=_EMPTY, r=_EMPTY), iterates=e2, start=e2, solution=e2)
        return out
    k = _frame(trace, k)
    its = np.asarray(trace.newton[k], complex).ravel()
    start = complex(its[0]) if its.size else complex(trace.solutions[max(k - 1, 0)])
    sol = complex(trace.solutions[k])
    ball_r = float(trace.m_radii[k])
    ball = (_cols(x=[start.real], y=[start.imag], r=[ball_r]) if math.isfinite(ball_r)
            else _cols(x=_EMPTY, y=_EMPTY, r=_EMPTY))  # fmt: skip
    out.update(
        ball=ball,
        iterates=_cols(x=its.real, y=its.imag),
        start=_cols(x=[start.real], y=[start.imag]),
        solution=_cols(x=[sol.real], y=[sol.imag]),
    )
    if basins is None:
        pts = np.concatenate([its, [sol]])
        half = max(float(np.max(np.abs(pts - start))) * 1.5, 0.5)
        out["x_range"] = (start.real - half, start.real + half)
        out["y_range"] = (start.imag - half, start.imag + half)
    return out


def _c(v: complex, digits: int = 4) -> str:
    v = complex(v)
    return f"{v.real:.{digits}g} {'+' if v.imag >= 0 else '−'} {abs(v.imag):.{digits - 1}g}i"


def frame_caption(trace, k: int, note: str = "", basins_drawn: bool | None = None) -> str:
    """Markdown describing frame ``k`` of the chain (``note`` appended).

    Every sentence is read off the trace's own flags and numbers for this step: a Kantorovich
    ball is claimed only for a certified chain with a positive ball radius, a "certified radius"
    only for a certified chain with a positive radius, and the basin colour only when the basins
    are drawn (``basins_drawn``; None: unknown, no claim).
    """
    if trace is None:
        return "*No lilypad chain yet.*"
    K = len(trace.centres)
    k = _frame(trace, k)
    its = np.asarray(trace.newton[k]).ravel()
    n_newton = max(its.size - 1, 0)
    rejected_from = np.asarray(trace.rejected_from, int).ravel()
    n_rej = int(np.sum(rejected_from == k)) if rejected_from.size else 0
    certified, verified = bool(trace.certified), bool(getattr(trace, "verified", trace.certified))
    if certified:
        status = "chain certified ✓: every step passed the Kantorovich test"
    elif verified:
        status = "chain verified a posteriori (residual and sign checks), not Kantorovich-certified"
    else:
        status = "chain **not certified** ✗"
    r = float(trace.radii[k])
    ball = float(trace.m_radii[k])
    if certified and math.isfinite(r) and r > 0:
        radius = f"certified radius r_k = {r:.3g}"
    elif math.isfinite(r) and r > 0:
        radius = f"step length r_k = {r:.3g} (not a certified radius)"
    else:
        radius = "no lilypad radius at this step (r_k = 0)" if math.isfinite(r) else "no lilypad radius at this step"
    lines = [
        f"**Step {k + 1} of {K}** toward z = {trace.target.real:.4g} + 0i ({status}).  ",
        f"Lilypad centre z_k = {_c(trace.centres[k])}, {radius}.  ",
    ]
    if k == 0 or n_newton == 0:
        lines.append(
            f"The chain starts high above the real axis, where m = M(z) ≈ 0 is a good Newton start "
            f"(m_0 = {_c(trace.solutions[k], 3)}). Press ▶ to walk down."
        )
    else:
        text = f"Newton from m₀ (the previous lilypad's solution) took {n_newton} step(s) to m_k = {_c(trace.solutions[k])}."
        if certified and math.isfinite(ball) and ball > 0:
            text += f" The Kantorovich test proves the root is the only one in the dashed ball (radius 2η = {ball:.3g})"
            text += ", which lies inside the basin (colour) of that root." if basins_drawn else "."
        elif verified:
            text += " The step is verified by its residual, not by a Kantorovich ball."
        lines.append(text)
    if n_rej:
        lines.append(f"  {n_rej} proposal(s) from this lilypad failed the test and the step was halved (red ×).")
    if k == K - 1:
        lines.append(f"  **Arrived:** M(x) = {_c(trace.m)}, density ρ(x) = −Im G(x)/π = {float(trace.density):.4g}.")
    if note:
        lines.append(f"  *{note}*")
    return "\n".join(lines)
