"""What each node of katadeploy's exported ONNX graph belongs to, from the module scope torch gives its name.

Contract: :func:`node_scopes` parses ``/net/blocks.3/norm/Mul`` into ``["net", "blocks.3", "norm"]``;
:func:`node_role` maps a node to one role (``stem``, ``norm_bn``, ``norm_rms``, ``trunk_tip``,
``attention_softmax``, ``attention_matmul``, ``trunk``, ``policy_head``, ``value_head``, ``other``), the one seam
through which the FP16 writer (FP32 islands) and every INT8 recipe (layers kept float) choose precision;
:func:`summarize_nodes` counts ``(name, op, role)`` triples for manifests. Needs neither torch nor onnx.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from katadeploy.model import desc as d
from katadeploy.model.desc import ModelDesc

# Module scopes inside KataGoNet (see katadeploy.model.net)
STEM_SCOPES = ("conv_spatial", "linear_global", "meta_encoder")
BN_NORM_SCOPES = ("pre", "mid", "normg", "post", "norm1", "norm2")
RMS_NORM_SCOPES = ("norm",)
HEAD_SCOPES = {"policy_head": "policy_head", "value_head": "value_head"}


def node_scopes(name: str) -> list[str]:
    """The module path of a node exported by torch: ``/net/blocks.3/norm/Mul`` -> ``["net", "blocks.3", "norm"]``.

    Nodes renamed by later passes keep the prefix (``/net/blocks.3/Conv_..._fused``), so only the part up to the
    last ``/`` counts."""
    if not name.startswith("/"):
        return []
    return [p for p in name.split("/")[1:-1] if p]


def node_role(name: str, op_type: str, model: ModelDesc) -> str:
    """What a node of the exported graph belongs to, from its module scope.

    One of ``stem`` (initial conv, global linear, meta encoder, mask/input arithmetic), ``norm_bn`` (folded
    BatchNorm affine + activation + mask), ``norm_rms`` (transformer RMSNorm; the trunk-tip norm when it is an
    RMSNorm), ``trunk_tip`` (BatchNorm trunk tip), ``attention_softmax``, ``attention_matmul`` (QK^T and
    attention x V), ``trunk`` (everything else in the blocks), ``policy_head``, ``value_head``, or ``other``
    (nodes without a module scope).
    """
    scopes = node_scopes(name)
    if not scopes or scopes[0] != "net":
        return "other"
    rest = scopes[1:]
    if not rest:
        return "stem"  # top-level arithmetic: mask sums, stem sum
    head = rest[0]
    if head in STEM_SCOPES:
        return "stem"
    if head in HEAD_SCOPES:
        return HEAD_SCOPES[head]
    if head == "trunk_tip":
        return "norm_rms" if isinstance(model.trunk.tip_norm, d.RMSNorm) else "trunk_tip"
    if head.startswith("blocks."):
        inner = rest[1:]
        if any(s in RMS_NORM_SCOPES for s in inner):
            return "norm_rms"
        if any(s in BN_NORM_SCOPES for s in inner):
            return "norm_bn"
        if _is_attention_block(model, rest):
            if op_type == "Softmax":
                return "attention_softmax"
            if op_type == "MatMul":
                return "attention_matmul"
        return "trunk"
    return "other"


def _is_attention_block(model: ModelDesc, rest: list[str]) -> bool:
    blocks: Any = model.trunk.blocks
    block: Any = None
    for part in rest:
        if not part.startswith("blocks."):
            break
        try:
            block = blocks[int(part.split(".", 1)[1])]
        except (ValueError, IndexError):
            return False
        blocks = getattr(block, "blocks", [])
    return isinstance(block, d.AttentionBlock)


def summarize_nodes(nodes: Iterable[tuple[str, str, str]]) -> dict[str, Any]:
    """``(name, op_type, role)`` triples -> ``{"count", "by_role": {role: {op: n}}, "by_op": {op: n}}``."""
    by_role: dict[str, Counter[str]] = {}
    by_op: Counter[str] = Counter()
    n = 0
    for _name, op, role in nodes:
        by_role.setdefault(role, Counter())[op] += 1
        by_op[op] += 1
        n += 1
    return {
        "count": n,
        "by_role": {r: dict(sorted(c.items())) for r, c in sorted(by_role.items())},
        "by_op": dict(sorted(by_op.items())),
    }
