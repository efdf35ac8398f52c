"""Per-layer accuracy-controlled INT8 fallback for QDQ ONNX graphs: single layers back to float, ranked by the gate.

Contract
--------
:func:`float_layers` returns a copy of a QDQ graph in which the named Conv/MatMul/Gemm nodes read float inputs: each
input that came from a ``DequantizeLinear`` is rewired to the float tensor it stood for - an activation to the
input of its ``QuantizeLinear``, a weight or bias to the float initializer of the same-named node in
``float_proto`` (the graph the QDQ one was quantized from, so smoothing factors folded into weights match). The
orphaned Q/DQ nodes are removed. Nothing else changes. A name also floats the per-group convolutions of a conv
split into activation groups (``NODE__groupK``, :func:`katadeploy.export.int8_repair.layer_of`): layers, not
groups, are the units of the search.

:func:`accuracy_fallback` is the search: it scores the graph (``score(proto) -> (loss, metrics)``, lower is
better, KataGo's FP16 gate as in :func:`katadeploy.validate.metrics.selection_loss`); if it misses the gate it
scores every candidate layer returned to float alone, ranks them by that loss (ties: the worst limit ratio),
then returns the best-ranked layers to float one at a time until the graph passes, the int8 share of the
multiply-accumulates (``int8_fraction(proto)``) would drop below ``min_fraction`` (or, for a graph already below it
before any fallback - transformers, whose attention matmuls stay float - below ``min_fraction`` x its share), or
``max_layers`` are float.
It keeps the state with the lowest loss (the first that passes, when one does) and reports every step.

``rank="energy"`` ranks by :func:`katadeploy.validate.metrics.error_energy` instead: the mean squared error in units
of KataGo's p99 limits, which adds over the rounding noise of independent layers. Each candidate is measured
*alone in int8* (every other candidate float): its own energy is its share of the error, and its sampling noise is
relative to that share, not to the whole graph's. (Measured the other way, each layer float alone from the all-int8
graph, the differences on g170e-b15c192's 128-position split ran from +0.06 to -0.12 around an energy of 0.29:
below the noise of the few positions that carry the mean, 2026-12-07.) Layers are taken by energy per MAC (the
knapsack's greedy order); a layer without energy of its own is never taken, one that would cross the MAC floor is
skipped for smaller ones. The state kept is the first that passes with the margin, else the last, the most float
within the floor (the additive model's lowest energy: measured step energies move by more than a layer's share).
The summary records the all-float graph's energy, the sum of the layers' energies against the all-int8 one
(``additivity``), and every step's measured energy. Why: the gate's own p99/max on a 128-position split is one or
two positions; ranked by it, the greedy list on g170e-b15c192 was stale after one step (2026-12-07).

``trials`` runs the ranking's trials: by default each one a graph of its own (:class:`GraphTrials`);
:class:`katadeploy.export.int8_switch.FloatTrials` runs them all in one session. The steps after the ranking, and
the state kept, are always graphs of their own.

``margin`` (< 1) asks for headroom: the search goes on until the worst limit ratio is at most ``margin``, not just
1. The layers are chosen on the same positions that judge them, so a graph that just passes there tends to miss on
positions it has not seen (g170e-b15c192 9x9: 0.96x on its validation split, 1.52x on fresh positions, the miss one
outlier); a margin trades more float layers (within the floor) for that selection bias.

Why hand-written: NNCF's ``quantize_with_accuracy_control`` re-quantizes with NNCF's own post-training recipe and
ranks groups of its quantizers; katadeploy's INT8 graphs come from onnxruntime's quantizer with GPTQ-repaired
weights (:mod:`katadeploy.export.int8_repair`), which NNCF cannot take as its starting point, and the ranking here
is KataGo's own gate metric, not a scalar accuracy.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from katadeploy.export.int8_repair import layer_of
from katadeploy.progress import Progress
from katadeploy.validate.metrics import error_energy

DEFAULT_MIN_FRACTION = 0.8
DEFAULT_MAX_LAYERS = 12
DEFAULT_MARGIN = 1.0
RANKS = ("gate", "energy")
DEFAULT_RANK = "gate"


def float_layers(qdq: Any, float_proto: Any, names: Sequence[str]) -> Any:
    """A copy of ``qdq`` with the nodes ``names`` fed by float tensors (see the module contract)."""
    from onnx import numpy_helper

    out = copy.deepcopy(qdq)
    graph = out.graph
    producer = {o: n for n in graph.node for o in n.output}
    inits = {i.name for i in graph.initializer}
    float_nodes = {n.name: n for n in float_proto.graph.node}
    float_inits = {i.name: i for i in float_proto.graph.initializer}
    wanted = set(names)
    for node in graph.node:
        if node.name not in wanted and layer_of(node.name) not in wanted:  # a grouped conv floats all its groups
            continue
        ref = float_nodes.get(node.name)
        if ref is None:
            raise ValueError(f"node {node.name!r} is not in the float graph")
        for i, name in enumerate(node.input):
            dq = producer.get(name)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            src = dq.input[0]
            if src in inits:  # a quantized weight or bias: the float one of the same node
                ref_name = ref.input[i]
                if ref_name not in float_inits:
                    raise ValueError(f"{node.name}: input {i} ({ref_name!r}) is not a float initializer")
                new = f"{ref_name}_float"
                if new not in inits:
                    t = numpy_helper.from_array(numpy_helper.to_array(float_inits[ref_name]), new)
                    graph.initializer.append(t)
                    inits.add(new)
                node.input[i] = new
            else:
                q = producer.get(src)
                if q is None or q.op_type != "QuantizeLinear":
                    raise ValueError(f"{node.name}: input {i} is dequantized from {src!r}, not a QuantizeLinear")
                node.input[i] = q.input[0]
    drop_orphans(out)
    return out


def drop_orphans(proto: Any) -> None:
    """Remove Q/DQ nodes whose outputs nobody reads, and initializers nobody reads, until none are left."""
    graph = proto.graph
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        dead = [
            n for n in graph.node
            if n.op_type in ("QuantizeLinear", "DequantizeLinear") and not any(o in used for o in n.output)
        ]  # fmt: skip
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    used = {i for n in graph.node for i in n.input} | outputs
    for t in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(t)


def gate_record(loss: float, metrics: Any, precision: str = "int8") -> dict[str, Any]:
    """A score as a record: the loss, the worst limit ratio and which limit it is, whether the gate passed, and the
    error energy."""
    w = metrics.worst(precision)
    return {
        "loss": float(loss), "ratio": float(w.ratio), "worst": f"{w.metric} {w.stat}",
        "passed": bool(metrics.passed(precision)), "energy": error_energy(metrics, precision),
    }  # fmt: skip


def gate_measure(score: Callable[[Any], tuple[float, Any]], precision: str = "int8") -> Callable[[Any], dict[str, Any]]:
    """``score(proto)`` as :func:`gate_record`'s record."""

    def measure(proto: Any) -> dict[str, Any]:
        return gate_record(*score(proto), precision)

    return measure


