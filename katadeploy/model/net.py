"""A PyTorch module that computes a KataGo net's raw outputs from a :class:`~katadeploy.model.desc.ModelDesc`.

Contract:
- ``KataGoNet(desc)(spatial, global_[, meta])`` takes ``spatial [N, C_in, H, W]`` (channel 0 is the on-board mask,
  exactly 0/1), ``global_ [N, G]`` and, for human-SL nets, ``meta [N, 192]``, all float32, and returns
  :class:`RawOutputs` ``(policy [N, P, H, W], policy_pass [N, P], value [N, 3], score [N, S], ownership [N, 1, H, W])``.
  These are KataGo's raw head outputs from the side to move's perspective, before any post-processing and
  without KataGo's GPU-only scale-8 trick (so they equal the Eigen backend's numbers).
- Boards smaller than the tensor are handled with the mask the way KataGo does: every norm+activation zeroes
  off-board points, global pooling divides by the on-board count, attention only attends to on-board keys.
  With ``use_mask=False`` the module assumes the board fills the whole tensor and drops all mask ops
  (KataGo's ``requireExactNNLen`` mode); its outputs are then only valid for full-tensor boards.
- RoPE tables are built from the actual H and W at run time, so any tensor size works.
- Weights are copied from the description; ``to_desc`` is not needed because the description is kept.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from katadeploy.model import desc as d


class RawOutputs(NamedTuple):
    policy: Tensor  # [N, P, H, W]
    policy_pass: Tensor  # [N, P]
    value: Tensor  # [N, 3]  win, loss, noResult logits (side to move)
    score: Tensor  # [N, S]
    ownership: Tensor  # [N, 1, H, W]


class _Ctx(NamedTuple):
    """Per-forward mask information shared by all layers."""

    mask: Tensor | None  # [N, 1, H, W] or None in exact-board mode
    mask_sum: Tensor  # [N, 1] on-board point count
    mask_flat: Tensor | None  # [N, 1, 1, HW] bool, True = on board (attention keys)


def _t(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32).copy())


def _act(kind: str, x: Tensor) -> Tensor:
    if kind == "ACTIVATION_RELU":
        return F.relu(x)
    if kind == "ACTIVATION_MISH":
        return F.mish(x)
    if kind == "ACTIVATION_SILU":
        return F.silu(x)
    return x


def _apply_mask(x: Tensor, ctx: _Ctx) -> Tensor:
    return x if ctx.mask is None else x * ctx.mask


class Conv(nn.Module):
    def __init__(self, c: d.Conv):
        super().__init__()
        oc, ic, ky, kx = c.weight.shape
        self.conv = nn.Conv2d(
            ic, oc, (ky, kx), padding=((ky // 2) * c.dilation_y, (kx // 2) * c.dilation_x),
            dilation=(c.dilation_y, c.dilation_x), bias=False,
        )  # fmt: skip
        self.conv.weight.data.copy_(_t(c.weight))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class NormAct(nn.Module):
    """Folded BatchNorm, activation, then off-board zeroing."""

    def __init__(self, bn: d.BatchNorm, act: d.Activation):
        super().__init__()
        scale, bias = bn.merged()
        self.register_buffer("scale", _t(scale).view(1, -1, 1, 1))
        self.register_buffer("bias", _t(bias).view(1, -1, 1, 1))
        self.kind = act.kind

    def forward(self, x: Tensor, ctx: _Ctx) -> Tensor:
        return _apply_mask(_act(self.kind, x * self.scale + self.bias), ctx)


class Linear(nn.Module):
    def __init__(self, m: d.MatMul, bias: d.MatBias | None = None):
        super().__init__()
        self.lin = nn.Linear(m.in_channels, m.out_channels, bias=bias is not None)
        self.lin.weight.data.copy_(_t(m.weight.T))
        if bias is not None:
            self.lin.bias.data.copy_(_t(bias.bias))

    def forward(self, x: Tensor) -> Tensor:
        return self.lin(x)


def kata_gpool(x: Tensor, ctx: _Ctx) -> Tensor:
    """[N, C, H, W] (off-board already 0) -> [N, 3C]: mean, mean*(sqrt(n)-14)/10, max over on-board points."""
    mean = x.sum(dim=(2, 3)) / ctx.mask_sum
    sqrt_n = torch.sqrt(ctx.mask_sum)
    scaled = mean * ((sqrt_n - 14.0) * 0.1)
    if ctx.mask is None:
        mx = x.amax(dim=(2, 3))
    else:
        mx = (x + (ctx.mask - 1.0)).amax(dim=(2, 3))
    return torch.cat([mean, scaled, mx.clamp_min(-1.0)], dim=1)


def value_gpool(x: Tensor, ctx: _Ctx) -> Tensor:
    mean = x.sum(dim=(2, 3)) / ctx.mask_sum
    s = torch.sqrt(ctx.mask_sum) - 14.0
    return torch.cat([mean, mean * (s * 0.1), mean * (s * s * 0.01 - 0.1)], dim=1)


class OrdinaryBlock(nn.Module):
    def __init__(self, b: d.OrdinaryBlock):
        super().__init__()
        self.pre = NormAct(b.pre_bn, b.pre_act)
        self.conv1 = Conv(b.regular_conv)
        self.mid = NormAct(b.mid_bn, b.mid_act)
        self.conv2 = Conv(b.final_conv)

    def forward(self, x: Tensor, ctx: _Ctx) -> Tensor:
        return x + self.conv2(self.mid(self.conv1(self.pre(x, ctx)), ctx))


class GPoolBlock(nn.Module):
    def __init__(self, b: d.GPoolBlock):
        super().__init__()
        self.pre = NormAct(b.pre_bn, b.pre_act)
        self.conv1 = Conv(b.regular_conv)
        self.convg = Conv(b.gpool_conv)
        self.normg = NormAct(b.gpool_bn, b.gpool_act)
        self.linear_g = Linear(b.gpool_to_bias_mul)
        self.mid = NormAct(b.mid_bn, b.mid_act)
        self.conv2 = Conv(b.final_conv)

    def forward(self, x: Tensor, ctx: _Ctx) -> Tensor:
        a = self.pre(x, ctx)
        r = self.conv1(a)
        g = self.normg(self.convg(a), ctx)
        r = r + self.linear_g(kata_gpool(g, ctx))[:, :, None, None]
        return x + self.conv2(self.mid(r, ctx))


class NestedBottleneckBlock(nn.Module):
    def __init__(self, b: d.NestedBottleneckBlock):
        super().__init__()
        self.pre = NormAct(b.pre_bn, b.pre_act)
        self.conv_pre = Conv(b.pre_conv)
        self.blocks = nn.ModuleList(make_block(inner) for inner in b.blocks)
        self.post = NormAct(b.post_bn, b.post_act)
        self.conv_post = Conv(b.post_conv)

    def forward(self, x: Tensor, ctx: _Ctx) -> Tensor:
        mid = self.conv_pre(self.pre(x, ctx))
        for block in self.blocks:
            mid = block(mid, ctx)
        return x + self.conv_post(self.post(mid, ctx))


class TransformerRMSNorm(nn.Module):
    """Per-position RMSNorm over channels, on NCHW tensors."""

    def __init__(self, n: d.TransformerRMSNorm):
        super().__init__()
        self.register_buffer("weight", _t(n.weight).view(1, -1, 1, 1))
        self.eps = float(n.epsilon)

    def forward(self, x: Tensor, ctx: _Ctx) -> Tensor:
        y = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps) * self.weight
        return _apply_mask(y, ctx)


def _conv1x1(x: Tensor, weight: Tensor) -> Tensor:
    return F.conv2d(x, weight)


class AttentionBlock(nn.Module):
    def __init__(self, b: d.AttentionBlock):
        super().__init__()
        self.norm = TransformerRMSNorm(b.pre_norm)
        self.heads, self.kv_heads = b.num_heads, b.num_kv_heads
        self.qd, self.vd = b.q_head_dim, b.v_head_dim
        # 1x1 convolutions keep everything NCHW (the projections are per-position matmuls)
        for key, m in (("wq", b.q_proj), ("wk", b.k_proj), ("wv", b.v_proj), ("wo", b.out_proj)):
            self.register_buffer(key, _t(m.weight.T)[:, :, None, None])
        self.use_rope, self.learnable = b.use_rope, b.learnable_rope
        if b.use_rope and b.learnable_rope:
            assert b.rope_freqs is not None
            self.register_buffer("rope_freqs", _t(b.rope_freqs))  # [kv, pairs, 2]
        elif b.use_rope:
            theta = float(b.rope_theta_token or "100")
            pairs = self.qd // 2
            per_dim = pairs // 2
            dim_half = self.qd // 2
            p = np.arange(pairs)
            exps = np.where(p < per_dim, 2 * p, 2 * (p - per_dim)).astype(np.float32) / np.float32(dim_half)
            freqs = (np.float32(1.0) / np.power(np.float32(theta), exps, dtype=np.float32)).astype(np.float32)
            use_y = (p < per_dim).astype(np.float32)
            # [1, pairs, 2] so the same code path as learnable RoPE applies: angle = x*fx + y*fy
            fixed = np.stack([freqs * (1 - use_y), freqs * use_y], axis=-1)[None]
            self.register_buffer("rope_freqs", _t(fixed))

    def _angles(self, h: int, w: int, device) -> Tensor:
        ys, xs = torch.meshgrid(
            torch.arange(h, device=device, dtype=torch.float32),
            torch.arange(w, device=device, dtype=torch.float32),
            indexing="ij",
        )
        pos = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)  # [HW, 2]
        return torch.einsum("kpc,sc->ksp", self.rope_freqs, pos)  # [kv|1, HW, pairs]

    @staticmethod
    def _rotate(t: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        # t: [N, heads, HW, d]; interleaved pairs (2p, 2p+1)
        t0, t1 = t[..., 0::2], t[..., 1::2]
        return torch.stack([t0 * cos - t1 * sin, t0 * sin + t1 * cos], dim=-1).flatten(-2)

    def forward(self, x: Tensor, ctx: _Ctx) -> Tensor:
        n, _, h, w = x.shape
        hw = h * w
        xn = self.norm(x, ctx)
        q = _conv1x1(xn, self.wq).view(n, self.heads, self.qd, hw).transpose(2, 3)
        k = _conv1x1(xn, self.wk).view(n, self.kv_heads, self.qd, hw).transpose(2, 3)
        v = _conv1x1(xn, self.wv).view(n, self.kv_heads, self.vd, hw).transpose(2, 3)
        group = self.heads // self.kv_heads
        if self.use_rope:
            ang = self._angles(h, w, x.device)  # [kv or 1, HW, pairs]
            cos, sin = torch.cos(ang), torch.sin(ang)
            k = self._rotate(k, cos, sin)
            if ang.shape[0] > 1:
                cos, sin = cos.repeat_interleave(group, dim=0), sin.repeat_interleave(group, dim=0)
            q = self._rotate(q, cos, sin)
        if group > 1:
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        attn_mask = ctx.mask_flat  # True = may attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=1.0 / math.sqrt(self.qd))
        out = out.transpose(2, 3).reshape(n, self.heads * self.vd, h, w)
        return x + _apply_mask(_conv1x1(out, self.wo), ctx)


class FFNBlock(nn.Module):
    def __init__(self, b: d.FFNBlock):
        super().__init__()
        if not b.swiglu or b.gate is None:
            from katadeploy.errors import ModelFormatError

            raise ModelFormatError("non-SwiGLU transformer FFN blocks are not supported by KataGo", b.name)
        self.norm = TransformerRMSNorm(b.pre_norm)
        self.register_buffer("w1", _t(b.linear1.weight.T)[:, :, None, None])
        self.register_buffer("wg", _t(b.gate.weight.T)[:, :, None, None])
        self.register_buffer("w2", _t(b.linear2.weight.T)[:, :, None, None])

    def forward(self, x: Tensor, ctx: _Ctx) -> Tensor:
        xn = self.norm(x, ctx)
        hidden = F.silu(_conv1x1(xn, self.w1)) * _conv1x1(xn, self.wg)
        return x + _apply_mask(_conv1x1(hidden, self.w2), ctx)


def make_block(b: d.Block) -> nn.Module:
    if isinstance(b, d.OrdinaryBlock):
        return OrdinaryBlock(b)
    if isinstance(b, d.GPoolBlock):
        return GPoolBlock(b)
    if isinstance(b, d.NestedBottleneckBlock):
        return NestedBottleneckBlock(b)
    if isinstance(b, d.AttentionBlock):
        return AttentionBlock(b)
    if isinstance(b, d.FFNBlock):
        return FFNBlock(b)
    raise TypeError(f"unknown block type {type(b).__name__}")


class TrunkTipRMSNorm(nn.Module):
    def __init__(self, n: d.RMSNorm, act: d.Activation):
        super().__init__()
        self.register_buffer("gamma", _t(n.gamma).view(1, -1, 1, 1))
        self.register_buffer("beta", _t(n.beta).view(1, -1, 1, 1))
        self.eps, self.spatial, self.kind = float(n.epsilon), n.spatial, act.kind

    def forward(self, x: Tensor, ctx: _Ctx) -> Tensor:
        x = _apply_mask(x, ctx)
        if self.spatial:
            c = x.shape[1]
            ms = x.square().sum(dim=(1, 2, 3)) / (ctx.mask_sum[:, 0] * c)
            y = x * torch.rsqrt(ms + self.eps)[:, None, None, None]
        else:
            y = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)
        return _apply_mask(_act(self.kind, y * self.gamma + self.beta), ctx)


class MetaEncoder(nn.Module):
    def __init__(self, e: d.MetaEncoder):
        super().__init__()
        self.l1 = Linear(e.mul1, e.bias1)
        self.l2 = Linear(e.mul2, e.bias2)
        self.l3 = Linear(e.mul3)
        self.k1, self.k2 = e.act1.kind, e.act2.kind

    def forward(self, meta: Tensor) -> Tensor:
        return self.l3(_act(self.k2, self.l2(_act(self.k1, self.l1(meta)))))


class PolicyHead(nn.Module):
    def __init__(self, p: d.PolicyHead):
        super().__init__()
        self.conv1p = Conv(p.p1_conv)
        self.conv1g = Conv(p.g1_conv)
        self.normg = NormAct(p.g1_bn, p.g1_act)
        self.linear_g = Linear(p.gpool_to_bias_mul)
        self.norm2 = NormAct(p.p1_bn, p.p1_act)
        self.conv2p = Conv(p.p2_conv)
        self.linear_pass = Linear(p.gpool_to_pass_mul, p.gpool_to_pass_bias)
        self.pass_kind = p.pass_act.kind if p.pass_act is not None else None
        self.linear_pass2 = Linear(p.gpool_to_pass_mul2) if p.gpool_to_pass_mul2 is not None else None

    def forward(self, x: Tensor, ctx: _Ctx) -> tuple[Tensor, Tensor]:
        p1 = self.conv1p(x)
        g = self.normg(self.conv1g(x), ctx)
        gp = kata_gpool(g, ctx)
        p1 = self.norm2(p1 + self.linear_g(gp)[:, :, None, None], ctx)
        policy = self.conv2p(p1)
        pas = self.linear_pass(gp)
        if self.linear_pass2 is not None:
            pas = self.linear_pass2(_act(self.pass_kind or "ACTIVATION_IDENTITY", pas))
        return policy, pas


class ValueHead(nn.Module):
    def __init__(self, v: d.ValueHead):
        super().__init__()
        self.conv1 = Conv(v.v1_conv)
        self.norm1 = NormAct(v.v1_bn, v.v1_act)
        self.linear2 = Linear(v.v2_mul, v.v2_bias)
        self.kind2 = v.v2_act.kind
        self.linear_value = Linear(v.v3_mul, v.v3_bias)
        self.linear_score = Linear(v.sv3_mul, v.sv3_bias)
        self.conv_own = Conv(v.ownership_conv)

    def forward(self, x: Tensor, ctx: _Ctx) -> tuple[Tensor, Tensor, Tensor]:
        v1 = self.norm1(self.conv1(x), ctx)
        v2 = _act(self.kind2, self.linear2(value_gpool(v1, ctx)))
        return self.linear_value(v2), self.linear_score(v2), self.conv_own(v1)


class KataGoNet(nn.Module):
    """The whole net; see the module docstring for the input/output contract."""

    def __init__(self, desc: d.ModelDesc, use_mask: bool = True):
        super().__init__()
        self.desc = desc
        self.use_mask = use_mask
        t = desc.trunk
        self.conv_spatial = Conv(t.initial_conv)
        self.linear_global = Linear(t.initial_matmul)
        self.meta_encoder = MetaEncoder(t.meta_encoder) if t.meta_encoder is not None else None
        self.blocks = nn.ModuleList(make_block(b) for b in t.blocks)
        if isinstance(t.tip_norm, d.RMSNorm):
            self.trunk_tip: nn.Module = TrunkTipRMSNorm(t.tip_norm, t.tip_act)
        else:
            self.trunk_tip = NormAct(t.tip_norm, t.tip_act)
        self.policy_head = PolicyHead(desc.policy)
        self.value_head = ValueHead(desc.value)
        self.eval()

    @property
    def num_meta_channels(self) -> int:
        return self.desc.num_meta_channels

    def _context(self, spatial: Tensor) -> _Ctx:
        n, _, h, w = spatial.shape
        if not self.use_mask:
            mask_sum = torch.full((n, 1), float(h * w), dtype=spatial.dtype, device=spatial.device)
            return _Ctx(None, mask_sum, None)
        mask = spatial[:, 0:1]
        mask_sum = mask.sum(dim=(2, 3))
        mask_flat = (mask.reshape(n, 1, 1, h * w) > 0.5) if self.desc.has_transformer else None
        return _Ctx(mask, mask_sum, mask_flat)

    def forward(self, spatial: Tensor, global_: Tensor, meta: Tensor | None = None) -> RawOutputs:
        ctx = self._context(spatial)
        x = self.conv_spatial(spatial) + self.linear_global(global_)[:, :, None, None]
        if self.meta_encoder is not None:
            if meta is None:
                raise ValueError(
                    f"{self.desc.name} is a human-SL net: it needs the 192-channel SGF metadata input"
                )
            x = x + self.meta_encoder(meta)[:, :, None, None]
        for block in self.blocks:
            x = block(x, ctx)
        x = self.trunk_tip(x, ctx)
        policy, policy_pass = self.policy_head(x, ctx)
        value, score, ownership = self.value_head(x, ctx)
        return RawOutputs(policy, policy_pass, value, score, ownership)
