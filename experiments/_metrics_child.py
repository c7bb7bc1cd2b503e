"""Worker loop of :func:`experiments.sweep._metrics_task`: one JSON request per stdin line, one
JSON result per stdout line (stdout is reserved for results; anything printed goes to stderr)."""

from __future__ import annotations

import json
import sys


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr
    from .sweep import _metrics_in_process

    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        res = _metrics_in_process(req["arch"], req["q0"], req["n_points"])
        out.write(json.dumps(res, allow_nan=True) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
