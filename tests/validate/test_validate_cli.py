"""``katadeploy validate``: PASS for the reference against itself, FAIL for outputs perturbed past KataGo's
limits, the report files, exit codes, refusing an artifact from another net, and the position sources."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from katadeploy.artifact import ArtifactManifest, TensorSpec, write_manifest
from katadeploy.cli import main
from katadeploy.hashing import sha256_file
from katadeploy.model.format import load_model
from katadeploy.runtime.base import RawBatch
from katadeploy.runtime.torch_runtime import TorchEvaluator
from katadeploy.validate.positions import load_validation_set
from katadeploy.validate.report import ValidationResult, format_table, write_report
from katadeploy.validate.scoring import validate_evaluator
from tests.conftest import SHARED, small_net_path

NET = "g170-b6c96-s175395328-d26788732"


@pytest.fixture(scope="module")
def net_path():
    return small_net_path(NET)


@pytest.fixture(scope="module")
def model(net_path):
    return load_model(net_path)


@pytest.fixture(scope="module")
def positions(tmp_path_factory):
    """8 19x19 positions and 2 smaller ones from the oracle set."""
    lines = (SHARED / "oracle" / "positions.jsonl").read_text("utf-8").splitlines()
    big = [ln for ln in lines if json.loads(ln)["boardXSize"] == 19][:8]
    small = [ln for ln in lines if json.loads(ln)["boardXSize"] == 9][:2]
    path = tmp_path_factory.mktemp("pos") / "ten.jsonl"
    path.write_text("\n".join(big + small) + "\n", encoding="utf-8")
    return path


class Shifted:
    """The torch reference with the win logit raised by ``d``: winrate error 0.5*tanh(d/2) where no-result is
    disallowed (a known amount, independent of our code)."""

    output_scale = 1.0

    def __init__(self, model, d: float, manifest=None):
        self.inner = TorchEvaluator(model)
        self.name = f"shifted-{d}"
        self.d = np.float32(d)
        self.manifest = manifest

    def evaluate(self, spatial, global_, meta=None) -> RawBatch:
        out = self.inner.evaluate(spatial, global_, meta)
        value = out.value.copy()
        value[:, 0] += self.d
        return out._replace(value=value)


def _winrate_terms(value: np.ndarray, nra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0.5*(W-L) and NoResult from value logits, in float64 (KataGo: no-result logit -1e5 when disallowed)."""
    z = value.astype(np.float64).copy()
    z[~nra, 2] -= 1e5
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return 0.5 * (p[:, 0] - p[:, 1]), p[:, 2]


def test_perturbed_evaluator_fails_with_the_expected_error(model, positions):
    vset = load_validation_set(positions, model)
    d = 0.16  # up to 0.5*tanh(0.08) = 4.0% winrate error: over the 2% FP16 p99 limit, under the 5% max
    metrics, _ = validate_evaluator(Shifted(model, d), vset, model, batch=5)
    assert not metrics.passed("fp16")
    failed = {(v.metric, v.stat) for v in metrics.verdicts("fp16") if not v.passed}
    assert failed == {("winrate", "p99")}
    # the same error computed independently from the reference's raw value head
    ref = TorchEvaluator(model).evaluate(vset.spatial, vset.global_).value
    shifted = ref.copy()
    shifted[:, 0] += np.float32(d)
    wl_a, nr_a = _winrate_terms(ref, vset.no_result_allowed)
    wl_b, nr_b = _winrate_terms(shifted, vset.no_result_allowed)
    want = np.sort(np.abs(wl_a - wl_b) + np.abs(nr_a - nr_b))
    np.testing.assert_allclose(metrics.errors["winrate"], want, atol=2e-6)
    assert metrics.stats["policy_kl"]["max"] < 1e-6  # the policy was not touched


