"""``fpcore-dashboard``: serve the dashboard with ``python -m panel serve`` in a subprocess.

Panel's own command line reads ``sys.argv`` itself, so the console script builds the argument list
and runs the official entry point in a child process rather than calling it in-process.

Examples
--------
>>> build_command(["--port", "5007", "--show"])[-3:]
['--port', '5007', '--show']
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["APP_PATH", "build_command", "main"]

APP_PATH = Path(__file__).resolve().with_name("app.py")
SETUP_PATH = Path(__file__).resolve().with_name("warmup.py")


def build_command(extra: list[str] | None = None) -> list[str]:
    """The ``panel serve`` command line for the app, with ``extra`` arguments passed through.

    ``--setup dashboard/warmup.py`` compiles (or loads) fpcore's kernels before the server accepts
    requests. Every computation already runs in the app's own worker threads, so
    ``--num-threads`` is not needed; ``--num-procs N`` runs N independent server processes.
    """
    extra = list(extra or [])
    setup = [] if "--setup" in extra else ["--setup", str(SETUP_PATH)]
    return [sys.executable, "-m", "panel", "serve", str(APP_PATH), *setup, *extra]


def main(argv: list[str] | None = None) -> int:
    """Run ``panel serve dashboard/app.py [ARGS...]``; every argument goes to ``panel serve``.

    ``fpcore-dashboard --show`` opens a browser; ``fpcore-dashboard --port 5010 --address 0.0.0.0
    --allow-websocket-origin host:5010`` serves on another interface (see ``panel serve --help``).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("-h", "--help"):
        parser = argparse.ArgumentParser(
            prog="fpcore-dashboard",
            description="Serve the fpcore Jacobian-spectrum dashboard (all arguments go to `panel serve`).",
        )
        parser.print_help()
        print("\n`panel serve` options:\n")
        return subprocess.call([sys.executable, "-m", "panel", "serve", "--help"])
    proc = subprocess.Popen(build_command(argv))
    # A service manager stops us with SIGTERM: pass it on so the server does not outlive us.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signum))
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches the child too (same process group); wait for it
        return proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
