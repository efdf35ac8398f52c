"""CLI: ``katadeploy deploy [MODEL] [--target T ...] [-o DIR]`` — the whole pipeline on one net.

Contract: runs :func:`katadeploy.deploy.pipeline.run_deploy`, prints the summary table (Markdown) on stdout and
returns 0 when every requested target was built and passed validation, 1 otherwise. With no arguments it deploys
the default net (kata1-b18c384nbt from the KaTrain wheel on PyPI) calibrated on the bundled real games.
"""

from __future__ import annotations

import argparse

from katadeploy.bench.nn_worker import batch_list
from katadeploy.deploy.pipeline import DEFAULT_TARGETS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deploy",
        help="calibrate, export, validate and benchmark a net in one run (the whole pipeline)",
    )
    p.add_argument(
        "model", nargs="?", help="model file, URL or known name (default: the manifest's default net)"
    )
    p.add_argument(
        "--target", "-t", action="append", metavar="T",
        help=f"repeatable (default: {' '.join(DEFAULT_TARGETS)})",
    )  # fmt: skip
    p.add_argument("-o", "--output-dir", default="deploy-out")
    p.add_argument("--calib", help="calibration .npz (default: built once from the bundled games)")
    p.add_argument(
        "--positions", help="validation positions: JSONL or calibration .npz (default: 80 bundled)"
    )
    p.add_argument("--exact-board", action="store_true", help="19x19-only graphs without mask ops (faster)")
    p.add_argument(
        "--bench-batch", type=batch_list, default="1,8", help="batch sizes for the benchmark (default 1,8)"
    )
    p.add_argument("--bench-seconds", type=float, default=3.0)
    p.add_argument("--no-bench", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_deploy)


def cmd_deploy(args: argparse.Namespace) -> int:
    from katadeploy.deploy.pipeline import markdown, run_deploy

    result = run_deploy(
        args.model, args.target or list(DEFAULT_TARGETS), args.output_dir, calib=args.calib,
        positions=args.positions, exact=args.exact_board,
        bench_batches=None if args.no_bench else args.bench_batch, bench_seconds=args.bench_seconds,
        threads=args.threads, progress=not args.quiet,
    )  # fmt: skip
    print(markdown(result))
    return 0 if result.passed else 1
