"""``katadeploy bench ...``: benchmarks.

Contract: :func:`register` creates the ``bench`` group and its own subparsers, then adds ``bench engine`` (here)
and the subcommands of every module in :data:`BENCH_COMMAND_MODULES` that exists. Such a module provides
``register_bench(bench_subparsers)``; a missing module is skipped, so ``bench nn`` can join later without
touching this file's logic (append its module name to the tuple). Handlers return exit codes; bad input raises
:class:`~katadeploy.errors.KatadeployError` subclasses.

``bench engine --model M [--config C] [--threads 1,2,4] [--visits N] [--sgf FILE ...] [--positions N]
[--katago PATH] [--json OUT] [--no-progress]`` runs :func:`katadeploy.bench.engine.run_engine_bench` (the real
KataGo), prints a table on stdout and optionally writes JSON.

``bench engine --backend ARTIFACT|NET|torch ... [--model NET] [--no-katago] [--nn-threads N] [--markdown OUT]
[--plot OUT.png]`` (plus the options above) runs :func:`katadeploy.bench.engine_compare.run_backend_bench`:
katadeploy's engine on each backend beside the real KataGo (on by default when it is installed; ``--katago PATH``
picks the binary, ``--no-katago`` skips it), prints the Markdown report on stdout and optionally writes it, the
JSON and the plot.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

#: Modules providing ``register_bench(bench_subparsers)`` (skipped while they do not exist).
BENCH_COMMAND_MODULES: tuple[str, ...] = ("katadeploy.bench.nn_commands",)


def _backends(args: argparse.Namespace, positions: list[dict[str, Any]], progress: bool) -> int:
    from katadeploy.bench import engine_compare as ec
    from katadeploy.bench.engine_report import format_markdown, write_plot
    from katadeploy.bench.report_output import emit, text_writer
    from katadeploy.engine import katago as kg

    binary = None
    if not args.no_katago:
        try:
            binary = kg.locate(args.katago)
        except kg.KataGoNotFoundError:
            if args.katago is not None:
                raise
            print(
                "katadeploy: KataGo is not installed; benchmarking katadeploy's engine only", file=sys.stderr
            )
    result = ec.run_backend_bench(
        args.backend, net=args.model, katago=binary, threads=args.threads, visits=args.visits,
        positions=positions, config=args.config, nn_threads=args.nn_threads, progress=progress,
        position_timeout=args.timeout,
    )  # fmt: skip
    md = format_markdown(result)
    emit(md, [(args.markdown, text_writer(md)), (args.json, lambda p: ec.write_json(result, p)),
              (args.plot, lambda p: write_plot(result, p))])  # fmt: skip
    return 0


def _engine(args: argparse.Namespace) -> int:
    from katadeploy.bench import engine as be
    from katadeploy.engine import katago as kg
    from katadeploy.model.hub import resolve_model

    if not args.backend and args.model is None:
        raise be.BenchError(
            "bench engine needs --model (the real KataGo on a net) or --backend ARTIFACT|NET ..."
        )
    positions = (
        be.positions_from_sgf(args.sgf, args.positions) if args.sgf else be.default_positions(args.positions)
    )
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    if args.backend:
        return _backends(args, positions, progress)
    if args.markdown or args.plot or args.no_katago or args.nn_threads is not None:
        raise be.BenchError("--markdown, --plot, --no-katago and --nn-threads go with --backend")
    binary = kg.locate(args.katago)
    model = resolve_model(args.model)
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
    from katadeploy.bench.report_output import emit

    emit(be.format_table(result) + "\n", [(args.json, lambda p: be.write_json(result, p))])
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
        help="visits/s and NN evals/s of the real KataGo, and of katadeploy's engine on each --backend",
        description="Like `katago benchmark`, but through katadeploy's analysis client: per thread setting a fresh "
        "engine, NN cache cleared per position, visits/s and NN evals/s reported. With --backend, katadeploy's "
        "own engine on each artifact or net beside the real KataGo, with playouts/s, average batch and search "
        "overhead per playout.",
    )
    p.add_argument(
        "--model",
        default=None,
        help="model file, URL or known name (see `katadeploy models list`); with --backend: the net KataGo and "
        "torch run (default: the artifacts' source net)",
    )
    p.add_argument(
        "--backend",
        action="extend",
        nargs="+",
        default=[],
        metavar="ARTIFACT|NET|torch",
        help="run katadeploy's engine (`katadeploy analysis`) on these backends beside KataGo",
    )
    p.add_argument("--no-katago", action="store_true", help="with --backend: do not run the real KataGo")
    p.add_argument(
        "--nn-threads", type=_positive_int, default=None, help="with --backend: CPU threads of each evaluator"
    )
    p.add_argument(
        "--markdown", metavar="OUT", default=None, help="with --backend: also write the Markdown report"
    )
    p.add_argument("--plot", metavar="OUT.png", default=None, help="with --backend: also write the plot")
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
        "--katago", metavar="PATH", default=None, help="KataGo executable (default: the installed copy)"
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
