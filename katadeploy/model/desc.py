"""In-memory description of a KataGo net, mirroring the records of the ``.bin.gz``/``.txt.gz`` format.

Contract:
- Every record keeps the exact values read from the file (weights as float32 numpy arrays, scalars as read),
  so that :mod:`katadeploy.model.writer` can write a file that loads back into identical tensors.
- Array layouts are PyTorch's, not the file's: conv weights are ``[oc, ic, ky, kx]``, matmul weights
  ``[ic, oc]`` (as in the file), learnable RoPE frequencies ``[num_kv_heads, pairs, 2]``.
- Nothing here knows about torch; :mod:`katadeploy.model.net` builds modules from these records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ACTIVATIONS = ("ACTIVATION_IDENTITY", "ACTIVATION_RELU", "ACTIVATION_MISH", "ACTIVATION_SILU")


@dataclass
class Conv:
    name: str
    weight: np.ndarray  # [oc, ic, ky, kx]
    dilation_y: int = 1
    dilation_x: int = 1

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])


@dataclass
class BatchNorm:
    name: str
    epsilon: float
    mean: np.ndarray
    variance: np.ndarray
    scale: np.ndarray | None  # None when the file has hasScale = 0
    bias: np.ndarray | None  # None when the file has hasBias = 0

    @property
    def channels(self) -> int:
        return int(self.mean.shape[0])

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        """The folded affine form KataGo uses: ``y = x * scale + bias`` (computed in float32, as KataGo does)."""
        scale = self.scale if self.scale is not None else np.ones_like(self.mean)
        bias = self.bias if self.bias is not None else np.zeros_like(self.mean)
        eps = np.float32(self.epsilon)
        merged_scale = (scale / np.sqrt(self.variance + eps)).astype(np.float32)
        merged_bias = (bias - merged_scale * self.mean).astype(np.float32)
        return merged_scale, merged_bias


@dataclass
class Activation:
    name: str
    kind: str  # one of ACTIVATIONS; models before v11 have implicit ReLU


@dataclass
class MatMul:
    name: str
    weight: np.ndarray  # [ic, oc]

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[1])


@dataclass
class MatBias:
    name: str
    bias: np.ndarray


@dataclass
class RMSNorm:
    """Trunk-tip RMSNorm (``spatial``: one statistic over the whole board instead of per position)."""

    name: str
    epsilon: float
    spatial: bool
    gamma: np.ndarray
    beta: np.ndarray
    cgroup_size: int = 0


@dataclass
class TransformerRMSNorm:
    name: str
    epsilon: float
    weight: np.ndarray


@dataclass
class OrdinaryBlock:
    name: str
    pre_bn: BatchNorm
    pre_act: Activation
    regular_conv: Conv
    mid_bn: BatchNorm
    mid_act: Activation
    final_conv: Conv


@dataclass
class GPoolBlock:
    name: str
    pre_bn: BatchNorm
    pre_act: Activation
    regular_conv: Conv
    gpool_conv: Conv
    gpool_bn: BatchNorm
    gpool_act: Activation
    gpool_to_bias_mul: MatMul
    mid_bn: BatchNorm
    mid_act: Activation
    final_conv: Conv


@dataclass
class NestedBottleneckBlock:
    name: str
    pre_bn: BatchNorm
    pre_act: Activation
    pre_conv: Conv
    blocks: list[Block]
    post_bn: BatchNorm
    post_act: Activation
    post_conv: Conv


@dataclass
class AttentionBlock:
    name: str
    num_heads: int
    num_kv_heads: int
    q_head_dim: int
    v_head_dim: int
    use_rope: bool
    learnable_rope: bool
    pre_norm: TransformerRMSNorm
    q_proj: MatMul
    k_proj: MatMul
    v_proj: MatMul
    out_proj: MatMul
    rope_name: str | None = None
    rope_freqs: np.ndarray | None = None  # learnable: [num_kv_heads, q_head_dim // 2, 2] (omega_x, omega_y)
    rope_theta_token: str | None = None  # fixed: the theta token exactly as written in the file


@dataclass
class FFNBlock:
    name: str
    channels: int
    ffn_channels: int
    swiglu: bool
    pre_norm: TransformerRMSNorm
    linear1: MatMul
    gate: MatMul | None
    linear2: MatMul


Block = OrdinaryBlock | GPoolBlock | NestedBottleneckBlock | AttentionBlock | FFNBlock

BLOCK_KINDS = {
    OrdinaryBlock: "ordinary_block",
    GPoolBlock: "gpool_block",
    NestedBottleneckBlock: "nested_bottleneck_block",
    AttentionBlock: "transformer_attention_block",
    FFNBlock: "transformer_ffn_block",
}


@dataclass
class MetaEncoder:
    name: str
    num_input_channels: int
    mul1: MatMul
    bias1: MatBias
    act1: Activation
    mul2: MatMul
    bias2: MatBias
    act2: Activation
    mul3: MatMul


@dataclass
class Trunk:
    name: str
    num_blocks: int
    channels: int
    mid_channels: int
    regular_channels: int
    dilated_channels: int
    gpool_channels: int
    norm_kind: int  # 0 = BatchNorm tip, 1 = RMSNorm tip (v15+ only)
    initial_conv: Conv
    initial_matmul: MatMul
    meta_encoder: MetaEncoder | None
    blocks: list[Block]
    tip_norm: BatchNorm | RMSNorm
    tip_act: Activation


@dataclass
class PolicyHead:
    name: str
    out_channels: int  # 1 (v<=11), 2 (v12-15), 4 (v16), 2|4 (v17, explicit)
    p1_conv: Conv
    g1_conv: Conv
    g1_bn: BatchNorm
    g1_act: Activation
    gpool_to_bias_mul: MatMul
    p1_bn: BatchNorm
    p1_act: Activation
    p2_conv: Conv
    gpool_to_pass_mul: MatMul
    # v15+: pass MLP
    gpool_to_pass_bias: MatBias | None = None
    pass_act: Activation | None = None
    gpool_to_pass_mul2: MatMul | None = None


@dataclass
class ValueHead:
    name: str
    v1_conv: Conv
    v1_bn: BatchNorm
    v1_act: Activation
    v2_mul: MatMul
    v2_bias: MatBias
    v2_act: Activation
    v3_mul: MatMul
    v3_bias: MatBias
    sv3_mul: MatMul
    sv3_bias: MatBias
    ownership_conv: Conv


#: Post-processing multipliers used for model versions below 13 (which do not store them).
DEFAULT_MULTIPLIERS = (20.0, 20.0, 20.0, 20.0, 40.0, 0.25, 30.0)
MULTIPLIER_NAMES = (
    "tdScoreMultiplier",
    "scoreMeanMultiplier",
    "scoreStdevMultiplier",
    "leadMultiplier",
    "varianceTimeMultiplier",
    "shorttermValueErrorMultiplier",
    "shorttermScoreErrorMultiplier",
)


@dataclass
class ModelDesc:
    name: str
    version: int
    num_input_channels: int
    num_input_global_channels: int
    trunk: Trunk
    policy: PolicyHead
    value: ValueHead
    multipliers: tuple[float, ...] = DEFAULT_MULTIPLIERS
    multiplier_tokens: tuple[str, ...] | None = None  # v13+: the header tokens exactly as written
    meta_encoder_version: int = 0
    prefer_pass_alive_under_suicide: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def num_score_channels(self) -> int:
        return self.value.sv3_mul.out_channels

    @property
    def num_policy_channels(self) -> int:
        return self.policy.out_channels

    @property
    def num_meta_channels(self) -> int:
        return 192 if self.meta_encoder_version == 1 else 0

    def iter_blocks(self):
        """All blocks depth-first (nested blocks after their parent)."""
        stack = list(reversed(self.trunk.blocks))
        while stack:
            block = stack.pop()
            yield block
            if isinstance(block, NestedBottleneckBlock):
                stack.extend(reversed(block.blocks))

    @property
    def has_transformer(self) -> bool:
        return any(isinstance(b, (AttentionBlock, FFNBlock)) for b in self.iter_blocks())
