"""Depth at scale: every activation x weight init at L = 200 and L = 1000, near criticality.

    python benchmarks/bench_depth.py [--activations relu,tanh] [--depths 200,1000]
                                     [--inits gaussian,orthogonal] [--profiles square,alternating]
                                     [--q0 1] [--repeats 3] [--max-seconds-per-cell 60]
                                     [--markdown] [--baseline PATH]

Each cell is ``fpcore.jacobian_spectrum(net, n_points=1000)`` on one deep network; the cells run
in ``bench_matrix``'s worker subprocesses (first call timed apart, then at most ``--repeats`` timed
calls, the laws of ``D^2`` dropped before each; a cell past its limit is reported as ``timeout``).
Columns: median ms, the certified / verified / uncertified counts, and the structure of the
equation: the number of distinct laws of ``D^2`` (distinct ``q_l``) and of ``(law, scale)``
groups, i.e. unknowns ``u_g`` of the joint system, that the solver carries.

Width profiles (only width ratios enter the limit law):

* ``square``: ``1000`` at every layer (one width ratio).
* ``alternating``: ``1000, 800, 1000, 800, ...`` (two width ratios: each law of ``D^2`` enters
  with two scales ``Lambda_l = N_0 / N_l``, the worst case for the number of groups).

Variances (``DEPTH_PARAMS``) sit at the edge of chaos so that the law of ``J^T J`` stays in the
float range over 1000 layers (its mean is ``prod_l chi_l``): ``chi_1 = 1`` at the fixed point
from :func:`fpcore.tune_init` (``sigma_b2`` of ``bench_matrix.ACT_PARAMS``), except GELU and
SiLU, which have no edge of chaos with ``sigma_b2 = 0`` (``q`` runs to 0 below
``sigma_w2 = 1/phi'(0)^2 = 4`` and grows above it): ``sigma_w2 = 3.9`` keeps ``chi_l -> 0.975``,
with ``q0 = 1e-3`` (``Q0_OVERRIDE``) below the unstable fixed point (GELU's near 0.013, SiLU's
near 0.034; from ``q0 = 1`` the recursion grows and the law leaves the float range); and softplus, whose recursion has no finite fixed point: ``sigma_w2 = 2`` (``chi_l -> 1`` as
``q_l`` grows, as ReLU). With ``q0 = 1`` the ``q_l`` drift towards ``q*`` over hundreds of layers
(tanh at ``L = 1000``: about 600 distinct laws), the stress case for the solver; ``--q0
fixed_point`` puts every layer at ``q*`` (one law).

Nothing is asserted; speed is measured here, not in tests. With ``--baseline PATH`` each cell is
also run with ``fpcore`` imported from ``PATH`` right after it (same machine load): read the
ratio column on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_matrix as bm  # noqa: E402

# (sigma_w2, sigma_b2) at (or near) the edge of chaos; see the module docstring
DEPTH_PARAMS = {
    "linear": (1.0, 0.0),
    "relu": (2.0, 0.0),
    "leaky_relu": (2.0 / (1.0 + 0.01**2), 0.0),
    "hard_tanh": (1.0, 0.0),
    "tanh": (1.0860262925009103, 1e-4),
    "erf": (0.8525876116343171, 1e-4),
    "sigmoid": (103.00755385551922, 0.0),
    "gelu": (3.9, 0.0),
    "silu": (3.9, 0.0),
    "selu": (0.47677101788345555, 0.0),
    "elu": (1.0, 0.0),
    "softplus": (2.0, 0.0),
}
Q0_OVERRIDE = {"gelu": 1e-3, "silu": 1e-3}  # used unless --q0 fixed_point
PROFILES = ("square", "alternating")
DEPTHS = (200, 1000)


def widths(profile: str, L: int) -> list[int]:
    if profile == "square":
        return [1000] * (L + 1)
    if profile == "alternating":
        return [1000 if l % 2 == 0 else 800 for l in range(L + 1)]
    raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")


def _run_cell(cell: dict) -> dict:
    import numpy as np

    import fpcore
    from fpcore import _activations

    sw, sb = DEPTH_PARAMS.get(cell["activation"], (1.0, 0.0))
    q0 = cell["q0"] if cell["q0"] == "fixed_point" else Q0_OVERRIDE.get(cell["activation"], cell["q0"])
    net = fpcore.Network(widths(cell["profile"], cell["depth"]), cell["activation"], sigma_w2=sw, sigma_b2=sb,
                         init=cell["init"], q0=q0)
    cache = getattr(_activations, "_LAW_CACHE", None)
    if cache is not None:
        cache.clear()
    t0 = time.perf_counter()
    s = fpcore.jacobian_spectrum(net, n_points=1000)
    first = time.perf_counter() - t0
    sys.stdout.write(json.dumps(dict(first_done=True)) + "\n")
    sys.stdout.flush()
    times, spent = [], 0.0
    while len(times) < cell["repeats"] and (not times or spent < 0.5 * cell["max_seconds"]):
        if cache is not None:
            cache.clear()
        t = time.perf_counter()
        s = fpcore.jacobian_spectrum(net, n_points=1000)
        times.append(time.perf_counter() - t)
        spent += times[-1]
    st = s.stats
    eq = s._eq
    return dict(first_ms=1e3 * first, median_ms=1e3 * statistics.median(times),
                p90_ms=1e3 * float(np.percentile(times, 90)), n=len(times), certified=st.n_certified,
                verified=st.n_verified, uncertified=st.n_uncertified, points=st.n_points,
                laws=len(set(eq.mean_field.q.tolist())), groups=len(eq.ugroups))


def worker() -> None:
    for line in sys.stdin:
        cell = json.loads(line)
        try:
            res = _run_cell(cell)
        except Exception as exc:  # reported as the cell's result
            res = dict(error=f"{type(exc).__name__}: {exc}"[:200])
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


def _Worker(path: str | None = None) -> bm._Worker:
    """A worker subprocess running this script's cells (with ``fpcore`` from ``path`` if given)."""
    return bm._Worker(path, script=__file__)


