"""Distillation quantization-aware training (QAT) of the ``smooth-gptq`` INT8 weights, against the frozen FP32 net.

Contract
--------
:func:`train` ``(model, repair, qdq, positions, recipe, exact, log, progress)`` takes the
:class:`~katadeploy.export.int8_repair.Repair` that ``smooth-gptq`` planned (smoothing scales, activation ranges,
GPTQ weights) and the QDQ graph onnxruntime built from it, fine-tunes the INT8 weights of every repaired layer by
distillation on ``positions`` (calibration positions of every board size), and writes the result back into
``repair`` (``Layer.q`` and the smoothed float weight of :attr:`Repair.proto`) so that
:func:`~katadeploy.export.int8_repair.apply_weights` patches it into the QDQ graph. Returns a :class:`QatResult`
(losses, steps, seconds). :func:`cache_key`/:func:`load_cached`/:func:`save_cached` keep the trained weights per
net sha256 and recipe under ``~/.cache/katadeploy/qat`` (``.npz`` read with ``allow_pickle=False``), so
``katadeploy export`` reuses what ``katadeploy qat`` trained.

What is simulated, and why it is exact
--------------------------------------
- The student is the katadeploy PyTorch net (:class:`~katadeploy.export.graph.ExportNet`, same mask variant as the
  graph). Each repaired ONNX node maps to the ``nn.Conv2d``/``nn.Linear`` of its module scope
  (``/net/blocks.3/conv1/conv/Conv`` -> ``blocks.3.conv1.conv``); the mapping is checked by comparing weights.
- onnxruntime's pre-processing folds the following BatchNorm affine into each convolution, so the ONNX weight is
  ``c_o * W`` per output channel. Symmetric per-output-channel INT8 is invariant to that scaling: the student
  quantizes ``W`` with scale ``w_scale / |c_o|`` and the integers ``q * sign(c_o)`` are what the QDQ graph stores.
- Inputs are multiplied by the layer's ``1/s`` (the smoothing ``Mul``) and fake-quantized with the scale and zero
  point read from the QDQ graph's own ``QuantizeLinear`` (round half to even, saturating to the u8/s8 range, as
  ``QuantizeLinear`` does). A conv split into activation groups (onnx-int8's default, 16 per input) reads each
  group conv's ``QuantizeLinear`` and fake-quantizes per channel with its group's scale and zero point, and its
  weights carry one scale per output channel and group: the same arithmetic as the ``Gather``/``Conv``/``Sum``
  nodes, since quantization is elementwise and the group convs add up to the whole conv.
- Biases (``bias_lr`` > 0, option ``int8_qat_bias_lr``): the layers that have one in the folded graph (the convs a
  BatchNorm follows) also train an output offset, in units of that output's rounding noise (one weight step x one
  input step x sqrt(fan-in)); it is folded into the bias that ``apply_weights`` writes as INT32. The student also
  carries any bias the repair already changed (``int8_bias_correction``) as a fixed offset.
- Weights are trained in grid units ``U`` (``W = w_scale_t * clamp(round(U))``) with a straight-through estimator;
  training starts at the GPTQ integers, so step 0 is the ``smooth-gptq`` artifact (``start="pre"`` starts at GPTQ's
  pre-rounding values instead, which round to the same integers; on g170e-b15c192 the loss then rose from 1.8 to 164
  within 100 steps, as weights next to a boundary flip at the first step).
- Measured (2026-12-03, validation split, worst KataGo limit ratio): g170-b6c96 with 64 calibration positions
  3.52x (GPTQ) -> 3.40x (default recipe), 3.29x (600 steps of 32); g170e-b15c192 see the closing note. The
  training loss is spiky: each flip is a discrete jump the straight-through gradient does not see. On g170e-b15c192
  with 16 groups (2026-12-07, 300 steps of 16) every variant made the validation split worse or changed nothing
  (scripts/reports/int8/groups/README.md, session 31), so the exporter kept GPTQ's weights.
- Only the quantized layers' weights (and, with ``bias_lr``, biases) train; norms, heads and the float layers stay
  as they are (they are buffers or frozen), so nothing outside the patched INT8 layers changes in the exported graph.
- The teacher is the same net in FP32 (no fake-quant), evaluated once per position.
- Loss (per position, each term scaled by a KataGo FP16 limit so that 1 means "at the limit"): policy KL over the
  legal moves / 0.002 (p99 limit), value (win/loss/no-result) KL / 0.001, squared score-mean and lead error in
  points / 3.0^2 (max limit), squared score-stdev error / 1.8^2, mean squared ownership error / 0.08^2; positions
  are combined by a power mean (``power`` 4: the gate is on p99 and maxima).
- Batches hold one board size each, cropped to the board, so a 9x9 position costs 9x9 compute, not 19x19.

Why this is written here: QAT libraries (torchao, NNCF's torch QAT, Brevitas, ModelOpt) fake-quantize with their
own observers and export their own QDQ layouts; none starts from GPTQ-patched onnxruntime QDQ graphs with smoothing
``Mul`` nodes and writes the trained integers back into them. The student here is plain torch with
``torch.fake_quantize_per_tensor_affine`` for activations, so it stays small.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from katadeploy.errors import KatadeployError
from katadeploy.export.int8_repair import (
    Repair,
    bias_name,
    column_scales,
    from_rows,
    group_node,
    group_weight,
    rows,
)
from katadeploy.model.desc import ModelDesc
from katadeploy.progress import Progress

#: bump when the training or the simulation changes (part of the cache key)
RECIPE_VERSION = 2
DEFAULT_STEPS = 300
DEFAULT_BATCH = 16
#: calibration positions trained on (from the calibration split; the validation split decides)
DEFAULT_POSITIONS = 1024
#: Adam step size in INT8 grid units (a weight moves at most ~lr grid steps per step)
DEFAULT_LR = 0.02
#: power mean over a batch's per-position losses (1 = the mean; larger weights the worst positions more)
DEFAULT_POWER = 4.0
#: Adam step for the activation scales, in log space (0, the default, keeps the MSE ranges: on g170-b6c96 trained
#: ranges lowered the mean validation loss but raised its worst position, policy KL max 3.5x -> 5.2x the limit)
DEFAULT_RANGE_LR = 0.0
#: where the latent weights start: ``int`` at the GPTQ integers (bin centres: a weight must move half a step before
#: it flips) or ``pre`` at GPTQ's pre-rounding values (same integers, but weights near a boundary flip at once)
STARTS = ("int", "pre")
#: Adam step for the biases of the layers that have one, in units of each output's rounding noise (see
#: ``FakeQuantLayer.bias_offset``); 0 keeps the biases
DEFAULT_BIAS_LR = 0.0
DEFAULT_START = "int"
SEED = 0
#: what each loss term is scaled by (see the module contract): KataGo's p99 FP16 limit for the policy KL (the metric
#: INT8 misses first) and its max limits for the points and ownership (scaled by the p99 limits instead, one random
#: 13x13 position's 5.7-point lead error outweighed every policy error on g170-b6c96's validation split)
POLICY_KL = 0.002
VALUE_KL = 0.001
POINTS = 3.0
STDEV = 1.8
OWNERSHIP = 0.08


@dataclass(frozen=True)
class Recipe:
    steps: int = DEFAULT_STEPS
    batch: int = DEFAULT_BATCH
    lr: float = DEFAULT_LR
    seed: int = SEED
    power: float = DEFAULT_POWER
    range_lr: float = DEFAULT_RANGE_LR
    start: str = DEFAULT_START
    bias_lr: float = DEFAULT_BIAS_LR

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "batch": self.batch, "lr": self.lr, "seed": self.seed, "power": self.power,
                "range_lr": self.range_lr, "start": self.start, "bias_lr": self.bias_lr,
                "version": RECIPE_VERSION}  # fmt: skip

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Recipe:
        r = cls(
            steps=int(options.get("int8_qat_steps", DEFAULT_STEPS)),
            batch=int(options.get("int8_qat_batch", DEFAULT_BATCH)),
            lr=float(options.get("int8_qat_lr", DEFAULT_LR)),
            seed=int(options.get("int8_qat_seed", SEED)),
            power=float(options.get("int8_qat_power", DEFAULT_POWER)),
            range_lr=float(options.get("int8_qat_range_lr", DEFAULT_RANGE_LR)),
            start=str(options.get("int8_qat_start", DEFAULT_START)).lower(),
            bias_lr=float(options.get("int8_qat_bias_lr", DEFAULT_BIAS_LR)),
        )
        if r.start not in STARTS:
            raise KatadeployError(f"unknown int8_qat_start {r.start!r}; use {' or '.join(STARTS)}")
        if r.range_lr < 0 or r.bias_lr < 0:
            raise KatadeployError("int8_qat_range_lr and int8_qat_bias_lr must be >= 0")
        if r.steps < 1 or r.batch < 1 or not r.lr > 0 or not r.power >= 1:
            raise KatadeployError("int8_qat_steps, int8_qat_batch and int8_qat_lr must be positive, int8_qat_power >= 1")
        return r


@dataclass
class QatResult:
    recipe: Recipe
    layers: int
    positions: int
    loss_first: float
    loss_last: float
    seconds: float
    cached: str | None = None
    curve: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "recipe": "distillation QAT from the smooth-gptq weights (STE, frozen FP32 teacher)",
            **self.recipe.as_dict(),
            "trained_layers": self.layers,
            "positions": self.positions,
            "loss_first": round(self.loss_first, 5),
            "loss_last": round(self.loss_last, 5),
            "loss_curve": [round(x, 5) for x in self.curve],
            "seconds": round(self.seconds, 1),
            **({"cached": self.cached} if self.cached else {}),
        }


# ---------------------------------------------------------------------------------------------- mapping
def module_path(node: str) -> str:
    """``/net/blocks.3/conv1/conv/Conv`` -> ``net.blocks.3.conv1.conv`` (the node's module scope)."""
    parts = [p for p in node.split("/") if p]
    if len(parts) < 2:
        raise KatadeployError(f"QAT: node {node!r} carries no module scope")
    return ".".join(parts[:-1])


def _qdq_input_params(qdq: Any, node_name: str) -> tuple[float, int, str]:
    """Scale, zero point and type (``u8``/``s8``) of the QuantizeLinear that feeds ``node_name``'s input 0."""
    from onnx import numpy_helper

    inits = {i.name: i for i in qdq.graph.initializer}
    producer = {o: n for n in qdq.graph.node for o in n.output}
    node = next((n for n in qdq.graph.node if n.name == node_name), None)
    dq = producer.get(node.input[0]) if node is not None else None
    q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
    if q is None or q.op_type != "QuantizeLinear":
        raise KatadeployError(f"QAT: the input of {node_name} is not quantized in the QDQ graph")
    scale = float(numpy_helper.to_array(inits[q.input[1]]))
    zp_arr = numpy_helper.to_array(inits[q.input[2]])
    return scale, int(zp_arr), "u8" if zp_arr.dtype == np.uint8 else "s8"


def _input_quantizer(qdq: Any, la: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """The input quantizer of repaired layer ``la`` in the QDQ graph: one scale and zero point, or for a conv split
    into activation groups one per input channel (each channel gets its group's, read from the group conv)."""
    if la.groups is None:
        scale, zp, kind = _qdq_input_params(qdq, la.node)
        return np.array([scale]), np.array([zp]), kind
    n_in = sum(len(g) for g in la.groups)
    scales, zps, kinds = np.zeros(n_in), np.zeros(n_in, np.int64), set()
    for k, g in enumerate(la.groups):
        scale, zp, kind = _qdq_input_params(qdq, group_node(la.node, k))
        scales[g], zps[g] = scale, zp
        kinds.add(kind)
    if len(kinds) != 1:
        raise KatadeployError(f"QAT: the activation groups of {la.node} mix u8 and s8 quantizers")
    return scales, zps, kinds.pop()


def _fold_factor(w_onnx_rows: np.ndarray, w_torch_rows: np.ndarray, node: str) -> np.ndarray:
    """Per output channel ``c`` with ``w_onnx = c * w_torch`` (the folded BatchNorm scale); an error if the
    weights are not proportional, i.e. the node does not belong to that module."""
    a, b = w_onnx_rows.astype(np.float64), w_torch_rows.astype(np.float64)
    if a.shape != b.shape:
        raise KatadeployError(f"QAT: {node}: ONNX weight {a.shape} does not match the torch module {b.shape}")
    nb = (b * b).sum(axis=1)
    c = np.where(nb > 0, (a * b).sum(axis=1) / np.maximum(nb, 1e-300), 1.0)
    resid = np.abs(a - c[:, None] * b).max()
    if not resid <= 1e-4 * max(np.abs(a).max(), 1e-12):
        raise KatadeployError(f"QAT: {node}: ONNX weight is not a per-channel multiple of its torch module's")
    c = np.where(np.abs(c) < 1e-30, 1.0, c)
    return c


# ---------------------------------------------------------------------------------------------- student
def _fake_layer_class() -> type:
    import torch
    import torch.nn.functional as F
    from torch import nn

    class FakeQuantLayer(nn.Module):
        """``base`` (Conv2d or Linear) with its input smoothed + fake-quantized and its weight on the INT8 grid.

        ``w_scale`` has the weight's shape (one scale per output channel, or per output channel and input-channel
        group for grouped convs). ``a_scale``/``a_zp`` are one value (one range per input) or one per input channel
        (each channel carries its activation group's range: the QDQ graph quantizes each group with its own scale
        and zero point, and quantization is elementwise, so per-channel fake-quant is the same arithmetic).
        ``b0`` is a fixed output offset and ``train_bias`` adds a trainable one (both in the torch module's units,
        before its BatchNorm): the repair's bias minus the float graph's, unfolded."""

        def __init__(self, base: Any, u0: np.ndarray, w_scale: np.ndarray, inv_s: np.ndarray, a_scale: np.ndarray,
                     a_zp: np.ndarray, a_type: str, train_bias: bool = False,
                     b0: np.ndarray | None = None):  # fmt: skip
            super().__init__()
            self.is_conv = isinstance(base, nn.Conv2d)
            self.base = base
            for p in base.parameters():
                p.requires_grad_(False)
            self.u = nn.Parameter(torch.from_numpy(u0.astype(np.float32)).reshape(base.weight.shape))
            self.register_buffer("w_scale", torch.from_numpy(w_scale.astype(np.float32)).reshape(base.weight.shape))
            in_shape = (1, -1, 1, 1) if self.is_conv else (-1,)
            self.register_buffer("inv_s", torch.from_numpy(inv_s.astype(np.float32)).reshape(in_shape))
            a_scale, a_zp = np.atleast_1d(a_scale), np.atleast_1d(a_zp)
            self.per_channel = a_scale.size > 1
            self.a_scale, self.a_zp = float(a_scale[0]), int(a_zp[0])
            self.register_buffer("a_scales", torch.from_numpy(a_scale.astype(np.float32)))
            self.register_buffer("a_zps", torch.from_numpy(a_zp.astype(np.int32)))
            self.qmin, self.qmax = (0, 255) if a_type == "u8" else (-128, 127)
            # the activation scale in log space; trained (LSQ's gradient) when its requires_grad is switched on
            self.log_a_scale = nn.Parameter(torch.tensor([math.log(self.a_scale)], dtype=torch.float32),
                                            requires_grad=False)  # fmt: skip
            self.register_buffer("zp_t", torch.tensor([float(self.a_zp)]))
            # the trainable offset in units of the output's rounding noise (one weight step x one input step x
            # sqrt(fan-in)), so one learning rate fits every layer
            fan_in = int(np.prod(base.weight.shape[1:]))
            unit = w_scale.reshape(w_scale.shape[0], -1).mean(axis=1) * float(a_scale.mean()) * math.sqrt(fan_in)
            self.register_buffer("bias_unit", torch.from_numpy(unit.astype(np.float32)))
            self.db = nn.Parameter(torch.zeros(base.weight.shape[0]), requires_grad=train_bias)
            b0 = np.zeros(base.weight.shape[0]) if b0 is None else b0
            self.register_buffer("b0", torch.from_numpy(b0.astype(np.float32)))
            self.offset = train_bias or bool(np.any(b0 != 0))

        def bias_offset(self) -> Any:
            """The trained output offset, in the torch module's units (zero when the bias does not train)."""
            return self.db * self.bias_unit

        def _offset(self, y: Any, shape: tuple[int, ...]) -> Any:
            return y + (self.b0 + self.bias_offset()).view(shape) if self.offset else y

        def activation_scale(self) -> float:
            return float(torch.exp(self.log_a_scale.detach())[0])

        def weight(self) -> Any:
            u = self.u
            r = u + (torch.round(u) - u).detach()  # straight-through rounding
            return torch.clamp(r, -127.0, 127.0) * self.w_scale

        def forward(self, x: Any) -> Any:
            xs = x * self.inv_s
            if self.per_channel:
                xq = torch.fake_quantize_per_channel_affine(xs, self.a_scales, self.a_zps, 1 if self.is_conv else
                                                            xs.ndim - 1, self.qmin, self.qmax)  # fmt: skip
            elif self.log_a_scale.requires_grad:
                xq = torch._fake_quantize_learnable_per_tensor_affine(
                    xs, torch.exp(self.log_a_scale), self.zp_t, self.qmin, self.qmax, 1.0
                )
            else:
                xq = torch.fake_quantize_per_tensor_affine(xs, self.a_scale, self.a_zp, self.qmin, self.qmax)
            if self.is_conv:
                b = self.base
                y = F.conv2d(xq, self.weight(), None, b.stride, b.padding, b.dilation, b.groups)
                return self._offset(y, (1, -1, 1, 1))
            y = F.linear(xq, self.weight(), self.base.bias)
            return self._offset(y, (-1,))

    return FakeQuantLayer


@dataclass
class _Mapped:
    layer: Any  # int8_repair.Layer
    module: Any  # FakeQuantLayer
    c: np.ndarray  # fold factor per output channel
    w_scale_t: np.ndarray  # the student's weight scale (w_scale / |c|)


def _student(model: ModelDesc, repair: Repair, qdq: Any, pre_weights: dict[str, tuple[np.ndarray, np.ndarray | None]],
             exact: bool, start: str = "int", train_bias: bool = False) -> Any:  # fmt: skip
    import torch

    from katadeploy.export.graph import ExportNet

    net = ExportNet(model, exact=exact).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    fake = _fake_layer_class()
    mapped = []
    for la in repair.layers:
        path = module_path(la.node)
        try:
            base = net.get_submodule(path)
        except AttributeError:
            raise KatadeployError(f"QAT: no torch module {path} for node {la.node}") from None
        if not isinstance(base, torch.nn.Conv2d | torch.nn.Linear) or la.q is None or la.s is None:
            raise KatadeployError(
                f"QAT: node {la.node} is not a plain Conv2d/Linear module (QAT covers convolutional nets; the "
                "transformer's projections are not trainable modules yet)"
            )
        kind = la.kind
        w_t = base.weight.detach().numpy()
        pre_w, pre_b = pre_weights[la.node]
        c = _fold_factor(rows(pre_w, kind), w_t.reshape(w_t.shape[0], -1), la.node)
        assert la.w_scale is not None
        ws_t = column_scales(la, la.w_scale).astype(np.float64) / np.abs(c)[:, None]
        init = la.u if start == "pre" and la.u is not None else la.q.astype(np.float32)  # both round to la.q
        u0 = rows(init, kind) * np.sign(c)[:, None]
        a_scale, a_zp, a_type = _input_quantizer(qdq, la)
        # the repair's bias may differ from the float graph's (bias correction, trained biases): the difference,
        # unfolded to the torch module's units, is a fixed output offset of the student
        b0 = None if la.bias is None or pre_b is None else (la.bias - pre_b) / c
        module = fake(base, u0.reshape(w_t.shape), ws_t.reshape(w_t.shape), 1.0 / la.s, a_scale, a_zp, a_type,
                      train_bias and la.bias is not None, b0)  # fmt: skip
        parent_path, _, attr = path.rpartition(".")
        setattr(net.get_submodule(parent_path) if parent_path else net, attr, module)
        mapped.append(_Mapped(la, module, c, ws_t))
    return net, mapped


def _pre_weights(repair: Repair, pre_proto: Any) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Each repaired node's weight and bias (None without one) in the pre-processed float graph."""
    from onnx import numpy_helper

    by_node = {n.name: n for n in pre_proto.graph.node}
    inits = {i.name: i for i in pre_proto.graph.initializer}

    def bias(node: Any) -> np.ndarray | None:
        name = node.input[2] if len(node.input) > 2 else ""
        return numpy_helper.to_array(inits[name]).astype(np.float64) if name in inits else None

    out = {
        la.node: (numpy_helper.to_array(inits[by_node[la.node].input[1]]), bias(by_node[la.node]))
        for la in repair.layers
        if la.node in by_node
    }
    missing = [la.node for la in repair.layers if la.node not in out]
    if missing:
        raise KatadeployError(f"QAT: {len(missing)} repaired node(s) missing from the float graph: {missing[0]}")
    return out


def simulation_error(model: ModelDesc, repair: Repair, qdq: Any, pre_proto: Any, positions: Any,
                     exact: bool = False, count: int = 8) -> float:  # fmt: skip
    """Mean |student - onnxruntime(qdq)| over every raw output on the first ``count`` positions, divided by the
    mean |onnxruntime(qdq) - FP32| there: ~0 when the fake-quantized student computes what the QDQ graph does
    (what :func:`train` relies on), ~1 or more when it does not. (Maxima are not compared: a rounding tie decided
    differently by the last float bit flips one INT8 code, and such flips move single outputs chaotically.)"""
    import onnxruntime as ort
    import torch

    from katadeploy.export.graph import ExportNet

    student, _ = _student(model, repair, qdq, _pre_weights(repair, pre_proto), exact)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the graph's own arithmetic
    so.log_severity_level = 3
    sess = ort.InferenceSession(qdq.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feed = {"spatial": positions.spatial[:count], "global": positions.global_[:count]}
    if positions.meta is not None:
        feed["meta"] = positions.meta[:count]
    ref = sess.run(None, feed)
    args = [torch.from_numpy(v) for v in feed.values()]
    with torch.no_grad():
        st = student(*args)
        fp = ExportNet(model, exact=exact).eval()(*args)
    num = sum(float(np.abs(r - s.numpy()).mean()) for r, s in zip(ref, st))
    den = sum(float(np.abs(r - f.numpy()).mean()) for r, f in zip(ref, fp))
    return num / max(den, 1e-12)


# ---------------------------------------------------------------------------------------------- data + loss
def _crop_groups(spatial: np.ndarray) -> dict[tuple[int, int, int, int], np.ndarray]:
    """Position indices grouped by the board's bounding box in the tensor ``(r0, r1, c0, c1)``."""
    on = spatial[:, 0] > 0.5
    groups: dict[tuple[int, int, int, int], list[int]] = {}
    for i, m in enumerate(on):
        r_idx, c_idx = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        if not len(r_idx):
            continue
        groups.setdefault((int(r_idx[0]), int(r_idx[-1]) + 1, int(c_idx[0]), int(c_idx[-1]) + 1), []).append(i)
    return {k: np.asarray(v) for k, v in groups.items()}


def _crop(positions: Any, idx: np.ndarray, box: tuple[int, int, int, int]) -> tuple[Any, ...]:
    import torch

    r0, r1, c0, c1 = box
    h, w = positions.spatial.shape[2:]
    sp = torch.from_numpy(np.ascontiguousarray(positions.spatial[idx, :, r0:r1, c0:c1]))
    gl = torch.from_numpy(positions.global_[idx])
    legal = positions.legal[idx]
    board = legal[:, : h * w].reshape(len(idx), h, w)[:, r0:r1, c0:c1].reshape(len(idx), -1)
    legal_t = torch.from_numpy(np.concatenate([board, legal[:, h * w :]], axis=1))
    meta = None if positions.meta is None else torch.from_numpy(positions.meta[idx])
    return sp, gl, meta, legal_t


def distill_loss(student: tuple[Any, ...], teacher: tuple[Any, ...], legal: Any, mask: Any,
                 model: ModelDesc, power: float = 1.0) -> Any:  # fmt: skip
    """The limit-scaled loss (see the module contract) per position, aggregated over the batch by the power mean
    ``mean(l**power) ** (1/power)`` (``power`` > 1 weights the worst positions more: KataGo's gate is on p99 and
    maxima, not means)."""
    import torch
    import torch.nn.functional as F

    sp, sp_pass, sv, ss, so = student
    tp, tp_pass, tv, ts, to = teacher
    n = sp.shape[0]
    neg = torch.finfo(sp.dtype).min / 4

    def logp(pol: Any, pas: Any) -> Any:
        z = torch.cat([pol[:, 0].reshape(n, -1), pas[:, 0:1]], dim=1)
        return torch.log_softmax(torch.where(legal, z, torch.full_like(z, neg)), dim=1)

    lt, ls = logp(tp, tp_pass), logp(sp, sp_pass)
    pt = lt.exp()
    kl_pol = torch.where(legal, pt * (lt - ls), torch.zeros_like(pt)).sum(dim=1)
    vt, vs = torch.log_softmax(tv[:, :3], dim=1), torch.log_softmax(sv[:, :3], dim=1)
    kl_val = (vt.exp() * (vt - vs)).sum(dim=1)
    _, mean_mult, stdev_mult, lead_mult, *_ = model.multipliers
    lead_ch = 2 if model.version >= 8 else 0
    d_mean = (ss[:, 0] - ts[:, 0]) * mean_mult
    d_lead = (ss[:, lead_ch] - ts[:, lead_ch]) * lead_mult
    d_std = (F.softplus(ss[:, 1]) - F.softplus(ts[:, 1])) * stdev_mult
    m = mask
    d_own = ((torch.tanh(so) - torch.tanh(to)) ** 2 * m).sum(dim=(1, 2, 3)) / m.sum(dim=(1, 2, 3)).clamp_min(1)
    per = (
        kl_pol.clamp_min(0) / POLICY_KL + kl_val.clamp_min(0) / VALUE_KL + (d_mean**2 + d_lead**2) / POINTS**2
        + d_std**2 / STDEV**2 + d_own / OWNERSHIP**2
    )  # fmt: skip
    if power == 1.0:
        return per.mean()
    return (per + 1e-12).pow(power).mean().pow(1.0 / power)


# ---------------------------------------------------------------------------------------------- train
def train(
    model: ModelDesc,
    repair: Repair,
    qdq: Any,
    pre_proto: Any,
    positions: Any,
    recipe: Recipe,
    exact: bool = False,
    log: Callable[[str], None] = lambda _m: None,
    progress: bool = False,
) -> QatResult:
    """Distillation QAT of ``repair``'s INT8 weights on ``positions``; writes the trained integers (and their float
    values) back into ``repair`` (see the module contract)."""
    import torch

    from katadeploy.export.graph import ExportNet

    t0 = time.perf_counter()
    if recipe.range_lr > 0 and repair.grouped:
        raise KatadeployError("int8_qat_range_lr needs int8_act_groups=1 (trained ranges of activation groups are "
                              "not built)")  # fmt: skip
    student, mapped = _student(model, repair, qdq, _pre_weights(repair, pre_proto), exact, recipe.start,
                               recipe.bias_lr > 0)  # fmt: skip
    teacher = ExportNet(model, exact=exact).eval()
    groups = _crop_groups(positions.spatial)
    if not groups:
        raise KatadeployError("QAT: no calibration positions")
    log(f"int8 qat: {len(mapped)} layers, {len(positions)} positions in {len(groups)} board shapes, "
        f"{recipe.steps} steps of {recipe.batch}")  # fmt: skip
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    # teacher outputs once per position, per board shape
    targets: dict[tuple[int, int, int, int], tuple[Any, ...]] = {}
    with torch.no_grad():
        for box, idx in groups.items():
            outs = []
            for i in range(0, len(idx), 32):
                sp, gl, meta, _ = _crop(positions, idx[i : i + 32], box)
                outs.append(teacher(sp, gl, meta) if meta is not None else teacher(sp, gl))
            targets[box] = tuple(torch.cat([o[k] for o in outs]) for k in range(len(outs[0])))
    boxes = list(groups)
    weights = np.array([len(groups[b]) for b in boxes], np.float64)
    groups_ = [{"params": [m.module.u for m in mapped], "lr": recipe.lr}]
    if recipe.range_lr > 0:
        for m in mapped:
            m.module.log_a_scale.requires_grad_(True)
        groups_.append({"params": [m.module.log_a_scale for m in mapped], "lr": recipe.range_lr})
    biases = [m.module.db for m in mapped if m.module.db.requires_grad]
    if biases:
        groups_.append({"params": biases, "lr": recipe.bias_lr})
    opt = torch.optim.Adam(groups_)
    warm = max(1, recipe.steps // 10)  # linear warm-up, then cosine decay: Adam's first steps move every weight

    def lr_at(s: int) -> float:
        return (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, recipe.steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    curve: list[float] = []
    window: list[float] = []
    first = math.nan
    with Progress(recipe.steps, "int8 qat", quiet=not progress) as bar:
        for step in range(recipe.steps):
            b = boxes[int(rng.choice(len(boxes), p=weights / weights.sum()))]
            idx_all = groups[b]
            pick = rng.choice(len(idx_all), min(recipe.batch, len(idx_all)), replace=False)
            sp, gl, meta, legal = _crop(positions, idx_all[pick], b)
            out = student(sp, gl, meta) if meta is not None else student(sp, gl)
            tgt = tuple(t[torch.from_numpy(pick)] for t in targets[b])
            loss = distill_loss(out, tgt, legal, sp[:, 0:1], model, recipe.power)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            value = float(loss.detach())
            if step == 0:
                first = value
            window.append(value)
            if len(window) == max(1, recipe.steps // 20) or step == recipe.steps - 1:
                curve.append(float(np.mean(window)))
                window = []
            bar.advance()
    # write back: integers in the folded ONNX layout, and their float values into the smoothed float graph
    new_inits = {i.name: i for i in repair.proto.graph.initializer}
    for m in mapped:
        la = m.layer
        latent = m.module.u.detach().numpy().reshape(m.module.u.shape[0], -1) * np.sign(m.c)[:, None]
        q_rows = np.clip(np.rint(latent), -127, 127).astype(np.int8)
        shape = la.q.shape
        la.q = from_rows(q_rows, shape, la.kind)
        la.u = from_rows(latent.clip(-127.49, 127.49).astype(np.float32), shape, la.kind)  # rounds to la.q
        _put_float_weights(new_inits, la)
        if m.module.db.requires_grad and la.bias is not None:  # torch units before the BatchNorm -> folded ONNX
            la.bias = la.bias + m.c * m.module.bias_offset().detach().numpy().astype(np.float64)
            _put_float_bias(new_inits, la)
        if recipe.range_lr > 0:
            la.a_scale = m.module.activation_scale()
    return QatResult(recipe, len(mapped), len(positions), first, curve[-1] if curve else math.nan,
                     time.perf_counter() - t0, curve=curve)  # fmt: skip


def _put_float_weights(inits: dict[str, Any], la: Any) -> None:
    """Write ``la``'s INT8 weights, dequantized, into the smoothed float graph's initializers (the per-group ones of
    a grouped conv), so the float graph and the fallback's float layers see the trained weights."""
    from onnx import numpy_helper

    assert la.q is not None and la.w_scale is not None
    deq = from_rows(rows(la.q.astype(np.float32), la.kind) * column_scales(la, la.w_scale), la.q.shape, la.kind)
    deq = deq.astype(np.float32)
    parts = [(la.weight, deq)] if la.groups is None else [
        (group_weight(la, k), np.ascontiguousarray(deq[:, g])) for k, g in enumerate(la.groups)
    ]  # fmt: skip
    for name, value in parts:
        if name in inits:
            inits[name].CopyFrom(numpy_helper.from_array(value, name))


def _put_float_bias(inits: dict[str, Any], la: Any) -> None:
    """Write ``la``'s (trained) float bias into the smoothed float graph (``apply_weights`` writes the INT32 one)."""
    from onnx import numpy_helper

    name = bias_name(la.node)
    if name in inits and la.bias is not None:
        inits[name].CopyFrom(numpy_helper.from_array(la.bias.astype(np.float32), name))


# ---------------------------------------------------------------------------------------------- cache
def cache_key(model_sha256: str, recipe: Recipe, repair: Repair, extra: dict[str, Any]) -> str:
    """sha256 over the net, the recipe, the training/calibration inputs (``extra``) and the GPTQ starting point."""
    h = hashlib.sha256()
    h.update(json.dumps({"net": model_sha256, "recipe": recipe.as_dict(), **extra}, sort_keys=True).encode())
    for la in repair.layers:
        h.update(la.node.encode())
        for a in (la.q, la.w_scale, la.s, la.bias):
            if a is not None:
                h.update(np.ascontiguousarray(a).tobytes())
        h.update(repr(la.range).encode())
        if la.groups is not None:
            h.update(repr((la.group_ranges, [g.tolist() for g in la.groups])).encode())
    return h.hexdigest()


def cache_path(model_name: str, key: str) -> Path:
    from katadeploy.cache import cache_dir

    return cache_dir("qat") / f"{model_name}-{key[:20]}.npz"


def save_cached(path: Path, repair: Repair, result: QatResult) -> None:
    from katadeploy.files import staged

    arrays = {f"q{i}": la.q for i, la in enumerate(repair.layers)}
    arrays.update({f"a{i}": np.array(la.a_scale, np.float64) for i, la in enumerate(repair.layers) if la.a_scale})
    arrays.update({f"b{i}": la.bias.astype(np.float64) for i, la in enumerate(repair.layers) if la.bias is not None})
    arrays["summary"] = np.frombuffer(json.dumps(result.summary()).encode(), dtype=np.uint8)
    arrays["nodes"] = np.frombuffer(json.dumps([la.node for la in repair.layers]).encode(), dtype=np.uint8)
    with staged(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_cached(path: Path, repair: Repair) -> dict[str, Any] | None:
    """Apply cached trained integers to ``repair`` (and its float graph); returns the cached summary, or None
    when there is no usable cache entry (missing, unreadable, or for other nodes)."""

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            nodes = json.loads(bytes(z["nodes"]).decode())
            if nodes != [la.node for la in repair.layers]:
                return None
            qs = [z[f"q{i}"] for i in range(len(nodes))]
            scales = [float(z[f"a{i}"]) if f"a{i}" in z.files else None for i in range(len(nodes))]
            biases = [z[f"b{i}"] if f"b{i}" in z.files else None for i in range(len(nodes))]
            summary = json.loads(bytes(z["summary"]).decode())
    except (OSError, ValueError, KeyError):
        return None
    if any(q.shape != la.q.shape or q.dtype != np.int8 for q, la in zip(qs, repair.layers)):
        return None
    if any((b is None) != (la.bias is None) or (b is not None and b.shape != la.bias.shape)
           for b, la in zip(biases, repair.layers)):  # fmt: skip
        return None
    inits = {i.name: i for i in repair.proto.graph.initializer}
    for q, a, b, la in zip(qs, scales, biases, repair.layers):
        la.q, la.a_scale, la.u = q, a, None
        if b is not None:
            la.bias = b.astype(np.float64)
            _put_float_bias(inits, la)
        _put_float_weights(inits, la)
    return summary


__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_LR",
    "DEFAULT_POSITIONS",
    "DEFAULT_STEPS",
    "QatResult",
    "Recipe",
    "cache_key",
    "cache_path",
    "distill_loss",
    "load_cached",
    "module_path",
    "save_cached",
    "train",
]
