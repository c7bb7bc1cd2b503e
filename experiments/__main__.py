"""``python -m experiments``: sweep, export, analyze, supported. See ``--help``."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    from .architectures import DEFAULT_ACTIVATIONS
    from .metrics import N_POINTS
    from .training import TrainConfig

    d = TrainConfig.DEFAULTS
    p = argparse.ArgumentParser(prog="python -m experiments", description=__doc__.split(":")[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sweep", help="sample architectures, compute FP metrics, train (resumable, on Dask)")
    s.add_argument(
        "--preset",
        default=None,
        help="a named sweep (protocol_digits, protocol_mnist1d, main_digits): task, sampler, training "
        "and extent preset (--n-arch/--seeds/--epochs given explicitly still override); the results name "
        "defaults to the preset",
    )
    s.add_argument("--task", default="digits", choices=("digits", "mnist1d"))
    s.add_argument("--n-arch", type=int, default=None, help="architectures to sample (default 200 or the preset's)")
    s.add_argument("--seeds", type=int, default=None, help="training seeds per architecture (default 3 or the preset's)")
    s.add_argument("--arch-seed", type=int, default=0, help="seed of the architecture sampler (default 0)")
    s.add_argument(
        "--activations",
        default=",".join(DEFAULT_ACTIVATIONS),
        help="comma-separated activations to sample (unsupported ones are skipped and reported)",
    )
    s.add_argument("--epochs", type=int, default=None, help=f"default {d['epochs']} or the preset's")
    s.add_argument("--batch-size", type=int, default=None, help=f"default {d['batch_size']} or the preset's")
    s.add_argument("--optimizer", default=None, choices=("sgd", "adam"), help=f"default {d['optimizer']} or the preset's")
    s.add_argument("--lr", type=float, default=None, help=f"default {d['lr']} or the preset's")
    s.add_argument("--momentum", type=float, default=None, help=f"SGD momentum (default {d['momentum']} or the preset's)")
    s.add_argument(
        "--metrics-timeout",
        type=float,
        default=300.0,
        help="seconds allowed for the metrics of one architecture; past it: NaN metrics with the reason "
        "(default 300; 0: unbounded)",
    )
    s.add_argument(
        "--metrics-wall-factor",
        type=float,
        default=10.0,
        help="wall-clock backstop of --metrics-timeout, as a multiple of it (default 10)",
    )
    s.add_argument("--n-points", type=int, default=N_POINTS, help="density grid points of each spectrum")
    s.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address (tcp://host:8786); 'synchronous' runs in-process; default: a local cluster",
    )
    s.add_argument("--workers", type=int, default=2, help="local-cluster worker processes (default 2)")
    s.add_argument("--device", default="auto", help="torch device: auto (cuda if available), cpu, cuda")
    s.add_argument("--name", default=None, help="results name (default: the task), e.g. digits_adam for a variant")
    s.add_argument("--runs-dir", default=None, help="where finished runs are kept (default experiments/runs/<name>)")
    s.add_argument("--results-dir", default=None, help="where the CSVs go (default experiments/results)")
    s.add_argument(
        "--stage",
        default="all",
        choices=("all", "metrics", "train"),
        help="run only the FP metrics or only the training (they are independent)",
    )
    s.add_argument(
        "--recompute-metrics",
        action="store_true",
        help="discard cached metrics first (after an fpcore change); training runs are kept",
    )
    s.add_argument("--no-export", action="store_true", help="do not write the CSVs at the end")
    s.add_argument("--no-progress", action="store_true")

    e = sub.add_parser("export", help="write <name>_runs.csv and <name>_epochs.csv from a runs directory")
    e.add_argument("--name", default="main_digits", help="sweep name (default main_digits); runs dir experiments/runs/<name>")
    e.add_argument("--runs-dir", default=None)
    e.add_argument("--results-dir", default=None)

    r = sub.add_parser(
        "restore",
        help="write the training runs of the committed <name>_runs.csv/<name>_epochs.csv back into a runs "
        "directory, so that --stage metrics redoes the metrics (or --stage train extends the sweep) in a fresh "
        "checkout without retraining",
    )
    r.add_argument("--name", required=True, help="results name (protocol_digits, protocol_mnist1d, main_digits...)")
    r.add_argument("--runs-dir", default=None, help="default experiments/runs/<name>")
    r.add_argument("--results-dir", default=None)

    a = sub.add_parser(
        "analyze",
        help="per-family and pooled correlations with bootstrap CIs, partial correlations given the "
        "descriptors, out-of-fold prediction gaps, and figures, from the committed CSV",
    )
    a.add_argument(
        "--name",
        "--task",
        dest="name",
        default="main_digits",
        help="results name: protocol_digits, protocol_mnist1d, main_digits... (reads <name>_runs.csv)",
    )
    a.add_argument(
        "--results-dir", default=None, help="directory holding <name>_runs.csv (default experiments/results)"
    )
    a.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--all-metrics", action="store_true", help="every metric in the correlation table, not the key ones")
    a.add_argument("--no-figures", action="store_true")

    u = sub.add_parser("supported", help="which activations fpcore's spectrum solver supports now")
    u.add_argument(
        "--activations", default="linear,relu,leaky_relu,hard_tanh,tanh,gelu,erf,sigmoid,silu,selu,elu,softplus"
    )
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "sweep":
        from .sweep import export, run_sweep, sweep_preset

        preset = sweep_preset(args.preset) if args.preset else {}
        train = dict(preset.get("train", {}))
        for key in ("epochs", "batch_size", "optimizer", "lr", "momentum"):
            if getattr(args, key) is not None:
                train[key] = getattr(args, key)
        runs_dir = run_sweep(
            task=preset.get("task", args.task),
            n_arch=args.n_arch if args.n_arch is not None else preset.get("n_arch", 200),
            seeds=args.seeds if args.seeds is not None else preset.get("seeds", 3),
            runs_dir=args.runs_dir,
            scheduler=args.scheduler,
            workers=args.workers,
            device=args.device,
            activations=[a for a in args.activations.split(",") if a],
            sampler=preset.get("sampler"),
            arch_seed=args.arch_seed,
            n_points=args.n_points,
            progress=not args.no_progress,
            stages=("metrics", "train") if args.stage == "all" else (args.stage,),
            name=args.name or args.preset,
            recompute_metrics=args.recompute_metrics,
            metrics_timeout=args.metrics_timeout or None,
            metrics_wall_factor=args.metrics_wall_factor,
            train=train,
        )
        if not args.no_export:
            for name, path in export(runs_dir, args.results_dir).items():
                print(f"wrote {name}: {path}")
    elif args.command == "export":
        from .sweep import default_runs_dir, export

        for name, path in export(args.runs_dir or default_runs_dir(args.name), args.results_dir).items():
            print(f"wrote {name}: {path}")
    elif args.command == "restore":
        from .sweep import restore_runs

        n = restore_runs(args.name, args.runs_dir, args.results_dir)
        print(f"restored {n} training runs of {args.name}")
    elif args.command == "analyze":
        from .analysis import analyze

        analyze(
            args.name,
            args.results_dir,
            n_boot=args.n_boot,
            seed=args.seed,
            figures=not args.no_figures,
            metrics="all" if args.all_metrics else None,
        )
    elif args.command == "supported":
        from .metrics import supported_activations

        ok, reasons = supported_activations(args.activations.split(","))
        print("supported:", ", ".join(ok) or "none")
        for act, why in reasons.items():
            print(f"unsupported: {act}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
