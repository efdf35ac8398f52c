"""``katadeploy bench nn``: a short real run on the small b6c96 net (torch, and ONNX when its runtime exists),
the table and JSON, a failing child, and parsing ``katago benchmark`` output."""

from __future__ import annotations

import json

import pytest

from katadeploy.bench import nn as bn
from katadeploy.bench.engine import BenchError
from katadeploy.cli import main
from katadeploy.export.manifest import ArtifactManifest, TensorSpec, write_manifest
from katadeploy.model.format import load_model
from katadeploy.model.stats import flops
from tests.conftest import small_net_path

NET = "g170-b6c96-s175395328-d26788732"


@pytest.fixture(scope="module")
def net_path():
    return small_net_path(NET)


def _check_artifact(a: bn.ArtifactResult, batches: list[int], fl: int) -> None:
    assert [b.batch for b in a.batches] == batches
    assert a.peak_rss_mb >= a.base_rss_mb > 0
    assert a.flops_per_eval == fl
    for b in a.batches:
        assert b.calls >= 3 and b.evals == b.batch * b.calls and b.seconds > 0
        assert b.evals_per_s == pytest.approx(b.evals / b.seconds)
        assert 0 < b.p50_ms <= b.p95_ms <= b.p99_ms
        assert b.p50_ms / 1000 <= b.seconds  # a call's latency fits in the timed loop
        assert b.gflops_per_s == pytest.approx(fl * b.evals_per_s / 1e9)


def test_torch_and_onnx_side_by_side(net_path, tmp_path):
    artifacts = ["torch"]
    try:
        import katadeploy.runtime.onnx_runtime  # noqa: F401
        from katadeploy.export.request import export_artifact

        artifacts.append(str(export_artifact(str(net_path), "onnx-fp32", tmp_path, progress=False)))
    except ModuleNotFoundError:
        pass
    result = bn.run_nn_bench(artifacts, model_path=net_path, batches=[1, 2], seconds=0.2, progress=False)
    fl = flops(load_model(net_path), 19, 19)
    assert [a.name for a in result.artifacts] == ["torch", *(p.split("/")[-1] for p in artifacts[1:])]
    for a in result.artifacts:
        _check_artifact(a, [1, 2], fl)
    assert result.artifacts[0].target == "torch-fp32"
    md = bn.format_markdown(result)
    table = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert table[0].strip("| ").split(" | ") == bn.COLUMNS
    assert len(table) == 2 + 2 * len(artifacts)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["kind"] == "katadeploy.bench.nn" and len(data["artifacts"]) == len(artifacts)


def test_cli_writes_markdown_and_json(net_path, tmp_path, capsys):
    md, js = tmp_path / "b.md", tmp_path / "b.json"
    rc = main(["bench", "nn", "torch", "--model", str(net_path), "--batch", "2", "--seconds", "0.2",
               "--markdown", str(md), "--json", str(js), "-q"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert out == md.read_text()
    row = [ln for ln in out.splitlines() if ln.startswith("| torch |")]
    assert len(row) == 1
    cells = row[0].strip("| ").split(" | ")
    assert cells[2] == "2" and float(cells[3]) > 0 and float(cells[7]) > 0 and float(cells[8]) > 0
    assert json.loads(js.read_text())["artifacts"][0]["batches"][0]["batch"] == 2


def test_dead_child_gives_a_clear_error(net_path, monkeypatch):
    monkeypatch.setattr(bn, "WORKER_MODULE", "katadeploy.bench.no_such_worker")
    with pytest.raises(BenchError, match=r"the worker for torch died \(exit code 1\): .*No module named"):
        bn.run_nn_bench(["torch"], model_path=net_path, batches=[1], seconds=0.1, progress=False)


def test_child_reports_bad_input(net_path, tmp_path):
    art = tmp_path / "other.onnx"
    art.write_bytes(b"x")
    ins = [TensorSpec("spatial", ["N", 22, 19, 19]), TensorSpec("global", ["N", 19])]
    write_manifest(
        ArtifactManifest(
            target="onnx-fp32", format="onnx", precision="fp32", artifact=art.name,
            source={"name": "another-net", "sha256": "cd" * 32}, board={"nn_x": 19, "nn_y": 19},
            batch={"dynamic": True}, inputs=ins, outputs=[],
        ),
        art,
    )  # fmt: skip
    with pytest.raises(BenchError, match=r"other.onnx: artifact other.onnx was exported from another-net"):
        bn.run_nn_bench([str(art)], model_path=net_path, batches=[1], seconds=0.1, progress=False)


def test_bad_arguments(net_path, tmp_path):
    with pytest.raises(BenchError, match="needs --model"):
        bn.run_nn_bench(["torch"], batches=[1], seconds=0.1, progress=False)
    with pytest.raises(BenchError, match="no such artifact"):
        bn.run_nn_bench([str(tmp_path / "missing.onnx")], model_path=net_path, progress=False)
    with pytest.raises(SystemExit):
        main(["bench", "nn", "torch", "--batch", "0"])


KATAGO_OUTPUT = """\
You are currently using the OpenCL version of KataGo.
numSearchThreads =  1: 0 / 2 positions, visits/s = -nan (0.0 secs)
numSearchThreads =  1: 2 / 2 positions, visits/s = 36.32 nnEvals/s = 35.10 nnBatches/s = 35.10 avgBatchSize = 1.00 (1.1 secs) (EloDiff baseline)
numSearchThreads =  8: 1 / 2 positions, visits/s = 90.00 (0.5 secs)
numSearchThreads =  8: 2 / 2 positions, visits/s = 95.50 nnEvals/s = 80.25 nnBatches/s = 20.00 avgBatchSize = 4.01 (1.0 secs) (EloDiff +10)
"""
KATAGO_STDERR = (
    "Found OpenCL Platform 0: Portable Computing Language (The pocl project)\n"
    "Using OpenCL Device 0: pthread-skylake-avx512-AMD EPYC (AuthenticAMD) OpenCL 3.0 PoCL HSTR\n"
)


def test_parse_katago_benchmark():
    rows, backend, device = bn.parse_katago_benchmark(KATAGO_OUTPUT, KATAGO_STDERR)
    assert [r["threads"] for r in rows] == [1, 8]
    assert rows[1]["nn_evals_per_s"] == 80.25 and rows[1]["avg_batch_size"] == 4.01
    assert "pocl" in backend and "OpenCL" in backend and "Eigen" not in backend
    assert device.startswith("pthread-skylake")


@pytest.mark.katago
@pytest.mark.timeout(900)
def test_katago_row_and_ratio(katago, net_path):
    result = bn.run_nn_bench(
        ["torch"], model_path=net_path, batches=[1], seconds=0.3, katago=True, katago_binary=katago,
        katago_visits=10, progress=False,
    )  # fmt: skip
    k = result.katago
    assert k is not None and k.version.startswith("KataGo v") and "OpenCL" in k.backend
    assert [r["threads"] for r in k.rows] == [1] and k.rows[0]["nn_evals_per_s"] > 0
    rows = bn.table_rows(result)
    kg_row = [r for r in rows if r[0].startswith("KataGo")]
    assert len(kg_row) == 1 and "OpenCL" in kg_row[0][0]
    torch_row = rows[0]
    ratio = float(torch_row[-1].rstrip("x"))
    want = result.artifacts[0].batches[0].evals_per_s / k.rows[0]["nn_evals_per_s"]
    assert ratio == pytest.approx(want, abs=0.006)
