"""``katadeploy analysis``: KataGo's analysis JSON engine over any net or artifact.

Contract: ``katadeploy analysis -model NET|ARTIFACT -config CFG [-net NET] [-override-config k=v,...]
[-analysis-threads N] [-quit-without-waiting] [-nn-threads N]`` takes KataGo's single-dash flags (the double-dash
spellings work too), prints its config notes on stderr, then ``Started, ready to begin handling requests``, and
serves the protocol on stdin/stdout until stdin closes (:mod:`katadeploy.search.server`). A model or config that
cannot be used is one error line and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "analysis",
        help="run KataGo's analysis JSON engine (search ported from KataGo) on a net or an exported artifact",
        description="KataGo's analysis JSON protocol on stdin/stdout, searching with katadeploy's port of "
        "KataGo's MCTS over any runtime: a .bin.gz net runs through torch, an artifact through its runtime.",
    )
    p.add_argument(
        "-model", "--model", required=True, help="a KataGo net (.bin.gz or known name) or an artifact"
    )
    p.add_argument("-config", "--config", required=True, help="a KataGo analysis .cfg")
    p.add_argument(
        "-net", "--net", default=None, help="the artifact's source net, if not found from its manifest"
    )
    p.add_argument("-override-config", "--override-config", default=None, metavar="K=V,...",
                   help="override config keys, as KataGo")  # fmt: skip
    p.add_argument("-analysis-threads", "--analysis-threads", type=int, default=None,
                   help="positions analyzed in parallel (numAnalysisThreads)")  # fmt: skip
    p.add_argument("-quit-without-waiting", "--quit-without-waiting", action="store_true",
                   help="on end of input, stop at once instead of finishing queued queries")  # fmt: skip
    p.add_argument("-nn-threads", "--nn-threads", type=int, default=None, help="CPU threads of the evaluator")
    p.set_defaults(func=_analysis)


def _analysis(args: argparse.Namespace) -> int:
    from katadeploy.search.config import parse_overrides
    from katadeploy.search.engine import build_engine

    overrides = parse_overrides(args.override_config) if args.override_config else None
    setup = build_engine(
        args.model, args.config, overrides=overrides, net=args.net, analysis_threads=args.analysis_threads,
        nn_threads=args.nn_threads,
    )  # fmt: skip
    for note in setup.notes:
        print(f"katadeploy analysis: {note}", file=sys.stderr)
    try:
        return setup.server.serve(sys.stdin, quit_without_waiting=args.quit_without_waiting)
    finally:
        setup.batcher.close()


def analysis_argv(model: str | os.PathLike[str], config: str | os.PathLike[str], *extra: str) -> list[str]:
    """The argv that starts ``katadeploy analysis`` on ``model`` with ``config`` in a fresh Python (no shell)."""
    return [
        sys.executable,
        "-m",
        "katadeploy.cli",
        "analysis",
        "-model",
        str(model),
        "-config",
        str(config),
        *extra,
    ]
