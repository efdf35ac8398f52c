"""Range and weight-rounding repair for INT8 QDQ graphs: per-channel smoothing, MSE ranges and GPTQ rounding.

Contract
--------
:func:`plan_repair` ``(proto, nodes, reader, activations, alpha, progress)`` takes onnxruntime's pre-processed
FP32 graph, the Conv/MatMul nodes to quantize and a calibration reader, and returns a :class:`Repair`: a new FP32
graph plus, for every repaired node, the activation range of its (new) input tensor and its INT8 weights.
:func:`apply_weights` ``(qdq, repair)`` then writes those weights into the QDQ graph that
``onnxruntime.quantization.quantize_static`` made from :attr:`Repair.proto` with :attr:`Repair.ranges`.

What is repaired, and why each step (measured on g170-b6c96 against PyTorch FP32 on the 80 oracle positions,
torch fake-quant, u8 activations, 2026-12-03; ratios are the worst of KataGo's FP16 limits):

1. **Smoothing** (SmoothQuant's migration, Xiao et al. 2023, applied to convolutions): every repairable node's
   input ``x`` is divided per input channel by ``s_c = max|x_c|^alpha / max|W_c|^(1-alpha)`` (normalised to
   ``max s = 1``) in an explicit ``Mul`` node, and the weight's input channel is multiplied by ``s_c``. The graph
   computes the same function; what changes is that one per-tensor activation scale no longer has to serve
   channels whose ranges differ by orders of magnitude. (For ReLU nets the ``Mul`` could be folded into the
   preceding BatchNorm; it is kept explicit so Mish/SiLU nets are handled the same way, at the cost of one
   elementwise op per layer.) MSE ranges + GPTQ: 2.9x without smoothing, 1.3x-1.8x with ``alpha = 0.5``.
2. **MSE ranges**: the activation range of ``x/s`` is the clip that minimises the mean squared quantization error
   on a sample of calibration values (``lo`` = the minimum for u8; symmetric threshold for s8). Min-max ranges:
   3.6x with float weights; MSE: 1.9x. Percentile clipping is much worse (10x-60x): the outliers matter.
3. **GPTQ** (Frantar et al. 2022): each weight row is rounded column by column to the per-output-channel
   symmetric INT8 grid, and each rounding error is spread over the columns not yet rounded, using the Hessian
   ``H = X^T X`` of the layer's quantized inputs (im2col for convolutions) over the calibration positions. Weights
   alone: round-to-nearest 1.10x, GPTQ 0.67x.

Where the rest of the error sits, and what did not help (g170e-b15c192, torch fake-quant of the exported graph vs
FP32, the 80 oracle positions, every-size calibration with the oracle's games held out, no fallback, 2026-12-03;
worst KataGo FP16 limit ratio, policy KL p99 in brackets): the default recipe 2.14x (0.0043). The weights alone
(GPTQ, activations float) 0.53x (KL 0.0008): **activation rounding is the error**, and most of it enters in the last
four blocks (their 8 convolutions alone: 2.12x; blocks 0-7 alone: <= 0.8x). Tried, all worse: GPTQ act-order
3.85x; Hessian-weighted per-row weight clipping 3.19x; input-error compensation (weights fitted to reproduce
``W X`` from the quantized ``X_q`` before GPTQ, ridge towards ``W``) 3.69x; smoothing ``alpha`` 0.75 3.09x
(better on the last blocks, 0.0024, but one position at 0.0085) and 0.9 3.87x; activation ranges min-max 4.98x,
the geometric mean of MSE and max 3.48x, MSE but at least half the max 2.97x. What is left for this net is either
float for the sensitive layers (the fallback) or training against the activation noise (QAT, longer than 2 CPU
cores allow).

Activation groups (``act_groups`` K > 1, onnx-int8 option ``int8_act_groups``): one u8 scale per conv input
cannot hold g170e-b15c192's channels (per-tensor u8 misses KataGo's gate at 3.8x even with ranges taken from the
test positions themselves: the rounding step is the error). Each repaired convolution is split into K convolutions
over disjoint groups of its input channels (sorted by range, equal counts), summed: ``x/s -> Gather(group k) ->
Conv(W[:, group k]) -> Sum``. Every multiply-accumulate still runs in int8 (the MAC count is unchanged), and each
group's input gets its own Q/DQ pair whose range is the true min/max of its channels over the calibration positions
(no MSE clip: a finer group's clip does not hold on unseen positions). GPTQ then rounds each weight row with one
scale per group (:func:`gptq`'s ``col_groups``), which each group convolution's own per-channel weight scale allows.
Measured in torch fake-quant on g170e-b15c192 (80 oracle positions, 768 every-size calibration positions, 2026-12-06,
``scripts/reports/int8/act_groups.py``): 8 groups with GPTQ weights at one scale per row 2.22x, with one scale per
row and group 1.29x (16 groups 1.25x), against per tensor's 2.98x. A group's calibration maximum is not a safe
range, though: on g170-b6c96 every grouped graph clipped one late-game oracle position (lead error 5.7-15 points), so
``group_floor`` widens each group to at least F times its layer's span; F = 0.5 applied to finished graphs made 8
groups pass KataGo's gate on g170-b6c96 at 94% int8 MACs (0.79x oracle, 0.77x on 256 held-out positions; 0.35 kept
the clip, 0.75 was too coarse; ``scripts/reports/int8/group_floor.py``).

No maintained library does these steps on an ONNX graph for convolutions with onnxruntime's QDQ output: NNCF's
GPTQ covers only MatMul weight compression, onnxruntime has no weight-rounding repair, and AIMET/Quark bring their
own graph formats; so the algorithms are written here (on numpy/torch), small and tested against the float graph.

Weights are written into the QDQ graph after ``quantize_static`` (:func:`apply_weights`): the INT8 values and the
per-channel scale of each weight's ``DequantizeLinear``, and the INT32 bias (scale = input scale x weight scale),
so every runtime that reads the QDQ graph executes exactly the repaired weights.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from katadeploy.errors import KatadeployError
from katadeploy.progress import Progress

DEFAULT_ALPHA = 0.5
SAMPLE_VALUES = 1_000_000  # activation values kept per tensor for the MSE range search
MSE_GRID = 48  # clip factors tried, from MSE_MIN_CLIP to 1 of the max
MSE_MIN_CLIP = 0.25
#: ``group_tail``: the k-th largest per-position maximum the tail headroom is measured from (see :func:`tail_range`)
TAIL_K = 10
GPTQ_BLOCK = 128
GPTQ_DAMP = 0.01
SEED = 0


@dataclass
class Layer:
    """One repairable node: a Conv (group 1) or a MatMul with a 2-D weight initializer."""

    node: str
    kind: str  # "conv" | "matmul"
    x: str  # original input tensor
    weight: str  # weight initializer name
    attrs: dict[str, Any] = field(default_factory=dict)
    s: np.ndarray | None = None  # per input channel smoothing (x / s, W * s)
    range: tuple[float, float] | None = None
    q: np.ndarray | None = None  # int8 weights, shape of the (smoothed) weight
    w_scale: np.ndarray | None = None  # per output channel
    u: np.ndarray | None = None  # GPTQ's pre-rounding values in grid units (rounding them gives q)
    a_scale: float | None = None  # a trained input scale (QAT) that replaces the one quantize_static computed
    bias: np.ndarray | None = None  # the float bias, when the node has one (corrected when bias_corrected)
    bias_corrected: bool = False
    groups: list[np.ndarray] | None = None  # input channels of each activation group (grouped convs only)
    group_ranges: list[tuple[float, float]] | None = None  # the u8/s8 range of each group of x/s

    def group_names(self) -> list[str]:
        """The node's name in the QDQ graph, or the names of its per-group convolutions (:func:`group_node`)."""
        return (
            [self.node]
            if self.groups is None
            else [group_node(self.node, k) for k in range(len(self.groups))]
        )

    @property
    def smoothed(self) -> str:
        return f"{self.x}__smooth__{self.node}"