class Trials(Protocol):
    """How the ranking measures a graph with some layers float: ``measure(floated)`` -> the :func:`gate_record`
    record, ``fraction(floated)`` -> its int8 share of the MACs."""

    def measure(self, floated: Collection[str]) -> dict[str, Any]: ...

    def fraction(self, floated: Collection[str]) -> float: ...


@dataclass
class GraphTrials:
    """Each trial a graph of its own: :func:`float_layers` of ``qdq``, measured and counted by the callers'
    ``measure(proto)`` and ``int8_fraction(proto)`` (the default; :mod:`katadeploy.export.int8_switch` runs the
    trials in one session instead)."""

    qdq: Any
    float_proto: Any
    measure_proto: Callable[[Any], dict[str, Any]]
    fraction_proto: Callable[[Any], float]

    _last: tuple[frozenset[str], Any] | None = None

    def _graph(self, floated: Collection[str]) -> Any:
        key = frozenset(floated)
        if self._last is None or self._last[0] != key:  # measure and fraction of one trial build it once
            self._last = (key, float_layers(self.qdq, self.float_proto, list(floated)))
        return self._last[1]

    def measure(self, floated: Collection[str]) -> dict[str, Any]:
        return self.measure_proto(self._graph(floated))

    def fraction(self, floated: Collection[str]) -> float:
        return self.fraction_proto(self._graph(floated))


