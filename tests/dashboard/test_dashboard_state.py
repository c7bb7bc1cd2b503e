"""The dashboard's state class and width profiles, without a server."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import fpcore
from dashboard import state as st
from dashboard.state import DashboardState, parse_widths, scaled_widths, width_profile


# -- widths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "profile, expected",
    [
        ("constant", [100, 100, 100, 100, 100]),
        ("expanding", [100, 141, 200, 283, 400]),
        ("contracting", [100, 71, 50, 35, 25]),
        ("bottleneck", [100, 50, 25, 50, 100]),
    ],
)
def test_width_profiles(profile, expected):
    assert width_profile(profile, 4, 100, 4.0) == expected


def test_width_profile_ends_and_ratio():
    w = width_profile("expanding", 7, 300, 3.0)
    assert len(w) == 8 and w[0] == 300 and w[-1] == 900
    assert all(a <= b for a, b in zip(w, w[1:]))
    b = width_profile("bottleneck", 5, 400, 8.0)
    assert b[0] == b[-1] == 400 and min(b) >= 400 / 8 - 1 and b == b[::-1]


def test_width_profile_custom_overrides_depth():
    assert width_profile("custom", 3, 100, 2.0, "784, 512,256 , 10") == [784, 512, 256, 10]


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "at least two"),
        ("400", "input width and at least one"),
        ("400, abc", "'abc' is not an integer"),
        ("400, 2.5", "not an integer"),
        ("400, 0", "out of range"),
        ("400, -3", "out of range"),
    ],
)
def test_parse_widths_rejects(text, match):
    with pytest.raises(ValueError, match=match):
        parse_widths(text)


def test_parse_widths_tolerates_spaces_semicolons_trailing_comma():
    assert parse_widths(" 10; 20 ,30, ") == [10, 20, 30]
    assert parse_widths("10, 20.0") == [10, 20]


@pytest.mark.parametrize("args", [("constant", 0, 100), ("constant", 3, 0), ("expanding", 3, 100, 0.5), ("zigzag", 3, 100)])
def test_width_profile_rejects(args):
    with pytest.raises(ValueError):
        width_profile(*args)


def test_scaled_widths_keeps_ratios():
    assert scaled_widths([400, 800, 200], 100) == [50, 100, 25]
    assert min(scaled_widths([1000, 3], 10)) >= 1


def test_grid_quantile_inside_atom_is_zero():
    r = st.compute_spectrum(fpcore.Network([100] * 4), "JtJ", 120)
    q = st.grid_quantile(r.spectrum, r.cdf_grid, [0.2, 0.5, 0.9])
    assert q[0] == 0.0  # ReLU: atom of mass 1/2 at 0
    assert 0 < q[2] <= r.spectrum.lambda_max
    # Close to the core's own (exactly solved) quantile.
    assert q[2] == pytest.approx(float(r.spectrum.quantile(0.9)), rel=0.05)


# -- state -------------------------------------------------------------------------------------


@pytest.fixture
def state():
    return DashboardState(depth=4, base_width=100, n_points=120)


def test_defaults_show_relu_at_criticality():
    s = DashboardState()
    assert s.error == "" and s.result is not None
    net = s.result.network
    assert net.depth == 10 and set(net.widths) == {400} and net.activations[0].name == "relu"
    assert net.sigma_w2[0] == 2.0 and s.x_scale == "log"
    assert s.result.spectrum.atom == pytest.approx(0.5)
    assert s.trace is not None and s.lilypad is not None and s.lilypad.k == 0


def test_every_activation_is_offered(state):
    assert list(state.param.activation.objects) == list(fpcore.ACTIVATIONS)


def test_url_parameters_are_parameters():
    assert set(st.URL_PARAMETERS) <= set(DashboardState.param)


def test_changing_depth_recomputes(state):
    before = state.result
    state.depth = 6
    assert state.result is not before and state.result.network.depth == 6
    assert not np.allclose(before.spectrum.lambda_max, state.result.spectrum.lambda_max)


def test_profile_and_init_reach_the_network(state):
    state.param.update(profile="bottleneck", ratio=4.0, init="orthogonal", sigma_b2=0.1, input_mode="fixed point q*")
    net = state.result.network
    assert net.widths == (100, 50, 25, 50, 100) and net.init == "orthogonal"
    assert net.sigma_b2[0] == 0.1 and net.q0 == "fixed_point"
    state.gram = "JJt"
    assert state.result.gram == "JJt"


def test_leaky_relu_slope(state):
    state.param.update(activation="leaky_relu", slope=0.2)
    assert state.error == "" or "not supported" in state.error
    if state.error == "":
        assert state.result.network.activations[0].params == (0.2,)


def test_bad_width_list_keeps_last_result(state):
    good = state.result
    state.profile = "custom"  # default custom list is valid
    good = state.result
    n = state.n_errors
    state.custom_widths = "100, 50, abc"
    assert state.n_errors == n + 1 and "abc" in state.error
    assert state.result is good
    state.custom_widths = "100, 50, 100"
    assert state.error == "" and state.result.network.widths == (100, 50, 100)


@pytest.mark.parametrize("name, value", [("sigma_w2", 0.0), ("sigma_w2", -1.0), ("sigma_b2", -0.5), ("q0", 0.0),
                                         ("base_width", 0), ("ratio", 0.5), ("sigma_w2", float("nan"))])  # fmt: skip
def test_out_of_range_values_notify_and_keep_result(state, name, value):
    good = state.result
    setattr(state, name, value)
    if name == "ratio":  # the ratio only matters for a non-constant profile
        state.profile = "expanding"
    assert state.error and state.result is good


def test_solver_failure_keeps_last_result(state, monkeypatch):
    good = state.result

    def boom(*a, **k):
        raise RuntimeError("lilypad chain lost")

    monkeypatch.setattr(fpcore, "jacobian_spectrum", boom)
    state.sigma_w2 = 1.234
    assert "lilypad chain lost" in state.error and state.result is good


def test_unsupported_activation_is_a_message(state, monkeypatch):
    good = state.result

    def not_yet(*a, **k):
        raise NotImplementedError("tanh arrives with issue 3")

    monkeypatch.setattr(fpcore, "jacobian_spectrum", not_yet)
    state.activation = "tanh"
    assert state.error.startswith("spectrum: not supported by fpcore yet") and state.result is good


def test_spectrum_cache_hits(state):
    state.depth = 5
    assert not state.result.cached
    state.depth = 4
    assert state.result.cached  # computed by the fixture


def test_trace_follows_target_and_frames(state):
    tr = state.trace
    assert tr is not None and len(tr.centres) >= 2
    assert state.effective_target() == pytest.approx(tr.target.real)
    state.frame = len(tr.centres) - 1
    assert state.lilypad.k == len(tr.centres) - 1 and state.lilypad.basins is not None
    re, im, labels, roots = state.lilypad.basins
    assert labels.shape == (len(im), len(re)) and labels.max() < len(roots)
    x = 0.5 * state.result.spectrum.lambda_max
    state.target_x = x
    assert state.trace.target.real == pytest.approx(x) and state.frame == 0 and state.lilypad.k == 0


def test_out_of_support_target_falls_back_to_default(state):
    state.target_x = 1e9
    assert state.trace.target.real == pytest.approx(state.default_target())


def test_deferred_trace_uses_scheduler():
    pending = []
    s = DashboardState(depth=3, base_width=50, n_points=80, scheduler=pending.append)
    assert s.trace is None and len(pending) == 1
    s.depth = 4
    s.depth = 5
    assert len(pending) == 1  # one pending chain update, whatever the number of changes
    pending.pop()()
    assert s.trace is not None and s.lilypad.k == 0


def test_monte_carlo_sync_and_cleared_on_change(state):
    state.mc_size = 40
    assert state.run_monte_carlo()
    mc = state.mc
    assert mc.sampled_widths == (40,) * 5 and 0.0 <= mc.ks <= 1.0 and mc.eigenvalues.size == 40 * state.mc_samples
    state.depth = 5
    assert state.mc is None


def test_monte_carlo_async_progress_and_superseded(state):
    state.param.update(mc_size=30, mc_samples=3)
    seen = []
    state.param.watch(lambda e: seen.append(e.new), "mc_progress")
    assert asyncio.run(state.arun_monte_carlo())
    assert seen[-1] == 1.0 and len(seen) >= 3 and not state.mc_running and state.mc is not None
    # per matrix, not per network: one network of 4 layers moves the bar 5 times (4 layers, the SVD)
    seen.clear()
    state.param.update(mc_samples=1)
    assert asyncio.run(state.arun_monte_carlo())
    assert seen[0] == 0.0 and seen[1:] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])

    async def two():
        first = asyncio.ensure_future(state.arun_monte_carlo())
        await asyncio.sleep(0)
        second = await state.arun_monte_carlo()
        return await first, second

    first, second = asyncio.run(two())
    assert first is False and second is True


def test_tuner_only_when_available(state, monkeypatch):
    monkeypatch.delattr(fpcore, "tune_init", raising=False)
    assert not state.can_tune and not state.tune_to_criticality() and "tune_init" in state.error

    class Tuned:
        sigma_w2, sigma_b2, reachable, message = (1.7,), (0.05,), True, "tuned"

    monkeypatch.setattr(fpcore, "tune_init", lambda net, target: Tuned(), raising=False)
    assert state.can_tune and state.tune_to_criticality()
    assert state.sigma_w2 == 1.7 and state.sigma_b2 == 0.05 and state.info == "Tuned: Tuned."


def test_tuner_lands_tanh_on_the_textbook_edge_and_never_moves_a_slider_on_failure():
    s = DashboardState(activation="tanh", sigma_w2=3.0, sigma_b2=0.0, depth=4, base_width=100, n_points=60)
    assert s.tune_to_criticality()
    assert s.sigma_w2 == 1.0 and s.sigma_b2 == 0.0
    assert "Edge of chaos" in s.info and "σ_w² = 1 " in s.info and "multiplier" not in s.info
    # GELU without bias: no critical point (fold); sigmoid: the edge is at σ_w² = 103, off the slider
    for act, sw in (("gelu", 3.0), ("sigmoid", 1.0)):
        s = DashboardState(activation=act, sigma_w2=sw, sigma_b2=0.0, depth=3, base_width=50, n_points=60)
        n_err = s.n_errors
        assert not s.tune_to_criticality()
        assert s.sigma_w2 == sw and s.sigma_b2 == 0.0 and s.n_errors == n_err + 1
        assert "sliders are unchanged" in s.error and "multiplier" not in s.error


def test_url_overrides_keep_good_values_and_report_bad_ones():
    params, problems = st.url_overrides(
        {"depth": "30", "sigma_w2": 1, "activation": "tanh", "custom_widths": "400, 800", "target_x": None,
         "x_scale": "linear", "unknown": 3, "n_points": "abc", "mc_size": 2.0, "profile": "zigzag"}
    )  # fmt: skip
    assert params == {"depth": 30, "sigma_w2": 1, "activation": "tanh", "custom_widths": "400, 800",
                      "target_x": None, "x_scale": "linear", "mc_size": 20}  # fmt: skip
    assert len(problems) == 3 and any("zigzag" in p for p in problems)
    assert any("abc" in p for p in problems) and any("2 → 20" in p for p in problems)
    s = DashboardState(n_points=80, **st.url_overrides({"depth": "3", "base_width": "50"})[0])
    assert s.result.network.widths == (50, 50, 50, 50)


@pytest.mark.parametrize(
    "query, expected, n_changes",
    [
        ({"depth": "201", "sigma_w2": "-1"}, {"depth": 100, "sigma_w2": 0.1}, 2),
        ({"sigma_w2": "150"}, {"sigma_w2": 6.0}, 1),
        ({"sigma_w2": "nan", "depth": "2.6"}, {"depth": 3}, 2),
        ({"profile": "custom", "custom_widths": "400, 80x0, 2"}, {"profile": "custom"}, 1),
        ({"base_width": "1e9", "q0": "0"}, {"base_width": 2000, "q0": 0.05}, 2),
    ],
)
def test_bad_links_are_clamped_into_a_valid_state(query, expected, n_changes):
    params, changes = st.url_overrides(query)
    assert params == expected and len(changes) == n_changes
    for name, value in params.items():  # every value is inside its control's range
        if name in st.RANGES:
            lo, hi = st.RANGES[name]
            assert lo <= value <= hi
    s = DashboardState(n_points=60, base_width=50, **{k: v for k, v in params.items() if k != "base_width"})
    assert s.error == "" and s.result is not None and s.result.spectrum.x.size > 0


def test_deciles_are_the_spectrums_own():
    # ReLU L = 50: most deciles lie far left of the plotting grid (the grid read 0 or 2.98e-08).
    r = st.compute_spectrum(fpcore.Network([400] * 51, "relu", sigma_w2=2.0), "JtJ", 250)
    exact = np.asarray(r.spectrum.deciles, float)
    assert np.array_equal(r.deciles, exact)
    assert exact[5] < 1e-30 and exact[7] < 1e-9  # values the grid cannot show
    left = r.computed.left_of(st.log_axis_start(r.spectrum))
    assert left["mass"] == pytest.approx(float(r.spectrum.cdf(st.log_axis_start(r.spectrum))))
    assert 0.8 < left["mass"] < 0.9  # 84 % of the mass (atom 50 % included) lies left of the log axis
    ext = r.computed.left_of(st.log_axis_start(r.spectrum), 1e-24)
    assert ext["mass"] == pytest.approx(float(r.spectrum.cdf(1e-24)))
    # The extension's dF/dln(lambda) integrates back to the CDF's increase over it.
    assert np.sum(ext["y"] * np.diff(np.log(np.geomspace(1e-24, st.log_axis_start(r.spectrum), 61)))) == (
        pytest.approx(left["mass"] - ext["mass"], rel=1e-9))


class _Loop:
    """A fake session loop: call_soon queues, run() delivers (as the server's event loop would)."""

    def __init__(self):
        self.queue, self.later = [], []

    def call_soon(self, fn):
        self.queue.append(fn)

    def call_later(self, seconds, fn):
        self.later.append((seconds, fn))

    def run(self, timeout=30.0):
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            while self.queue:
                self.queue.pop(0)()
            if st.pools_idle() and self.idle():
                return
            time.sleep(0.005)
        raise TimeoutError

    def idle(self):
        return self.runner.n_pending == 0 and not self.queue


def test_job_runner_latest_wins_and_reports_overdue():
    import threading

    loop = _Loop()
    overdue, busy, got = [], [], []
    runner = st.JobRunner(loop.call_soon, loop.call_later, busy.append, lambda label, t: overdue.append(label),
                          time_limit=5.0)  # fmt: skip
    loop.runner = runner
    gate = threading.Event()
    runner.submit("spectrum", lambda: gate.wait(10) and "first", got.append, got.append, label="first")
    while loop.queue:  # jobs start on the loop's next tick
        loop.queue.pop(0)()
    runner.submit("spectrum", lambda: "second", got.append, got.append)  # waits
    runner.submit("spectrum", lambda: "third", got.append, got.append)  # replaces the second
    assert runner.n_pending == 2 and busy[-1] == 2
    loop.later[0][1]()  # the first job's time limit passes while it runs: superseded, nobody told
    assert overdue == []
    gate.set()
    loop.run()
    assert got == ["third"] and busy[-1] == 0
    gate.clear()
    runner.submit("trace", lambda: gate.wait(10) and 1 / 0, got.append, lambda exc: got.append(type(exc).__name__))
    while loop.queue:
        loop.queue.pop(0)()
    loop.later[-1][1]()  # still running and the newest: overdue
    assert overdue == ["trace"]
    gate.set()
    loop.run()
    assert got[-1] == "ZeroDivisionError"


def test_held_kinds_start_only_on_release_and_latest_still_wins():
    loop, ran, got = _Loop(), [], []
    runner = st.JobRunner(loop.call_soon, loop.call_later)
    loop.runner = runner
    runner.hold(["trace"])
    runner.submit("trace", lambda: ran.append("old") or "old", got.append, got.append)
    runner.submit("spectrum", lambda: "density", got.append, got.append)
    runner.submit("trace", lambda: ran.append("new") or "new", got.append, got.append)  # supersedes the first
    import time

    end = time.monotonic() + 10
    while "density" not in got and time.monotonic() < end:
        while loop.queue:
            loop.queue.pop(0)()
        time.sleep(0.005)
    assert got == ["density"] and ran == [] and runner.n_pending == 1  # the newest chain request is held
    runner.release()
    loop.run()
    assert ran == ["new"] and got == ["density", "new"]  # the held request was superseded: never run


def test_superseded_jobs_never_run_and_one_session_cannot_take_every_worker():
    import threading
    import time

    ran, got = [], []
    slow_gate, loop_a, loop_b = threading.Event(), _Loop(), _Loop()
    a = st.JobRunner(loop_a.call_soon, loop_a.call_later)
    b = st.JobRunner(loop_b.call_soon, loop_b.call_later)
    loop_a.runner, loop_b.runner = a, b
    try:
        # Session A: a density and a chain that never end (until released), then more of each.
        a.submit("spectrum", lambda: slow_gate.wait(30), got.append, got.append)
        a.submit("trace", lambda: slow_gate.wait(30), got.append, got.append)
        a.submit("basins", lambda: slow_gate.wait(30), got.append, got.append)
        while loop_a.queue:
            loop_a.queue.pop(0)()
        # A's basins job waits for A's chain (one running job per session and lane), so session B
        # finds a free worker at once although the pool has only max(3, ...) threads.
        b.submit("spectrum", lambda: ran.append("b") or "b", got.append, got.append)
        end = time.monotonic() + 10
        while got != ["b"] and time.monotonic() < end:
            while loop_b.queue:
                loop_b.queue.pop(0)()
            time.sleep(0.005)
        assert got == ["b"] and b.n_pending == 0
        # A request superseded before a worker reaches it is dropped unrun.
        a.submit("trace", lambda: ran.append("stale") or "stale", got.append, got.append)
        a.submit("trace", lambda: ran.append("new") or "new", got.append, got.append)
        slow_gate.set()
        loop_a.run(timeout=30)
        assert "stale" not in ran and got[-1] == "new"
    finally:
        slow_gate.set()


def test_a_closed_pages_jobs_are_dropped_and_its_worker_process_job_stopped():
    # A page closed in the browser keeps its server session until Bokeh's unused-session check
    # (15-30 s later); its jobs must not hold the workers meanwhile (`gone`, see app.session_runner).
    import time

    loop, got, failed, ran = _Loop(), [], [], []
    gone = [False]
    runner = st.JobRunner(loop.call_soon, loop.call_later, time_limit=120.0, gone=lambda: gone[0])
    loop.runner = runner
    restarts = st._PROCESSES.restarts
    runner.submit("details", None, got.append, failed.append, task=(time.sleep, (60,)))
    while loop.queue:
        loop.queue.pop(0)()
    time.sleep(0.5)
    gone[0] = True  # the page's websocket closed
    runner.submit("trace", lambda: ran.append("trace") or "trace", got.append, failed.append)
    t0 = time.monotonic()
    loop.run(timeout=30)
    assert time.monotonic() - t0 < 10 and st._PROCESSES.restarts == restarts + 1  # stopped, not run to 60 s
    assert ran == [] and got == [] and failed == [] and runner.n_pending == 0  # nothing run or delivered for the closed page
    end = time.monotonic() + 30
    while not st.pools_idle() and time.monotonic() < end:
        time.sleep(0.05)
    assert st.pools_idle()


def test_a_worker_process_job_past_its_time_limit_is_stopped_and_its_worker_replaced():
    import time

    from dashboard.pool import TimedOut

    loop = _Loop()
    failed, got = [], []
    runner = st.JobRunner(loop.call_soon, loop.call_later, time_limit=1.0)
    loop.runner = runner
    restarts = st._PROCESSES.restarts
    t0 = time.monotonic()
    runner.submit("details", None, got.append, failed.append, task=(time.sleep, (60,)))
    loop.run(timeout=60)
    assert len(failed) == 1 and isinstance(failed[0], TimedOut) and got == []
    assert time.monotonic() - t0 < 30 and st._PROCESSES.restarts == restarts + 1
    # A closed session's running job is stopped too, and nothing is delivered.
    runner = st.JobRunner(loop.call_soon, loop.call_later, time_limit=120.0)
    loop.runner = runner
    runner.submit("details", None, got.append, failed.append, task=(time.sleep, (60,)))
    while loop.queue:
        loop.queue.pop(0)()
    time.sleep(0.5)
    runner.close()
    end = time.monotonic() + 30
    while not st.pools_idle() and time.monotonic() < end:
        time.sleep(0.05)
    assert st.pools_idle() and st._PROCESSES.restarts == restarts + 2 and got == [] and len(failed) == 1
    # The replacement computes: the exact deciles of a real network, from its parameters.
    net = fpcore.Network([60, 60, 60], "tanh", sigma_w2=1.5)
    out = st._PROCESSES.submit(st.Job("t", 2, task=(st.details_task, (st.network_args(net), "JtJ", 70, None, None))))
    # same algorithm in another process: equal up to the last bits (a freshly compiled numba kernel
    # and one loaded from the cache may round differently: 5e-15 relative on a clean CI clone)
    np.testing.assert_allclose(out.result(timeout=60)["deciles"], st.compute_spectrum(net, "JtJ", 70).deciles,
                               rtol=1e-12, atol=0.0)


def test_served_state_computes_off_the_loop_and_drops_stale_results():
    loop = _Loop()
    runner = st.JobRunner(loop.call_soon, loop.call_later)
    loop.runner = runner
    s = DashboardState(depth=3, base_width=60, n_points=70, runner=runner)
    assert s.result is None  # requested, not computed on the caller's thread
    loop.run()
    assert s.result.network.depth == 3 and s.details is s.result and s.trace is not None
    # requested, and superseded before a worker reached it: dropped, never computed. (A density
    # goes into the pool at once, so a free worker may start depth 7 before depth 8 is set: a
    # clean-clone CI run once computed it. The hold keeps depth 7 waiting, as a busy pool would.)
    runner.hold({"spectrum"})
    s.depth = 7
    s.depth = 8
    runner.release()
    loop.run()
    assert s.result.network.depth == 8 and s.error == ""
    assert st.cached_spectrum(fpcore.Network([60] * 8, "relu", sigma_w2=2.0), "JtJ", 70) is None
    s.depth = 3  # a cache hit: applied at once
    assert s.result.network.depth == 3 and s.result.cached


def test_served_state_shows_a_smooth_density_verified_then_certified():
    # A smooth network's density is shown as soon as it is solved and verified; the joint
    # certificate runs as a job of its own and then replaces the counts (the values are the same).
    from dashboard import views

    loop = _Loop()
    runner = st.JobRunner(loop.call_soon, loop.call_later)
    loop.runner = runner
    seen = []
    s = DashboardState(activation="tanh", sigma_w2=1.5, depth=4, base_width=70, n_points=60, runner=runner,
                       solver_visible=False)
    s.param.watch(lambda e: seen.append((e.new.certificate_pending, e.new.stats.n_certified,
                                         views.certificate_text(e.new))), "result")
    s.param.watch(lambda e: seen.append(("certified", e.new)), "certified")
    loop.run(timeout=120)
    first = seen[0]
    assert first[0] is True and first[1] == 0  # verified first: nothing claimed certified
    assert "verified" in first[2] and "running" in first[2] and "certified**" not in first[2]
    assert ("certified", s.result) in seen and not s.result.certificate_pending
    certified = fpcore.jacobian_spectrum(s.result.network, n_points=60)
    assert s.result.stats.n_certified == certified.stats.n_certified > 0
    np.testing.assert_allclose(s.result.spectrum.density, certified.density, rtol=1e-12, atol=0)
    assert "certified" in views.certificate_text(s.result) and "running" not in views.certificate_text(s.result)
    row = views.metrics_frame(s.result).iloc[:, 1].tolist()
    assert not any("certificate running" in str(v) for v in row)
    # ReLU (rational): certified by its continuation, shown certified at once
    seen.clear()
    s.activation = "relu"
    s.sigma_w2 = 2.0
    loop.run(timeout=60)
    assert all(not p[0] for p in seen if p[0] != "certified") and s.certified is s.result


def test_basins_only_where_they_are_fast(state, monkeypatch):
    for act in ("relu", "leaky_relu", "tanh", "gelu"):  # compiled for every activation
        assert st.basin_grid(fpcore.Network([10, 10], activation=act)) == st.BASIN_GRID == 256
    monkeypatch.setattr(st, "basin_grid", lambda net: 0)
    state.frame = 1
    assert state.lilypad.basins is None and state.lilypad.note == st.NO_BASINS_NOTE and state.error == ""
    from dashboard import views

    assert "not drawn" in views.frame_caption(state.lilypad.trace, 1, state.lilypad.note)


def test_kernel_warm_up_runs_once_per_process_in_the_background():
    import threading

    from dashboard import state as st

    st.warm_up_kernels()
    st.warm_up_kernels()
    runs = [t for t in threading.enumerate() if t.name == "fpcore-warm-up"]
    assert len(runs) <= 1 and all(t.daemon for t in runs)
    for t in runs:
        t.join(timeout=120)
        assert not t.is_alive()
    assert st._warm_up_started.is_set()


def test_a_hidden_solver_computes_no_chain_until_shown():
    # Served, the solver tab is closed at first: a slider move computes the density (and its
    # details) but no lilypad chain and no basin frame; opening the tab computes the chain of the
    # network shown then, and its first frame's basins, the same as a page that always showed it.
    loop = _Loop()
    runner = st.JobRunner(loop.call_soon, loop.call_later)
    loop.runner = runner
    kinds = []
    submit = runner.submit
    runner.submit = lambda kind, *a, **k: (kinds.append(kind), submit(kind, *a, **k))[1]
    s = DashboardState(depth=3, base_width=64, n_points=70, runner=runner, solver_visible=False)
    loop.run()
    s.depth = 4
    loop.run()
    assert s.result.network.depth == 4 and s.details is s.result
    assert "spectrum" in kinds and "details" in kinds
    assert "trace" not in kinds and "basins" not in kinds and s.trace is None and s.lilypad is None
    s.solver_visible = True  # the tab is opened
    loop.run()
    # the basins: the full frame (a rational equation, ReLU here: no coarse preview first)
    assert kinds.count("trace") == 1 and kinds.count("basins") == 1
    assert s.lilypad.basins.labels.shape == (st.BASIN_GRID, st.BASIN_GRID) and s.lilypad.note == ""
    shown = DashboardState(depth=4, base_width=64, n_points=70)  # computed at once, always visible
    assert s.trace.target == shown.trace.target and len(s.trace.centres) == len(shown.trace.centres)
    assert s.lilypad.k == 0 and np.array_equal(s.lilypad.basins.rgba, shown.lilypad.basins.rgba)
    s.solver_visible = False  # closed again: moves compute no chain
    s.depth = 5
    loop.run()
    assert kinds.count("trace") == 1 and s.trace.target == shown.trace.target  # the last chain stays
    s.frame = 2  # (a frame change while hidden computes nothing either)
    loop.run()
    assert kinds.count("basins") == 1
    s.solver_visible = True  # the new network's chain, from its first step
    loop.run()
    assert kinds.count("trace") == 2 and s.lilypad.trace is s.trace and s.lilypad.k == 0
    assert s.lilypad.basins is not None
    assert s.trace.target.real == pytest.approx(s.default_target())
