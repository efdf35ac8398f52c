"""CLI: ``katadeploy validate ARTIFACT [ARTIFACT...] --model MODEL [--positions P] [--batch 16] [-o DIR]
[--precision auto|fp32|fp16|int8|w8]``.

Contract: the command (its library call is :func:`katadeploy.validate.scoring.validate_evaluator`) opens every
artifact first (``open_evaluator(path, model=, model_sha256=)``: an artifact exported from another net is
refused before any work), then per artifact encodes the positions for its tensor (cached per tensor shape, as
are the reference outputs), compares, prints the table with PASS/FAIL per metric on stdout, and writes
``DIR/validate-<artifact>.md``, ``.json`` and ``.png``. The limits are those of the artifact's manifest
precision unless ``--precision`` overrides it. ``torch`` as an ARTIFACT is the FP32 reference itself, run one
position per call against the batched reference (KataGo's "fp32 unbatched vs batched" sanity check), judged
with the FP32 limits. Exit code 0 when every artifact passes, 1 when any fails; bad input exits 2 (the CLI's
:class:`~katadeploy.errors.KatadeployError` handling).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from katadeploy.argtypes import add_artifacts_argument
from katadeploy.errors import KatadeployError
from katadeploy.model.desc import ModelDesc
from katadeploy.runtime.base import Evaluator, RawBatch
from katadeploy.validate.metrics import PRECISIONS
from katadeploy.validate.positions import ValidationSet, evaluate, load_validation_set
from katadeploy.validate.scoring import validate_evaluator


class _Entry:
    """One ARTIFACT argument, opened."""

    def __init__(self, spec: str, evaluator: Evaluator, manifest: Any, precision: str):
        self.spec = spec
        self.evaluator = evaluator
        self.manifest = manifest
        self.precision = precision

    @property
    def is_torch(self) -> bool:
        return self.manifest is None


def _open_all(args: argparse.Namespace, model: ModelDesc, sha: str) -> list[_Entry]:
    from katadeploy.runtime.loader import is_torch, open_evaluator
    from katadeploy.runtime.torch_runtime import TorchEvaluator

    entries = []
    for spec in args.artifacts:
        if is_torch(spec):
            precision = "fp32" if args.precision == "auto" else args.precision
            entries.append(_Entry("torch", TorchEvaluator(model, threads=args.threads), None, precision))
            continue
        ev = open_evaluator(spec, model=model, model_sha256=sha, threads=args.threads)
        manifest = getattr(ev, "manifest", None)
        if manifest is None:
            from katadeploy.artifact import read_manifest

            manifest = read_manifest(spec)
        precision = manifest.precision if args.precision == "auto" else args.precision
        if precision not in PRECISIONS:
            raise KatadeployError(f"{spec}: unknown precision {precision!r}; pass --precision")
        entries.append(_Entry(spec, ev, manifest, precision))
    return entries


def cmd_validate(args: argparse.Namespace) -> int:
    from katadeploy.model.source import open_net
    from katadeploy.runtime.torch_runtime import TorchEvaluator
    from katadeploy.validate.report import ValidationResult, format_table, write_report

    if args.batch < 1:
        raise KatadeployError("--batch must be positive")
    progress = not args.quiet
    net = open_net(args.model, quiet=not progress)
    model, sha = net.model, net.sha256
    entries = _open_all(args, model, sha)
    reference = TorchEvaluator(model, threads=args.threads)
    sets: dict[tuple[int, int, bool], ValidationSet] = {}
    refs: dict[tuple[int, int, bool], RawBatch] = {}
    failed = 0
    for n, e in enumerate(entries):
        if e.is_torch:
            key = (args.nn_size, args.nn_size, False)
            target, name = "torch-fp32", "torch"
        else:
            key = (e.manifest.nn_x, e.manifest.nn_y, e.manifest.exact_board)
            target, name = e.manifest.target, Path(e.spec).name
        if key not in sets:
            sets[key] = load_validation_set(args.positions, model, *key)
            refs[key] = evaluate(
                reference, sets[key], args.batch, label="reference torch fp32", progress=progress
            )
        vset = sets[key]
        metrics, seconds = validate_evaluator(
            e.evaluator, vset, model, reference_raw=refs[key], batch=args.batch,
            test_batch=1 if e.is_torch else None, progress=progress,
        )  # fmt: skip
        notes = []
        if e.is_torch:
            notes.append(
                "torch FP32 one position per call vs the batched torch FP32 reference (sanity baseline)"
            )
        if not e.is_torch and args.precision != "auto" and args.precision != e.manifest.precision:
            notes.append(
                f"limits for {args.precision} applied to a {e.manifest.precision} artifact (--precision)"
            )
        result = ValidationResult(
            artifact=name, target=target, precision=e.precision, model=model.name, model_sha256=sha,
            positions=vset.source, nn_x=key[0], nn_y=key[1], exact=key[2], batch=args.batch,
            metrics=metrics, seconds=seconds, skipped=vset.skipped, notes=notes,
            quantization=None if e.is_torch else e.manifest.quantization,
        )  # fmt: skip
        if n:
            print()
        print(format_table(result))
        sys.stdout.flush()
        paths = write_report(result, args.output_dir)
        if progress:
            print(f"katadeploy: wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
        failed += not result.passed
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check artifacts against the torch FP32 reference with KataGo's testgpuerror limits",
        description="Compare each artifact's post-processed outputs (winrate, lead, score, policy, "
        "ownership) to the FP32 torch reference on real positions, with KataGo testgpuerror's statistics and "
        "its FP32 or FP16 limits. Exit code 0 if every artifact passes, 1 if any fails.",
    )
    add_artifacts_argument(p)
    p.add_argument(
        "--model", required=True, help="the net the artifacts were exported from (file, URL or name)"
    )
    p.add_argument(
        "--positions",
        default=None,
        help="JSONL of analysis-query positions, or a calibration .npz (its validation split); "
        "default: the 80 bundled positions",
    )
    p.add_argument("--batch", type=int, default=16, help="positions per evaluation call (default 16)")
    p.add_argument(
        "-o", "--output-dir", default=".", help="where the reports go (default: current directory)"
    )
    p.add_argument(
        "--precision",
        choices=("auto", *PRECISIONS),
        default="auto",
        help="whose limits to apply (default: the artifact's precision from its manifest)",
    )
    p.add_argument("--nn-size", type=int, default=19, help="tensor size for the torch pseudo-artifact (19)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the runtimes")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_validate)
