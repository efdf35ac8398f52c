"""CLI: ``katadeploy match A B`` - a match on Ray with Elo, its 95% interval, an optional SPRT, SGF and reports.

Contract: registers the ``match`` subcommand; the handler builds :class:`katadeploy.match.runner.MatchOptions`
from the flags, runs :func:`katadeploy.match.runner.run_match`, prints the Markdown summary on stdout and
returns 0. Bad input (a missing net, a ledger of another match, a malformed ``--sprt``, no Ray installed) is one
error line from the CLI (exit code 2).
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    from katadeploy.match.runner import DEFAULT_GAMES, DEFAULT_VISITS

    p = subparsers.add_parser(
        "match",
        help="play two nets/artifacts/KataGo against each other on Ray: Elo with a 95%% interval, SGF, ledger",
        description="Play A against B (a net or an artifact searched by `katadeploy analysis`, or katago:NET for "
        "the real KataGo binary) with colours alternating and every opening played twice, on a local Ray cluster "
        "(or --address). Reports A's Elo over B with a 95%% interval.",
    )
    p.add_argument("a", metavar="A", help="player A: net, artifact, known name, or katago:NET")
    p.add_argument("b", metavar="B", help="player B (same forms)")
    p.add_argument(
        "--visits",
        type=int,
        default=DEFAULT_VISITS,
        help="visits per move, both players (default %(default)s)",
    )
    p.add_argument("--visits-a", type=int, default=None, help="visits per move of A (default --visits)")
    p.add_argument("--visits-b", type=int, default=None, help="visits per move of B (default --visits)")
    p.add_argument(
        "--games",
        type=int,
        default=DEFAULT_GAMES,
        help="games to play (default %(default)s; even keeps pairs whole)",
    )
    p.add_argument(
        "--board", type=int, choices=(9, 13, 19), default=19, help="board size (default %(default)s)"
    )
    p.add_argument("--komi", type=float, default=7.5, help="komi (default %(default)s)")
    p.add_argument(
        "--rules",
        default="tromp-taylor",
        help="KataGo rules name (default %(default)s; games are area-scored)",
    )
    p.add_argument(
        "--openings",
        action="append",
        metavar="SGF|DIR",
        help="openings from these games (repeatable; default: bundled games on 19x19, random on 9/13)",
    )
    p.add_argument(
        "--opening-moves",
        type=int,
        default=None,
        metavar="M",
        help="opening length in moves (default 10 on 19x19, 4 on 13x13, 2 on 9x9)",
    )
    p.add_argument(
        "-o", "--output-dir", default="match-out", help="ledger, SGF and reports (default %(default)s)"
    )
    p.add_argument(
        "--address",
        default=None,
        metavar="RAY",
        help="a running Ray cluster (HOST:PORT of `ray start --head`, or ray://...); default: a local one",
    )
    p.add_argument("--workers", type=int, default=None, help="worker actors (default: the cluster's CPUs)")
    p.add_argument("--resume", action="store_true", help="continue the ledger in -o (skip finished games)")
    p.add_argument(
        "--sprt", default=None, metavar="ELO0,ELO1",
        help="stop at an SPRT verdict (alpha = beta = 0.05); write --sprt=-10,0 when ELO0 is negative",
    )  # fmt: skip
    p.add_argument(
        "--max-moves", type=int, default=None, help="move cap, then area scoring (default 3 x board area)"
    )
    p.add_argument(
        "--resign-threshold",
        type=float,
        default=0.05,
        help="resign when both engines see the side below this winrate (default %(default)s; 0: never)",
    )
    p.add_argument(
        "--resign-moves", type=int, default=3, help="... for this many moves each (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the opening choice (default %(default)s)")
    p.add_argument(
        "--move-timeout", type=float, default=600.0, help="seconds per move before the game is replayed"
    )
    p.add_argument(
        "--net", default=None, help="source net of artifact players (default: found from their manifests)"
    )
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_match)


def cmd_match(args: argparse.Namespace) -> int:
    from katadeploy.match.report import markdown
    from katadeploy.match.runner import MatchOptions, run_match
    from katadeploy.match.sprt import parse_sprt

    opts = MatchOptions(
        a=args.a, b=args.b, visits_a=args.visits_a or args.visits, visits_b=args.visits_b or args.visits,
        games=args.games, board=args.board, komi=args.komi, rules=args.rules, openings=args.openings,
        opening_moves=args.opening_moves, out_dir=args.output_dir, address=args.address, workers=args.workers,
        resume=args.resume, sprt=parse_sprt(args.sprt) if args.sprt else None, max_moves=args.max_moves,
        resign_threshold=args.resign_threshold, resign_moves=args.resign_moves, seed=args.seed, net=args.net,
        move_timeout=args.move_timeout if args.move_timeout > 0 else None, progress=not args.quiet,
    )  # fmt: skip
    print(markdown(run_match(opts)), end="")
    return 0
