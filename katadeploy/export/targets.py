"""The registry of export targets.

Contract: :data:`TARGETS` maps every target name accepted by ``katadeploy export --target`` to a
:class:`Target`: its artifact format, precision, file extension, the optional extra it needs, whether it needs
calibration data (and whether its default set covers every board size), and the module (under :mod:`katadeploy.export`) that builds it. :func:`get_target` turns an
unknown name into a clear error that lists the valid ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from katadeploy.errors import KatadeployError


@dataclass(frozen=True)
class Target:
    name: str
    format: str  # onnx | tflite | coreml | tensorrt | openvino
    precision: str  # fp32 | fp16 | int8 | w8
    extension: str
    extra: str
    module: str  # katadeploy.export.<module>

    @property
    def needs_calibration(self) -> bool:
        return self.precision == "int8"

    @property
    def calibrates_every_board_size(self) -> bool:
        """Whether its default calibration adds the bundled self-play games (7x7-13x13, 9x13) to the 19x19 real
        games. onnx-int8's smooth-gptq recipe needs them (g170-b6c96: 28.5x -> 1.07x KataGo's limit); the other
        INT8 exporters' recipes were tuned on, and still pass only with, the 19x19-only set."""
        return self.name == "onnx-int8"


#: ``options["int8_source"]`` of openvino-int8: NNCF's PTQ of the torch graph (default) or the onnx-int8 QDQ graph
INT8_SOURCES = ("nncf", "onnx-qdq")
INT8_SOURCE_QDQ = "onnx-qdq"


def int8_source(options: dict | None) -> str:
    raw = str((options or {}).get("int8_source", INT8_SOURCES[0])).lower()
    if raw not in INT8_SOURCES:
        raise KatadeployError(f"unknown int8_source {raw!r}; use {' or '.join(INT8_SOURCES)}")
    return raw


def every_board_size(target: Target, options: dict | None) -> bool:
    """Whether ``target``'s default calibration covers every board size: onnx-int8, and openvino-int8 built from
    onnx-int8's QDQ graph (``int8_source=onnx-qdq``)."""
    return target.calibrates_every_board_size or (
        target.name == "openvino-int8" and int8_source(options) == INT8_SOURCE_QDQ
    )


def _t(name: str, fmt: str, ext: str, extra: str, module: str) -> Target:
    return Target(name, fmt, name.rsplit("-", 1)[1], ext, extra, module)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        _t("onnx-fp32", "onnx", ".onnx", "onnx", "onnx"),
        _t("onnx-fp16", "onnx", ".onnx", "onnx", "onnx"),
        _t("onnx-int8", "onnx", ".onnx", "onnx", "onnx"),
        _t("tflite-fp32", "tflite", ".tflite", "tflite", "tflite"),
        _t("tflite-fp16", "tflite", ".tflite", "tflite", "tflite"),
        _t("tflite-int8", "tflite", ".tflite", "tflite", "tflite"),
        _t("coreml-fp32", "coreml", ".mlpackage", "coreml", "coreml"),
        _t("coreml-fp16", "coreml", ".mlpackage", "coreml", "coreml"),
        _t("coreml-w8", "coreml", ".mlpackage", "coreml", "coreml"),
        _t("tensorrt-fp16", "tensorrt", ".engine", "tensorrt", "tensorrt"),
        _t("tensorrt-int8", "tensorrt", ".engine", "tensorrt", "tensorrt"),
        _t("openvino-fp32", "openvino", ".xml", "openvino", "openvino"),
        _t("openvino-fp16", "openvino", ".xml", "openvino", "openvino"),
        _t("openvino-int8", "openvino", ".xml", "openvino", "openvino"),
    )
}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise KatadeployError(f"unknown target {name!r}; choose one of: {', '.join(TARGETS)}") from None
