"""CLI: ``katadeploy bench nn ARTIFACT... [--model MODEL] [--batch 1,8,32] [--seconds 5] [--threads N]
[--inflight K|auto[,...]] [--baseline LABEL=EVALS]... [--json OUT] [--markdown OUT] [--plot OUT.png] [--katago [PATH]]``.

Contract: :func:`register_bench` adds ``nn`` to the ``bench`` subparsers. The handler resolves ``--model``
(file, URL or known name; required for ``torch`` and ``--katago``), runs :func:`katadeploy.bench.nn.run_nn_bench`,
prints the Markdown tables on stdout and optionally writes them (``--markdown``), the JSON (``--json``) and the
evals/s-against-batch plot (``--plot``). Progress goes to stderr. Bad input raises
:class:`~katadeploy.errors.KatadeployError` subclasses (exit 2).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from katadeploy.argtypes import add_artifacts_argument, batch_list, inflight_list
from katadeploy.bench.nn import DEFAULT_SECONDS, KATAGO_VISITS, WORKER_TIMEOUT_S


def cmd_bench_nn(args: argparse.Namespace) -> int:
    from katadeploy.bench.nn import parse_baseline, run_nn_bench
    from katadeploy.bench.nn_report import format_markdown, write_plot
    from katadeploy.bench.report_output import emit, text_writer

    progress = not args.quiet
    baselines = [parse_baseline(b) for b in args.baseline]
    model_path = None
    if args.model is not None:
        from katadeploy.model.hub import resolve_model

        model_path = resolve_model(args.model, quiet=not progress)
    result = run_nn_bench(
        args.artifacts, model_path=model_path, batches=args.batch, seconds=args.seconds, threads=args.threads,
        nn_size=args.nn_size, timeout=args.timeout, katago=args.katago is not None,
        katago_binary=args.katago or None, katago_visits=args.katago_visits,
        katago_threads=args.katago_threads, inflight=args.inflight,
        baselines=baselines, progress=progress,
    )  # fmt: skip
    md = format_markdown(result)
    emit(md, [(args.markdown, text_writer(md)),
              (args.json, text_writer(json.dumps(result.to_dict(), indent=2) + "\n")),
              (args.plot, lambda p: write_plot(result, p))])  # fmt: skip
    return 0


def register_bench(bench_sub: Any) -> None:
    p = bench_sub.add_parser(
        "nn",
        help="raw NN evals/s, latency, peak memory and GFLOP/s of artifacts, side by side",
        description="Benchmark each artifact (or `torch`, the FP32 reference) in its own process at every "
        "batch size: evals/s, P50/P95/P99 latency per call, peak RSS, GFLOP/s. Optionally also run KataGo's "
        "own `katago benchmark` on the same net.",
    )
    add_artifacts_argument(p)
    p.add_argument("--model", default=None, help="the net (needed for torch, --katago and GFLOP/s)")
    p.add_argument("--batch", type=batch_list, default=[1, 8, 32], help="batch sizes (default 1,8,32)")
    p.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help="timed seconds per batch size (default %(default)s)",
    )
    p.add_argument("--threads", type=int, default=None, help="CPU threads per runtime (default: its own)")
    p.add_argument("--nn-size", type=int, default=19, help="tensor size for the torch pseudo-artifact (19)")
    p.add_argument(
        "--timeout", type=float, default=WORKER_TIMEOUT_S, help="seconds per artifact (default %(default)s)"
    )
    p.add_argument(
        "--inflight",
        type=inflight_list,
        default=[1],
        metavar="K|auto[,...]",
        help="batches kept in flight per call on runtimes with an async path (OpenVINO; auto = its streams); "
        "a list such as 1,auto benchmarks each mode side by side",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="LABEL=EVALS",
        help="a quoted reference throughput to divide by, e.g. 'KataGo v1.17.2 Eigen=2.31' (repeatable)",
    )
    p.add_argument("--json", metavar="OUT", default=None, help="also write the results as JSON")
    p.add_argument("--plot", metavar="OUT.png", default=None, help="also plot evals/s against batch size")
    p.add_argument("--markdown", metavar="OUT", default=None, help="also write the table as Markdown")
    p.add_argument(
        "--katago",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help="also run the real KataGo's `katago benchmark` on --model (optionally the binary's path)",
    )
    p.add_argument(
        "--katago-visits",
        type=int,
        default=KATAGO_VISITS,
        help="visits per katago benchmark search (default 200)",
    )
    p.add_argument(
        "--katago-threads",
        type=batch_list,
        default=None,
        metavar="1,8,16",
        help="search thread counts for katago benchmark (default: the batch sizes)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_bench_nn)
