"""CLI: ``katadeploy raw-nn [MODEL] [--backend torch|ARTIFACT] [--positions F.jsonl] ...``, KataGo's
``kata-raw-nn`` from the PyTorch port or any artifact.

Contract: one JSON line per position, ``{"id", "raw": {...}}``, with the keys and ordering of ``kata-raw-nn``
(and of ``shared/oracle/golden_*.jsonl``), on stdout or ``-o``. Bad positions are reported with their line (and
with ``--skip-bad`` left out); an artifact fixes the tensor size and must have been built from the net given.
Handlers return an exit code; bad input raises :class:`~katadeploy.errors.KatadeployError` (one line, exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from katadeploy.data.bundled import BUNDLED_SOURCE, bundled_text
from katadeploy.errors import KatadeployError, PositionError
from katadeploy.model.source import Net, open_net
from katadeploy.progress import Progress
from katadeploy.runtime.loader import is_torch, open_evaluator, open_manifest
from katadeploy.runtime.rawnn import raw_nn


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("raw-nn", help="evaluate positions like KataGo's kata-raw-nn (torch FP32 reference)")
    p.add_argument(
        "model", nargs="?", help="model file, URL or known name (default: the manifest's default net)"
    )
    p.add_argument(
        "--positions", help="JSONL of analysis-query-shaped positions (default: 80 bundled positions)"
    )
    p.add_argument("--symmetry", type=int, default=0, choices=range(8), metavar="0-7")
    p.add_argument(
        "--nn-size", type=int, default=19, help="square tensor size; smaller boards are masked (default 19)"
    )
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--policy-optimism", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the backend")
    p.add_argument(
        "--backend",
        default="torch",
        help="torch (FP32 reference, default) or an exported artifact (its sidecar manifest must be beside it)",
    )
    p.add_argument("--device", help="backend device, e.g. cuda for ONNX Runtime's CUDA provider")
    p.add_argument(
        "--human-profile", help="humanSLProfile for human-SL nets, e.g. rank_9d, preaz_3k, proyear_1990"
    )
    p.add_argument(
        "--skip-bad", action="store_true", help="report bad positions on stderr and evaluate the rest"
    )
    p.add_argument("-o", "--output", help="write JSON lines here instead of stdout")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_raw_nn)


def read_positions(path: str | None, nn_size: int, skip_bad: bool) -> list:
    """Parse positions line by line; every bad line is reported with its id, and with ``skip_bad`` skipped."""
    from katadeploy.go.position import position_from_query

    if path is None:
        text, source = bundled_text(), BUNDLED_SOURCE
    else:
        try:
            text = Path(path).read_text("utf-8")
        except UnicodeDecodeError:
            raise KatadeployError(f"{path}: not UTF-8 text") from None
        source = path
    states, errors = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            query = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{source}:{lineno}: not valid JSON ({exc.msg})")
            continue
        try:
            states.append(position_from_query(query, max_board_size=nn_size))
        except PositionError as exc:
            errors.append(f"{source}:{lineno}: {exc}")
    for e in errors:
        print(f"katadeploy: {'skipping ' if skip_bad else ''}{e}", file=sys.stderr)
    if errors and not skip_bad:
        raise KatadeployError(f"{len(errors)} bad position(s) in {source}; fix them or pass --skip-bad")
    if not states:
        raise KatadeployError(f"no positions in {source}")
    return states


def _backend(args: argparse.Namespace, net: Net):
    """The evaluator for ``--backend``; an artifact fixes the tensor size (``--nn-size`` must agree)."""
    model = net.model

    if is_torch(args.backend):
        return open_evaluator("torch", model=model, threads=args.threads, device=args.device), None
    _, manifest = open_manifest(args.backend)
    if (manifest.nn_x, manifest.nn_y) != (args.nn_size, args.nn_size):
        raise KatadeployError(
            f"{args.backend} was exported for a {manifest.nn_x}x{manifest.nn_y} tensor; pass --nn-size {manifest.nn_x}"
        )
    ev = open_evaluator(args.backend, model=model, model_sha256=net.sha256, threads=args.threads,
                        device=args.device)  # fmt: skip
    return ev, manifest


def cmd_raw_nn(args: argparse.Namespace) -> int:
    if not 2 <= args.nn_size <= 37:
        raise KatadeployError("--nn-size must be between 2 and 37")
    if args.batch < 1:
        raise KatadeployError("--batch must be positive")
    states = read_positions(args.positions, args.nn_size, args.skip_bad)
    t0 = time.perf_counter()
    net = open_net(args.model, quiet=args.quiet)
    path, model = net.path, net.model
    evaluator, manifest = _backend(args, net)
    if manifest is not None and manifest.exact_board:
        small = [s.id for s in states if (s.x_size, s.y_size) != (manifest.nn_x, manifest.nn_y)]
        if small and not args.skip_bad:
            raise KatadeployError(
                f"{args.backend} is an exact-board artifact ({manifest.nn_x}x{manifest.nn_y} only) but "
                f"{len(small)} position(s) are smaller (first: {small[0]!r}); pass --skip-bad to leave them out"
            )
        if small:
            print(f"katadeploy: skipping {len(small)} position(s) smaller than the exact-board tensor",
                  file=sys.stderr)  # fmt: skip
            states = [s for s in states if (s.x_size, s.y_size) == (manifest.nn_x, manifest.nn_y)]
            if not states:
                raise KatadeployError("no positions left for this exact-board artifact")
    if not args.quiet:
        print(f"katadeploy: {model.name} (v{model.version}) loaded from {path} in {time.perf_counter() - t0:.2f}s"
              f" (backend {evaluator.name})", file=sys.stderr)  # fmt: skip
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        with Progress(len(states), "raw-nn", quiet=args.quiet) as bar:
            for state, raw in raw_nn(evaluator, model, states, nn_x=args.nn_size, nn_y=args.nn_size,
                                     symmetry=args.symmetry, batch_size=args.batch,
                                     policy_optimism=args.policy_optimism, human_profile=args.human_profile,
                                     on_batch=bar.advance):  # fmt: skip
                out.write(json.dumps({"id": state.id, "raw": raw}) + "\n")
            out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
