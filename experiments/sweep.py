"""The sweep: FP metrics and training runs of sampled architectures, on Dask, resumable.

Layout of a runs directory (default ``experiments/runs/<task>``, not committed)::

    sweep.json               the sweep's settings (a resumed sweep must use the same ones)
    metrics/<arch_id>.json   {"arch": ..., "metrics": ...} or {"arch": ..., "error": ...}
    runs/<arch_id>-s<k>.json one training run (final values and per-epoch history)

The driver writes each result file as soon as its task finishes (atomically), so an interrupted
sweep resumes where it stopped: finished metrics and runs are never recomputed. Workers only
compute and return results, so they need no shared file system with the driver (a remote cluster
given by ``--scheduler`` just needs ``fpcore`` and ``experiments`` importable).

Scheduling: ``scheduler=None`` starts a ``distributed.LocalCluster`` with ``workers`` single-threaded
worker processes; an address (``tcp://host:8786``) connects to an existing cluster;
``"synchronous"`` runs everything in this process (debugging, no Dask).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from . import RESULTS_DIR
from .architectures import DEFAULT_ACTIVATIONS, Architecture, sample_architectures
from .metrics import N_POINTS

__all__ = ["run_sweep", "collect", "export", "default_runs_dir", "sweep_preset", "restore_runs"]

SCHEMA = 2


def default_runs_dir(task: str) -> Path:
    return Path(__file__).resolve().parent / "runs" / task


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, allow_nan=True))
    os.replace(tmp, path)  # atomic: a killed sweep never leaves half a file


def _read_json(path: Path):
    return json.loads(path.read_text())


# -- tasks executed on the workers (module level so they pickle by reference) -------------------
def _metrics_in_process(arch: dict, q0: float, n_points: int) -> dict:
    from .metrics import UnsupportedActivation, architecture_metrics
    from .provenance import fpcore_provenance

    a = Architecture.from_dict(arch)
    prov = fpcore_provenance()
    try:
        return {"arch": arch, "metrics": architecture_metrics(a, q0, n_points=n_points), "provenance": prov}
    except UnsupportedActivation as exc:
        return {"arch": arch, "error": f"unsupported: {exc}", "provenance": prov}
    except Exception as exc:  # noqa: BLE001 - recorded and reported, never turned into NaN metrics
        return {"arch": arch, "error": f"{type(exc).__name__}: {exc}", "provenance": prov}


_CHILD = None  # per worker process: a persistent child computing metrics (killed on a timeout)


def _child_env() -> dict:
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([here, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux ``/proc``); None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _metrics_task(
    arch: dict, q0: float, n_points: int, timeout: float | None = None, wall_factor: float = 10.0
) -> dict:
    """Metrics of one architecture, bounded in time.

    With a ``timeout`` (seconds) the computation runs in a persistent child process of this worker
    (``python -m experiments._metrics_child``); when the child has used more than ``timeout``
    seconds of CPU on this architecture (where ``/proc`` tells; CPU time, so that a loaded machine
    does not turn slow into "timed out"), or ``wall_factor * timeout`` seconds of wall-clock time, it is
    killed (the next architecture starts a fresh one) and the architecture is recorded with NaN
    metrics and the reason ``"timeout: ..."``. Without one it runs in this process.
    """
    global _CHILD
    import select
    import subprocess
    import time

    if not timeout:
        return _metrics_in_process(arch, q0, n_points)
    from .provenance import fpcore_provenance

    if _CHILD is None or _CHILD.poll() is not None:
        _CHILD = subprocess.Popen(
            [sys.executable, "-m", "experiments._metrics_child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
    child = _CHILD
    t0 = time.monotonic()
    cpu0 = _cpu_seconds(child.pid)
    child.stdin.write(json.dumps({"arch": arch, "q0": q0, "n_points": n_points}) + "\n")
    child.stdin.flush()
    why = "timeout"
    while True:
        wall = time.monotonic() - t0
        ready, _, _ = select.select([child.stdout], [], [], max(0.0, min(1.0, wall_factor * timeout - wall)))
        if ready:
            line = child.stdout.readline()
            if line:
                return json.loads(line)
            why = "metrics process exited"
            break
        cpu = _cpu_seconds(child.pid)
        used = (cpu - cpu0) if (cpu is not None and cpu0 is not None) else wall
        if used > timeout or time.monotonic() - t0 >= wall_factor * timeout:
            break
    child.kill()
    child.wait()
    _CHILD = None
    cpu = "" if cpu0 is None else " of CPU"
    return {
        "arch": arch,
        "error": f"{why}: no metrics within {timeout:g} s{cpu} (wall {time.monotonic() - t0:.0f} s)",
        "provenance": fpcore_provenance(),
    }


_PIECEWISE = ("linear", "relu", "leaky_relu", "hard_tanh")


def _metrics_cost(a: Architecture) -> tuple:
    return (a.activation_name not in _PIECEWISE, a.depth, sum(a.hidden))


def _train_task(arch: dict, task: str, seed: int, config: dict, device: str) -> dict:
    from .training import train_run

    return train_run(Architecture.from_dict(arch), task, seed, config, device)


# -- execution backends ------------------------------------------------------------------------
class _Inline:
    """Runs tasks in this process (``scheduler="synchronous"``)."""

    def run(self, calls, desc, progress):
        bar = _bar(len(calls), desc, progress)
        for key, fn, args in calls:
            yield key, fn(*args)
            bar.update(1)
        bar.close()

    def close(self):
        pass


class _Dask:
    def __init__(self, scheduler, workers):
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler is None:
            self.cluster = LocalCluster(
                n_workers=int(workers),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
            )
            self.client = Client(self.cluster)
        else:
            self.client = Client(scheduler)

    def run(self, calls, desc, progress):
        from distributed import as_completed

        futures = {}
        for key, fn, args in calls:
            futures[self.client.submit(fn, *args, pure=False)] = key
        bar = _bar(len(futures), desc, progress)
        for fut in as_completed(list(futures)):
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 - a failed run is reported and retried next time
                result = {"error": f"{type(exc).__name__}: {exc}"}
            bar.update(1)
            yield futures.pop(fut), result
        bar.close()

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _bar(total, desc, progress):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, file=sys.stderr, dynamic_ncols=True)


# -- the sweep ---------------------------------------------------------------------------------
class _Progress:
    """Progress lines (done/total, elapsed, ETA) to the log every ``every`` results or minute."""

    def __init__(self, total: int, what: str, log, every: int = 20):
        import time

        self.total, self.what, self.log, self.every = total, what, log, every
        self.done, self.t0, self.last = 0, time.monotonic(), time.monotonic()

    def update(self):
        import time

        self.done += 1
        now = time.monotonic()
        if self.done % self.every == 0 or now - self.last > 60 or self.done == self.total:
            el = now - self.t0
            eta = el / self.done * (self.total - self.done)
            self.log(f"{self.what}: {self.done}/{self.total} in {el / 60:.1f} min, ETA {eta / 60:.1f} min")
            self.last = now


def _file_log(runs_dir: Path, log):
    """``log`` that also appends time-stamped lines to ``<runs_dir>/progress.log``."""
    import datetime

    path = runs_dir / "progress.log"

    def _log(msg: str) -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(f"{stamp} {msg}\n")
        if log is not None:
            log(msg)

    return _log


def sweep_preset(name: str) -> dict:
    """The settings of a named sweep (:data:`experiments.architectures.SWEEPS`)."""
    from .architectures import SWEEPS

    if name not in SWEEPS:
        raise ValueError(f"name: no sweep preset {name!r}; presets: {sorted(SWEEPS)}")
    return SWEEPS[name]


def run_sweep(
    task: str = "digits",
    n_arch: int = 200,
    seeds: int = 3,
    runs_dir: str | Path | None = None,
    scheduler: str | None = None,
    workers: int = 2,
    train: dict | None = None,
    device: str = "auto",
    activations=None,
    arch_seed: int = 0,
    n_points: int = N_POINTS,
    stages=("metrics", "train"),
    recompute_metrics: bool = False,
    name: str | None = None,
    progress: bool = True,
    log=print,
    sampler: dict | None = None,
    metrics_timeout: float | None = 300.0,
    metrics_wall_factor: float = 10.0,
) -> Path:
    """Run (or resume) a sweep and return its runs directory.

    Parameters
    ----------
    task : {"digits", "mnist1d"}
    n_arch, seeds : int
        Number of sampled architectures, and of training seeds (0..seeds-1) per architecture.
    scheduler : None, "synchronous" or a Dask scheduler address
    workers : int
        Worker processes of the local cluster (``scheduler=None``).
    train : dict
        Training options (:class:`experiments.training.TrainConfig`).
    activations : sequence of str, optional
        Activations to sample; default :data:`DEFAULT_ACTIVATIONS` (ignored when ``sampler`` is
        given). Sampling and training never depend on fpcore: an activation whose spectrum fpcore
        cannot compute is trained and its architectures recorded with NaN metrics and the reason.
    sampler : dict, optional
        Keyword arguments of :func:`experiments.architectures.sample_architectures` (the presets
        of :data:`experiments.architectures.SWEEPS`).
    stages : sequence of {"metrics", "train"}
        What to run; the two are independent (separate processes may run them concurrently).
    recompute_metrics : bool
        Discard all cached metrics first. Without it, cached metrics computed by another fpcore
        (another source hash, :mod:`experiments.provenance`) are recomputed anyway; training runs
        are always kept.
    metrics_timeout : float or None
        Seconds allowed for the metrics of one architecture (both networks); past it the
        architecture gets NaN metrics and the reason. None: unbounded, in the worker process.
    metrics_wall_factor : float
        The wall-clock backstop of that limit, as a multiple of it (default 10; raise it when the
        sweep runs at low priority on a loaded machine, where CPU time accrues slowly).
    name : str, optional
        Name of the exported results (``<name>_runs.csv``...); default: the task. Use one per
        variant of a task (e.g. ``digits_adam``) and a separate ``runs_dir``.
    """
    from .data import load_task
    from .provenance import fpcore_provenance, is_current
    from .training import TrainConfig

    unknown = set(stages) - {"metrics", "train"}
    if unknown or not stages:
        raise ValueError(f"stages must be a non-empty subset of ('metrics', 'train'), got {stages!r}")
    name = name or task
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir(name)
    log = _file_log(runs_dir, log)
    cfg = dict(TrainConfig(**(train or {})))
    t = load_task(task)
    q0 = t.q0
    if sampler is None:
        sampler = {"activations": list(activations or DEFAULT_ACTIVATIONS)}
    from .architectures import sweep_sampler

    sampler = sweep_sampler(sampler)

    settings = dict(
        schema=SCHEMA,
        task=task,
        arch_seed=int(arch_seed),
        sampler=sampler,
        train=cfg,
        n_points=int(n_points),
        q0=q0,
    )
    settings_path = runs_dir / "sweep.json"
    if settings_path.exists():
        old = _read_json(settings_path)
        old_cmp = {k: v for k, v in old.items() if k in settings}
        if old_cmp != json.loads(json.dumps(settings)):
            raise ValueError(
                f"{runs_dir} holds a sweep with other settings:\n  old: {old_cmp}\n  new: {settings}\n"
                "use another --runs-dir (or delete it) to start a new sweep"
            )
    # The sweep's extent only grows: a shorter rerun (e.g. metrics only) keeps the larger one for export.
    extent = {"n_arch": int(n_arch), "seeds": int(seeds)}
    if settings_path.exists():
        extent = {k: max(v, int(old.get(k, 0))) for k, v in extent.items()}
    _write_json(settings_path, {**settings, "name": name, **extent})

    archs = sample_architectures(n_arch, t.n_features, t.n_classes, seed=arch_seed, **sampler)
    backend = _Inline() if scheduler == "synchronous" else _Dask(scheduler, workers)
    try:
        if "metrics" in stages:
            mdir = runs_dir / "metrics"
            current = fpcore_provenance()
            stale = 0
            for a in archs:
                path = mdir / f"{a.arch_id}.json"
                if path.exists() and (recompute_metrics or not is_current(_read_json(path), current)):
                    path.unlink()
                    stale += 1
            # cheap spectra first (piecewise-linear activations, shallow nets): an interrupted stage
            # leaves the expensive smooth, deep ones for later, not a random half of everything
            todo = [
                (a.arch_id, _metrics_task, (a.to_dict(), q0, int(n_points), metrics_timeout, metrics_wall_factor))
                for a in sorted(archs, key=_metrics_cost)
                if not (mdir / f"{a.arch_id}.json").exists()
            ]
            log(
                f"{name}: {len(archs)} architectures, {len(archs) - len(todo)} with current metrics, "
                f"{stale} discarded as stale (fpcore {current})"
            )
            bar = _Progress(len(todo), f"{name} metrics", log)
            for key, result in backend.run(todo, "FP metrics", progress):
                if "arch" not in result:  # the task itself failed (worker lost...): retried next time
                    log(f"metrics of {key} failed: {result.get('error')}")
                else:
                    _write_json(mdir / f"{key}.json", result)
                bar.update()
            failed = [a for a in archs if "metrics" not in _read_json(mdir / f"{a.arch_id}.json")]
            if failed:
                log(
                    f"{len(failed)} architectures have NaN metrics "
                    f"(reasons in {mdir}/<arch_id>.json and the metrics_error column after export)"
                )
        if "train" in stages:
            # Training does not depend on the metrics: every sampled architecture is trained, so a
            # later fpcore only needs the metrics redone.
            rdir = runs_dir / "runs"
            todo = [
                (f"{a.arch_id}-s{s}", _train_task, (a.to_dict(), task, s, cfg, device))
                for a in archs
                for s in range(seeds)
                if not (rdir / f"{a.arch_id}-s{s}.json").exists()
            ]
            log(f"{name}: {len(archs) * seeds} training runs, {len(archs) * seeds - len(todo)} done already")
            bar = _Progress(len(todo), f"{name} training", log)
            errors = 0
            for key, result in backend.run(todo, "training", progress):
                bar.update()
                if "error" in result:
                    errors += 1
                    log(f"run {key} failed: {result['error']}")
                    continue
                _write_json(rdir / f"{key}.json", result)
            if errors:
                log(f"{errors} runs failed; rerun the same command to retry them")
    finally:
        backend.close()
    return runs_dir


# -- collecting --------------------------------------------------------------------------------
RUN_COLUMNS = (
    "seed",
    "final_train_loss",
    "final_test_loss",
    "final_test_acc",
    "init_test_loss",
    "diverged",
    "epochs_done",
    "seconds",
    "device",
    "torch_version",
)


def _arch_row(a: Architecture) -> dict:
    r = a.width_ratios
    return dict(
        arch_id=a.arch_id,
        activation=a.activation,
        activation_name=a.activation_name,
        init=a.init,
        depth=a.depth,
        widths="-".join(map(str, a.widths)),
        sigma_w2=a.sigma_w2,
        sigma_b2=a.sigma_b2,
        gain=a.gain,
        min_width_ratio=min(r),
        max_width_ratio=max(r),
        bias=bool(a.bias),
    )


def collect(runs_dir: str | Path, n_arch: int | None = None, seeds: int | None = None):
    """Tables of a runs directory: ``(runs, epochs, skipped)`` DataFrames.

    ``runs``: one row per finished (architecture, seed) with the architecture, its metrics (full
    and ``hidden_``; NaN with the reason in ``metrics_error`` when they could not be computed, empty
    when not computed yet), the fpcore provenance of the metrics, and every target at every
    recorded epoch (``train_loss_e1``...). ``epochs``: one row per (architecture, seed, epoch).
    ``skipped``: architectures whose metrics could not be computed, and why. ``n_arch``/``seeds``
    restrict to the first architectures/seeds of the sweep (default: the sweep's own settings).
    """
    import pandas as pd

    from .metrics import metric_columns
    from .training import epoch_summary

    runs_dir = Path(runs_dir)
    settings = _read_json(runs_dir / "sweep.json")
    n_arch = settings["n_arch"] if n_arch is None else n_arch
    seeds = settings["seeds"] if seeds is None else seeds
    from .data import load_task

    t = load_task(settings["task"])
    archs = sample_architectures(n_arch, t.n_features, t.n_classes, seed=settings["arch_seed"], **settings["sampler"])
    nan_metrics = {k: math.nan for k in metric_columns()}
    rows, epochs, skipped = [], [], []
    for a in archs:
        mpath = runs_dir / "metrics" / f"{a.arch_id}.json"
        m = _read_json(mpath) if mpath.exists() else {"error": "not computed"}
        prov = m.get("provenance") or {}
        if "metrics" in m:
            metrics, err = {**nan_metrics, **m["metrics"]}, ""
        else:
            metrics, err = nan_metrics, m.get("error", "")
            skipped.append({**_arch_row(a), "reason": err})
        extra = {
            "metrics_error": err,
            "fpcore_version": prov.get("fpcore_version", ""),
            "fpcore_commit": prov.get("fpcore_commit", ""),
            "fpcore_source": prov.get("fpcore_source", ""),
            "metrics_source": prov.get("metrics_source", ""),
        }
        for s in range(seeds):
            rpath = runs_dir / "runs" / f"{a.arch_id}-s{s}.json"
            if not rpath.exists():
                continue
            r = _read_json(rpath)
            h = r["history"]
            # a run restored from the committed tables carries its recorded values as exported
            summary = r.get("recorded") or epoch_summary(h, int(settings["train"]["epochs"]))
            rows.append(
                {
                    **_arch_row(a),
                    "task": settings["task"],
                    **{k: r.get(k) for k in RUN_COLUMNS},
                    **summary,
                    **metrics,
                    **extra,
                }
            )
            for e in range(len(h["test_loss"])):
                epochs.append(
                    dict(
                        arch_id=a.arch_id,
                        seed=s,
                        epoch=e,
                        train_loss=h["train_loss"][e],
                        test_loss=h["test_loss"][e],
                        test_acc=h["test_acc"][e],
                    )
                )
    return pd.DataFrame(rows), pd.DataFrame(epochs), pd.DataFrame(skipped)


def export(runs_dir: str | Path, results_dir: str | Path | None = None, n_arch=None, seeds=None) -> dict:
    """Write ``<name>_runs.csv``, ``<name>_epochs.csv`` (and ``<name>_skipped.csv``) to the
    results directory (``name``: the sweep's name, by default its task); return the paths."""
    runs, epochs, skipped = collect(runs_dir, n_arch, seeds)
    if runs.empty:
        raise ValueError(f"{runs_dir}: no finished runs to export")
    results_dir = Path(results_dir) if results_dir is not None else RESULTS_DIR
    results_dir.mkdir(parents=True, exist_ok=True)
    settings = _read_json(Path(runs_dir) / "sweep.json")
    task = settings.get("name", settings["task"])
    paths = {"runs": results_dir / f"{task}_runs.csv", "epochs": results_dir / f"{task}_epochs.csv"}
    runs.to_csv(paths["runs"], index=False, float_format="%.6g")
    epochs.to_csv(paths["epochs"], index=False, float_format="%.5g")
    spath = results_dir / f"{task}_skipped.csv"
    if not skipped.empty:
        skipped.to_csv(spath, index=False)
        paths["skipped"] = spath
    elif spath.exists():
        spath.unlink()
    return paths


def restore_runs(name: str, runs_dir: str | Path | None = None, results_dir: str | Path | None = None) -> int:
    """Write the training runs of the committed ``<name>_runs.csv`` and ``<name>_epochs.csv`` back
    into a runs directory as ``runs/<arch_id>-s<k>.json``; return how many were written.

    The runs directories are not committed, so this is how a fresh checkout redoes the metrics of a
    sweep with another fpcore (``--stage metrics``) or extends it (``--stage train`` trains only
    the runs that are missing) without retraining what is in the tables. Each restored run keeps
    the exported values verbatim (``recorded``: every target at every recorded epoch, as in the
    CSV; ``history``: the per-epoch curves of ``<name>_epochs.csv``), so exporting again writes the
    same training columns. Runs already in the directory are left alone.
    """
    import pandas as pd

    from .training import TARGETS

    results_dir = Path(results_dir) if results_dir is not None else RESULTS_DIR
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir(name)
    rpath, epath = results_dir / f"{name}_runs.csv", results_dir / f"{name}_epochs.csv"
    if not rpath.exists() or not epath.exists():
        raise ValueError(f"name: no committed tables {rpath.name} and {epath.name} in {results_dir}")
    runs = pd.read_csv(rpath, keep_default_na=False, na_values=["nan", "NaN", ""])
    epochs = pd.read_csv(epath)
    curves = {key: g.sort_values("epoch") for key, g in epochs.groupby(["arch_id", "seed"])}
    recorded_cols = [c for c in runs.columns if any(c.startswith(f"{t}_e") for t in TARGETS)]

    def _py(v):
        return v.item() if hasattr(v, "item") else v

    written = 0
    for row in runs.itertuples(index=False):
        row = row._asdict()
        key = (row["arch_id"], int(row["seed"]))
        path = runs_dir / "runs" / f"{key[0]}-s{key[1]}.json"
        if path.exists():
            continue
        if key not in curves:
            raise ValueError(f"{epath.name} has no curve for run {key[0]}-s{key[1]}")
        g = curves[key]
        run = {k: _py(row[k]) for k in RUN_COLUMNS if k in row}
        run["arch_id"] = key[0]
        run["task"] = row.get("task")
        run["diverged"] = str(row["diverged"]) == "True"
        run["seed"] = key[1]
        run["recorded"] = {c: float(row[c]) for c in recorded_cols}
        run["history"] = {t: [float(v) for v in g[t]] for t in ("train_loss", "test_loss", "test_acc")}
        run["restored_from"] = rpath.name
        _write_json(path, run)
        written += 1
    return written
