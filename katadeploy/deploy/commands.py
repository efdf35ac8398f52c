"""CLI: ``katadeploy deploy [MODEL] [--target T ...] [-o DIR]`` — the whole pipeline on one net.

Contract: runs :func:`katadeploy.deploy.pipeline.run_deploy`, prints the summary table (Markdown) on stdout and
returns 0 when every requested target was built and passed validation, 1 otherwise. With no arguments it deploys
the default net (kata1-b18c384nbt from the KaTrain wheel on PyPI) calibrated on the bundled real games.
``--match-games G --match-visits N [--match-board 9|13|19]`` (off by default) adds a strength match of each
passing reduced-precision artifact against FP32 (``katadeploy match``, Elo with its 95% interval).

``katadeploy configure PLATFORM [--mode gtp|analysis] [--backend B] [--model M] [--artifact A|deploy.json]
[--provider P] [--tune [--katago PATH] [--tune-threads 1,2,4] [--tune-visits V] [--tune-positions N]] [--ram GIB]
[-o F.cfg]`` writes (or prints, without ``-o``) a KataGo config for that platform
(:mod:`katadeploy.deploy.configure`); with ``--tune`` it also prints the visits/s table of the sweep.
"""

from __future__ import annotations

import argparse

from katadeploy.argtypes import batch_list
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
    p.add_argument(
        "--match-games", type=int, default=0, metavar="G",
        help="also play G games of each passing reduced-precision artifact against FP32 (katadeploy match)",
    )  # fmt: skip
    p.add_argument("--match-visits", type=int, default=None, metavar="N", help="visits per move in those games")
    p.add_argument("--match-board", type=int, choices=(9, 13, 19), default=19, help="their board (default 19)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_deploy)
    _register_configure(sub)


def _register_configure(sub: argparse._SubParsersAction) -> None:
    from katadeploy.deploy.platforms import ONNX_PROVIDERS, PLATFORMS

    p = sub.add_parser(
        "configure",
        help="write a KataGo config for a platform (rtx, cuda, jetson, rpi, mac, cpu, onnx), optionally tuned here",
    )
    p.add_argument("platform", choices=list(PLATFORMS), help="the box the config is for")
    p.add_argument("--mode", choices=("gtp", "analysis"), default="gtp", help="default %(default)s")
    p.add_argument(
        "--backend", help="backend when the platform has two (e.g. cpu: eigen|opencl, mac: metal|coreml)"
    )
    p.add_argument(
        "--model", help="net for --tune (file, URL or known name); also named in the file's run line"
    )
    p.add_argument(
        "--artifact", help="onnx: a katadeploy ONNX artifact, or a deploy.json (fastest passing ONNX)"
    )
    p.add_argument(
        "--provider", choices=ONNX_PROVIDERS, help="onnx: ONNX Runtime execution provider (default cpu)"
    )
    p.add_argument(
        "--tune", action="store_true", help="sweep search threads with `bench engine` on this machine"
    )
    p.add_argument(
        "--katago", metavar="PATH", help="KataGo binary for --tune (default: the one for --backend)"
    )
    p.add_argument("--tune-threads", type=batch_list, default=None, help="threads to try (default 1,N,2N,4N)")
    p.add_argument("--tune-visits", type=int, default=100, help="visits per position (default %(default)s)")
    p.add_argument(
        "--tune-positions", type=int, default=3, help="positions per setting (default %(default)s)"
    )
    p.add_argument(
        "--ram", type=float, default=None, metavar="GIB", help="RAM of the target box (cache size)"
    )
    p.add_argument("-o", "--output", help="config file to write (default: print it)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_configure)


def cmd_configure(args: argparse.Namespace) -> int:
    from katadeploy.deploy.configure import configure

    cfg, path = configure(
        args.platform, args.output, mode=args.mode, backend=args.backend, model=args.model,
        artifact=args.artifact, provider=args.provider, do_tune=args.tune, katago=args.katago,
        threads=args.tune_threads, visits=args.tune_visits, positions=args.tune_positions, ram_gib=args.ram,
        progress=not args.quiet,
    )  # fmt: skip
    if cfg.tuned is not None:
        for note in cfg.notes[-4:]:
            if note.startswith("  ") or note.startswith("Tuned"):
                print(note.strip())
    if path is None:
        print(cfg.render(), end="")
    else:
        print(path)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from katadeploy.deploy.pipeline import markdown, run_deploy
    from katadeploy.errors import KatadeployError

    if bool(args.match_games) != bool(args.match_visits):
        raise KatadeployError("--match-games and --match-visits go together (both > 0)")

    result = run_deploy(
        args.model, args.target or list(DEFAULT_TARGETS), args.output_dir, calib=args.calib,
        positions=args.positions, exact=args.exact_board,
        bench_batches=None if args.no_bench else args.bench_batch, bench_seconds=args.bench_seconds,
        threads=args.threads, progress=not args.quiet, match_visits=args.match_visits,
        match_games=args.match_games, match_board=args.match_board,
    )  # fmt: skip
    print(markdown(result))
    return 0 if result.passed else 1
