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
