"""The INT8 fallback's trials in one onnxruntime session: any set of a QDQ graph's layers floated by a feed.

Contract
--------
:func:`switched_graph` returns a copy of a QDQ graph in which each layer of ``names`` (Conv/MatMul/Gemm nodes, as
:func:`katadeploy.export.int8_fallback.float_layers` names them) reads ``Where(on, dequantized, float)`` at each
quantized input. ``on`` is one bool scalar graph input per layer, appended after the net's own inputs
(:data:`SWITCH_PREFIX` + its index); the float tensor is the one ``float_layers`` feeds that input: the activation
before its ``QuantizeLinear``, the float initializer of the same node in the float graph.

- An ordinary layer keeps its node and Q/DQ nodes; ``on`` picks between them and the float tensors. With ``on``
  true it computes the dequantized codes times the dequantized weights, summed in float32: what onnxruntime's CPU
  provider itself does with katadeploy's input-only QDQ convolutions (it fuses them into no integer kernel; README);
  where a runtime sums the same products in int32 (the test's tiny graph), equal up to float32 rounding.
- A conv split into activation groups (``NODE__groupK`` convs over ``Gather``-ed channels, summed) becomes one
  conv again: the groups' channels gathered in group order, fake-quantized per channel with each group's scale and
  zero point, the groups' dequantized weights (constants, computed here) side by side, the bias of the group that
  carries it. Same products, summed in another order and in one conv: on kata1-b18c384nbt's 32-group graph a
  trial runs at the float graph's speed (8 19x19 positions on 2 cores: 1.54 s; the QDQ graph 2.86 s, FP32 1.38 s,
  the unmerged switched graph 2.54 s; 2026-12-08). One layer int8 and the rest float, it computes what
  ``float_layers`` leaves to float rounding (g170-b6c96, 16 groups: max 2e-5 against the layer's own error of
  0.005-0.27). All int8, a last-bit difference flips a few int8 codes downstream: the outputs' mean difference
  from the QDQ graph is 0.08 of its int8 error (median 1e-7). Enough to rank layers by their error, not to
  judge a graph.

Run with a layer's ``on`` false, the graph computes what ``float_layers(qdq, float_proto, [layer])`` computes.
onnxruntime cannot fuse a ``DequantizeLinear`` that feeds a ``Where`` into an integer kernel, so in this graph every
layer runs in float.

:class:`FloatTrials` holds that session: ``measure(floated)`` runs the graph with the layers ``floated`` float and
the rest int8 and returns :func:`katadeploy.export.int8_fallback.gate_record`'s record, through the caller's
``score(evaluator) -> (loss, metrics)``; ``fraction(floated)`` is that graph's int8 share of the MACs, from the
MAC rows of the QDQ graph, without building it.

Why: each trial of the fallback's ranking otherwise builds a graph (``float_layers``, shape inference for its MAC
count), writes it, opens an onnxruntime session on it and runs it: ~45-60 s on kata1-b18c384nbt's 32-group graph
on 2 cores, 114 trials for its energy ranking. The fallback's own steps and its result are still real QDQ graphs
(``int8_trials=session`` changes what the ranking costs, not what judges the graph). On g170-b6c96 (16 groups)
both kinds of trial give the same ranking and energies to the printed digits.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.export.int8_fallback import drop_orphans, gate_record
from katadeploy.export.int8_repair import layer_of
from katadeploy.export.macs import Row

SWITCH_PREFIX = "int8_on."
TRIALS = ("graph", "session")
DEFAULT_TRIALS = "graph"


def switched_graph(qdq: Any, float_proto: Any, names: Sequence[str]) -> tuple[Any, dict[str, str]]:
    """The switched copy of ``qdq`` (module contract) and each layer's switch input name, in ``names`` order."""
    from onnx import TensorProto, helper

    out = copy.deepcopy(qdq)
    graph = out.graph
    switch = {name: f"{SWITCH_PREFIX}{k}" for k, name in enumerate(names)}
    ctx = _Context(graph, float_proto)
    grouped: dict[str, list[Any]] = {}
    for node in graph.node:
        layer = layer_of(node.name)
        if node.name not in switch and layer in switch and node.op_type in ("Conv", "MatMul", "Gemm"):
            grouped.setdefault(layer, []).append(node)
    before: dict[str, list[Any]] = {}  # node name -> the nodes to put before it
    replace: dict[str, list[Any]] = {}  # a grouped layer's Sum -> the merged layer's nodes
    for node in graph.node:
        if node.name in switch:
            for i in range(len(node.input)):
                where = ctx.switched_input(node, i, switch[node.name])
                if where is not None:
                    before.setdefault(node.name, []).append(where)
                    node.input[i] = where.output[0]
    for layer, convs in grouped.items():
        total, merged = ctx.merged(layer, convs, switch[layer])
        replace[total] = merged
        for conv in convs:  # the group convs and their Gathers go (their Q/DQ nodes go as orphans below)
            replace[conv.name] = []
            replace[ctx.producer[ctx.producer[ctx.producer[conv.input[0]].input[0]].input[0]].name] = []
    nodes = list(graph.node)
    del graph.node[:]
    for node in nodes:
        graph.node.extend(before.get(node.name, []))
        graph.node.extend(replace.get(node.name, [node]))
    graph.initializer.extend(ctx.new_inits)
    drop_orphans(out)
    for name in names:
        graph.input.append(helper.make_tensor_value_info(switch[name], TensorProto.BOOL, []))
    return out, switch


