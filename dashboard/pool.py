"""Workers shared by every session of a dashboard server: fair, droppable, and (for the slow kinds
of job) stoppable.

Two pools, both handing out waiting jobs fairly:

* :class:`FairThreadPool` runs callables in threads. fpcore's kernels release the GIL, so threads
  compute in parallel while the event loop serves every page. A thread cannot be stopped, so the
  pool guards against one session taking it over: at most one running job per session and lane
  (the density is one lane, everything else the other), the most urgent kind first (a density
  before a chain before deciles) and, among jobs of equal urgency, the session served longest ago
  first (round robin).
* :class:`ProcessPool` runs picklable tasks ``(function, args)`` in worker processes (forked from a
  preloaded fork server, so a fresh worker starts in milliseconds with fpcore's kernels loaded). A
  task past its time limit is really stopped: its process is killed and replaced, and the job
  fails with :class:`TimedOut`. A task whose session closed or whose request was superseded while
  it ran is stopped the same way (:class:`Dropped`). At most one running task per session.

Both pools drop, without running them, jobs that are no longer wanted when a worker reaches them
(``live()`` returns False: a newer request of the same kind, or a closed session).

Examples
--------
>>> pool = FairThreadPool(workers=2, name="doc")
>>> job = Job(owner="a", priority=0, fn=lambda: 6 * 7)
>>> pool.submit(job).result(timeout=10)
42
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Job", "Dropped", "TimedOut", "FairThreadPool", "ProcessPool", "DensityFirst", "GATE"]

log = logging.getLogger(__name__)


class Dropped(Exception):
    """The job was no longer wanted (superseded, or its session closed): not run, or stopped."""


class TimedOut(Exception):
    """The job passed its time limit and was stopped (its worker process killed)."""

    def __init__(self, seconds: float):
        super().__init__(f"stopped after {seconds:.0f} s, the time limit for one computation on this server")
        self.seconds = seconds


class DensityFirst:
    """Across every session of the server: work other than a density (lane ``"spectrum"``) starts
    only once no session has a density on its way, and ``quiet`` seconds after the last one was
    delivered; a job waits so at most ``max_wait`` seconds.

    A class moving its sliders at once (a burst of key presses from many sessions) thus gets every
    student's density before any lilypad chain, basin frame, decile or Evidence job takes a core
    from the densities, the event loop that sends them and the browsers that draw them.

    >>> gate = DensityFirst(quiet=0.0)
    >>> gate.set("a", True); gate.wait_s() > 0
    True
    >>> gate.set("a", False); gate.wait_s()
    0.0
    """

    def __init__(self, quiet: float = 0.3, max_wait: float = 2.0):
        self.quiet, self.max_wait = float(quiet), float(max_wait)
        self._lock = threading.Lock()
        self._pending: dict = {}  # owner -> since when its density is on its way
        self._last = -1e9

    def set(self, owner, pending: bool) -> None:
        """``owner`` (a session) has a density on its way (True) or none any more (False)."""
        with self._lock:
            if pending:
                self._pending[owner] = time.monotonic()
            elif self._pending.pop(owner, None) is not None:
                self._last = time.monotonic()

    def wait_s(self) -> float:
        """Seconds until other work may start (``quiet`` while a density is pending; 0: now). A
        density pending for longer than ``max_wait`` holds nothing (no job waits longer anyway,
        and a session that never delivers its density must not slow every other one)."""
        now = time.monotonic()
        with self._lock:
            if any(now - t < self.max_wait for t in self._pending.values()):
                return self.quiet if self.quiet > 0 else 1e-3
            return max(0.0, self._last + self.quiet - now)

    def wait(self, limit: float | None = None) -> None:
        """Block (a worker thread, never the event loop) until other work may start, at most
        ``limit`` (default ``max_wait``) seconds."""
        end = time.monotonic() + (self.max_wait if limit is None else limit)
        while True:
            w = min(self.wait_s(), end - time.monotonic())
            if w <= 0:
                return
            time.sleep(min(w, 0.05))


GATE = DensityFirst()


@dataclass(eq=False)
class Job:
    """A unit of work: ``fn()`` (thread pool) or ``task = (function, args)`` (process pool).

    ``owner`` identifies the session (fairness is per owner and ``lane``); ``live()`` is asked
    before the job starts and, in the process pool, while it runs.
    """

    owner: object
    priority: int = 0
    fn: Callable | None = None
    task: tuple | None = None
    lane: str = "main"
    live: Callable[[], bool] = field(default=lambda: True)
    time_limit: float = 0.0  # process pool: seconds before the task is stopped (0: none)
    seq: int = 0
    t_put: float = 0.0
    future: Future = field(default_factory=Future)


class _FairQueue:
    """Waiting jobs; :meth:`take` hands out the most urgent job of an owner that has no job running
    in that lane, the owner served longest ago first. ``lane_limits`` caps the jobs running at
    once in a lane across all owners (``{"main": 2}``: the other lanes keep a worker)."""

    def __init__(self, per_owner: int = 1, lane_limits: dict | None = None):
        self._cv = threading.Condition()
        self._jobs: list[Job] = []
        self._running: dict = {}
        self._lane_running: dict = {}
        self.lane_limits = dict(lane_limits or {})
        self._served: dict = {}
        self._tick = itertools.count()
        self._seq = itertools.count()
        self.per_owner = per_owner

    def put(self, job: Job) -> Future:
        with self._cv:
            job.seq = next(self._seq)
            job.t_put = time.monotonic()
            self._jobs.append(job)
            self._cv.notify()
        return job.future

    def __len__(self) -> int:
        with self._cv:
            return len(self._jobs)

    @property
    def n_running(self) -> int:
        with self._cv:
            return sum(self._running.values())

    def take(self) -> Job:
        while True:
            dead = []
            with self._cv:
                job = None
                while job is None:
                    keep = []
                    for j in self._jobs:
                        (keep if _alive(j) else dead).append(j)
                    self._jobs = keep
                    if dead:
                        break
                    ready = [j for j in self._jobs if self._running.get((j.owner, j.lane), 0) < self.per_owner
                             and self._lane_running.get(j.lane, 0) < self.lane_limits.get(j.lane, 1 << 30)]
                    # densities first (GATE): other work waits while any session's density is on
                    # its way, at most GATE.max_wait seconds
                    gate = GATE.wait_s() if any(j.lane != "spectrum" for j in ready) else 0.0
                    if gate > 0:
                        now = time.monotonic()
                        ready = [j for j in ready if j.lane == "spectrum" or now - j.t_put >= GATE.max_wait]
                    if ready:
                        job = min(ready, key=lambda j: (j.priority, self._served.get(j.owner, -1), j.seq))
                        self._jobs.remove(job)
                        key = (job.owner, job.lane)
                        self._running[key] = self._running.get(key, 0) + 1
                        self._lane_running[job.lane] = self._lane_running.get(job.lane, 0) + 1
                        self._served[job.owner] = next(self._tick)
                    elif gate > 0:
                        self._cv.wait(min(gate, 0.05))
                    else:
                        self._cv.wait()
            for j in dead:  # outside the lock: the futures' callbacks run here
                if j.future.set_running_or_notify_cancel():
                    j.future.set_exception(Dropped())
            if job is not None:
                return job

    def done(self, job: Job) -> None:
        with self._cv:
            key = (job.owner, job.lane)
            n = self._running.get(key, 0) - 1
            if n > 0:
                self._running[key] = n
            else:
                self._running.pop(key, None)
            self._lane_running[job.lane] = max(0, self._lane_running.get(job.lane, 0) - 1)
            self._cv.notify_all()

    def forget(self, owner) -> None:
        """Drop ``owner``'s bookkeeping (its session closed); its waiting jobs drop on the next take."""
        with self._cv:
            self._served.pop(owner, None)
            self._cv.notify_all()


