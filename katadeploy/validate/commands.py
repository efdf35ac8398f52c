"""CLI: ``katadeploy validate ARTIFACT [ARTIFACT...] --model MODEL [--positions P] [--batch 16] [-o DIR]
[--precision auto|fp32|fp16|int8|w8]``, and the library call behind it.

Contract: :func:`validate_evaluator` evaluates a :class:`~katadeploy.validate.positions.ValidationSet` with
the evaluator under test and with the FP32 torch reference (or reuses reference outputs already computed) and
returns KataGo ``testgpuerror`` :class:`~katadeploy.validate.metrics.Metrics`. The command opens every
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
import time
from pathlib import Path
from typing import Any

from katadeploy.errors import KatadeployError
from katadeploy.model.desc import ModelDesc
from katadeploy.runtime.base import Evaluator, RawBatch
from katadeploy.validate.metrics import PRECISIONS, Metrics, compare
from katadeploy.validate.positions import ValidationSet, evaluate, load_validation_set


def validate_evaluator(
    test: Evaluator,
    vset: ValidationSet,
    model: ModelDesc,
    *,
    reference: Evaluator | None = None,
    reference_raw: RawBatch | None = None,
    batch: int = 16,
    test_batch: int | None = None,
    progress: bool = False,
) -> tuple[Metrics, float]:
    """Metrics of ``test`` against the torch FP32 reference on ``vset``, and the seconds ``test`` took.

    ``reference_raw`` (outputs of the reference on ``vset``) avoids re-running the reference; otherwise
    ``reference`` (default: a new :class:`~katadeploy.runtime.torch_runtime.TorchEvaluator`) is run.
    """
    if reference_raw is None:
        if reference is None:
            from katadeploy.runtime.torch_runtime import TorchEvaluator

            reference = TorchEvaluator(model)
        reference_raw = evaluate(reference, vset, batch, label="reference torch fp32", progress=progress)
    t0 = time.perf_counter()
    raw = evaluate(test, vset, test_batch or batch, label=getattr(test, "name", "test"), progress=progress)
    seconds = time.perf_counter() - t0
    ref_scale = 1.0 if reference is None else float(getattr(reference, "output_scale", 1.0))
    metrics = compare(
        reference_raw, raw, vset.legal, model,
        ref_scale=ref_scale, test_scale=float(getattr(test, "output_scale", 1.0)),
        no_result_allowed=vset.no_result_allowed, on_board=vset.on_board,
    )  # fmt: skip
    return metrics, seconds


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
            from katadeploy.export.manifest import read_manifest

            manifest = read_manifest(spec)
        precision = manifest.precision if args.precision == "auto" else args.precision
        if precision not in PRECISIONS:
            raise KatadeployError(f"{spec}: unknown precision {precision!r}; pass --precision")
        entries.append(_Entry(spec, ev, manifest, precision))
    return entries


def cmd_validate(args: argparse.Namespace) -> int:
    from katadeploy.hashing import sha256_file
    from katadeploy.model.format import load_model
    from katadeploy.model.hub import resolve_model
    from katadeploy.runtime.torch_runtime import TorchEvaluator
    from katadeploy.validate.report import ValidationResult, format_table, write_report

    if args.batch < 1:
        raise KatadeployError("--batch must be positive")
    progress = not args.quiet
    model_path = resolve_model(args.model, quiet=not progress)
    model = load_model(model_path)
    sha = sha256_file(model_path)
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
    p.add_argument(
        "artifacts", nargs="+", metavar="ARTIFACT", help="artifact path (with its sidecar), or torch"
    )
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
