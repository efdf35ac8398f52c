"""Which convolutions of an onnx-int8 graph get activation groups: the options and the gate-ranked choice.

Contract
--------
:func:`group_spec` reads two export options into a :class:`GroupSpec`:

- ``options["int8_act_groups"]`` K (default :data:`DEFAULT_ACT_GROUPS`, 16): the channel groups of a grouped conv's
  input (:mod:`katadeploy.export.int8_repair`, "Activation groups"); 1 is one u8 scale per conv input.
- ``options["int8_group_floor"]`` F (default :data:`DEFAULT_GROUP_FLOOR`): each group's range is at least F times
  its layer's span, a guard against a narrow group clipping an unseen position (0: the calibration maxima alone).
- ``options["int8_group_margin"]`` M (default :data:`DEFAULT_GROUP_MARGIN`, 1.15): each group's calibration range
  is stretched M times before the floor (headroom for positions beyond the calibration maxima). Measured on
  g170-b6c96 (2026-12-07, scripts/reports/int8/groups/README.md "Widening the every-size set"): it removes clipping
  tails (16 groups, one calibration seed: worst set 3.27x -> 1.01x KataGo's limit at M = 1.15) and costs the 19x19
  policy KL, which is quadratic in the step (8 groups: oracle 0.86x -> 1.49x at 1.15).
- ``options["int8_group_tail"]`` T (default 0: off): each group's range first widened by T times the gap between
  its most extreme calibration position and its 10th (:func:`katadeploy.export.int8_repair.tail_range`): headroom
  where one position set the maximum, the calibration maximum where many reach it.

The defaults (16 groups, margin 1.15, floor 0.5) with onnx_int8's 768 calibration positions and GPTQ's Hessians on
all of them are the first recipe that passed KataGo's FP16 gate on g170-b6c96 for three calibration seeds, on four
position sets each (the 80 oracle positions, 256 held-out, 512 and 760 fresh self-play/random positions; worst
0.89x / 0.87x / 0.75x KataGo's limit over the sets, per seed; 94% int8 MACs, no float fallback). 8 groups passed
the oracle on every seed but missed one held-out position per seed (1.05-1.42x); 16 groups without the margin
clipped unseen positions (up to 3.27x).
- ``options["int8_group_scopes"]``: which repaired convs are grouped. Unset: all of them. A list of module scopes
  (``blocks.11,blocks.12``, matched like ``int8_float_scopes``): the convs inside them. ``auto`` or ``auto:N``: the
  N convs (default: a quarter of the repaired convs, rounded up) whose return to float alone lowers the validation
  loss of the per-tensor graph most (:func:`katadeploy.export.int8_fallback.rank_layers`, KataGo's FP16 gate as in
  the fallback search). The exporter builds the per-tensor graph first, ranks its layers and builds the grouped one
  from the top N (:func:`choose`).

Why a subset: each grouped conv costs a ``Gather``, a ``FakeQuantize`` and a partial sum per group, which OpenVINO
does not fuse. Measured on g170e-b15c192 (2026-12-07, scripts/reports/int8/groups/README.md; 768 every-size
calibration positions, no fallback; torch FP32 vs onnxruntime on the 80 oracle positions, policy KL p99 / mean;
OpenVINO evals/s at batch 8 on 2 Zen 3 cores, FP32 21): per tensor 2.35x / 0.00103 at 39 evals/s; ``auto`` (8 of
30 convs) 1.57x / 0.00082 at 34-37; blocks 11-14 (9 nodes) 1.79x / 0.00080 at 36; every conv 1.05x / 0.00052 at
29-31. The error is spread over the whole trunk: past the one layer that stands out (blocks.11/conv2), the
float-alone ranking is within noise, and no small subset buys most of the gain. ``auto`` is a speed/accuracy
dial, not a shortcut.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from katadeploy.errors import KatadeployError

#: ``options["int8_act_groups"]`` when unset: 16 channel groups per conv input (see the module notes)
DEFAULT_ACT_GROUPS = 16
AUTO = "auto"
#: ``auto`` without N groups this share of the repaired convs (rounded up)
AUTO_SHARE = 0.25


#: ``options["int8_group_floor"]`` when unset: each group's range at least half its layer's span
#: (:func:`katadeploy.export.int8_repair.plan_repair`'s ``group_floor``; 0 turns the guard off)
DEFAULT_GROUP_FLOOR = 0.5
#: ``options["int8_group_margin"]`` when unset: each group's calibration range x 1.15 (see the module notes)
DEFAULT_GROUP_MARGIN = 1.15


@dataclass(frozen=True)
class GroupSpec:
    act_groups: int = DEFAULT_ACT_GROUPS
    scopes: tuple[str, ...] = ()  # module scopes whose convs are grouped (empty: all, unless auto)
    auto: int | None = None  # auto: how many convs (0: AUTO_SHARE of them)
    floor: float = DEFAULT_GROUP_FLOOR
    margin: float = DEFAULT_GROUP_MARGIN
    tail: float = 0.0

    @property
    def grouped(self) -> bool:
        return self.act_groups > 1


def in_scopes(name: str, scopes: Sequence[str]) -> bool:
    """Whether node ``name`` lies inside any of the module ``scopes`` (``blocks.2/convg``, ``convg``, ``blocks.11``)."""
    return any(f"/{s.strip('/')}/" in name for s in scopes)


def scope_list(raw: Any) -> list[str]:
    """A module-scope option: a list, or one comma-separated string."""
    raw = raw or []
    return [s for s in (raw.split(",") if isinstance(raw, str) else raw) if s]


def _bounded(options: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    """``options[key]`` as a number in ``[lo, hi]``; a one-line error otherwise."""
    raw = options.get(key, default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise KatadeployError(f"{key} must be a number in [{lo:g}, {hi:g}], not {raw!r}") from None
    if not lo <= value <= hi:
        raise KatadeployError(f"{key} must be in [{lo:g}, {hi:g}], not {value}")
    return value


def group_spec(options: dict[str, Any]) -> GroupSpec:
    """The :class:`GroupSpec` of an export's options; a one-line error for a bad value."""
    raw = options.get("int8_act_groups", DEFAULT_ACT_GROUPS)
    try:
        groups = int(raw)
    except (TypeError, ValueError):
        raise KatadeployError(f"int8_act_groups must be a whole number, not {raw!r}") from None
    if groups < 1:
        raise KatadeployError(f"int8_act_groups must be at least 1, not {groups}")
    floor = _bounded(options, "int8_group_floor", DEFAULT_GROUP_FLOOR, 0.0, 1.0)
    margin = _bounded(options, "int8_group_margin", DEFAULT_GROUP_MARGIN, 1.0, 4.0)
    tail = _bounded(options, "int8_group_tail", 0.0, 0.0, 4.0)
    scopes = scope_list(options.get("int8_group_scopes"))
    if not scopes:
        return GroupSpec(groups, floor=floor, margin=margin, tail=tail)
    if groups < 2:
        raise KatadeployError("int8_group_scopes needs int8_act_groups of 2 or more")
    head = scopes[0].strip().lower()
    if head == AUTO or head.startswith(AUTO + ":"):
        if len(scopes) > 1:
            raise KatadeployError("int8_group_scopes=auto[:N] takes no scopes beside it")
        n = head.partition(":")[2]
        if n and (not n.isdigit() or int(n) < 1):
            raise KatadeployError(f"int8_group_scopes=auto:N needs a positive whole N, not {n!r}")
        return GroupSpec(groups, auto=int(n) if n else 0, floor=floor, margin=margin, tail=tail)
    return GroupSpec(groups, tuple(scopes), floor=floor, margin=margin, tail=tail)


