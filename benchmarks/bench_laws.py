"""Benchmark: building the laws of ``D^2`` (issue #11), old against new in one process.

    python benchmarks/bench_laws.py --baseline PATH [--repeats 7] [--e2e-repeats 3]
                                    [--activations gelu,tanh] [--qs 0.01,0.34,2,100,1e4]
                                    [--stat median|min] [--clock wall|cpu] [--no-e2e] [--no-deep]

``PATH`` is a checkout of the older commit (e.g. ``git worktree add --detach /tmp/base 30fa302``);
its ``fpcore`` is imported beside this checkout's as ``fpcore_base``. Without ``--baseline`` only
the new column is printed.

Table 1, per smooth activation and ``q``: the median (``--stat min``: the fastest, steadier on a
busy machine) wall time (ms) of building one law with the
law cache dropped, as a slider move does: ``act.d2_law(q)`` and everything a spectrum may use
from it (the contour rule ``cvalues``, the short rule ``short``, its error table
``short_check``); old and new runs alternate, so both see the same load.

``--clock cpu`` times both tables by this process's CPU time (``time.process_time``) instead of
the wall clock: on a machine with more runnable jobs than cores the wall clock counts the waits
for a core, which neither version controls.

Table 2: ``fpcore.jacobian_spectrum(net, n_points=1000)`` end to end (law cache dropped before
each call, as ``bench_matrix.py`` does) for GELU, SiLU, tanh and SELU on a square ``1000 x 11``
net and a tapered ``784 -> ... -> 10`` net (``L = 10``, the activation's usual variances from
``bench_matrix.py``), and GELU at depth 1000 (width 500, ``sigma_w2 = 2``, ``sigma_b2 = 0.1``:
225 distinct laws), with the time spent building laws inside the call.

numba caches compiled code next to the sources, keyed by module name: importing a checkout
under a second name would overwrite its cache entries, so this script keeps its own numba cache
(``NUMBA_CACHE_DIR`` in the temporary directory; the first run compiles both packages, a minute
or two). Nothing is asserted; timings on a shared machine are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "fpcore-bench-laws-numba"))

SMOOTH = ("tanh", "erf", "sigmoid", "gelu", "silu", "softplus", "selu", "elu")
QS = (0.01, 0.34, 2.0, 100.0, 1e4)
E2E_ACTS = {"gelu": (2.0, 0.0), "silu": (2.0, 0.0), "tanh": (1.05, 1e-4), "selu": (1.0, 0.0)}


def _load(path: str, name: str):
    init = os.path.join(path, "fpcore", "__init__.py")
    if not os.path.exists(init):
        raise SystemExit(f"--baseline: no fpcore package under {path!r}")
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[os.path.dirname(init)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _tapered(L: int) -> list[int]:
    return [round(784 * (10 / 784) ** (l / L)) for l in range(L + 1)]


def _build_law(pkg, acts_mod, name: str, q: float) -> float:
    acts_mod._LAW_CACHE.clear()
    act = pkg.get_activation(name)
    t = _CLOCK()
    law = act.d2_law(q)
    if law.kind == "continuous":
        law.cvalues, law.short, law.short_check  # noqa: B018 - what a spectrum may use
    return _CLOCK() - t


def _nodes(pkg, acts_mod, name: str, q: float) -> str:
    """The law's node counts: contour rule / real atoms."""
    acts_mod._LAW_CACHE.clear()
    law = pkg.get_activation(name).d2_law(q)
    cv = law.cvalues if law.kind == "continuous" else None
    return f"{0 if cv is None else cv.size}/{law.values.size}"


class _LawClock:
    """Wall time spent building laws of ``D^2`` while enabled: ``Activation._d2_law`` and the
    parts a law builds on first use (``_contour``, ``short``, ``short_check``, ``deep_tails``),
    nested calls counted once."""

    def __init__(self, acts_mod):
        self.mod, self.total, self.depth = acts_mod, 0.0, 0
        law = acts_mod.D2Law
        self._targets = [(acts_mod.Activation, "_d2_law", None), (law, "_contour", None), (law, "deep_tails", None),
                         (law.__dict__["short"], "func", None), (law.__dict__["short_check"], "func", None)]
        self._targets = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in self._targets]

    def _wrap(self, fn):
        def timed(*a, **k):
            if self.depth:
                return fn(*a, **k)
            self.depth += 1
            t = _CLOCK()
            try:
                return fn(*a, **k)
            finally:
                self.total += _CLOCK() - t
                self.depth -= 1

        return timed

    def __enter__(self):
        self.total = 0.0
        for obj, attr, fn in self._targets:
            setattr(obj, attr, self._wrap(fn))
        return self

    def __exit__(self, *exc):
        for obj, attr, fn in self._targets:
            setattr(obj, attr, fn)


_CLOCK = time.perf_counter


