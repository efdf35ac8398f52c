"""Summary statistics of a :class:`ModelDesc`: architecture, parameter count and FLOPs per evaluation.

Contract: ``parameter_count`` counts what the net uses at inference, KataGo-style (BatchNorm running mean and
variance are excluded; scale/bias, norms, RoPE frequencies and all weights are included). ``flops`` counts
multiply and add as 2 FLOPs for convolutions, matmuls and attention (QK^T and AV) on an ``x_len`` by ``y_len``
tensor; elementwise ops are ignored (they are < 1% on real nets).
"""

from __future__ import annotations

from collections import Counter

from katadeploy.model import desc as d


def _conv_params(c: d.Conv) -> int:
    return int(c.weight.size)


def _bn_params(b: d.BatchNorm) -> int:
    return (b.channels if b.scale is not None else 0) + (b.channels if b.bias is not None else 0)


def _walk_params(obj) -> int:
    if isinstance(obj, d.Conv):
        return _conv_params(obj)
    if isinstance(obj, d.BatchNorm):
        return _bn_params(obj)
    if isinstance(obj, d.MatMul):
        return int(obj.weight.size)
    if isinstance(obj, d.MatBias):
        return int(obj.bias.size)
    if isinstance(obj, d.RMSNorm):
        return int(obj.gamma.size + obj.beta.size)
    if isinstance(obj, d.TransformerRMSNorm):
        return int(obj.weight.size)
    if isinstance(obj, list):
        return sum(_walk_params(x) for x in obj)
    if hasattr(obj, "__dataclass_fields__"):
        total = 0
        for name in obj.__dataclass_fields__:
            value = getattr(obj, name)
            if name == "rope_freqs" and value is not None:
                total += int(value.size)
            else:
                total += _walk_params(value)
        return total
    return 0


def parameter_count(model: d.ModelDesc) -> int:
    return _walk_params(model.trunk) + _walk_params(model.policy) + _walk_params(model.value)


def _flops(obj, hw: int) -> int:
    if isinstance(obj, d.Conv):
        return 2 * hw * int(obj.weight.size)
    if isinstance(obj, d.AttentionBlock):
        proj = sum(int(m.weight.size) for m in (obj.q_proj, obj.k_proj, obj.v_proj, obj.out_proj))
        attn = obj.num_heads * hw * hw * (obj.q_head_dim + obj.v_head_dim)
        return 2 * (hw * proj + attn)
    if isinstance(obj, d.FFNBlock):
        mats = [obj.linear1, obj.linear2] + ([obj.gate] if obj.gate is not None else [])
        return 2 * hw * sum(int(m.weight.size) for m in mats)
    if isinstance(obj, d.MatMul):  # global (per-board) matmuls
        return 2 * int(obj.weight.size)
    if isinstance(obj, list):
        return sum(_flops(x, hw) for x in obj)
    if hasattr(obj, "__dataclass_fields__"):
        return sum(_flops(getattr(obj, n), hw) for n in obj.__dataclass_fields__)
    return 0


def flops(model: d.ModelDesc, x_len: int = 19, y_len: int = 19) -> int:
    hw = x_len * y_len
    return _flops(model.trunk, hw) + _flops(model.policy, hw) + _flops(model.value, hw)


def block_kinds(model: d.ModelDesc) -> Counter:
    return Counter(d.BLOCK_KINDS[type(b)] for b in model.iter_blocks())


def summary(model: d.ModelDesc, x_len: int = 19, y_len: int = 19) -> dict:
    t = model.trunk
    acts = sorted({a.kind.removeprefix("ACTIVATION_").lower() for a in _activations(model)})
    return {
        "name": model.name,
        "modelVersion": model.version,
        "inputs": {"spatial": model.num_input_channels, "global": model.num_input_global_channels,
                   "meta": model.num_meta_channels},
        "trunk": {"blocks": len(t.blocks), "channels": t.channels, "midChannels": t.mid_channels,
                  "gpoolChannels": t.gpool_channels,
                  "tip": "rmsnorm" + ("-spatial" if isinstance(t.tip_norm, d.RMSNorm) and t.tip_norm.spatial else "")
                  if isinstance(t.tip_norm, d.RMSNorm) else "batchnorm",
                  "blockKinds": dict(block_kinds(model))},
        "activations": acts,
        "heads": {"policyChannels": model.num_policy_channels,
                  "passHead": "mlp" if model.policy.gpool_to_pass_mul2 is not None else "linear",
                  "scoreChannels": model.num_score_channels, "ownership": True},
        "postProcessMultipliers": list(model.multipliers),
        "metaEncoderVersion": model.meta_encoder_version,
        "preferPassAliveUnderSuicideRules": model.prefer_pass_alive_under_suicide,
        "parameters": parameter_count(model),
        "gflopsPerEval": round(flops(model, x_len, y_len) / 1e9, 3),
        "boardTensor": [x_len, y_len],
    }  # fmt: skip


def _activations(obj):
    if isinstance(obj, d.Activation):
        yield obj
    elif isinstance(obj, list):
        for x in obj:
            yield from _activations(x)
    elif hasattr(obj, "__dataclass_fields__") and not isinstance(obj, (d.Conv, d.MatMul, d.MatBias)):
        for n in obj.__dataclass_fields__:
            yield from _activations(getattr(obj, n))
