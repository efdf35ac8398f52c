"""Shared artifact helpers for the exporter tests: one cache of built artifacts, opening them against their
net, the oracle-position metrics they are judged by, and the known-failure check for INT8 gates.

Contract: :func:`artifact_builder` returns ``artifact(out_dir, net, target, exact=False, **options)`` that builds
each distinct artifact once per session (``net`` is a small test net's stem or a path; per-target default
options are merged under the call's), each in its own directory. :func:`open_for` opens an artifact with the net
it was built from; :func:`oracle_metrics` judges it against torch FP32 on the 80 bundled oracle positions (60
full boards with ``full_boards_only``). :func:`int8_known_failure` holds a gate that INT8 is known to miss: it
fails if the measured worst ratio rises above ``ceiling`` (a regression) or if the gate now passes (an
improvement to record), and otherwise marks the test xfailed with the measured ratio.
:func:`assert_full_boards_match_katago` holds an exact-board artifact against KataGo's goldens on the 60 full boards.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from katadeploy.export.request import export_artifact
from katadeploy.go.position import load_positions
from katadeploy.hashing import sha256_file
from katadeploy.model.format import load_model
from katadeploy.runtime.loader import open_evaluator
from katadeploy.runtime.torch_runtime import TorchEvaluator
from katadeploy.validate.metrics import Metrics, compare
from katadeploy.validate.positions import load_validation_set
from tests.conftest import SHARED, SMALL_NETS, small_net_path
from tests.golden_check import assert_within_gates, golden_errors

#: the 80 oracle positions (60 19x19 game positions, 20 small random boards) and the small test nets
POSITIONS = SHARED / "oracle" / "positions.jsonl"
NETS = sorted(SMALL_NETS)
RESNET = "g170-b6c96-s175395328-d26788732"
#: onnx-int8's default recipe with the fallback off (every trunk conv int8): test_int8_groups checks it against
#: KataGo's limits and test_katago_onnx converts it, one build per session through the artifact cache
INT8_DEFAULT_NO_FALLBACK = {"mixed_precision": False}
TRANSFORMER = "b7c96h6kv3qk32v16tflrs-fson-bnh"

_CACHE: dict[tuple, Path] = {}


def net_path(net: str | Path) -> Path:
    return small_net_path(str(net)) if str(net) in SMALL_NETS else Path(net)


def artifact_builder(defaults: dict[str, dict[str, Any]] | None = None) -> Callable[..., Path]:
    def artifact(out_dir: Path, net: str | Path, target: str, exact: bool = False, **options: Any) -> Path:
        opts = {**(defaults or {}).get(target, {}), **options}
        key = (str(net), target, exact, json.dumps(opts, sort_keys=True, default=str))
        if key not in _CACHE:
            sub = out_dir / f"{Path(str(net)).name}-{target}{'-exact' if exact else ''}-{len(_CACHE)}"
            _CACHE[key] = export_artifact(
                net_path(net), target, sub, exact=exact, progress=False, options=opts or None
            )
        return _CACHE[key]

    return artifact


def open_for(path: Path, net: str | Path) -> tuple[Any, Any]:
    model_path = net_path(net)
    model = load_model(model_path)
    return open_evaluator(path, model=model, model_sha256=sha256_file(model_path), threads=2), model


def oracle_metrics(path: Path, net: str | Path, full_boards_only: bool = False) -> Metrics:
    ev, model = open_for(path, net)
    vs = load_validation_set(None, model)  # the 80 oracle positions
    assert len(vs) == 80
    if full_boards_only:
        vs = vs.subset(np.flatnonzero(vs.on_board.reshape(80, -1).all(axis=1)))
        assert len(vs) == 60
    ref = TorchEvaluator(model).evaluate(vs.spatial, vs.global_, vs.meta)
    test = ev.evaluate(vs.spatial, vs.global_, vs.meta)
    return compare(ref, test, vs.legal, model, no_result_allowed=vs.no_result_allowed, on_board=vs.on_board)


def int8_known_failure(metrics: Metrics, ceiling: float, reason: str, precision: str = "int8") -> None:
    worst = metrics.to_json(precision)["worst"]
    ratio = float(metrics.worst(precision).ratio)
    if metrics.passed(precision):
        pytest.fail(f"INT8 now meets KataGo's FP16 limits ({json.dumps(worst)}): make this a passing test")
    assert ratio <= ceiling, (
        f"INT8 got worse: worst ratio {ratio:.3g}x > ceiling {ceiling}x ({json.dumps(worst)})"
    )
    pytest.xfail(f"{reason}: worst {ratio:.3g}x the limit (ceiling {ceiling}x): {json.dumps(worst)}")


def assert_full_boards_match_katago(path: Path, stem: str) -> None:
    """``path`` (an exact-board 19x19 artifact of ``stem``) reproduces KataGo's goldens on the 60 full boards."""
    ev, model = open_for(path, stem)
    states = [s for s in load_positions(POSITIONS) if (s.x_size, s.y_size) == (19, 19)]
    assert len(states) == 60
    assert_within_gates(golden_errors(stem, ev, model, states))


def torch_macs(stem: str) -> tuple[float, float]:
    """``(all, float-island)`` MACs per 19x19 position of a small ResNet net, counted independently of any
    artifact: forward hooks on the torch port's Conv2d/Linear modules (the stem and heads are the float
    islands every INT8 recipe keeps)."""
    import torch
    from torch import nn

    from katadeploy.model.net import KataGoNet

    net = KataGoNet(load_model(small_net_path(stem))).eval()
    counts: dict[str, float] = {}

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, out: torch.Tensor) -> None:
            per_out = out.numel() / out.shape[0]
            if isinstance(module, nn.Conv2d):
                k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            else:
                k = module.in_features
            counts[name] = counts.get(name, 0.0) + per_out * k

        return record

    for name, module in net.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.register_forward_hook(hook(name))
    spatial = torch.zeros(1, 22, 19, 19)
    spatial[:, 0] = 1.0
    with torch.inference_mode():
        net(spatial, torch.zeros(1, 19))
    islands = ("conv_spatial", "linear_global", "meta_encoder", "policy_head", "value_head")
    return sum(counts.values()), sum(v for k, v in counts.items() if k.split(".")[0] in islands)


def assert_honest_int8_label(path: Path, stem: str, *, all_trunk: bool) -> dict[str, Any]:
    """The manifest's ``int8_mac_fraction`` against MACs counted on the torch port: the totals agree, and when
    every trunk layer is int8 (``all_trunk``) the float share is exactly the stem and heads."""
    from katadeploy.artifact import read_manifest

    q = read_manifest(path).quantization
    assert q is not None and 0.0 <= q["int8_mac_fraction"] <= 1.0, q
    total, islands = torch_macs(stem)
    macs = q["macs_per_position"]
    assert abs(macs["int8"] + macs["float"] - total) <= 1e-3 * total, (macs, total)
    if all_trunk:
        assert abs(q["int8_mac_fraction"] - (1 - islands / total)) < 1e-3, (
            q["int8_mac_fraction"],
            islands / total,
        )
    return q