HEAD = ["activation", "init", "widths", "L", "laws", "groups", "1st ms", "median ms", "cert.", "verif.", "uncert."]


def _row(c: dict, r: dict | None) -> list[str]:
    head = [c["activation"], c["init"], c["profile"], str(c["depth"])]
    if r is None:
        return head + ["", "", f">{c['max_seconds']:.0f} s", "timeout", "", "", ""]
    if "error" in r:
        return head + ["", "", "", "error", "", "", r["error"]]
    return head + [str(r["laws"]), str(r["groups"]), f"{r['first_ms']:.0f}", f"{r['median_ms']:.1f}",
                   str(r["certified"]), str(r["verified"]), str(r["uncertified"])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--activations", default=None, help="comma-separated names (default: fpcore.ACTIVATIONS)")
    ap.add_argument("--depths", default=",".join(map(str, DEPTHS)))
    ap.add_argument("--inits", default=",".join(bm.INITS))
    ap.add_argument("--profiles", default=",".join(PROFILES))
    ap.add_argument("--q0", default="1", help="input variance, or fixed_point (default 1)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-seconds-per-cell", type=float, default=60.0)
    ap.add_argument("--first-call-limit", type=float, default=bm.FIRST_CALL_LIMIT, metavar="SECONDS")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--baseline", default=None, metavar="PATH",
                    help="also run each cell with fpcore imported from PATH, right after it")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker()
        return
    q0 = args.q0 if args.q0 == "fixed_point" else float(args.q0)
    acts, inits, profiles, depths = bm.cell_lists(args, widths)

    cells = [dict(activation=act, init=init, profile=prof, depth=L, q0=q0, repeats=args.repeats,
                  max_seconds=args.max_seconds_per_cell)
             for act in acts for init in inits for prof in profiles for L in depths]
    t_all = time.perf_counter()
    results = bm.run_cells(cells, _Worker, _row, HEAD, args, col=12)
    ok = [(c, r) for c, r in results if r is not None and "error" not in r]
    print()
    if ok:
        worst = max(ok, key=lambda cr: cr[1]["median_ms"])
        c = worst[0]
        over = sum(1 for c_, r in ok if c_["depth"] >= 1000 and r["median_ms"] > 1000.0)
        print(f"summary: {len(results)} cells in {time.perf_counter() - t_all:.0f} s; worst "
              f"{c['activation']}/{c['init']}/{c['profile']}/L={c['depth']} {worst[1]['median_ms']:.0f} ms; "
              f"{over} cells at L >= 1000 over 1 s; {sum(r['uncertified'] for _, r in ok)} uncertified, "
              f"{sum(r['verified'] for _, r in ok)} verified-only points; "
              f"{len(results) - len(ok)} cells timed out or failed")


if __name__ == "__main__":
    main()
