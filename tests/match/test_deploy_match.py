"""The ``deploy`` strength hook: each passing reduced-precision artifact plays its format's FP32 artifact."""

from __future__ import annotations

from pathlib import Path

import pytest

from katadeploy.cli import main
from katadeploy.deploy.pipeline import DeployResult, TargetOutcome, _match_strength, markdown

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]


def test_reduced_precision_artifacts_play_fp32(ray_local, g170_path: Path, tmp_path: Path):
    net = str(g170_path)  # stands in for the artifacts: the hook only picks who plays whom
    built = {"artifact": net, "size_mb": 1.0, "export_seconds": 1.0}
    outcomes = [
        TargetOutcome("onnx-fp32", verdict="PASS", **built),
        TargetOutcome("onnx-fp16", verdict="PASS", **built),
        TargetOutcome("openvino-int8", verdict="FAIL", **built),
        TargetOutcome("tflite-fp32", error="not built"),
    ]
    _match_strength(outcomes, g170_path, tmp_path, visits=2, games=2, board=9, progress=False)
    fp16 = outcomes[1].match
    assert fp16 is not None and fp16["games"] == 2 and fp16["against"] == g170_path.name
    assert fp16["elo_ci95"][0] <= fp16["elo"] <= fp16["elo_ci95"][1]
    assert (tmp_path / "match" / "onnx-fp16" / "match.json").is_file()
    assert all(o.match is None for o in (outcomes[0], outcomes[2], outcomes[3]))  # FP32, failed, not built
    md = markdown(DeployResult("net", "sha", None, str(tmp_path), outcomes, []))
    assert "Elo vs FP32" in md and "(2 games vs " in md


def test_match_flags_go_together(capsys, tmp_path: Path):
    assert main(["deploy", "x.bin.gz", "--match-games", "4", "-o", str(tmp_path)]) == 2
    assert "go together" in capsys.readouterr().err
