"""Unsigned weight codes for onnxruntime on CPUs whose u8 x s8 dot products saturate.

Contract: :func:`unsigned_weights` ``(proto)`` rewrites, in place, every constant ``DequantizeLinear`` of int8
weights (zero point 0, feeding the weight input of a ``Conv``, ``MatMul`` or ``Gemm``) into the same values stored
as uint8 with zero point 128, and returns how many it rewrote. The graph computes exactly the same function
(``(q + 128 - 128) * s == q * s``); only the kernel onnxruntime picks changes: its QDQ fusion then runs MLAS's
U8U8 kernel, which widens to int16 before ``vpmaddwd`` and cannot saturate, instead of U8S8's ``vpmaddubsw``
(see :func:`katadeploy.runtime.cpu.int8_dot_saturates`). onnxruntime's own documentation names U8U8 as the
saturation-free format on such CPUs; its ``reduce_range`` (7-bit weights) is the other fix and costs accuracy,
which is why this rewrite is used instead.

:func:`weights_mode` resolves the ``int8_weights`` runtime option: ``auto`` (the default: ``u8`` where
:func:`~katadeploy.runtime.cpu.int8_dot_saturates`, else ``s8``), ``s8`` (the artifact as stored) or ``u8``.
The artifact file itself keeps s8 weights, the format TensorRT and OpenVINO need.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from katadeploy.errors import KatadeployError
from katadeploy.runtime.cpu import int8_dot_saturates

#: ops whose weight input (index 1) onnxruntime's QDQ fusion turns into an integer kernel
WEIGHT_OPS = ("Conv", "MatMul", "Gemm")
MODES = ("auto", "s8", "u8")
_SUFFIX = "__u8"


def weights_mode(raw: Any) -> str:
    """``"s8"`` or ``"u8"`` for the option value ``raw`` (None means ``auto``)."""
    mode = str(raw or "auto").lower()
    if mode not in MODES:
        raise KatadeployError(f"unknown int8_weights {raw!r}; use {', '.join(MODES)}")
    if mode == "auto":
        return "u8" if int8_dot_saturates() else "s8"
    return mode


def unsigned_weights(proto: Any) -> int:
    """Rewrite the int8 weight codes of ``proto`` as uint8 with zero point 128 (the module contract)."""
    from onnx import numpy_helper

    graph = proto.graph
    inits = {i.name: i for i in graph.initializer}
    weights = {n.input[1] for n in graph.node if n.op_type in WEIGHT_OPS and len(n.input) > 1}
    added: dict[str, Any] = {}
    count = 0
    for n in graph.node:
        if n.op_type != "DequantizeLinear" or n.input[0] not in inits or n.output[0] not in weights:
            continue
        q = numpy_helper.to_array(inits[n.input[0]])
        if q.dtype != np.int8:
            continue
        zp_name = n.input[2] if len(n.input) > 2 else ""
        if zp_name:
            if zp_name not in inits:
                continue
            zp = numpy_helper.to_array(inits[zp_name])
            if np.any(zp):
                continue  # an asymmetric int8 weight: leave it as it is
            zp_shape = zp.shape
        else:
            zp_shape = numpy_helper.to_array(inits[n.input[1]]).shape if n.input[1] in inits else ()
        q_name, z_name = n.input[0] + _SUFFIX, (zp_name or n.output[0] + "_zero_point") + _SUFFIX
        if q_name not in added:
            added[q_name] = numpy_helper.from_array((q.astype(np.int16) + 128).astype(np.uint8), q_name)
        if z_name not in added:
            added[z_name] = numpy_helper.from_array(np.full(zp_shape, 128, np.uint8), z_name)
        n.input[0] = q_name
        while len(n.input) < 3:
            n.input.append("")
        n.input[2] = z_name
        count += 1
    if not count:
        return 0
    graph.initializer.extend(added.values())
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return count
