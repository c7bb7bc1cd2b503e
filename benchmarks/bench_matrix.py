"""Benchmark matrix of the spectrum engine: every activation x weight init x width profile x depth.

    python benchmarks/bench_matrix.py [--repeats 7] [--activations relu,tanh] [--depths 2,10]
                                      [--inits gaussian,orthogonal] [--profiles square,tapered]
                                      [--max-seconds-per-cell 30] [--markdown] [--baseline PATH]

Each cell is ``fpcore.jacobian_spectrum(net, n_points=1000)`` on one network. The first call of a
cell (numba compilation for the first cell of a family, equation set-up) is timed separately
(column ``1st ms``); then the call is repeated (at most ``--repeats`` times, and no more once the
cell has used half its time budget) and the median and 90th percentile of those repeats are
printed, with the certified / verified / uncertified counts of ``Spectrum.stats``. The laws of
``D^2`` that fpcore keeps per ``(activation, q)`` are dropped before every timed call: a slider
move brings new variances, so each call pays for building its laws, as the user's does.

Cells run in a worker subprocess: a cell whose timed calls exceed ``--max-seconds-per-cell`` (its
first call, which may compile, gets ``--first-call-limit`` seconds more, default
``FIRST_CALL_LIMIT``) is reported as ``timeout``
and the worker is replaced, so one pathological cell cannot hang the matrix. A cell
whose call raises is reported as ``error``.

With ``--baseline PATH`` every cell is also run by a second worker that imports ``fpcore`` from
``PATH`` (a checkout of an older commit), right after the same cell: the two medians then share the
machine's load and their ratio is the column to read on a busy machine.

Width profiles (``N_0, ..., N_L`` for depth ``L``; only width ratios enter the limit law):

* ``square``: ``1000`` at every layer.
* ``tapered``: geometric from 784 to 10, ``N_l = round(784 (10/784)^(l/L))`` (an MLP classifier).
* ``expanding``: ``N_l = round(100 * 1.25^l)`` (the seed paper's benchmark shape).
* ``bottleneck``: ``1000`` everywhere except the middle layer ``l = ceil(L/2)``, ``250``.
* ``perlayer``: ``1000`` at every layer with a per-layer init, ``sigma_w2`` of layer ``l`` the
  activation's value times ``exp(0.35 (2 l/(L-1) - 1))`` (``q`` drifts across the layers: one
  distinct law of ``D^2`` per layer, as in a network trained or initialised layer by layer).
* ``mixed``: ``1000`` at every layer, the activations cycling through the named one, GELU, tanh
  and leaky ReLU (sigma_w2 and sigma_b2 of the named one): a mixed MLP.

Weight and bias variances per activation (``ACT_PARAMS``) are near-critical, usual choices:
linear 1, ReLU and leaky ReLU (slope 0.01) 2, hard-tanh 1, tanh and erf 1.05 with
``sigma_b2 = 1e-4`` (the orthogonal near-critical case of the field), sigmoid 1, GELU, SiLU and
softplus 2, SELU 1, ELU 1.5; ``q0 = 1``.

Nothing is asserted; speed is measured here, not in tests. Timings on a shared machine are noisy:
compare cells of one run (the square net of the same activation is the baseline).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ACT_PARAMS = {
    "linear": (1.0, 0.0),
    "relu": (2.0, 0.0),
    "leaky_relu": (2.0, 0.0),
    "hard_tanh": (1.0, 0.0),
    "tanh": (1.05, 1e-4),
    "erf": (1.05, 1e-4),
    "sigmoid": (1.0, 0.0),
    "gelu": (2.0, 0.0),
    "silu": (2.0, 0.0),
    "selu": (1.0, 0.0),
    "elu": (1.5, 0.0),
    "softplus": (2.0, 0.0),
}
PROFILES = ("square", "tapered", "expanding", "bottleneck")
EXTRA_PROFILES = ("perlayer", "mixed")  # not in the default matrix
MIXED = ("gelu", "tanh", "leaky_relu")
INITS = ("gaussian", "orthogonal")
DEPTHS = (2, 10, 50)
RATIONAL = ("linear", "relu", "hard_tanh")
FIRST_CALL_LIMIT = 180.0  # seconds added to the limit for the first call of a cell (compilation)


def widths(profile: str, L: int) -> list[int]:
    """``[N_0, ..., N_L]`` of a width profile (see the module docstring)."""
    if profile in ("square", "perlayer", "mixed"):
        return [1000] * (L + 1)
    if profile == "tapered":
        return [max(1, round(784 * (10 / 784) ** (l / L))) for l in range(L + 1)]
    if profile == "expanding":
        return [round(100 * 1.25**l) for l in range(L + 1)]
    if profile == "bottleneck":
        w = [1000] * (L + 1)
        w[math.ceil(L / 2)] = 250
        return w
    raise ValueError(f"profile must be one of {PROFILES + EXTRA_PROFILES}, got {profile!r}")


# -- worker: one process that runs cells sent as JSON lines on stdin ---------------------------
def _run_cell(cell: dict) -> dict:
    import numpy as np

    import fpcore

    sw, sb = ACT_PARAMS.get(cell["activation"], (1.0, 0.0))
    act, L = cell["activation"], cell["depth"]
    if cell["profile"] == "perlayer" and L > 1:
        sw = [sw * math.exp(0.35 * (2.0 * l / (L - 1) - 1.0)) for l in range(L)]
    if cell["profile"] == "mixed":
        cycle = (act,) + MIXED
        act = [cycle[l % len(cycle)] for l in range(L)]
    net = fpcore.Network(widths(cell["profile"], L), act, sigma_w2=sw, sigma_b2=sb, init=cell["init"])
    budget = 0.5 * cell["max_seconds"]
    t0 = time.perf_counter()
    s = fpcore.jacobian_spectrum(net, n_points=1000)
    first = time.perf_counter() - t0
    # the parent starts the cell's clock now: compilation is not the cell's time
    sys.stdout.write(json.dumps(dict(first_done=True)) + "\n")
    sys.stdout.flush()
    times = []
    spent = 0.0
    from fpcore import _activations

    cache = getattr(_activations, "_LAW_CACHE", None)  # laws of D^2 kept per (activation, q)
    while len(times) < cell["repeats"] and (not times or spent < budget):
        if cache is not None:
            cache.clear()  # a slider move brings new q: every timed call builds its laws
        t = time.perf_counter()
        s = fpcore.jacobian_spectrum(net, n_points=1000)
        times.append(time.perf_counter() - t)
        spent += times[-1]
    st = s.stats
    return dict(first_ms=1e3 * first, median_ms=1e3 * statistics.median(times),
                p90_ms=1e3 * float(np.percentile(times, 90)), n=len(times), certified=st.n_certified,
                verified=st.n_verified, uncertified=st.n_uncertified, points=st.n_points)


def worker() -> None:
    for line in sys.stdin:
        cell = json.loads(line)
        try:
            res = _run_cell(cell)
        except Exception as exc:  # reported as the cell's result, the matrix goes on
            res = dict(error=f"{type(exc).__name__}: {exc}"[:200])
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


class _Worker:
    def __init__(self, path: str | None = None, script: str = __file__):
        env = None if path is None else dict(os.environ, PYTHONPATH=path)
        self.path = path
        self.script = script
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(script), "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1, env=env)
        self.buf = b""  # bytes read from the worker's stdout, not yet split into lines

    def _read(self, limit: float) -> dict | None:
        # raw reads from the pipe: a buffered reader could hold a second line that select()
        # would then never report
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + limit
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0.0))
            if not ready:
                self.close(kill=True)
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                self.close(kill=True)
                return dict(error="worker died")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def run(self, cell: dict, limit: float, first_extra: float = FIRST_CALL_LIMIT) -> dict | None:
        """The cell's result, or None when it ran past ``limit`` seconds after its first call (the
        worker is killed). The first call (which may compile numba kernels, tens of seconds on a
        busy machine) gets ``first_extra`` more seconds."""
        self.proc.stdin.write(json.dumps(cell) + "\n")
        self.proc.stdin.flush()
        r = self._read(limit + first_extra)
        if r is None or not r.get("first_done"):
            return r
        return self._read(limit)

    def close(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.stdin.close()
            self.proc.wait()


def _fmt_row(c: dict, r: dict | None) -> list[str]:
    head = [c["activation"], c["init"], c["profile"], str(c["depth"])]
    if r is None:
        return head + [">" + f"{c['max_seconds']:.0f} s", "timeout", "", "", "", "", ""]
    if "error" in r:
        return head + ["", "error", "", "", "", "", r["error"]]
    return head + [f"{r['first_ms']:.0f}", f"{r['median_ms']:.1f}", f"{r['p90_ms']:.1f}", str(r["certified"]),
                   str(r["verified"]), str(r["uncertified"]), str(r["n"])]


HEAD = ["activation", "init", "widths", "L", "1st ms", "median ms", "p90 ms", "cert.", "verif.", "uncert.", "runs"]


def cell_lists(args, widths_fn) -> tuple[list[str], list[str], list[str], list[int]]:
    """The activations, inits, width profiles and depths of a run (``--activations`` default:
    ``fpcore.ACTIVATIONS``), after checking the limits and each profile name (``widths_fn``)."""
    if args.repeats < 1 or args.max_seconds_per_cell <= 0:
        raise ValueError("--repeats must be >= 1 and --max-seconds-per-cell > 0")
    if not args.first_call_limit >= 0:
        raise ValueError(f"--first-call-limit must be >= 0, got {args.first_call_limit}")
    if args.activations:
        acts = args.activations.split(",")
    else:
        import fpcore

        acts = list(fpcore.ACTIVATIONS)
    profiles = args.profiles.split(",")
    for p in profiles:
        widths_fn(p, 2)  # validates the name
    return acts, args.inits.split(","), profiles, [int(d) for d in args.depths.split(",")]


def run_cells(cells: list[dict], make_worker, fmt_row, head: list[str], args, col: int = 11) -> list:
    """Run ``cells`` in worker subprocesses (``make_worker(path=None)``; a worker past a cell's limit
    is replaced), printing each row as it finishes (``fmt_row(cell, result)``; Markdown with
    ``args.markdown``); with ``args.baseline`` each cell runs again right after it in a worker that
    imports ``fpcore`` from that path, and the row gains its median and the ratio. Returns
    ``[(cell, result or None)]`` (``None``: timed out)."""
    md = args.markdown
    head = head + (["baseline ms", "speed-up"] if args.baseline else [])

    def show(row):
        if md:
            print("| " + " | ".join(row) + " |", flush=True)
        else:
            print(f"{row[0]:<11}{row[1]:<11}{row[2]:<{col}}" + "".join(f"{v:>10}" for v in row[3:]), flush=True)

    if md:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
    else:
        show(head)
    results = []
    w = make_worker()
    wb = make_worker(os.path.abspath(args.baseline)) if args.baseline else None
    try:
        for cell in cells:
            if w.proc.poll() is not None:
                w = make_worker()
            r = w.run(cell, args.max_seconds_per_cell, args.first_call_limit)
            if r is None:
                w = make_worker()
            results.append((cell, r))
            row = fmt_row(cell, r)
            if wb is not None:
                if wb.proc.poll() is not None:
                    wb = make_worker(wb.path)
                rb = wb.run(cell, args.max_seconds_per_cell, args.first_call_limit)
                if rb is None:
                    wb = make_worker(wb.path)
                    row += [">" + f"{args.max_seconds_per_cell:.0f} s", ""]
                elif "error" in rb:
                    row += ["error", ""]
                else:
                    ok_r = r is not None and "error" not in r
                    row += [f"{rb['median_ms']:.1f}", f"{rb['median_ms'] / r['median_ms']:.1f}x" if ok_r else ""]
            show(row)
    finally:
        w.close()
        if wb is not None:
            wb.close()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="timed calls per cell after the first (at most)")
    ap.add_argument("--activations", default=None, help="comma-separated names (default: fpcore.ACTIVATIONS)")
    ap.add_argument("--depths", default=",".join(map(str, DEPTHS)))
    ap.add_argument("--inits", default=",".join(INITS))
    ap.add_argument("--profiles", default=",".join(PROFILES))
    ap.add_argument("--max-seconds-per-cell", type=float, default=30.0)
    ap.add_argument("--first-call-limit", type=float, default=FIRST_CALL_LIMIT, metavar="SECONDS",
                    help="seconds added to a cell's limit for its first call (compilation; default %(default)s)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table (for the README)")
    ap.add_argument("--baseline", default=None, metavar="PATH",
                    help="also run each cell with fpcore imported from PATH (e.g. a checkout of an older commit), "
                         "right after the same cell, and print its median and the ratio baseline / this")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker()
        return
    acts, inits, profiles, depths = cell_lists(args, widths)

    cells = [dict(activation=act, init=init, profile=prof, depth=L, repeats=args.repeats,
                  max_seconds=args.max_seconds_per_cell)
             for act in acts for init in inits for prof in profiles for L in depths]
    t_all = time.perf_counter()
    results = run_cells(cells, _Worker, _fmt_row, HEAD, args, col=11)

    ok = [(c, r) for c, r in results if r is not None and "error" not in r]
    bad = [(c, r) for c, r in results if r is None or "error" in r]
    print()
    if ok:
        worst = max(ok, key=lambda cr: cr[1]["median_ms"])
        unc = sum(r["uncertified"] for _, r in ok)
        fam: dict[tuple, list[float]] = {}
        for c, r in ok:
            fam.setdefault((c["activation"], c["init"], c["profile"]), []).append(r["median_ms"])
        slow = max(fam.items(), key=lambda kv: sum(kv[1]))
        c = worst[0]
        print(f"summary: {len(results)} cells in {time.perf_counter() - t_all:.0f} s; worst cell "
              f"{c['activation']}/{c['init']}/{c['profile']}/L={c['depth']} {worst[1]['median_ms']:.1f} ms; "
              f"slowest family {'/'.join(slow[0])} ({sum(slow[1]):.0f} ms summed over depths); "
              f"{unc} uncertified points; {len(bad)} cells timed out or failed")
    else:
        print(f"summary: {len(results)} cells, none finished")


if __name__ == "__main__":
    main()
