"""CLI: ``katadeploy export MODEL --target T [--target T2 ...] [--calib F] -o DIR``.

Contract: builds each requested target with :func:`katadeploy.export.request.export_artifact` and prints the
artifact paths (one per line) on stdout; progress and notes go to stderr. ``--target all-cpu`` builds every target
that can be built on this machine's CPU (ONNX, TFLite, Core ML, OpenVINO). ``--no-int8-fallback`` passes
``options={"mixed_precision": False}`` (the OpenVINO INT8 exporter then keeps its best full-INT8 recipe). Bad input raises
:class:`~katadeploy.errors.KatadeployError` subclasses.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from katadeploy.export.targets import TARGETS

CPU_TARGETS = [n for n, t in TARGETS.items() if t.format in ("onnx", "tflite", "coreml", "openvino")]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a net to ONNX / TFLite / Core ML / TensorRT / OpenVINO with a sidecar manifest",
        description="Targets: " + ", ".join(TARGETS) + ", or all-cpu.",
    )
    p.add_argument(
        "model", nargs="?", help="model file, URL or known name (default: the manifest's default net)"
    )
    p.add_argument("--target", "-t", action="append", required=True, metavar="T", help="repeatable")
    p.add_argument("--calib", help="calibration .npz from `katadeploy calibrate` (default: bundled games)")
    p.add_argument("-o", "--output-dir", default="artifacts")
    p.add_argument("--nn-size", type=int, default=19, help="board tensor size (default 19)")
    p.add_argument(
        "--exact-board", action="store_true",
        help="graph without mask ops, valid only for boards that fill the tensor (faster)",
    )  # fmt: skip
    p.add_argument("--batch", type=int, default=8, help="largest batch for fixed-batch formats (default 8)")
    p.add_argument(
        "--no-int8-fallback", action="store_true",
        help="openvino-int8: keep the fastest full-INT8 recipe even when it misses KataGo's FP16 limits (no "
        "FP32 blocks; `validate` then reports FAIL)",
    )  # fmt: skip
    p.add_argument(
        "--option", action="append", default=[], type=exporter_option, metavar="KEY=VALUE",
        help="exporter option (repeatable), e.g. int8_activations=u8, int8_methods=minmax, calib_positions=256",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_export)


def exporter_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> ``(key, value)``: an int, float, true/false or a string (commas allowed in strings)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--option takes KEY=VALUE, got {text!r}")
    value: Any = raw.strip()
    if value.lower() in ("true", "false"):
        value = value.lower() == "true"
    else:
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
    return key.strip(), value


def cmd_export(args: argparse.Namespace) -> int:
    from katadeploy.export.request import export_artifact
    from katadeploy.model.source import open_net

    targets: list[str] = []
    for t in args.target:
        targets.extend(CPU_TARGETS if t == "all-cpu" else [t])
    options = dict(args.option)
    if args.no_int8_fallback:
        options["mixed_precision"] = False
    net = open_net(args.model, quiet=args.quiet)  # resolved, parsed and hashed once for every target
    for t in targets:
        path = export_artifact(
            net, t, args.output_dir, calib=args.calib, nn_size=args.nn_size,
            exact=args.exact_board, batch=args.batch, progress=not args.quiet, options=options or None,
        )  # fmt: skip
        print(path)
        sys.stdout.flush()
    return 0