def _alive(job: Job) -> bool:
    try:
        return bool(job.live())
    except Exception:  # noqa: BLE001 - a broken liveness check drops the job rather than the pool
        return False


class FairThreadPool:
    """Daemon threads running :class:`Job` callables from a fair queue (see the module docstring).

    Work other than densities (lane ``"main"``) runs on at most ``workers - 1`` threads at once
    (one with a single worker): a thread is always left for the next density, however many
    sessions' chains, certificates and phase diagrams are running (a thread cannot be stopped).
    """

    def __init__(self, workers: int, name: str = "fpcore-job", per_owner: int = 1):
        self._queue = _FairQueue(per_owner, lane_limits={"main": max(1, workers - 1)})
        self.workers = workers
        for i in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()

    def submit(self, job: Job) -> Future:
        return self._queue.put(job)

    def idle(self) -> bool:
        return len(self._queue) == 0 and self._queue.n_running == 0

    def forget(self, owner) -> None:
        self._queue.forget(owner)

    def _work(self) -> None:
        while True:
            job = self._queue.take()
            try:
                if not job.future.set_running_or_notify_cancel():
                    continue
                try:
                    job.future.set_result(job.fn())
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    job.future.set_exception(exc)
            finally:
                self._queue.done(job)


# --------------------------------------------------------------------------------------------
# Worker processes