#: a grouped convolution's per-group nodes are named ``NODE__groupK`` (same module scope, so every role rule holds)
GROUP_SEP = "__group"


def group_node(node: str, k: int) -> str:
    return f"{node}{GROUP_SEP}{k}"


def group_columns(groups: Sequence[np.ndarray], kk: int) -> list[np.ndarray]:
    """The GEMM columns (:func:`_cols` order) of each input-channel group of a conv whose kernel has ``kk`` taps:
    im2col is channel-major, so channel ``c`` owns columns ``c*kk`` .. ``c*kk+kk-1``."""
    return [(np.asarray(g)[:, None] * kk + np.arange(kk)[None, :]).ravel() for g in groups]


def bias_name(node: str) -> str:
    """The float bias initializer of a repaired node in :attr:`Repair.proto`."""
    return f"{node}__bias"


def layer_of(name: str) -> str:
    """The layer a node of a repaired graph belongs to: its per-group convolutions map back to the original node."""
    return name.split(GROUP_SEP, 1)[0]


@dataclass
class Repair:
    proto: Any
    layers: list[Layer]
    ranges: dict[str, tuple[np.ndarray, np.ndarray]]
    alpha: float
    bias_correction: bool = False
    act_groups: int = 1
    group_floor: float = 0.0
    group_margin: float = 1.0
    group_tail: float = 0.0

    @property
    def grouped(self) -> bool:
        return any(la.groups is not None for la in self.layers)

    def quantize_names(self, nodes: Sequence[str]) -> list[str]:
        """``nodes`` (of the pre-processed graph) as nodes of :attr:`proto`: grouped layers as their group convs."""
        by_node = {la.node: la for la in self.layers}
        return [g for n in nodes for g in (by_node[n].group_names() if n in by_node else [n])]

    def summary(self) -> dict[str, Any]:
        grouped = sum(la.groups is not None for la in self.layers)
        return {
            "recipe": "per-channel smoothing + MSE activation ranges + GPTQ weight rounding"
            if not grouped
            else f"per-channel smoothing + {self.act_groups} activation groups per conv input (max ranges"
            + (f" + {self.group_tail:g} x their tail's spread" if self.group_tail > 0 else "")
            + (f" x {self.group_margin:g}" if self.group_margin != 1 else "")
            + (f", each at least {self.group_floor:g} of its layer's span" if self.group_floor > 0 else "")
            + f") on {grouped} of {len(self.layers)} nodes"
            + (" (MSE ranges on the rest)" if grouped < len(self.layers) else "")
            + " + GPTQ weight rounding with one scale per output channel and group",
            "act_groups": self.act_groups,
            "grouped_nodes": grouped,
            "group_floor": self.group_floor,
            "group_margin": self.group_margin,
            "group_tail": self.group_tail,
            "smooth_alpha": self.alpha,
            "repaired_nodes": len(self.layers),
            "bias_correction": self.bias_correction,
            "bias_corrected_nodes": sum(la.bias_corrected for la in self.layers),
            "gptq": {"block": GPTQ_BLOCK, "damp": GPTQ_DAMP},
            "mse": {"grid": MSE_GRID, "min_clip": MSE_MIN_CLIP, "sample_values": SAMPLE_VALUES},
        }


