"""Writer for KataGo's model format: the inverse of :mod:`katadeploy.model.format`.

Contract:
- :func:`save_model` writes ``.bin.gz``, ``.bin``, ``.txt.gz`` or ``.txt`` (chosen by suffix) in the layout KataGo's
  loader reads (one token per line, as KataGo's own PyTorch exporter writes).
- Loading what we write gives tensors identical to the ones written: binary floats are the raw float32 bytes,
  text floats use 9 significant digits (enough to round-trip any float32), and scalar header tokens that came
  from a file (post-processing multipliers, RoPE theta) are written back verbatim.
- Gzip output is deterministic (mtime 0).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from katadeploy.errors import KatadeployError
from katadeploy.files import atomic_write_bytes
from katadeploy.model import desc as d


class _Out:
    def __init__(self, binary: bool, version: int):
        self.binary = binary
        self.version = version
        self.parts: list[bytes] = []

    def tok(self, *values: object) -> None:
        for v in values:
            if isinstance(v, bool):
                v = int(v)
            if isinstance(v, float):
                v = repr(v)
            self.parts.append(f"{v}\n".encode("ascii"))

    def floats(self, arr: np.ndarray) -> None:
        flat = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)
        if self.binary:
            self.parts.append(b"@BIN@" + flat.astype("<f4").tobytes() + b"\n")
        else:
            self.parts.append(("\n".join(f"{x:.9g}" for x in flat.tolist()) + "\n").encode("ascii"))

    def conv(self, c: d.Conv) -> None:
        oc, ic, ky, kx = c.weight.shape
        self.tok(c.name, ky, kx, ic, oc, c.dilation_y, c.dilation_x)
        self.floats(c.weight.transpose(2, 3, 1, 0))

    def bn(self, b: d.BatchNorm) -> None:
        self.tok(b.name, b.channels, b.epsilon, b.scale is not None, b.bias is not None)
        self.floats(b.mean)
        self.floats(b.variance)
        if b.scale is not None:
            self.floats(b.scale)
        if b.bias is not None:
            self.floats(b.bias)

    def act(self, a: d.Activation) -> None:
        self.tok(a.name)
        if self.version >= 11:
            self.tok(a.kind)

    def matmul(self, m: d.MatMul) -> None:
        self.tok(m.name, m.in_channels, m.out_channels)
        self.floats(m.weight)

    def matbias(self, m: d.MatBias) -> None:
        self.tok(m.name, m.bias.shape[0])
        self.floats(m.bias)

    def tf_norm(self, n: d.TransformerRMSNorm) -> None:
        self.tok(n.name, n.weight.shape[0], n.epsilon)
        self.floats(n.weight)

    def block(self, b: d.Block) -> None:
        self.tok(d.BLOCK_KINDS[type(b)])
        if isinstance(b, d.OrdinaryBlock):
            self.tok(b.name)
            self.bn(b.pre_bn), self.act(b.pre_act), self.conv(b.regular_conv)
            self.bn(b.mid_bn), self.act(b.mid_act), self.conv(b.final_conv)
        elif isinstance(b, d.GPoolBlock):
            self.tok(b.name)
            self.bn(b.pre_bn), self.act(b.pre_act), self.conv(b.regular_conv), self.conv(b.gpool_conv)
            self.bn(b.gpool_bn), self.act(b.gpool_act), self.matmul(b.gpool_to_bias_mul)
            self.bn(b.mid_bn), self.act(b.mid_act), self.conv(b.final_conv)
        elif isinstance(b, d.NestedBottleneckBlock):
            self.tok(b.name, len(b.blocks))
            self.bn(b.pre_bn), self.act(b.pre_act), self.conv(b.pre_conv)
            for inner in b.blocks:
                self.block(inner)
            self.bn(b.post_bn), self.act(b.post_act), self.conv(b.post_conv)
        elif isinstance(b, d.AttentionBlock):
            self.tok(
                b.name, b.num_heads, b.num_kv_heads, b.q_head_dim, b.v_head_dim, b.use_rope, b.learnable_rope
            )
            self.tf_norm(b.pre_norm)
            self.matmul(b.q_proj), self.matmul(b.k_proj), self.matmul(b.v_proj), self.matmul(b.out_proj)
            if b.use_rope and b.learnable_rope:
                assert b.rope_freqs is not None
                self.tok(b.rope_name or f"{b.name}.rope_freqs", b.num_kv_heads, b.q_head_dim // 2, 2)
                self.floats(b.rope_freqs)
            elif b.use_rope:
                self.tok(b.rope_name or f"{b.name}.rope_theta", b.rope_theta_token or "100")
        elif isinstance(b, d.FFNBlock):
            self.tok(b.name, b.channels, b.ffn_channels, b.swiglu)
            self.tf_norm(b.pre_norm)
            self.matmul(b.linear1)
            if b.gate is not None:
                self.matmul(b.gate)
            self.matmul(b.linear2)
        else:  # pragma: no cover
            raise TypeError(f"unknown block {type(b)}")

    def model(self, m: d.ModelDesc) -> None:
        self.tok(m.name, m.version, m.num_input_channels, m.num_input_global_channels)
        if m.version >= 13:
            tokens = m.multiplier_tokens or tuple(repr(float(x)) for x in m.multipliers)
            self.tok(*tokens)
        if m.version >= 15:
            self.tok(m.meta_encoder_version, m.prefer_pass_alive_under_suicide, 0, 0, 0, 0, 0, 0)
        t = m.trunk
        self.tok(
            t.name,
            len(t.blocks),
            t.channels,
            t.mid_channels,
            t.regular_channels,
            t.dilated_channels,
            t.gpool_channels,
        )
        if m.version >= 15:
            self.tok(t.norm_kind, 0, 0, 0, 0, 0)
        elif t.norm_kind != 0:
            raise KatadeployError("an RMSNorm trunk tip needs model version >= 15")
        self.conv(t.initial_conv)
        self.matmul(t.initial_matmul)
        if t.meta_encoder is not None:
            e = t.meta_encoder
            self.tok(e.name, e.num_input_channels)
            self.matmul(e.mul1), self.matbias(e.bias1), self.act(e.act1)
            self.matmul(e.mul2), self.matbias(e.bias2), self.act(e.act2), self.matmul(e.mul3)
        for b in t.blocks:
            self.block(b)
        if isinstance(t.tip_norm, d.RMSNorm):
            n = t.tip_norm
            self.tok(n.name, n.gamma.shape[0], n.epsilon, n.spatial, n.cgroup_size)
            self.floats(n.gamma)
            self.floats(n.beta)
        else:
            self.bn(t.tip_norm)
        self.act(t.tip_act)
        p = m.policy
        self.tok(p.name)
        if m.version >= 17:
            self.tok(p.out_channels, 0, 0, 0)
        self.conv(p.p1_conv), self.conv(p.g1_conv), self.bn(p.g1_bn), self.act(p.g1_act)
        self.matmul(p.gpool_to_bias_mul), self.bn(p.p1_bn), self.act(p.p1_act), self.conv(p.p2_conv)
        self.matmul(p.gpool_to_pass_mul)
        if m.version >= 15:
            assert p.gpool_to_pass_bias and p.pass_act and p.gpool_to_pass_mul2
            self.matbias(p.gpool_to_pass_bias), self.act(p.pass_act), self.matmul(p.gpool_to_pass_mul2)
        v = m.value
        self.tok(v.name)
        if m.version >= 17:
            self.tok(0, 0, 0)
        (
            self.conv(v.v1_conv),
            self.bn(v.v1_bn),
            self.act(v.v1_act),
            self.matmul(v.v2_mul),
            self.matbias(v.v2_bias),
        )
        self.act(v.v2_act), self.matmul(v.v3_mul), self.matbias(v.v3_bias), self.matmul(v.sv3_mul)
        self.matbias(v.sv3_bias), self.conv(v.ownership_conv)


def model_to_bytes(model: d.ModelDesc, binary: bool = True) -> bytes:
    out = _Out(binary, model.version)
    out.model(model)
    return b"".join(out.parts)


def save_model(model: d.ModelDesc, path: str | os.PathLike) -> Path:
    """Write ``model`` to ``path``; the suffix picks binary/text floats and gzip."""
    p = Path(path)
    lower = p.name.lower()
    if lower.endswith((".bin.gz", ".bin")):
        binary = True
    elif lower.endswith((".txt.gz", ".txt")):
        binary = False
    else:
        raise KatadeployError(f"output must end with .bin.gz, .txt.gz, .bin or .txt: {p.name}")
    data = model_to_bytes(model, binary)
    if lower.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    return atomic_write_bytes(p, data)