def scoped_nodes(spec: GroupSpec, quantize: Sequence[str]) -> list[str] | None:
    """The quantized nodes a scope list groups (None: every repaired conv); not for ``auto`` (see :func:`choose`)."""
    if not spec.scopes:
        return None
    nodes = [n for n in quantize if in_scopes(n, spec.scopes)]
    if not nodes:
        raise KatadeployError(f"int8_group_scopes {','.join(spec.scopes)} matches none of the quantized nodes")
    return nodes


def auto_count(spec: GroupSpec, convs: int) -> int:
    """How many convs ``auto`` groups out of ``convs`` repaired ones."""
    return min(convs, spec.auto or math.ceil(AUTO_SHARE * convs))


def choose(ranking: Sequence[dict[str, Any]], convs: Sequence[str], n: int) -> list[str]:
    """The ``n`` convs of ``convs`` ranked most sensitive (``ranking``: :func:`~katadeploy.export.int8_fallback
    .rank_layers`' records, most sensitive first), in graph order."""
    wanted = set(convs)
    picked = set([r["layer"] for r in ranking if r["layer"] in wanted][:n])
    return [c for c in convs if c in picked]


__all__ = [
    "AUTO",
    "AUTO_SHARE",
    "DEFAULT_ACT_GROUPS",
    "DEFAULT_GROUP_FLOOR",
    "DEFAULT_GROUP_MARGIN",
    "GroupSpec",
    "auto_count",
    "choose",
    "group_spec",
    "in_scopes",
    "scope_list",
    "scoped_nodes",
]