class _Context:
    """The QDQ graph's producers and initializers, and the float graph's, for building switched inputs."""

    def __init__(self, graph: Any, float_proto: Any):
        from onnx import numpy_helper

        self.np = numpy_helper
        self.graph = graph
        self.producer = {o: n for n in graph.node for o in n.output}
        self.inits = {i.name: i for i in graph.initializer}
        self.float_nodes = {n.name: n for n in float_proto.graph.node}
        self.float_inits = {i.name: i for i in float_proto.graph.initializer}
        self.new_inits: list[Any] = []
        self.names: set[str] = set(self.inits)

    def _init(self, name: str, value: np.ndarray) -> str:
        if name not in self.names:
            self.new_inits.append(self.np.from_array(np.ascontiguousarray(value), name))
            self.names.add(name)
        return name

    def _ref(self, node: Any) -> Any:
        ref = self.float_nodes.get(node.name)
        if ref is None:
            raise ValueError(f"node {node.name!r} is not in the float graph")
        return ref

    def _float_init(self, node: Any, i: int) -> np.ndarray:
        ref_name = self._ref(node).input[i]
        if ref_name not in self.float_inits:
            raise ValueError(f"{node.name}: input {i} ({ref_name!r}) is not a float initializer")
        return self.np.to_array(self.float_inits[ref_name])

    def _dq(self, node: Any, i: int) -> Any | None:
        if i >= len(node.input):
            return None
        dq = self.producer.get(node.input[i])
        return dq if dq is not None and dq.op_type == "DequantizeLinear" else None

    def _q_of(self, node: Any, dq: Any, i: int) -> Any:
        q = self.producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            raise ValueError(f"{node.name}: input {i} is dequantized from {dq.input[0]!r}, not a QuantizeLinear")
        return q

    def _dequantized(self, dq: Any) -> np.ndarray:
        """A constant ``DequantizeLinear``'s float output, as onnxruntime computes it: (q - zero point) x scale."""
        q = self.np.to_array(self.inits[dq.input[0]]).astype(np.int64)
        scale = self.np.to_array(self.inits[dq.input[1]]).astype(np.float32)
        zp = self.np.to_array(self.inits[dq.input[2]]).astype(np.int64) if len(dq.input) > 2 else np.zeros(1, np.int64)
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        if scale.ndim == 1 and scale.size > 1:
            shape[axis] = scale.size
        return ((q - zp.reshape(shape if zp.size > 1 else [1] * q.ndim)).astype(np.float32)
                * scale.reshape(shape if scale.size > 1 else [1] * q.ndim)).astype(np.float32)  # fmt: skip

    def switched_input(self, node: Any, i: int, on: str) -> Any | None:
        """``Where(on, dequantized, float)`` for input ``i`` of ``node`` if a ``DequantizeLinear`` feeds it."""
        from onnx import helper

        dq = self._dq(node, i)
        if dq is None:
            return None
        if dq.input[0] in self.inits:  # a weight or bias: the float one of the same node
            flt = self._init(f"{self._ref(node).input[i]}_float", self._float_init(node, i))
        else:
            flt = self._q_of(node, dq, i).input[0]
        picked = f"{node.input[i]}__{on}__{node.name}"
        return helper.make_node("Where", [on, node.input[i], flt], [picked], name=f"{picked}/Where")

    def merged(self, layer: str, convs: list[Any], on: str) -> tuple[str, list[Any]]:
        """A conv split into activation groups as one conv with switched inputs: its groups' channels gathered in
        group order, fake-quantized per channel with each group's scale and zero point, the groups' dequantized
        weights side by side (both constant: computed here), the bias of whichever group carries it. Same
        products as the group convs, summed in another order; one conv instead of one per group, so a trial
        runs at the float graph's speed. Returns the name of the groups' ``Sum`` (replaced) and the new nodes."""
        from onnx import helper

        users = [n for n in self.graph.node if n.op_type == "Sum" and set(n.input) == {c.output[0] for c in convs}]
        if len(users) != 1:
            raise ValueError(f"{layer}: its {len(convs)} group convolutions do not feed one Sum")
        total = users[0]
        src, perm, scales, zps, w_on, w_off = None, [], [], [], [], []
        b_on = b_off = None
        for conv in convs:
            if conv.op_type != "Conv":
                raise ValueError(f"{conv.name}: a grouped layer's part is not a Conv")
            dq_x, dq_w = self._dq(conv, 0), self._dq(conv, 1)
            if dq_x is None or dq_w is None:
                raise ValueError(f"{conv.name}: a grouped conv whose input or weight is not dequantized")
            q = self._q_of(conv, dq_x, 0)
            gather = self.producer.get(q.input[0])
            if gather is None or gather.op_type != "Gather" or gather.input[1] not in self.inits:
                raise ValueError(f"{conv.name}: its input is not a Gather of channels")
            if src not in (None, gather.input[0]):
                raise ValueError(f"{layer}: its groups gather from different tensors")
            src = gather.input[0]
            idx = self.np.to_array(self.inits[gather.input[1]]).astype(np.int64)
            perm.append(idx)
            scales.append(np.full(idx.size, self.np.to_array(self.inits[q.input[1]]), np.float32))
            zp = self.np.to_array(self.inits[q.input[2]])
            zps.append(np.full(idx.size, zp, zp.dtype))
            w_on.append(self._dequantized(dq_w))
            w_off.append(self._float_init(conv, 1))
            dq_b = self._dq(conv, 2)
            if dq_b is not None:
                b_on, b_off = self._dequantized(dq_b), self._float_init(conv, 2)
        tag = f"{layer}__{on}"
        perm_name = self._init(f"{tag}__perm", np.concatenate(perm))
        s_name = self._init(f"{tag}__scale", np.concatenate(scales))
        z_name = self._init(f"{tag}__zero_point", np.concatenate(zps))
        w_names = [self._init(f"{tag}__w_int8", np.concatenate(w_on, axis=1)),
                   self._init(f"{tag}__w_float", np.concatenate(w_off, axis=1))]  # fmt: skip
        nodes = [
            helper.make_node("Gather", [src, perm_name], [f"{tag}__x"], name=f"{tag}/Gather", axis=1),
            helper.make_node("QuantizeLinear", [f"{tag}__x", s_name, z_name], [f"{tag}__xq"], name=f"{tag}/Q", axis=1),
            helper.make_node("DequantizeLinear", [f"{tag}__xq", s_name, z_name], [f"{tag}__xdq"], name=f"{tag}/DQ",
                             axis=1),  # fmt: skip
            helper.make_node("Where", [on, f"{tag}__xdq", f"{tag}__x"], [f"{tag}__xin"], name=f"{tag}/Where_x"),
            helper.make_node("Where", [on, *w_names], [f"{tag}__w"], name=f"{tag}/Where_w"),
        ]
        inputs = [f"{tag}__xin", f"{tag}__w"]
        if b_on is not None and b_off is not None:
            b_names = [self._init(f"{tag}__b_int8", b_on), self._init(f"{tag}__b_float", b_off)]
            nodes.append(helper.make_node("Where", [on, *b_names], [f"{tag}__b"], name=f"{tag}/Where_b"))
            inputs.append(f"{tag}__b")
        conv = helper.make_node("Conv", inputs, [total.output[0]], name=f"{layer}__merged")
        conv.attribute.extend(convs[0].attribute)
        return total.name, [*nodes, conv]


