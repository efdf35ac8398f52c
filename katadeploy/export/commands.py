"""CLI: ``katadeploy export MODEL --target T [--target T2 ...] [--calib F] -o DIR`` and ``katadeploy qat MODEL``.

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
    _register_qat(sub)


def _register_qat(sub: argparse._SubParsersAction) -> None:
    from katadeploy.export import int8_qat

    p = sub.add_parser(
        "qat",
        help="distillation quantization-aware training of the onnx-int8 weights (cached; export reuses it)",
        description="Trains the smooth-gptq INT8 weights against the FP32 net on the calibration positions of every "
        "board size, caches them by net sha256 and recipe, and writes the onnx-int8 artifact (QDQ, read by "
        "onnxruntime, OpenVINO and TensorRT). A later `katadeploy export -t onnx-int8` with the same recipe "
        "reuses the cached weights.",
    )  # fmt: skip
    p.add_argument("model", nargs="?", help="model file, URL or known name (default: the manifest's default net)")
    p.add_argument("-model", dest="model_opt", metavar="MODEL", help="the same, KataGo style")
    p.add_argument("--calib", help="calibration .npz from `katadeploy calibrate` (default: bundled, every size)")
    p.add_argument("-o", "--output-dir", default="artifacts")
    p.add_argument("--steps", type=int, default=int8_qat.DEFAULT_STEPS, help="training steps (default %(default)s)")
    p.add_argument("--batch", type=int, default=int8_qat.DEFAULT_BATCH, help="positions per step (default %(default)s)")
    p.add_argument("--lr", type=float, default=int8_qat.DEFAULT_LR,
                   help="Adam step in INT8 grid units (default %(default)s)")  # fmt: skip
    p.add_argument("--positions", type=int, default=int8_qat.DEFAULT_POSITIONS,
                   help="calibration positions trained on (default %(default)s)")  # fmt: skip
    p.add_argument("--bias-lr", type=float, default=int8_qat.DEFAULT_BIAS_LR,
                   help="Adam step of the biases, in units of each output's rounding noise; 0 keeps them "
                   "(default %(default)s)")  # fmt: skip
    p.add_argument("--option", action="append", default=[], type=exporter_option, metavar="KEY=VALUE",
                   help="any onnx-int8 exporter option (repeatable)")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_qat)


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


def cmd_qat(args: argparse.Namespace) -> int:
    from katadeploy.errors import KatadeployError
    from katadeploy.export.request import export_artifact
    from katadeploy.model.source import open_net

    if args.model and args.model_opt:
        raise KatadeployError("give the model once (positional or -model)")
    options = dict(args.option)
    options.update(int8_qat="on", int8_qat_steps=args.steps, int8_qat_batch=args.batch, int8_qat_lr=args.lr,
                   int8_qat_positions=args.positions, int8_qat_bias_lr=args.bias_lr)  # fmt: skip
    net = open_net(args.model or args.model_opt, quiet=args.quiet)
    path = export_artifact(net, "onnx-int8", args.output_dir, calib=args.calib, progress=not args.quiet,
                           options=options)  # fmt: skip
    print(path)
    return 0
