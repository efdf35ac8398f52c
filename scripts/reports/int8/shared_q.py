"""Issue 11 experiment: one per-channel QuantizeLinear before the u8 gathers of a grouped onnx-int8 graph.

``python scripts/reports/int8/shared_q.py IN.onnx OUT.onnx`` rewrites every grouped conv input of an onnx-int8 graph
exported with ``--option int8_act_groups=K`` (katadeploy.export.int8_repair, "Activation groups") and checks that
onnxruntime's outputs are bit-identical on 16 oracle positions. Measured 2026-12-06 (groups/README.md,
``group_speed-b15-zen3-shared-q.json``): bit-identical, but slower in OpenVINO on a Zen 3 (14.6 against 18.4 evals/s
for the plain 8-group graph, same run), so the exporter does not use it.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from katadeploy.export.int8_repair import GROUP_SEP


def share_group_quantizers(qdq: Any) -> int:
    """Rewrite every grouped conv input of a QDQ graph from ``x -> Gather(group k) -> QuantizeLinear_k ->
    DequantizeLinear_k`` to ``x -> QuantizeLinear(per channel, axis 1) -> Gather(group k) -> DequantizeLinear_k``:
    one quantizer whose scale and zero point repeat each group's over its channels, then gathers of 8-bit codes. The
    values every convolution reads are bit-identical (a channel's code depends only on its own scale and zero point);
    what changes is that runtimes quantize once, and move 8-bit instead of float data through the gathers. Groups
    whose convolution reads float (returned by the fallback) are left as they are. Returns the inputs rewritten."""
    from onnx import helper, numpy_helper

    graph = qdq.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    by_input: dict[str, list[tuple[Any, Any, np.ndarray]]] = {}
    for n in graph.node:
        if n.op_type != "Gather" or not n.name.endswith("__gather") or GROUP_SEP not in n.name:
            continue
        users = consumers.get(n.output[0], [])
        if len(users) != 1 or users[0].op_type != "QuantizeLinear" or n.input[1] not in inits:
            continue
        by_input.setdefault(n.input[0], []).append((n, users[0], numpy_helper.to_array(inits[n.input[1]])))
    rewritten = 0
    remove: set[int] = set()
    add_after: dict[int, Any] = {}
    for x, parts in by_input.items():
        channels = sum(len(idx) for _, _, idx in parts)
        scale = np.zeros(channels, np.float32)
        first_zp = numpy_helper.to_array(inits[parts[0][1].input[2]])
        zp = np.zeros(channels, first_zp.dtype)
        covered = np.zeros(channels, bool)
        for _, q, idx in parts:
            if idx.max() >= channels:
                break
            scale[idx] = numpy_helper.to_array(inits[q.input[1]])
            zp[idx] = numpy_helper.to_array(inits[q.input[2]])
            covered[idx] = True
        if not covered.all():  # not a full partition of the channels (some groups float): leave it
            continue
        s_name, z_name, q_out = f"{x}__qscale", f"{x}__qzp", f"{x}__quantized"
        graph.initializer.extend(
            [numpy_helper.from_array(scale, s_name), numpy_helper.from_array(zp, z_name)]
        )
        quant = helper.make_node(
            "QuantizeLinear", [x, s_name, z_name], [q_out], name=f"{x}__quantize", axis=1
        )
        for gather, q, _ in parts:
            gather.input[0] = q_out
            for user in consumers.get(q.output[0], []):  # the DequantizeLinear_k
                for j, i in enumerate(user.input):
                    if i == q.output[0]:
                        user.input[j] = gather.output[0]
            remove.add(id(q))
        first = min(list(graph.node).index(g) for g, _, _ in parts)
        add_after[first] = quant
        rewritten += 1
    if not rewritten:
        return 0
    now_8bit = {g.output[0] for parts in by_input.values() for g, _, _ in parts}
    for vi in [vi for vi in graph.value_info if vi.name in now_8bit]:  # their recorded float type is stale
        graph.value_info.remove(vi)
    order = []
    for k, n in enumerate(graph.node):
        if k in add_after:
            order.append(add_after[k])
        if id(n) not in remove:
            order.append(n)
    del graph.node[:]
    graph.node.extend(order)
    used = {i for n in graph.node for i in n.input}
    for t in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(t)
    return rewritten


def main() -> None:
    import onnx
    import onnxruntime as ort

    from katadeploy.model.source import open_net
    from katadeploy.validate.positions import load_validation_set

    src, dst = sys.argv[1:3]
    m = onnx.load(src)
    print("rewritten inputs:", share_group_quantizers(m))
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    v = load_validation_set(None, open_net(sys.argv[3] if len(sys.argv) > 3 else "g170e-b15c192").model)
    feed = {"spatial": v.spatial[:16], "global": v.global_[:16]}
    a = ort.InferenceSession(src, providers=["CPUExecutionProvider"]).run(None, feed)
    b = ort.InferenceSession(dst, providers=["CPUExecutionProvider"]).run(None, feed)
    print("max |difference| per output:", [float(np.abs(x - y).max()) for x, y in zip(a, b)])


if __name__ == "__main__":
    main()