def _spectrum_ms(pkg, acts_mod, net, repeats: int) -> tuple[float, float]:
    pkg.jacobian_spectrum(net, n_points=1000)  # compile, first call
    times, laws = [], []
    for _ in range(repeats):
        acts_mod._LAW_CACHE.clear()
        with _LawClock(acts_mod) as clock:
            t = _CLOCK()
            pkg.jacobian_spectrum(net, n_points=1000)
            times.append(_CLOCK() - t)
        laws.append(clock.total)
    return 1e3 * statistics.median(times), 1e3 * statistics.median(laws)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", help="checkout of the older commit to compare with")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--e2e-repeats", type=int, default=3)
    ap.add_argument("--activations", default=",".join(SMOOTH))
    ap.add_argument("--qs", default=",".join(repr(q) for q in QS))
    ap.add_argument("--stat", choices=("median", "min"), default="median", help="statistic of the per-law repeats")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall time, or this process's CPU time (steadier on a machine with more "
                         "runnable jobs than cores)")
    ap.add_argument("--no-e2e", action="store_true", help="only the per-law table")
    ap.add_argument("--no-deep", action="store_true", help="skip GELU at depth 1000")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.e2e_repeats < 1:
        raise SystemExit("--repeats and --e2e-repeats must be at least 1")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, here)
    import warnings

    warnings.simplefilter("ignore", RuntimeWarning)  # uncertified points are counted, not timed here
    import fpcore
    from fpcore import _activations as new_acts

    pkgs = [("new", fpcore, new_acts)]
    if args.baseline:
        base = _load(os.path.abspath(args.baseline), "fpcore_base")
        pkgs.insert(0, ("old", base, sys.modules["fpcore_base._activations"]))
    global _CLOCK
    _CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    names = [a.strip() for a in args.activations.split(",") if a.strip()]
    qs = [float(x) for x in args.qs.split(",")]
    print(f"# fpcore from {os.path.dirname(fpcore.__file__)}; baseline {args.baseline or '-'}")
    print(f"## one law of D^2 (d2_law + cvalues + short + short_check), {args.stat} {args.clock} ms of "
          f"{args.repeats}, cache dropped; nodes: contour rule / real atoms")
    head = (f"| activation | q | nodes | " + " | ".join(f"{lab} ms" for lab, _, _ in pkgs)
            + (" | speed-up |" if len(pkgs) > 1 else " |"))
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    ratios = []
    for name in names:
        for q in qs:
            for _, pkg, mod in pkgs:  # warm up (compilation, zeros of phi')
                _build_law(pkg, mod, name, q)
            times = {lab: [] for lab, _, _ in pkgs}
            for _ in range(args.repeats):
                for lab, pkg, mod in pkgs:
                    times[lab].append(_build_law(pkg, mod, name, q))
            stat = statistics.median if args.stat == "median" else min
            med = {lab: 1e3 * stat(v) for lab, v in times.items()}
            row = (f"| {name} | {q:g} | {_nodes(pkgs[-1][1], pkgs[-1][2], name, q)} | "
                   + " | ".join(f"{med[lab]:.2f}" for lab, _, _ in pkgs))
            if len(pkgs) > 1:
                ratios.append((med["old"] / med["new"], name, q))
                row += f" | {med['old'] / med['new']:.1f}x"
            print(row + " |", flush=True)
    if ratios:
        worst = min(ratios)
        gm = math.exp(statistics.fmean(math.log(r) for r, _, _ in ratios))
        print(f"\nper-law speed-up: geometric mean {gm:.1f}x, worst {worst[0]:.1f}x ({worst[1]}, q = {worst[2]:g})")
        for name in names:
            rs = [r for r, nm, _ in ratios if nm == name]
            print(f"  {name}: geometric mean {math.exp(statistics.fmean(math.log(r) for r in rs)):.1f}x")
    if args.no_e2e:
        return
    print(f"\n## jacobian_spectrum(net, n_points=1000), median {args.clock} ms (laws: ms of it building laws of D^2)")
    cases = []
    for act, (sw, sb) in E2E_ACTS.items():
        cases.append((f"{act} square 1000 x 11", dict(widths=[1000] * 11, activation=act, sigma_w2=sw, sigma_b2=sb)))
        cases.append((f"{act} tapered L=10", dict(widths=_tapered(10), activation=act, sigma_w2=sw, sigma_b2=sb)))
    if not args.no_deep:
        cases.append(("gelu depth 1000 (500 wide, 2.0, 0.1)",
                      dict(widths=[500] * 1001, activation="gelu", sigma_w2=2.0, sigma_b2=0.1)))
    head = "| network | " + " | ".join(f"{lab} ms | {lab} laws ms" for lab, _, _ in pkgs) + (" | speed-up |" if len(pkgs) > 1 else " |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for label, spec in cases:
        res = {}
        for lab, pkg, mod in pkgs:
            net = pkg.Network(**spec)
            res[lab] = _spectrum_ms(pkg, mod, net, args.e2e_repeats)
        row = f"| {label} | " + " | ".join(f"{res[lab][0]:.0f} | {res[lab][1]:.0f}" for lab, _, _ in pkgs)
        if len(pkgs) > 1:
            row += f" | {res['old'][0] / res['new'][0]:.1f}x"
        print(row + " |", flush=True)


if __name__ == "__main__":
    main()
