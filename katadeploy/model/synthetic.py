"""Tiny KataGo nets with random weights, for tests of the codec and of the net against the real KataGo binary.

Contract: :func:`random_model` builds a valid :class:`ModelDesc` for any model version 3-17 from a compact block
spec, with well-conditioned random weights (fan-in scaled, general BatchNorm statistics), deterministic for a seed.
Block spec strings: ``"ordinary"``, ``"gpool"``, ``"nested(<spec>,<spec>,...)"``, ``"attn"`` (options after ``:``,
e.g. ``"attn:h4:kv2:q8:v4:rope=learn"`` or ``rope=fixed`` / ``rope=none``) and ``"ffn"`` (SwiGLU).
"""

from __future__ import annotations

import numpy as np

from katadeploy.model import desc as d

#: (spatial, global) input channel counts by model version
INPUT_CHANNELS = {3: (22, 14), 4: (22, 14), 5: (22, 14), 6: (13, 12), 7: (22, 16)}


def input_channels(version: int) -> tuple[int, int]:
    return INPUT_CHANNELS.get(version, (22, 19))


def _split_top(spec: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in spec:
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _options(opts: list[str]) -> dict:
    """``["h4", "kv2", "q8", "v4", "rope=fixed"]`` -> ``{"h": 4, "kv": 2, "q": 8, "v": 4, "rope": "fixed"}``."""
    out: dict = {}
    for opt in opts:
        if opt.startswith("rope="):
            out["rope"] = opt[len("rope=") :]
        elif opt.startswith("kv"):
            out["kv"] = int(opt[2:])
        elif opt[:1] in ("h", "q", "v"):
            out[opt[0]] = int(opt[1:])
        else:
            raise ValueError(f"bad block option {opt!r}")
    return out


class _Gen:
    def __init__(self, seed: int, version: int, act: str):
        self.rng = np.random.default_rng(seed)
        self.version = version
        self.act_kind = act if version >= 11 else "ACTIVATION_RELU"
        self.count = 0

    def nm(self, base: str) -> str:
        self.count += 1
        return f"{base}{self.count}"

    def conv(self, ic: int, oc: int, k: int = 3, gain: float = 1.0) -> d.Conv:
        w = self.rng.standard_normal((oc, ic, k, k)).astype(np.float32) * np.float32(
            gain / np.sqrt(ic * k * k)
        )
        return d.Conv(self.nm("conv"), w)

    def bn(self, c: int, scale: bool = True, bias: bool = True) -> d.BatchNorm:
        r = self.rng
        return d.BatchNorm(
            self.nm("bn"), float(np.float32(1e-5)), (r.standard_normal(c) * 0.1).astype(np.float32),
            (r.uniform(0.5, 1.5, c)).astype(np.float32),
            (r.uniform(0.5, 1.2, c)).astype(np.float32) if scale else None,
            (r.standard_normal(c) * 0.1).astype(np.float32) if bias else None,
        )  # fmt: skip

    def act(self) -> d.Activation:
        return d.Activation(self.nm("act"), self.act_kind)

    def mat(self, ic: int, oc: int, gain: float = 1.0) -> d.MatMul:
        return d.MatMul(
            self.nm("mat"), (self.rng.standard_normal((ic, oc)) * (gain / np.sqrt(ic))).astype(np.float32)
        )

    def bias(self, c: int) -> d.MatBias:
        return d.MatBias(self.nm("bias"), (self.rng.standard_normal(c) * 0.1).astype(np.float32))

    def tf_norm(self, c: int) -> d.TransformerRMSNorm:
        return d.TransformerRMSNorm(self.nm("ln"), 1e-6, self.rng.uniform(0.8, 1.2, c).astype(np.float32))

    def block(self, spec: str, c: int) -> d.Block:
        spec = spec.strip()
        if spec == "ordinary":
            return d.OrdinaryBlock(self.nm("block"), self.bn(c), self.act(), self.conv(c, c), self.bn(c), self.act(),
                                   self.conv(c, c, gain=0.5))  # fmt: skip
        if spec == "gpool":
            g = max(2, c // 4)
            return d.GPoolBlock(self.nm("gblock"), self.bn(c), self.act(), self.conv(c, c - g), self.conv(c, g),
                                self.bn(g), self.act(), self.mat(3 * g, c - g), self.bn(c - g), self.act(),
                                self.conv(c - g, c, gain=0.5))  # fmt: skip
        if spec.startswith("nested(") and spec.endswith(")"):
            inner = _split_top(spec[len("nested(") : -1])
            mid = max(4, c // 2)
            return d.NestedBottleneckBlock(
                self.nm("nblock"), self.bn(c), self.act(), self.conv(c, mid, k=1),
                [self.block(s, mid) for s in inner], self.bn(mid), self.act(), self.conv(mid, c, k=1, gain=0.5),
            )  # fmt: skip
        kind, *opts = spec.split(":")
        o = _options(opts)
        if kind == "attn":
            heads, kv = o.get("h", 2), o.get("kv", o.get("h", 2))
            qd, vd = o.get("q", 8), o.get("v", o.get("q", 8))
            rope = o.get("rope", "learn")
            b = d.AttentionBlock(
                self.nm("attn"), heads, kv, qd, vd, rope != "none", rope == "learn", self.tf_norm(c),
                self.mat(c, heads * qd), self.mat(c, kv * qd), self.mat(c, kv * vd), self.mat(heads * vd, c, gain=0.5),
            )  # fmt: skip
            if rope == "learn":
                b.rope_name = self.nm("rope_freqs")
                b.rope_freqs = self.rng.uniform(-1.0, 1.0, (kv, qd // 2, 2)).astype(np.float32)
            elif rope == "fixed":
                b.rope_name, b.rope_theta_token = self.nm("rope_theta"), "100"
            return b
        if kind == "ffn":
            f = 2 * c
            return d.FFNBlock(self.nm("ffn"), c, f, True, self.tf_norm(c), self.mat(c, f), self.mat(c, f),
                              self.mat(f, c, gain=0.5))  # fmt: skip
        raise ValueError(f"bad block spec {spec!r}")


def random_model(
    version: int = 14,
    blocks: str = "ordinary,gpool",
    channels: int = 16,
    *,
    seed: int = 0,
    activation: str = "ACTIVATION_MISH",
    tip: str = "bn",
    policy_channels: int | None = None,
    meta: bool = False,
    name: str | None = None,
    initial_kernel: int = 3,
    mid_channels: int | None = None,
) -> d.ModelDesc:
    """A random but valid net; ``tip`` is ``"bn"``, ``"rms"`` or ``"rms-spatial"`` (RMSNorm needs v15+).

    ``mid_channels`` only sets the trunk header's informational field (KataGo keys its OpenCL tuning on it)."""
    g = _Gen(seed, version, activation)
    c = channels
    n_in, n_glob = input_channels(version)
    specs = _split_top(blocks)
    meta_enc = None
    if meta:
        mi = 8
        meta_enc = d.MetaEncoder("meta", 192, g.mat(192, mi), g.bias(mi), g.act(), g.mat(mi, mi), g.bias(mi), g.act(),
                                 g.mat(mi, c, gain=0.5))  # fmt: skip
    if tip == "bn":
        tip_norm: d.BatchNorm | d.RMSNorm = g.bn(c)
    else:
        tip_norm = d.RMSNorm("tip", 1e-6, tip == "rms-spatial", g.rng.uniform(0.8, 1.2, c).astype(np.float32),
                             (g.rng.standard_normal(c) * 0.1).astype(np.float32))  # fmt: skip
    trunk = d.Trunk(
        "trunk", len(specs), c, mid_channels or c // 2, c // 2, c // 4, c // 4, 0 if tip == "bn" else 1,
        g.conv(n_in, c, k=initial_kernel), g.mat(n_glob, c), meta_enc, [g.block(s, c) for s in specs], tip_norm, g.act(),
    )  # fmt: skip
    if policy_channels is None:
        policy_channels = 4 if version == 16 else 2 if version >= 12 else 1
    p1, g1 = 6, 4
    pol = d.PolicyHead(
        "policy", policy_channels, g.conv(c, p1, k=1), g.conv(c, g1, k=1), g.bn(g1), g.act(), g.mat(3 * g1, p1),
        g.bn(p1), g.act(), g.conv(p1, policy_channels, k=1), g.mat(3 * g1, p1 if version >= 15 else policy_channels),
    )  # fmt: skip
    if version >= 15:
        pol.gpool_to_pass_bias, pol.pass_act, pol.gpool_to_pass_mul2 = (
            g.bias(p1),
            g.act(),
            g.mat(p1, policy_channels),
        )
    s = 6 if version >= 9 else 4 if version >= 8 else 2 if version >= 4 else 1
    v1, v2 = 6, 8
    val = d.ValueHead("value", g.conv(c, v1, k=1), g.bn(v1), g.act(), g.mat(3 * v1, v2), g.bias(v2), g.act(),
                      g.mat(v2, 3), g.bias(3), g.mat(v2, s, gain=0.3), g.bias(s), g.conv(v1, 1, k=1))  # fmt: skip
    mult = (20.0, 20.0, 20.0, 20.0, 40.0, 0.25, 150.0) if version >= 13 else d.DEFAULT_MULTIPLIERS
    return d.ModelDesc(
        name=name or f"synthetic-v{version}", version=version, num_input_channels=n_in, num_input_global_channels=n_glob,
        trunk=trunk, policy=pol, value=val, multipliers=mult, meta_encoder_version=1 if meta else 0,
        multiplier_tokens=tuple(repr(x) for x in mult) if version >= 13 else None,
    )  # fmt: skip
