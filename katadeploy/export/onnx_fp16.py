"""FP16 ONNX graphs with FP32 islands where KataGo keeps FP32.

Contract: :func:`convert_fp16` ``(proto, model)`` takes the folded FP32 graph from
:func:`katadeploy.export.onnx.build_fp32` and returns ``(fp16_proto, details)``. Weights and activations become
FP16 except for the nodes whose module role (:func:`katadeploy.export.node_roles.node_role`) is in :data:`FP32_ROLES`:
every RMSNorm (the transformer norms and an RMSNorm trunk tip), the attention softmax, the policy head and the
value head (with ownership). Inputs and outputs stay FP32; onnxconverter-common's float16 converter inserts the
casts at the boundaries. ``details["fp16"]`` records what the written graph actually computes in FP32 — read
back from the converted graph's tensor types, not from the block list — summarised by role and op type, and how
many nodes run in FP16 and how many casts were inserted.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

from katadeploy.export.node_roles import node_role, summarize_nodes
from katadeploy.extras import require
from katadeploy.model.desc import ModelDesc

#: node roles kept in FP32
FP32_ROLES = ("norm_rms", "attention_softmax", "policy_head", "value_head")
#: converter settings: initializer values are clamped to the finite FP16 range (not 1e4, the library default)
MAX_FINITE = 65504.0
MIN_POSITIVE = 1e-7


def block_list(proto: Any, model: ModelDesc) -> list[str]:
    return [n.name for n in proto.graph.node if node_role(n.name, n.op_type, model) in FP32_ROLES]


def convert_fp16(proto: Any, model: ModelDesc) -> tuple[Any, dict[str, Any]]:
    onnx = require("onnx", "onnx")
    f16 = require("onnxconverter_common.float16", "onnx", "onnxconverter-common")
    blocked = block_list(proto, model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = f16.convert_float_to_float16(
            proto, min_positive_val=MIN_POSITIVE, max_finite_val=MAX_FINITE, keep_io_types=True,
            node_block_list=blocked,
        )  # fmt: skip
    clamped = sum("truncated" in str(w.message) for w in caught)
    restored = restore_fp32_outputs(converted)
    converted = onnx.shape_inference.infer_shapes(converted)
    onnx.checker.check_model(converted)
    details = describe_precision(converted, model, len(blocked))
    details["initializer_values_clamped"] = clamped
    details["output_casts_removed"] = restored
    return converted, {"fp16": details}


def restore_fp32_outputs(proto: Any) -> int:
    """Give every graph output back its FP32 type.

    The converter (1.16) casts the FP32 results of blocked nodes to FP16 before the graph outputs even with
    ``keep_io_types``, which would round the heads' FP32 results. Such a final ``Cast`` is removed (its FP32
    input becomes the output); any other FP16 output gets a ``Cast`` back to FP32. Returns the casts removed.
    """
    from onnx import TensorProto, helper

    g = proto.graph
    types = float_types(proto)
    producer = {o: n for n in g.node for o in n.output}
    removed = 0
    for out in g.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT16:
            continue
        node = producer.get(out.name)
        to = next((a.i for a in node.attribute if a.name == "to"), None) if node is not None else None
        if node is not None and node.op_type == "Cast" and to == TensorProto.FLOAT16:
            src = node.input[0]
            if types.get(src) == TensorProto.FLOAT:
                g.node.remove(node)
                for n in g.node:
                    n.output[:] = [out.name if o == src else o for o in n.output]
                    n.input[:] = [out.name if i == src else i for i in n.input]
                out.type.tensor_type.elem_type = TensorProto.FLOAT
                removed += 1
                continue
        half = out.name + "_fp16"
        for n in g.node:
            n.output[:] = [half if o == out.name else o for o in n.output]
            n.input[:] = [half if i == out.name else i for i in n.input]
        g.node.append(helper.make_node("Cast", [half], [out.name], to=TensorProto.FLOAT, name=half + "_cast"))
        out.type.tensor_type.elem_type = TensorProto.FLOAT
    return removed


def float_types(proto: Any) -> dict[str, int]:
    """Tensor name -> ONNX element type, for every typed value in the graph."""
    types: dict[str, int] = {}
    g = proto.graph
    for vi in [*g.value_info, *g.input, *g.output]:
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in g.initializer:
        types[init.name] = init.data_type
    return types


def describe_precision(proto: Any, model: ModelDesc, blocked: int) -> dict[str, Any]:
    """Which nodes compute in FP32 and which in FP16, read from the tensor types of a converted graph."""
    from onnx import TensorProto

    types = float_types(proto)
    fp32, fp16 = [], Counter()
    casts = 0
    for n in proto.graph.node:
        if n.op_type == "Cast":
            casts += 1
            continue
        outs = [types.get(o) for o in n.output]
        ins = [types.get(i) for i in n.input if i]
        role = node_role(n.name, n.op_type, model)
        if TensorProto.FLOAT16 in outs or (TensorProto.FLOAT not in outs and TensorProto.FLOAT16 in ins):
            fp16[role] += 1
        elif TensorProto.FLOAT in outs or TensorProto.FLOAT in ins:
            fp32.append((n.name, n.op_type, role))
    return {
        "converter": "onnxconverter-common float16 (keep_io_types, node block list)",
        "fp32_roles": list(FP32_ROLES),
        "blocked_nodes": blocked,
        "fp32_nodes": summarize_nodes(fp32),
        "fp16_nodes": {"count": sum(fp16.values()), "by_role": dict(sorted(fp16.items()))},
        "casts": casts,
        "io": "float32",
    }
