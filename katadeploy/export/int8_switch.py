"""The INT8 fallback's trials in one onnxruntime session: any set of a QDQ graph's layers floated by a feed.

Contract
--------
:func:`switched_graph` returns a copy of a QDQ graph in which every quantized input of the layers ``names``
(Conv/MatMul/Gemm nodes, and the per-group convolutions of a conv split into activation groups, as
:func:`katadeploy.export.int8_fallback.float_layers` takes them) reads ``Where(on, dequantized, float)``. ``on`` is
one bool scalar graph input per layer, appended after the net's own inputs (:data:`SWITCH_PREFIX` + its index);
the float tensor is the one ``float_layers`` feeds that input: the activation before its ``QuantizeLinear``, the
float initializer of the same node in the float graph. Run with a layer's ``on`` false, the graph computes what
``float_layers(qdq, float_proto, [layer])`` computes. With ``on`` true it computes the int8 layer in float: the
dequantized codes times the dequantized weights summed in float32. That is what onnxruntime's CPU provider itself
does with katadeploy's input-only QDQ convolutions (it fuses them into no integer kernel; README): on g170-b6c96's
16-group graph the two agree exactly. Where a runtime sums the same products in int32 they agree up to float32
rounding, far below the int8 error itself (``tests/export/test_int8_switch.py`` measures both). onnxruntime cannot
fuse a ``DequantizeLinear`` that feeds a ``Where`` into an integer kernel, so in this graph every layer runs in
float.

:class:`FloatTrials` holds that session: ``measure(floated)`` runs the graph with the layers ``floated`` float and
the rest int8 and returns :func:`katadeploy.export.int8_fallback.gate_record`'s record, through the caller's
``score(evaluator) -> (loss, metrics)``; ``fraction(floated)`` is that graph's int8 share of the MACs, from the
MAC rows of the QDQ graph, without building it.

Why: each trial of the fallback's ranking otherwise writes a graph, opens a session on it (onnxruntime's QDQ
fusion included) and runs it: ~40 s on kata1-b18c384nbt on 2 cores, 113 trials for its energy ranking. Here a
trial is one run of the split. The fallback's own steps and its result are still real QDQ graphs run by
onnxruntime's integer kernels (``int8_trials=session`` changes the ranking's cost, not what is measured).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.export.int8_fallback import gate_record
from katadeploy.export.int8_repair import layer_of
from katadeploy.export.macs import Row

SWITCH_PREFIX = "int8_on."
TRIALS = ("graph", "session")
DEFAULT_TRIALS = "graph"


def switched_graph(qdq: Any, float_proto: Any, names: Sequence[str]) -> tuple[Any, dict[str, str]]:
    """The switched copy of ``qdq`` (module contract) and each layer's switch input name, in ``names`` order."""
    from onnx import TensorProto, helper, numpy_helper

    out = copy.deepcopy(qdq)
    graph = out.graph
    producer = {o: n for n in graph.node for o in n.output}
    inits = {i.name for i in graph.initializer}
    float_nodes = {n.name: n for n in float_proto.graph.node}
    float_inits = {i.name: i for i in float_proto.graph.initializer}
    switch = {name: f"{SWITCH_PREFIX}{k}" for k, name in enumerate(names)}
    new_nodes: dict[int, list[Any]] = {}  # node index -> the Where nodes to put before it
    for idx, node in enumerate(graph.node):
        layer = node.name if node.name in switch else layer_of(node.name)
        if layer not in switch:
            continue
        ref = float_nodes.get(node.name)
        if ref is None:
            raise ValueError(f"node {node.name!r} is not in the float graph")
        for i, name in enumerate(node.input):
            dq = producer.get(name)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            src = dq.input[0]
            if src in inits:
                ref_name = ref.input[i]
                if ref_name not in float_inits:
                    raise ValueError(f"{node.name}: input {i} ({ref_name!r}) is not a float initializer")
                flt = f"{ref_name}_float"
                if flt not in inits:
                    graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(float_inits[ref_name]), flt))
                    inits.add(flt)
            else:
                q = producer.get(src)
                if q is None or q.op_type != "QuantizeLinear":
                    raise ValueError(f"{node.name}: input {i} is dequantized from {src!r}, not a QuantizeLinear")
                flt = q.input[0]
            picked = f"{name}__{switch[layer]}__{node.name}"
            new_nodes.setdefault(idx, []).append(
                helper.make_node("Where", [switch[layer], name, flt], [picked], name=f"{picked}/Where")
            )
            node.input[i] = picked
    nodes = list(graph.node)
    del graph.node[:]
    for idx, node in enumerate(nodes):
        graph.node.extend(new_nodes.get(idx, []))
        graph.node.append(node)
    for name in names:
        graph.input.append(helper.make_tensor_value_info(switch[name], TensorProto.BOOL, []))
    return out, switch


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