# ---------------------------------------------------------------------------------------------- numerics
def smoothing_scales(x_max: np.ndarray, w_max: np.ndarray, alpha: float) -> np.ndarray:
    """SmoothQuant's ``s = x_max^alpha / w_max^(1-alpha)``, normalised to ``max(s) = 1`` (so ``x/s`` only grows)."""
    xm = np.maximum(x_max.astype(np.float64), 1e-6)
    wm = np.maximum(w_max.astype(np.float64), 1e-8)
    s = xm**alpha / wm ** (1.0 - alpha)
    s = s / s.max()
    return np.maximum(s, 1e-4).astype(np.float32)


def fake_quant(x: np.ndarray, lo: float, hi: float, activations: str) -> np.ndarray:
    """What the runtime computes from ``x`` after QuantizeLinear + DequantizeLinear with range ``[lo, hi]``
    (onnxruntime's own scale/zero-point rules: the range always contains 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if activations == "u8":
        scale = (hi - lo) / 255.0 or 1.0
        zp = float(np.clip(round(-lo / scale), 0, 255))
        return ((np.clip(np.rint(x / scale) + zp, 0, 255) - zp) * scale).astype(np.float32)
    th = max(-lo, hi)
    scale = 2 * th / 254.0 or 1.0  # onnxruntime's symmetric QInt8 range is [-127, 127]
    return (np.clip(np.rint(x / scale), -127, 127) * scale).astype(np.float32)


def mse_range(values: np.ndarray, lo: float, hi: float, activations: str) -> tuple[float, float]:
    """The clip of ``[lo, hi]`` (u8: ``hi`` only; s8: the symmetric threshold) with the least quantization MSE."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0:
        return lo, hi
    best: tuple[float, tuple[float, float]] | None = None
    for f in np.linspace(MSE_MIN_CLIP, 1.0, MSE_GRID):
        cand = (lo, hi * f) if activations == "u8" else (-max(-lo, hi) * f, max(-lo, hi) * f)
        err = float(np.mean((fake_quant(values, *cand, activations) - values) ** 2))
        if best is None or err < best[0]:
            best = (err, cand)
    assert best is not None
    return best[1]


