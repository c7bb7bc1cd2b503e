"""dashboard.pool.DensityFirst: other work waits while a session's density is on its way, a
density always starts, nothing waits longer than max_wait, and a stale density holds nothing."""

import time

from dashboard import pool
from dashboard.pool import DensityFirst, FairThreadPool, Job


def test_gate_holds_secondary_work_until_the_density_is_delivered(monkeypatch):
    gate = DensityFirst(quiet=0.2, max_wait=5.0)
    monkeypatch.setattr(pool, "GATE", gate)
    tp = FairThreadPool(workers=2, name="gate-test")
    gate.set("a", True)
    t0 = time.monotonic()
    other = tp.submit(Job(owner="b", fn=time.monotonic, lane="main"))
    dens = tp.submit(Job(owner="c", fn=time.monotonic, lane="spectrum"))
    assert dens.result(timeout=5) - t0 < 0.15  # a density is never held
    time.sleep(0.4)
    assert not other.done()  # held while "a"'s density is pending
    gate.set("a", False)
    started = other.result(timeout=5)
    assert started - t0 >= 0.4 + 0.2 - 0.05  # and for `quiet` seconds after it was delivered


def test_gate_waits_at_most_max_wait_and_forgets_stale_densities(monkeypatch):
    gate = DensityFirst(quiet=0.1, max_wait=0.5)
    monkeypatch.setattr(pool, "GATE", gate)
    tp = FairThreadPool(workers=1, name="gate-test-2")
    gate.set("never-delivered", True)
    t0 = time.monotonic()
    started = tp.submit(Job(owner="b", fn=time.monotonic, lane="main")).result(timeout=5)
    assert 0.4 <= started - t0 < 2.0
    time.sleep(0.1)
    assert gate.wait_s() == 0.0  # pending longer than max_wait: holds nothing


def test_other_work_leaves_a_thread_for_the_next_density():
    # Three sessions' chains (lane "main", which a thread cannot stop) hold the pool's threads
    # but one: a fourth session's density starts at once, and a third chain waits for a free slot.
    import threading

    tp = FairThreadPool(workers=3, name="lane-test")
    release = threading.Event()
    started = []

    def chain(owner):
        started.append(owner)
        release.wait(10)
        return owner

    try:
        chains = [tp.submit(Job(owner=o, fn=lambda o=o: chain(o), lane="main")) for o in ("a", "b", "c")]
        t0 = time.monotonic()
        while len(started) < 2 and time.monotonic() - t0 < 5:
            time.sleep(0.01)
        dens = tp.submit(Job(owner="d", fn=time.monotonic, lane="spectrum"))
        assert dens.result(timeout=5) - t0 < 1.0
        time.sleep(0.2)
        assert sorted(started) in (["a", "b"], ["a", "c"], ["b", "c"])  # two of the three chains
        release.set()
        assert sorted(f.result(timeout=5) for f in chains) == ["a", "b", "c"]
    finally:
        release.set()