def rank_layers(
    qdq: Any,
    float_proto: Any,
    candidates: Sequence[str],
    measure: Callable[[Any], dict[str, Any]],
    label: str = "int8: ranking layers",
    progress: bool = False,
    trials: Trials | None = None,
) -> list[dict[str, Any]]:
    """Every candidate layer of ``qdq`` returned to float alone and measured (``measure(proto)`` -> a dict with
    ``loss`` and ``ratio``, or ``trials.measure``), most sensitive first: the layers whose float copy leaves the
    lowest loss."""
    trials = trials or GraphTrials(qdq, float_proto, measure, lambda _p: float("nan"))
    ranking = []
    with Progress(len(candidates), label, quiet=not progress) as bar:
        for name in candidates:
            ranking.append({"layer": name, **trials.measure([name])})
            bar.advance()
    ranking.sort(key=lambda r: (r["loss"], r["ratio"]))
    return ranking


def rank_by_energy(
    qdq: Any,
    float_proto: Any,
    candidates: Sequence[str],
    measure: Callable[[Any], dict[str, Any]],
    int8_fraction: Callable[[Any], float],
    progress: bool = False,
    trials: Trials | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The all-float graph's record, and every candidate measured alone in int8 (the others float): its ``gain``
    (its energy above the all-float graph's) and ``gain_per_mac`` (per share of the MACs it holds,
    ``int8_mac_fraction`` of that trial), best ``gain_per_mac`` first. ``trials`` (default: a graph per trial)
    runs the measurements."""
    trials = trials or GraphTrials(qdq, float_proto, measure, int8_fraction)
    floor_rec = trials.measure(candidates)
    ranking = []
    with Progress(len(candidates), "int8 fallback: each layer alone in int8", quiet=not progress) as bar:
        for name in candidates:
            rest = [c for c in candidates if c != name]
            rec = {"layer": name, **trials.measure(rest), "int8_mac_fraction": trials.fraction(rest)}
            rec["gain"] = rec["energy"] - floor_rec["energy"]
            rec["gain_per_mac"] = rec["gain"] / max(rec["int8_mac_fraction"], 1e-12)
            ranking.append(rec)
            bar.advance()
    ranking.sort(key=lambda r: -r["gain_per_mac"])
    return floor_rec, ranking


@dataclass
class FallbackResult:
    proto: Any
    floated: list[str]
    passed: bool
    loss: float
    ratio: float
    int8_fraction: float
    base: dict[str, Any]
    margin: float = DEFAULT_MARGIN
    rank: str = DEFAULT_RANK
    ranking: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    energy: dict[str, Any] = field(default_factory=dict)
    ranking_s: float = 0.0
    trials: str = "graph"

    def summary(self) -> dict[str, Any]:
        return {
            "floated": self.floated, "passed": self.passed, "loss": self.loss, "worst_ratio": self.ratio,
            "int8_mac_fraction": self.int8_fraction, "before": self.base, "ranking": self.ranking,
            "steps": self.steps, "margin": self.margin, "rank": self.rank,
            "ranking_seconds": round(self.ranking_s, 1), "trials": self.trials,
            **({"energy": self.energy} if self.energy else {}),
        }  # fmt: skip


def accuracy_fallback(
    qdq: Any,
    float_proto: Any,
    candidates: Sequence[str],
    score: Callable[[Any], tuple[float, Any]],
    int8_fraction: Callable[[Any], float],
    *,
    precision: str = "int8",
    min_fraction: float = DEFAULT_MIN_FRACTION,
    max_layers: int = DEFAULT_MAX_LAYERS,
    margin: float = DEFAULT_MARGIN,
    rank: str = DEFAULT_RANK,
    log: Callable[[str], None] = lambda _s: None,
    progress: bool = False,
    trials: Trials | None = None,
) -> FallbackResult:
    """Return layers of ``qdq`` to float, best-ranked first, until KataGo's gate passes (module contract)."""
    if rank not in RANKS:
        raise ValueError(f"int8_fallback_rank must be one of {', '.join(RANKS)}, not {rank!r}")
    measure = gate_measure(score, precision)

    def done(m: dict[str, Any]) -> bool:
        return m["passed"] and m["ratio"] <= margin

    base = measure(qdq)
    base_fraction = int8_fraction(qdq)
    best = FallbackResult(qdq, [], base["passed"], base["loss"], base["ratio"], base_fraction,
                          {**base, "int8_mac_fraction": base_fraction}, margin)  # fmt: skip
    if done(base) or max_layers < 1 or not candidates:
        return best
    # nets whose attention keeps the int8 share below the floor from the start (transformers): a relative floor
    floor = min_fraction if base_fraction >= min_fraction else min_fraction * base_fraction
    best.rank = rank
    best.trials = "graph" if trials is None else getattr(trials, "name", type(trials).__name__)
    energy = rank == "energy"
    t0 = time.perf_counter()
    if energy:
        floor_rec, ranking = rank_by_energy(qdq, float_proto, candidates, measure, int8_fraction, progress, trials)
        total = sum(r["gain"] for r in ranking)
        best.energy = {
            "all_int8": base["energy"], "all_float": floor_rec["energy"], "sum_alone": total,
            "additivity": total / max(base["energy"] - floor_rec["energy"], 1e-12),
        }  # fmt: skip
        log(
            "int8 fallback: largest energy per MAC "
            + ", ".join(f"{r['layer']} ({r['gain']:.3f})" for r in ranking[:5])
            + f"; all int8 {base['energy']:.3f}, all float {floor_rec['energy']:.3f}, layers alone sum to {total:.3f}"
        )
    else:
        ranking = rank_layers(qdq, float_proto, candidates, measure, "int8 fallback: ranking layers", progress, trials)
        log(
            "int8 fallback: most sensitive layers "
            + ", ".join(f"{r['layer']} ({r['ratio']:.2f}x)" for r in ranking[:5])
            + f"; all int8: {base['ratio']:.2f}x"
        )
    best.ranking, best.ranking_s = ranking, time.perf_counter() - t0
    log(f"int8 fallback: ranked {len(ranking)} layers in {best.ranking_s:.0f} s ({best.trials} trials)")
    floated: list[str] = []
    for r in ranking:
        if len(floated) >= max_layers:
            break
        if energy and r["gain"] <= 0:
            log("int8 fallback: no other layer carries error energy of its own; stop")
            break
        trial = float_layers(qdq, float_proto, [*floated, r["layer"]])
        fraction = int8_fraction(trial)
        if fraction < floor:  # energy: smaller layers further down the list may still fit
            log(f"int8 fallback: {r['layer']} would leave {fraction:.1%} of MACs in int8 (< {floor:.0%}); "
                + ("skip" if energy else "stop"))  # fmt: skip
            if energy:
                continue
            break
        floated.append(r["layer"])
        m = measure(trial)
        best.steps.append({"floated": list(floated), "int8_mac_fraction": fraction, **m})
        log(
            f"int8 fallback: +{r['layer']} float: worst {m['worst']} {m['ratio']:.2f}x"
            + (f", energy {m['energy']:.3f}" if energy else "") + f", int8 MACs {fraction:.1%}"
        )
        # energy keeps the last state (the additive model's lowest); gate the lowest loss it measured
        if energy or (m["loss"], m["ratio"]) < (best.loss, best.ratio) or (m["passed"] and not best.passed):
            best.proto, best.floated, best.passed = trial, list(floated), m["passed"]
            best.loss, best.ratio, best.int8_fraction = m["loss"], m["ratio"], fraction
        if done(m):
            break
    return best