def gptq(
    w: np.ndarray, h: np.ndarray, return_pre: bool = False, col_groups: Sequence[np.ndarray] | None = None
) -> Any:
    """GPTQ rounding of ``w`` ``[rows, cols]`` to symmetric per-row INT8 with input Hessian ``h`` ``[cols, cols]``.
    Returns ``(int8 values, per-row scale)``, plus with ``return_pre`` the value each weight had in grid units just
    before it was rounded (after the error feedback of the columns before it): rounding those gives the INT8
    values, and QAT starts from them (:mod:`katadeploy.export.int8_qat`).

    ``col_groups`` (disjoint column index arrays covering every column) gives each row one scale per group
    instead (the scale is then ``[rows, groups]``): the columns are processed group after group, and each group's
    scale is taken from its columns as the error feedback of the groups before it has left them (GPTQ's
    ``groupsize`` rule, here over arbitrary column sets: the input channels that share one activation scale)."""
    import torch

    cols = w.shape[1]
    groups = (
        [np.asarray(g, dtype=np.int64) for g in col_groups] if col_groups is not None else [np.arange(cols)]
    )
    perm = np.concatenate(groups)
    if len(perm) != cols or len(np.unique(perm)) != cols:
        raise KatadeployError("GPTQ: the column groups must cover every column exactly once")
    bounds = np.cumsum([0, *[len(g) for g in groups]])
    W = torch.from_numpy(w[:, perm].astype(np.float64)).clone()
    H = torch.from_numpy(h[np.ix_(perm, perm)].astype(np.float64)).clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += torch.eye(H.shape[0], dtype=H.dtype) * (GPTQ_DAMP * torch.mean(torch.diag(H)))
    try:
        hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    except RuntimeError as exc:  # not positive definite even with damping: degenerate calibration data
        raise KatadeployError(f"GPTQ: the layer's input Hessian is singular ({exc})") from exc
    scales = torch.zeros((W.shape[0], len(groups)), dtype=W.dtype)
    q = torch.zeros_like(W)
    pre = torch.zeros_like(W)
    n = W.shape[1]
    g = -1
    for i1 in range(0, n, GPTQ_BLOCK):
        i2 = min(i1 + GPTQ_BLOCK, n)
        w1 = W[:, i1:i2].clone()
        err = torch.zeros_like(w1)
        hi = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            while g + 1 < len(groups) and i1 + i >= bounds[g + 1]:
                g += 1  # a new group starts here: its scale from its columns as they stand now
                lo_g, hi_g = bounds[g] - i1, bounds[g + 1] - i1
                cur = torch.cat(
                    [w1[:, max(lo_g, 0) : min(hi_g, i2 - i1)], W[:, max(i2, bounds[g]) : bounds[g + 1]]], 1
                )
                scales[:, g] = (cur.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
            scale = scales[:, g]
            col = w1[:, i]
            qi = torch.clamp(torch.round(col / scale), -127, 127)
            q[:, i1 + i] = qi
            pre[:, i1 + i] = col / scale
            e = (col - qi * scale) / hi[i, i]
            w1[:, i:] -= e.unsqueeze(1) @ hi[i, i:].unsqueeze(0)
            err[:, i] = e
        W[:, i2:] -= err @ hinv[i1:i2, i2:]
    inv = np.argsort(perm)
    q_out = q.numpy()[:, inv].astype(np.int8)
    s_out = scales.numpy().astype(np.float32)
    out = (q_out, s_out[:, 0] if col_groups is None else s_out)
    return (*out, pre.numpy()[:, inv].clip(-127.49, 127.49).astype(np.float32)) if return_pre else out


def _cols(x: np.ndarray, layer: Layer) -> np.ndarray:
    """The layer's input as GEMM columns ``[K, positions]``: im2col for convolutions, rows for MatMul."""
    if layer.kind == "matmul":
        return x.reshape(-1, x.shape[-1]).T
    import torch
    import torch.nn.functional as F

    a = layer.attrs
    cols = F.unfold(
        torch.from_numpy(np.ascontiguousarray(x)), a["kernel"], dilation=a["dilations"], padding=a["pads"],
        stride=a["strides"],
    )  # fmt: skip
    return cols.permute(1, 0, 2).reshape(cols.shape[1], -1).numpy()


# ---------------------------------------------------------------------------------------------- graph
def _attr(node: Any, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            return list(a.ints) if a.ints else a.i
    return default


def find_layers(proto: Any, nodes: Sequence[str]) -> list[Layer]:
    """The repairable nodes among ``nodes``: Conv with group 1 and symmetric pads, MatMul with a 2-D weight."""
    inits = {i.name: i for i in proto.graph.initializer}
    wanted = set(nodes)
    out = []
    for n in proto.graph.node:
        if n.name not in wanted or len(n.input) < 2 or n.input[1] not in inits:
            continue
        dims = list(inits[n.input[1]].dims)
        if n.op_type == "Conv" and len(dims) == 4 and _attr(n, "group", 1) == 1:
            pads = _attr(n, "pads", [0, 0, 0, 0])
            if pads[:2] != pads[2:] or _attr(n, "auto_pad", b"NOTSET") not in (b"NOTSET", 0):
                continue
            attrs = {
                "kernel": tuple(dims[2:]), "pads": tuple(pads[:2]),
                "dilations": tuple(_attr(n, "dilations", [1, 1])), "strides": tuple(_attr(n, "strides", [1, 1])),
            }  # fmt: skip
            if len(n.input) > 2 and n.input[2] in inits:
                attrs["bias_name"] = n.input[2]
            out.append(Layer(n.name, "conv", n.input[0], n.input[1], attrs))
        elif n.op_type == "MatMul" and len(dims) == 2:
            out.append(Layer(n.name, "matmul", n.input[0], n.input[1]))
    return out


def _weights(proto: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}


def _w_in_max(w: np.ndarray, kind: str) -> np.ndarray:
    return np.abs(w).max(axis=(0, 2, 3)) if kind == "conv" else np.abs(w).max(axis=1)


def _smoothed_weight(w: np.ndarray, s: np.ndarray, kind: str) -> np.ndarray:
    return (w * s.reshape(1, -1, 1, 1)) if kind == "conv" else (w * s.reshape(-1, 1))


def rows(w: np.ndarray, kind: str) -> np.ndarray:
    """Weight as GEMM rows ``[out, K]`` in :func:`_cols` order."""
    return w.reshape(w.shape[0], -1) if kind == "conv" else w.T


def from_rows(r: np.ndarray, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """The inverse of :func:`rows`: GEMM rows back to the weight's own ``shape``."""
    return r.reshape(shape) if kind == "conv" else r.T.reshape(shape)


#: ``run(tensors, label)`` yields ``{tensor: value}`` for each calibration chunk of the float graph
TensorRun = Callable[[list[str], str], Iterator[dict[str, np.ndarray]]]


def plan_repair(
    proto: Any,
    nodes: Sequence[str],
    run: TensorRun,
    activations: str,
    alpha: float = DEFAULT_ALPHA,
    progress: bool = False,
    bias_correction: bool = False,
    act_groups: int = 1,
    hessian_run: TensorRun | None = None,
    group_nodes: Collection[str] | None = None,
    group_floor: float = 0.0,
    group_margin: float = 1.0,
    group_tail: float = 0.0,
) -> Repair:
    """Smoothing scales, MSE ranges and GPTQ weights for the repairable ``nodes`` of ``proto`` (see the module
    contract); returns the smoothed FP32 graph with them. ``run`` streams the graph's tensors over the
    calibration positions (twice). With ``act_groups`` > 1 every repairable convolution with more input channels
    than that is split into ``act_groups`` convolutions over channel groups (see "Activation groups" above); with
    ``group_nodes`` only those of them (the rest keep one MSE range per input). ``group_floor`` F > 0 widens each
    group's range to at least F times the span of its layer's groups (the clipping guard, see "Activation groups");
    ``group_margin`` M >= 1 first stretches each group's own range M times (headroom for unseen positions).
    ``group_tail`` T > 0 first widens each group's range by T times its calibration tail's spread
    (:func:`tail_range`): headroom where one position set the maximum, little where many reach it.
    ``hessian_run`` streams the positions of the second pass instead (GPTQ's Hessians cost ``K^2`` per board point,
    so a caller may pass fewer positions, spread over every board size like the first pass's)."""
    from onnx import helper, numpy_helper

    if not 0.0 <= alpha <= 1.0:
        raise KatadeployError(f"int8_smooth_alpha must be in [0, 1], not {alpha}")
    if act_groups < 1:
        raise KatadeployError(f"int8_act_groups must be at least 1, not {act_groups}")
    if not 0.0 <= group_floor <= 1.0:
        raise KatadeployError(f"int8_group_floor must be in [0, 1], not {group_floor}")
    if not 1.0 <= group_margin <= 4.0:
        raise KatadeployError(f"int8_group_margin must be in [1, 4], not {group_margin}")
    if not 0.0 <= group_tail <= 4.0:
        raise KatadeployError(f"int8_group_tail must be in [0, 4], not {group_tail}")
    layers = find_layers(proto, nodes)
    if not layers:
        raise KatadeployError("INT8 repair: no Conv/MatMul node with a constant weight to repair")
    weights = _weights(proto)
    tensors = sorted({la.x for la in layers})
    keys = sorted({(la.x, la.kind) for la in layers})  # a tensor's channel axis depends on its consumer
    rng = np.random.default_rng(SEED)
    ch_min: dict[tuple[str, str], np.ndarray] = {}
    ch_max: dict[tuple[str, str], np.ndarray] = {}
    samples: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in keys}
    # per position and channel, the extremes of each conv input (group_tail's headroom)
    pos_ext: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in keys if k[1] == "conv"}
    # pass 1: per-channel min and max, and a sample of (value, channel) per input tensor
    chunks = 0
    for values in run(tensors, "int8 repair: input statistics"):
        chunks += 1
        for key in keys:
            x = values[key[0]]
            conv = key[1] == "conv"
            axes = (0, 2, 3) if conv else tuple(range(x.ndim - 1))
            lo, hi = x.min(axis=axes), x.max(axis=axes)
            ch_min[key] = lo if key not in ch_min else np.minimum(ch_min[key], lo)
            ch_max[key] = hi if key not in ch_max else np.maximum(ch_max[key], hi)
            if conv and group_tail > 0:
                pos_ext[key].append((x.min(axis=(2, 3)), x.max(axis=(2, 3))))
            idx = rng.integers(0, x.size, min(SAMPLE_VALUES // 16, x.size))
            ch = (idx // (x.shape[2] * x.shape[3])) % x.shape[1] if conv else idx % x.shape[-1]
            samples[key].append((x.ravel()[idx], ch))
    if not chunks:
        raise KatadeployError("INT8 repair: no calibration positions")
    for la in layers:
        key = (la.x, la.kind)
        w = weights[la.weight]
        absmax = np.maximum(np.abs(ch_min[key]), np.abs(ch_max[key]))
        la.s = smoothing_scales(absmax, _w_in_max(w, la.kind), alpha)
        vals = np.concatenate([v for v, _ in samples[key]])
        chans = np.concatenate([c for _, c in samples[key]])
        if len(vals) > SAMPLE_VALUES:
            keep = rng.choice(len(vals), SAMPLE_VALUES, replace=False)
            vals, chans = vals[keep], chans[keep]
        # exact bounds of x/s from the per-channel extremes; the clip is searched on the sample
        smin, smax = ch_min[key] / la.s, ch_max[key] / la.s
        lo, hi = float(smin.min()), float(smax.max())
        if la.kind == "conv" and 1 < act_groups < len(la.s) and (group_nodes is None or la.node in group_nodes):
            # channels sorted by their range, split into act_groups groups; each group's range is the true min/max
            # of its channels (no MSE clip: a group's clip does not hold on unseen positions, see the module notes)
            la.groups = [np.sort(g) for g in np.array_split(np.argsort(smax, kind="stable"), act_groups)]
            if group_tail > 0:
                p_lo = np.concatenate([a for a, _ in pos_ext[key]]) / la.s
                p_hi = np.concatenate([b for _, b in pos_ext[key]]) / la.s
                bounds = [tail_range(p_lo[:, g].min(axis=1), p_hi[:, g].max(axis=1), group_tail) for g in la.groups]
            else:
                bounds = [(float(smin[g].min()), float(smax[g].max())) for g in la.groups]
            la.group_ranges = [_group_range(group_margin * b_lo, group_margin * b_hi, activations)
                               for b_lo, b_hi in bounds]  # fmt: skip
            if group_floor > 0:  # no group narrower than F x the layer's span: a narrow group's max may not hold
                span_lo, span_hi = min(r[0] for r in la.group_ranges), max(r[1] for r in la.group_ranges)
                la.group_ranges = [
                    (min(r[0], group_floor * span_lo), max(r[1], group_floor * span_hi)) for r in la.group_ranges
                ]
            la.range = _group_range(lo, hi, activations)
        else:
            la.range = mse_range(vals / la.s[chans], lo, hi, activations)
        if "bias_name" in la.attrs:
            la.bias = weights[la.attrs["bias_name"]].astype(np.float64)
    del samples
    # pass 2: Hessians of the quantized, smoothed inputs
    hess: dict[str, np.ndarray] = {}
    # for bias correction: sums of the float and the quantized GEMM columns over on-board outputs
    col_sums: dict[str, list[Any]] = {la.node: [0.0, 0.0, 0] for la in layers}
    for values in (hessian_run or run)(tensors, "int8 repair: layer Hessians"):
        for la in layers:
            x = values[la.x]
            s = la.s.reshape(1, -1, 1, 1) if la.kind == "conv" else la.s
            assert la.range is not None
            xs = (x / s).astype(np.float32)
            # one chunk's product in float32 (3.4x faster than float64 on a Zen 4 with AVX-512, relative error
            # ~3e-7 for 32 positions of 19x19 im2col columns), the sum over chunks in float64
            cols = np.ascontiguousarray(_cols(_quantized_input(xs, la, activations), la), dtype=np.float32)
            h = (cols @ cols.T).astype(np.float64)
            hess[la.node] = h if la.node not in hess else hess[la.node] + h
            if bias_correction and la.kind == "conv":
                fcols = _cols(xs, la)
                live = np.abs(fcols).sum(axis=0) > 0  # outputs whose receptive field touches the board
                acc = col_sums[la.node]
                acc[0] = acc[0] + fcols[:, live].sum(axis=1, dtype=np.float64)
                acc[1] = acc[1] + cols[:, live].sum(axis=1, dtype=np.float64)
                acc[2] += int(live.sum())
    with Progress(len(layers), "int8 repair: GPTQ", quiet=not progress) as bar:
        for la in layers:
            w = weights[la.weight]
            assert la.s is not None
            ws = _smoothed_weight(w, la.s, la.kind)
            col_groups = None if la.groups is None else group_columns(la.groups, int(np.prod(ws.shape[2:])))
            q, scale, pre = gptq(rows(ws, la.kind), hess.pop(la.node), return_pre=True, col_groups=col_groups)
            la.q = from_rows(q, ws.shape, la.kind)
            la.u = from_rows(pre, ws.shape, la.kind)
            la.w_scale = scale
            f_sum, q_sum, count = col_sums[la.node]
            if bias_correction and la.kind == "conv" and count:
                # E[y_q - y] per output channel (exact: the conv is linear in its columns), removed via the bias
                wq = rows(la.q.astype(np.float64), la.kind) * column_scales(la, scale).astype(np.float64)
                shift = (wq @ (q_sum / count)) - (rows(ws.astype(np.float64), la.kind) @ (f_sum / count))
                la.bias = (la.bias if la.bias is not None else 0.0) - shift
                la.bias_corrected = True
            bar.advance()
    # the smoothed float graph: x -> Mul(1/s) -> node, weight * s
    new = type(proto)()
    new.CopyFrom(proto)
    by_name = {n.name: n for n in new.graph.node}
    extra_inits, ranges = [], {}
    order: list[Any] = []
    mul_for: dict[str, Any] = {}
    split_for: dict[str, list[Any]] = {}  # grouped convs: Gather + Conv per group, then one Sum
    for la in layers:
        assert la.s is not None and la.range is not None
        inv = (1.0 / la.s).astype(np.float32)
        inv = inv.reshape(1, -1, 1, 1) if la.kind == "conv" else inv
        inv_name, w_name = f"{la.smoothed}__inv_s", f"{la.weight}__smoothed__{la.node}"
        extra_inits.append(numpy_helper.from_array(inv, inv_name))
        extra_inits.append(
            numpy_helper.from_array(
                _smoothed_weight(weights[la.weight], la.s, la.kind).astype(np.float32), w_name
            )
        )
        mul_for[la.node] = helper.make_node("Mul", [la.x, inv_name], [la.smoothed], name=f"{la.node}__smooth")
        node = by_name[la.node]
        node.input[0] = la.smoothed
        node.input[1] = w_name
        if la.bias is not None:
            b_name = bias_name(la.node)
            extra_inits.append(numpy_helper.from_array(la.bias.astype(np.float32), b_name))
            if len(node.input) > 2:
                node.input[2] = b_name
            else:
                node.input.append(b_name)
        la.weight = w_name
        if la.groups is not None:
            assert la.group_ranges is not None
            split_for[la.node] = _split_groups(node, la, extra_inits)
            for k, (lo_g, hi_g) in enumerate(la.group_ranges):
                ranges[_group_input(la, k)] = (np.array(lo_g, np.float32), np.array(hi_g, np.float32))
        else:
            ranges[la.smoothed] = (np.array(la.range[0], np.float32), np.array(la.range[1], np.float32))
    for n in new.graph.node:  # keep topological order: each Mul right before its node
        if n.name in mul_for:
            order.append(mul_for[n.name])
        order.extend(split_for.get(n.name, [n]))
    del new.graph.node[:]
    new.graph.node.extend(order)
    new.graph.initializer.extend(extra_inits)
    used = {i for n in new.graph.node for i in n.input}
    keep = [i for i in new.graph.initializer if i.name in used]
    del new.graph.initializer[:]
    new.graph.initializer.extend(keep)
    return Repair(new, layers, ranges, alpha, bias_correction, act_groups, group_floor, group_margin, group_tail)


def tail_range(lows: np.ndarray, highs: np.ndarray, tail: float, k: int = TAIL_K) -> tuple[float, float]:
    """A group's range from its per-position extremes (``lows``/``highs``: one value per calibration position):
    the calibration extremes widened by ``tail`` times the gap to the ``k``-th most extreme position.

    Why: under an exponential-type tail the gaps between the largest of N samples shrink like 1/i, so the gap
    between the largest and the k-th largest (about the tail's scale times ln k) predicts how far a larger sample
    reaches past the calibration maximum (the scale times the log of the size ratio; ``tail`` ~0.8 for ten times
    the positions at k = 10). A group whose maximum one position set gets room; a group that many positions fill
    to the same level keeps its resolution. A fixed margin (``group_margin``) pays the same step everywhere."""
    k = max(1, min(k, len(highs)))
    hi = np.sort(highs)[::-1]
    lo = np.sort(lows)
    return float(lo[0] - tail * (lo[k - 1] - lo[0])), float(hi[0] + tail * (hi[0] - hi[k - 1]))


def _group_range(lo: float, hi: float, activations: str) -> tuple[float, float]:
    """A range that holds ``[lo, hi]``: u8 as is (with 0 inside), s8 symmetric."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if activations == "u8":
        return lo, hi
    th = max(-lo, hi)
    return -th, th


def _quantized_input(xs: np.ndarray, la: Layer, activations: str) -> np.ndarray:
    """What the QDQ graph feeds the layer's GEMM: ``x/s`` through its one range, or each channel group's own."""
    if la.groups is None:
        assert la.range is not None
        return fake_quant(xs, *la.range, activations)
    assert la.group_ranges is not None
    out = np.empty_like(xs)
    for g, r in zip(la.groups, la.group_ranges):
        out[:, g] = fake_quant(xs[:, g], *r, activations)
    return out


def column_scales(la: Layer, scale: np.ndarray) -> np.ndarray:
    """Per GEMM row and column, the weight scale GPTQ rounded with (``scale`` is per row, or per row and group)."""
    assert la.q is not None
    r = rows(la.q, la.kind)
    if la.groups is None:
        return np.broadcast_to(scale[:, None], r.shape)
    out = np.empty(r.shape, np.float32)
    for k, cols in enumerate(group_columns(la.groups, r.shape[1] // sum(len(g) for g in la.groups))):
        out[:, cols] = scale[:, k : k + 1]
    return out


def _group_input(la: Layer, k: int) -> str:
    return f"{la.smoothed}{GROUP_SEP}{k}"


def group_weight(la: Layer, k: int) -> str:
    """The float weight initializer of group ``k``'s conv of grouped layer ``la`` in :attr:`Repair.proto`."""
    return f"{la.weight}{GROUP_SEP}{k}"


def bias_group(la: Layer) -> int:
    """The group conv of grouped layer ``la`` that carries its bias: the first group (the finest input steps) whose
    INT32 bias codes (``bias / step``, step = its input scale x its weight scale per output channel) stay within
    2^30; else the group whose step is widest for its narrowest output channel. With 32 groups on g170e-b15c192
    (2026-12-07) group 0 (near-dead input channels, whose all-zero weight columns GPTQ scales at 1e-12) overflowed
    INT32 and the graph read 27x KataGo's limit. The first group, not the widest, where it fits: on g170-b6c96's
    16-group graph the widest group's coarser bias codes took the QAT student's agreement with onnxruntime from
    0.33x to 0.60x of the INT8 error (``tests/export/test_int8_qat.py``)."""
    assert la.groups is not None and la.group_ranges is not None and la.w_scale is not None
    if la.bias is None:
        return 0
    spans = np.array([hi - lo for lo, hi in la.group_ranges], np.float64)
    steps = spans[None, :] / 255.0 * np.asarray(la.w_scale, np.float64)  # [output channels, groups]
    fits = (np.abs(np.asarray(la.bias, np.float64))[:, None] < 2.0**30 * steps).all(axis=0)
    return int(np.argmax(fits)) if fits.any() else int(np.argmax(steps.min(axis=0)))


def _split_groups(node: Any, la: Layer, extra_inits: list[Any]) -> list[Any]:
    """The nodes that replace conv ``node`` (already smoothed: input ``x/s``, weight ``W*s``): per channel group a
    ``Gather`` of its channels and a ``Conv`` with those weight columns (the bias on :func:`bias_group`'s), then a
    ``Sum`` into the original output. Same function, same MACs; each group's input gets its own Q/DQ scale."""
    from onnx import helper, numpy_helper

    assert la.groups is not None
    bias_k = bias_group(la)
    w = {i.name: i for i in extra_inits}[node.input[1]]
    ws = numpy_helper.to_array(w)
    out: list[Any] = []
    partial = []
    for k, g in enumerate(la.groups):
        idx, wk = f"{_group_input(la, k)}__idx", group_weight(la, k)
        extra_inits.append(numpy_helper.from_array(g.astype(np.int64), idx))
        extra_inits.append(numpy_helper.from_array(np.ascontiguousarray(ws[:, g]), wk))
        out.append(
            helper.make_node(
                "Gather",
                [la.smoothed, idx],
                [_group_input(la, k)],
                name=f"{group_node(la.node, k)}__gather",
                axis=1,
            )
        )
        conv = type(node)()
        conv.CopyFrom(node)
        conv.name = group_node(la.node, k)
        del conv.input[:]
        conv.input.extend([_group_input(la, k), wk, *(node.input[2:3] if k == bias_k else [])])
        del conv.output[:]
        conv.output.append(f"{node.output[0]}{GROUP_SEP}{k}")
        partial.append(conv.output[0])
        out.append(conv)
    out.append(helper.make_node("Sum", partial, [node.output[0]], name=f"{la.node}__sum"))
    return out


def apply_weights(qdq: Any, repair: Repair) -> int:
    """Write the repaired INT8 weights, their scales and the matching INT32 biases into ``qdq`` (the output of
    ``quantize_static`` on :attr:`Repair.proto`); returns the number of nodes patched."""
    from onnx import numpy_helper

    inits = {i.name: i for i in qdq.graph.initializer}
    producer = {o: n for n in qdq.graph.node for o in n.output}
    by_name = {n.name: n for n in qdq.graph.node}

    def dq_inputs(tensor: str) -> list[str]:
        n = producer.get(tensor)
        if n is None or n.op_type != "DequantizeLinear":
            raise KatadeployError(f"INT8 repair: {tensor} is not dequantized in the QDQ graph")
        return list(n.input)

    def put(name: str, value: np.ndarray) -> None:
        inits[name].CopyFrom(numpy_helper.from_array(value, name))

    patched = 0
    for la in repair.layers:
        assert la.q is not None and la.w_scale is not None
        if la.groups is None:
            parts = [(la.node, la.q, la.w_scale)]
        else:  # each group conv: its weight columns, its scale column
            parts = [(group_node(la.node, k), la.q[:, g], la.w_scale[:, k]) for k, g in enumerate(la.groups)]
        for name, q, w_scale in parts:
            node = by_name.get(name)
            if node is None:
                raise KatadeployError(f"INT8 repair: node {name} missing from the QDQ graph")
            wq, ws, wz = dq_inputs(node.input[1])
            old = numpy_helper.to_array(inits[wq])
            if old.shape != q.shape or old.dtype != np.int8:
                raise KatadeployError(
                    f"INT8 repair: {name} weight is {old.dtype}{old.shape}, not int8{q.shape}"
                )
            put(wq, np.ascontiguousarray(q))
            put(ws, np.ascontiguousarray(w_scale).astype(np.float32))
            if la.a_scale is not None:  # the input's QuantizeLinear and DequantizeLinear read the same scale
                x_dq = producer[node.input[0]]
                x_q = producer.get(x_dq.input[0])
                for n in (x_dq, x_q):
                    if n is not None and n.op_type in ("QuantizeLinear", "DequantizeLinear"):
                        put(n.input[1], np.array(la.a_scale, np.float32))
            if len(node.input) > 2 and node.input[2]:
                bq, bs, *_ = dq_inputs(node.input[2])
                if la.bias is None:
                    raise KatadeployError(f"INT8 repair: {name} has a quantized bias the repair did not see")
                xs = numpy_helper.to_array(inits[dq_inputs(node.input[0])[1]]).astype(np.float64)
                new_scale = (xs * w_scale.astype(np.float64)).astype(np.float32)
                codes = np.rint(la.bias / new_scale.astype(np.float64))
                if not np.all(np.abs(codes) < 2**31):  # also NaN: a zero step
                    raise KatadeployError(f"INT8 repair: {name}'s bias does not fit INT32 at its input x weight scale")
                put(bq, codes.astype(np.int32))
                put(bs, new_scale)
        patched += 1
    return patched


__all__ = [
    "DEFAULT_ALPHA",
    "GROUP_SEP",
    "group_columns",
    "group_node",
    "group_weight",
    "layer_of",
    "Layer",
    "Repair",
    "apply_weights",
    "bias_group",
    "tail_range",
    "bias_name",
    "column_scales",
    "fake_quant",
    "find_layers",
    "from_rows",
    "gptq",
    "mse_range",
    "plan_repair",
    "rows",
    "smoothing_scales",
]