class FloatTrials:
    """One session on :func:`switched_graph` of ``qdq`` over ``candidates`` (module contract).

    ``evaluator(path, extra_inputs)`` opens the session (an :class:`~katadeploy.runtime.onnx_runtime.OnnxEvaluator`
    with the switches as extra inputs); ``score(evaluator) -> (loss, metrics)`` runs the validation split;
    ``rows`` are the QDQ graph's MAC rows (:func:`katadeploy.export.macs.onnx_macs`)."""

    name = "session"

    def __init__(
        self,
        qdq: Any,
        float_proto: Any,
        candidates: Sequence[str],
        path: Path,
        evaluator: Callable[[Path, dict[str, np.ndarray]], Any],
        score: Callable[[Any], tuple[float, Any]],
        rows: Sequence[Row],
        precision: str = "int8",
    ):
        import onnx

        proto, self.switch = switched_graph(qdq, float_proto, candidates)
        onnx.save(proto, str(path), save_as_external_data=False)
        self.evaluator = evaluator(path, {s: np.array(True) for s in self.switch.values()})
        self.score = score
        self.precision = precision
        self.rows = list(rows)
        self.total = sum(m for _, _, m, _ in self.rows) or 1.0

    def measure(self, floated: Collection[str]) -> dict[str, Any]:
        """The gate record of the graph with the layers ``floated`` float and the other candidates int8."""
        unknown = set(floated) - set(self.switch)
        if unknown:
            raise ValueError(f"not a candidate layer of this session: {sorted(unknown)[0]!r}")
        for layer, name in self.switch.items():
            self.evaluator.extra_feed[name] = np.array(layer not in floated)
        loss, metrics = self.score(self.evaluator)
        return gate_record(loss, metrics, self.precision)

    def fraction(self, floated: Collection[str]) -> float:
        """The int8 share of the MACs with the layers ``floated`` float (as ``float_layers`` would leave it)."""
        gone = set(floated)
        int8 = sum(m for n, _, m, q in self.rows if q and n not in gone and layer_of(n) not in gone)
        return float(int8 / self.total)


__all__ = ["DEFAULT_TRIALS", "SWITCH_PREFIX", "TRIALS", "FloatTrials", "switched_graph"]