def _child_main(conn) -> None:
    """A worker process: run ``(function, args)`` tasks from ``conn`` until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        fn, args = msg
        try:
            out = ("ok", fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed back to the server
            out = ("err", exc)
        try:
            conn.send(out)
        except Exception as exc:  # noqa: BLE001 - an unpicklable result or exception
            conn.send(("err", RuntimeError(f"{type(exc).__name__}: {exc}")))


class _Worker:
    def __init__(self, ctx, name: str):
        self.ctx, self.name = ctx, name
        self.proc = self.conn = None
        self.started = 0

    def ensure(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            return
        self.kill()
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_child_main, args=(child,), name=self.name, daemon=True)
        proc.start()
        child.close()
        self.proc, self.conn = proc, parent
        self.started += 1

    def kill(self) -> None:
        proc, conn, self.proc, self.conn = self.proc, self.conn, None, None
        if proc is not None:
            try:
                proc.kill()
                proc.join(5)
            except Exception:  # noqa: BLE001
                pass
        if conn is not None:
            conn.close()


class ProcessPool:
    """Worker processes running picklable tasks fairly, each task stopped at its time limit or
    when it is no longer wanted (see the module docstring).

    Parameters
    ----------
    workers : int
        Number of worker processes (each driven by one thread of this process).
    preload : list of str
        Modules the fork server imports once (a worker forked from it starts with them loaded).
    stop_after : float
        A running task no longer wanted is stopped once it has run this long (seconds); a shorter
        one is left to finish (a process restart costs more than it saves).
    """

    def __init__(self, workers: int = 2, preload: tuple[str, ...] = (), stop_after: float = 0.3, name="fpcore-proc"):
        self._queue = _FairQueue(1)
        self._ctx = multiprocessing.get_context("forkserver")
        self._preload = list(preload)
        self.stop_after = stop_after
        self._workers = [_Worker(self._ctx, f"{name}-{i}") for i in range(workers)]
        self._started = False
        self._lock = threading.Lock()
        self.n_stopped = 0  # tasks stopped (time limit, or no longer wanted)

    def start(self) -> None:
        """Start the fork server and the worker processes now (otherwise on the first task)."""
        with self._lock:
            if self._started:
                return
            self._started = True
            if self._preload:
                self._ctx.set_forkserver_preload(self._preload)
            for w in self._workers:
                try:
                    w.ensure()
                except Exception:  # noqa: BLE001 - retried when a task comes
                    log.warning("could not start a dashboard worker process", exc_info=True)
                threading.Thread(target=self._serve, args=(w,), name=f"{w.name}-driver", daemon=True).start()

    def ready(self, timeout: float = 60.0) -> bool:
        """Wait until every worker answers (the fork server has loaded its preloads)."""
        self.start()
        futures = [self.submit(Job(owner=("ping", i), task=(_ping, ()), time_limit=timeout)) for i in range(len(self._workers))]
        try:
            return all(f.result(timeout) == "pong" for f in futures)
        except Exception:  # noqa: BLE001
            return False

    def submit(self, job: Job) -> Future:
        self.start()
        return self._queue.put(job)

    def idle(self) -> bool:
        return len(self._queue) == 0 and self._queue.n_running == 0

    def forget(self, owner) -> None:
        self._queue.forget(owner)

    @property
    def restarts(self) -> int:
        return sum(max(0, w.started - 1) for w in self._workers)

    def _serve(self, worker: _Worker) -> None:
        while True:
            job = self._queue.take()
            try:
                if job.future.set_running_or_notify_cancel():
                    try:
                        job.future.set_result(self._run(worker, job))
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        job.future.set_exception(exc)
            finally:
                self._queue.done(job)

    def _run(self, worker: _Worker, job: Job):
        worker.ensure()
        t0 = time.monotonic()
        try:
            worker.conn.send(job.task)
            while not worker.conn.poll(0.05):
                ran = time.monotonic() - t0
                if job.time_limit > 0 and ran > job.time_limit:
                    self._stop(worker)
                    raise TimedOut(job.time_limit)
                if ran > self.stop_after and not _alive(job):
                    self._stop(worker)
                    raise Dropped()
                if not worker.proc.is_alive():
                    code = worker.proc.exitcode
                    worker.kill()
                    raise RuntimeError(f"the worker process ended (exit code {code})")
            status, value = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            worker.kill()
            raise RuntimeError(f"the worker process failed: {exc!r}") from None
        if status == "err":
            raise value
        return value

    def _stop(self, worker: _Worker) -> None:
        self.n_stopped += 1
        worker.kill()
        try:
            worker.ensure()  # the replacement is forked now, ready for the next task
        except Exception:  # noqa: BLE001 - retried on the next task
            log.warning("could not restart a dashboard worker process", exc_info=True)


def _ping() -> str:
    return "pong"
