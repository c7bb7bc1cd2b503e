"""``panel serve dashboard/app.py --setup dashboard/warmup.py``: compile (or load from numba's
cache) every kernel the page uses before the server accepts requests, so the first page after
start is as fast as the tenth. ``fpcore-dashboard`` passes this setup script itself."""

import sys
from pathlib import Path

try:
    from dashboard.state import warm_up_kernels
except ImportError:  # served from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from dashboard.state import warm_up_kernels

warm_up_kernels(wait=True)

# FPCORE_DASHBOARD_PROFILE=FILE: profile the server's main thread (its event loop: every session's
# callbacks, Panel/Bokeh's processing and serialising) with cProfile; the statistics so far are
# written to FILE every 5 s from the loop itself (the server's own signal handling stops it
# without running Python's exit hooks). For benchmarks/load_dashboard.py --profile.
_profile_to = __import__("os").environ.get("FPCORE_DASHBOARD_PROFILE")
if _profile_to:
    import cProfile

    from tornado.ioloop import IOLoop, PeriodicCallback

    _profiler = cProfile.Profile()

    def _dump():
        _profiler.disable()
        _profiler.dump_stats(_profile_to)
        _profiler.enable()

    IOLoop.current().add_callback(lambda: PeriodicCallback(_dump, 5000).start())
    _profiler.enable()
