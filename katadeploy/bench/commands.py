"""``katadeploy bench ...``: benchmarks.

Contract: :func:`register` creates the ``bench`` group and its own subparsers, then adds ``bench engine`` (here)
and the subcommands of every module in :data:`BENCH_COMMAND_MODULES` that exists. Such a module provides
``register_bench(bench_subparsers)``; a missing module is skipped, so ``bench nn`` can join later without
touching this file's logic (append its module name to the tuple). Handlers return exit codes; bad input raises
:class:`~katadeploy.errors.KatadeployError` subclasses.

``bench engine --model M [--config C] [--threads 1,2,4] [--visits N] [--sgf FILE ...] [--positions N]
[--katago PATH] [--json OUT] [--no-progress]`` runs :func:`katadeploy.bench.engine.run_engine_bench`, prints a
table on stdout and optionally writes JSON.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

#: Modules providing ``register_bench(bench_subparsers)`` (skipped while they do not exist).
BENCH_COMMAND_MODULES: tuple[str, ...] = ("katadeploy.bench.nn_commands",)


def _engine(args: argparse.Namespace) -> int:
    from katadeploy.bench import engine as be
    from katadeploy.engine import katago as kg
    from katadeploy.model.hub import resolve_model

    binary = kg.locate(args.katago)
    model = resolve_model(args.model)
    positions = (
        be.positions_from_sgf(args.sgf, args.positions) if args.sgf else be.default_positions(args.positions)
    )
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    result = be.run_engine_bench(
        model,
        threads=be.parse_threads(args.threads),
        visits=args.visits,
        positions=positions,
        config=args.config,
        binary=binary,
        progress=progress,
        position_timeout=args.timeout,
    )
    print(be.format_table(result))
    if args.json:
        print(f"wrote {be.write_json(result, args.json)}", file=sys.stderr)
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def register_engine(bench_sub: Any) -> None:
    from katadeploy.bench.engine import DEFAULT_POSITIONS, DEFAULT_VISITS, POSITION_TIMEOUT_S

    p = bench_sub.add_parser(
        "engine",
        help="visits/s and NN evals/s of the real KataGo through the analysis client",
        description="Like `katago benchmark`, but through katadeploy's analysis client: per thread setting a fresh "
        "engine, NN cache cleared per position, visits/s and NN evals/s reported.",
    )
    p.add_argument(
        "--model", required=True, help="model file, URL or known name (see `katadeploy models list`)"
    )
    p.add_argument(
        "--config", default=None, help="analysis config (default: a minimal one written by katadeploy)"
    )
    p.add_argument(
        "--threads", default="1", help="comma-separated search thread counts (default %(default)s)"
    )
    p.add_argument(
        "--visits", type=_positive_int, default=DEFAULT_VISITS, help="visits per search (default %(default)s)"
    )
    p.add_argument(
        "--sgf", nargs="+", metavar="FILE", help="games to sample positions from (default: bundled positions)"
    )
    p.add_argument(
        "--positions",
        type=_positive_int,
        default=DEFAULT_POSITIONS,
        help="positions per game, or in total without --sgf (default %(default)s)",
    )
    p.add_argument(
        "--katago", metavar="PATH", default=None, help="KataGo executable (default: installed copy)"
    )
    p.add_argument("--json", metavar="OUT", default=None, help="also write the results as JSON")
    p.add_argument(
        "--timeout", type=float, default=POSITION_TIMEOUT_S, help="seconds per position (default %(default)s)"
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--progress", dest="progress", action="store_true", default=None, help="always show progress"
    )
    g.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress")
    p.set_defaults(func=_engine)


def register(subparsers: Any) -> None:
    """Add the ``bench`` group (with its own subparsers) to the top-level subparsers."""
    group = subparsers.add_parser("bench", help="benchmarks", description="Benchmarks.")
    bench_sub = group.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    group.set_defaults(func=lambda _args: (group.print_help(), 2)[1])
    register_engine(bench_sub)
    for name in BENCH_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register_bench(bench_sub)
