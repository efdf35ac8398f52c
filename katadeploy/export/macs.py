"""Multiply-accumulate accounting of quantized artifacts: which share of a net's MACs runs in int8.

Contract: every Conv/Gemm/MatMul-type op counts, weight ops and activation x activation matmuls (attention)
alike, with MACs per position = (output elements per position) x (reduction length): ``Cin/groups x kh x kw`` for
a convolution, ``K`` for a matmul. :func:`summarize` turns ``(name, role, macs, is_int8)`` rows into the record
every INT8 manifest keeps under ``quantization`` (``int8_mac_fraction``, MACs by precision, the float layers);
:func:`onnx_macs` reads the rows off a QDQ ONNX graph (an op is int8 when every non-bias input comes from a
``DequantizeLinear`` of an 8-bit tensor). The OpenVINO and TFLite exporters produce their rows from their own
graphs with the same formula.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

Row = tuple[str, str, float, bool]  # (layer name, role, MACs per position, runs int8)

FLOAT_LAYERS_LISTED = 64  # the float layers are listed by name up to this many (all are counted)


def conv_macs(out_shape: list[int], weight_shape: list[int], groups: int = 1) -> float:
    """MACs per position of a convolution with output ``[N, Cout, H, W]`` and weight ``[Cout, Cin/g, kh, kw]``."""
    return float(np.prod(out_shape[1:])) * float(np.prod(weight_shape[1:]))


def matmul_macs(out_shape: list[int], k: int) -> float:
    """MACs per position of a matmul with output ``[N, ..., M]`` reducing over ``k``."""
    return float(np.prod(out_shape[1:])) * float(k)


def summarize(rows: Iterable[Row], recipe: str) -> dict[str, Any]:
    rows = list(rows)
    int8 = sum(m for _, _, m, q in rows if q)
    total = sum(m for _, _, m, _ in rows)
    floats = [(n, r, m) for n, r, m, q in rows if not q]
    by_role: dict[str, float] = {}
    for _, r, m in floats:
        by_role[r] = by_role.get(r, 0.0) + m
    return {
        "int8_mac_fraction": round(int8 / total, 4) if total else 0.0,
        "macs_per_position": {"int8": int8, "float": total - int8},
        "recipe": recipe,
        "float_layers": len(floats),
        "float_macs_by_role": {r: round(m / total, 4) for r, m in sorted(by_role.items())} if total else {},
        "float_layer_names": [n for n, _, _ in floats[:FLOAT_LAYERS_LISTED]],
    }


def onnx_macs(proto: Any, role_of: Callable[[str, str], str]) -> list[Row]:
    """The MAC rows of a (QDQ or float) ONNX graph; ``role_of(name, op_type)`` names each op's role."""
    import onnx
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(proto)
    graph = inferred.graph
    shapes: dict[str, list[int]] = {}
    for vi in [*graph.value_info, *graph.input, *graph.output]:
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in dims]
    inits = {t.name: t for t in graph.initializer}
    for name, t in inits.items():
        shapes[name] = list(t.dims)
    producer = {o: n for n in graph.node for o in n.output}
    eight_bit = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)

    def source_shape(name: str) -> list[int] | None:
        if name in shapes:
            return shapes[name]
        p = producer.get(name)
        return source_shape(p.input[0]) if p is not None and p.op_type == "DequantizeLinear" else None

    def dequantized(name: str) -> bool:
        p = producer.get(name)
        if p is None or p.op_type != "DequantizeLinear":
            return False
        src = p.input[0]
        if src in inits:
            return inits[src].data_type in eight_bit
        q = producer.get(src)
        return q is not None and q.op_type == "QuantizeLinear" and _zero_point_8bit(q, inits, eight_bit)

    rows: list[Row] = []
    for n in graph.node:
        if n.op_type not in ("Conv", "MatMul", "Gemm"):
            continue
        out = shapes.get(n.output[0])
        a, b = source_shape(n.input[0]), source_shape(n.input[1])
        if out is None or a is None or b is None:
            continue
        if n.op_type == "Conv":
            macs = conv_macs(out, b)
        elif n.op_type == "Gemm":
            trans_a = next((x.i for x in n.attribute if x.name == "transA"), 0)
            macs = matmul_macs(out, a[0] if trans_a else a[-1])
        else:
            macs = matmul_macs(out, a[-1])
        rows.append(
            (n.name, role_of(n.name, n.op_type), macs, dequantized(n.input[0]) and dequantized(n.input[1]))
        )
    return rows


def _zero_point_8bit(q: Any, inits: dict[str, Any], eight_bit: tuple[int, ...]) -> bool:
    if len(q.input) < 3:
        return True  # QuantizeLinear without a zero point quantizes to uint8
    zp = inits.get(q.input[2])
    return zp is None or zp.data_type in eight_bit