def test_cli_torch_passes_and_writes_reports(net_path, positions, tmp_path, capsys):
    rc = main(["validate", "torch", "--model", str(net_path), "--positions", str(positions), "--batch", "5",
               "-o", str(tmp_path), "-q"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "winrate error" in out and "PASS" in out and "FAIL" not in out
    assert {p.name for p in tmp_path.iterdir()} == {
        "validate-torch.md",
        "validate-torch.json",
        "validate-torch.png",
    }
    data = json.loads((tmp_path / "validate-torch.json").read_text())
    assert data["passed"] is True and data["precision"] == "fp32" and data["positions"]["count"] == 10
    assert data["metrics"]["winrate"]["p99_limit"] == pytest.approx(0.0045)
    assert data["top1_agreement"] == 1.0  # unbatched vs batched FP32: only rounding differences
    assert data["metrics"]["winrate"]["max"] < 1e-5 and data["metrics"]["policy_kl"]["max"] < 1e-6
    assert (tmp_path / "validate-torch.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "validate-torch.md").read_text()
    assert "| winrate error |" in md and "validate-torch.png" in md
    rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(rows) == 2 + 7 and all(ln.count("|") == 10 for ln in rows)  # 9 cells, 7 metrics (v8 net)


def _manifest(tmp_path, name: str, sha: str, precision: str = "fp16") -> ArtifactManifest:
    ins = [TensorSpec("spatial", ["N", 22, 19, 19]), TensorSpec("global", ["N", 19])]
    return ArtifactManifest(
        target=f"onnx-{precision}", format="onnx", precision=precision, artifact=name,
        source={"name": NET, "file": NET + ".bin.gz", "sha256": sha, "model_version": 8},
        board={"nn_x": 19, "nn_y": 19, "exact": False}, batch={"dynamic": True}, inputs=ins, outputs=[],
    )  # fmt: skip


def test_cli_fail_exits_1(net_path, model, positions, tmp_path, monkeypatch, capsys):
    import katadeploy.runtime.loader as loader

    manifest = _manifest(tmp_path, "shifted.onnx", sha256_file(net_path))
    monkeypatch.setattr(loader, "open_evaluator", lambda spec, **kw: Shifted(model, 0.16, manifest))
    rc = main(["validate", "shifted.onnx", "--model", str(net_path), "--positions", str(positions),
               "-o", str(tmp_path), "-q"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL" in out and "reduced precision" in out
    data = json.loads((tmp_path / "validate-shifted.onnx.json").read_text())
    assert data["passed"] is False and data["worst"]["metric"] == "winrate"
    assert data["metrics"]["winrate"]["p99_pass"] is False


def test_artifact_from_another_net_is_refused(net_path, positions, tmp_path, capsys):
    art = tmp_path / "other.onnx"
    art.write_bytes(b"not really onnx")
    write_manifest(_manifest(tmp_path, art.name, "ab" * 32), art)
    rc = main(
        ["validate", str(art), "--model", str(net_path), "--positions", str(positions), "-o", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "was exported from" in err and "Traceback" not in err
    assert not list(tmp_path.glob("validate-*"))


def test_positions_exact_board_skip_and_too_large(model, positions, capsys):
    vset = load_validation_set(positions, model, exact=True)
    assert len(vset) == 8 and vset.skipped == 2
    assert "2 of 10 positions" in capsys.readouterr().err
    vset = load_validation_set(positions, model, 13, 13)  # a 13x13 artifact: the 19x19 positions are skipped
    assert len(vset) == 2 and vset.skipped == 8 and vset.on_board.sum(axis=(1, 2)).tolist() == [81, 81]
    assert "8 of 10 positions" in capsys.readouterr().err
    with pytest.raises(Exception, match="none of the 10 positions .* fits the 7x7 tensor"):
        load_validation_set(positions, model, 7, 7)
    vset = load_validation_set(positions, model)
    assert vset.legal.shape == (10, 362) and vset.legal[:, -1].all()
    assert vset.on_board[8:].sum(axis=(1, 2)).tolist() == [81, 81]


def test_positions_from_calibration_validation_split(model, tmp_path):
    C = pytest.importorskip("katadeploy.data.calibration")
    files = sorted((SHARED / "sgf").rglob("*.sgf"))[:4]
    arrays, _ = C.build_calibration(files, positions=12, val_fraction=0.5, progress=False)
    path = C.save_calibration(arrays, tmp_path / "calib.npz")
    val = C.load_calibration(path).subset("val")
    vset = load_validation_set(path, model)
    assert len(vset) == len(val.spatial) > 0
    np.testing.assert_array_equal(vset.spatial, val.spatial)
    np.testing.assert_array_equal(vset.legal, val.legal)
    with pytest.raises(Exception, match="13x13"):
        load_validation_set(path, model, 13, 13)


def test_missing_matplotlib_skips_png_with_a_note(model, positions, tmp_path, monkeypatch):
    vset = load_validation_set(positions, model).subset(slice(0, 3))
    metrics, _ = validate_evaluator(TorchEvaluator(model), vset, model)
    result = ValidationResult(
        "torch", "torch-fp32", "fp32", NET, "0" * 64, vset.source, 19, 19, False, 3, metrics
    )
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    paths = write_report(result, tmp_path)
    assert set(paths) == {"md", "json"}
    assert "matplotlib is not installed" in paths["md"].read_text()


def test_onnx_artifact_passes(net_path, positions, tmp_path, capsys):
    pytest.importorskip("katadeploy.runtime.onnx_runtime")
    from katadeploy.export.request import export_artifact

    art = export_artifact(str(net_path), "onnx-fp32", tmp_path, progress=False)
    rc = main(["validate", str(art), "--model", str(net_path), "--positions", str(positions),
               "-o", str(tmp_path), "-q"])  # fmt: skip
    assert rc == 0, capsys.readouterr().out


def test_int8_share_is_shown_beside_the_verdict(model, positions, tmp_path, monkeypatch):
    """An "int8" artifact that is mostly float says so: the verdict line, Markdown and JSON carry the share."""
    vset = load_validation_set(positions, model).subset(slice(0, 3))
    metrics, _ = validate_evaluator(TorchEvaluator(model), vset, model)
    q = {"int8_mac_fraction": 0.06, "recipe": "test", "float_layers": 40}
    result = ValidationResult(
        "x.xml", "openvino-int8", "int8", NET, "0" * 64, vset.source, 19, 19, False, 3, metrics, quantization=q
    )
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    paths = write_report(result, tmp_path)
    assert "[int8 MACs 6%]" in format_table(result)
    assert "[int8 MACs 6%]" in paths["md"].read_text()
    assert json.loads(paths["json"].read_text())["int8_mac_fraction"] == 0.06
