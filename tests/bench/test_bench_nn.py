"""``katadeploy bench nn``: a short real run on the small b6c96 net (torch, and ONNX when its runtime exists),
the table and JSON, a failing child, and parsing ``katago benchmark`` output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from katadeploy.artifact import ArtifactManifest, TensorSpec, write_manifest
from katadeploy.bench import nn as bn
from katadeploy.bench import nn_report as R
from katadeploy.bench.engine import BenchError
from katadeploy.cli import main
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
    md = R.format_markdown(result)
    tables = [[ln for ln in block.splitlines() if ln.startswith("|")] for block in md.split("\n\n")]
    tables = [tb for tb in tables if tb]
    assert tables[0][0].strip("| ").split(" | ") == R.COLUMNS
    assert len(tables[0]) == 2 + 2 * len(artifacts)
    side = tables[1]  # evals/s against batch, one row per artifact
    assert side[0].strip("| ").split(" | ")[:4] == ["artifact", "target", "b1", "b2"]
    assert len(side) == 2 + len(artifacts)
    for a, line in zip(result.artifacts, side[2:]):
        cells = line.strip("| ").split(" | ")
        assert [float(c) for c in cells[2:4]] == [round(b.evals_per_s, 1) for b in a.batches]
        best = max(a.batches, key=lambda b: b.evals_per_s)
        assert cells[4] == f"{best.evals_per_s:.1f} ({best.batch})"
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
    rows = R.table_rows(result)
    kg_row = [r for r in rows if r[0].startswith("KataGo")]
    assert len(kg_row) == 1 and "OpenCL" in kg_row[0][0]
    torch_row = rows[0]
    ratio = float(torch_row[-1].rstrip("x"))
    want = result.artifacts[0].batches[0].evals_per_s / k.rows[0]["nn_evals_per_s"]
    assert ratio == pytest.approx(want, abs=0.006)


def _result(baselines=()) -> bn.NNBenchResult:
    def art(name, evals):
        batches = [
            bn.BatchResult(batch=b, calls=3, evals=3 * b, seconds=1.0, evals_per_s=e, p50_ms=1.0, p95_ms=2.0,
                           p99_ms=3.0, gflops_per_s=e * 18.9)
            for b, e in evals.items()
        ]  # fmt: skip
        return bn.ArtifactResult(
            artifact=name, name=name, target=name, precision="fp32", evaluator=name, nn_x=19, nn_y=19,
            exact=False, fixed_batch=None, threads=2, load_seconds=0.1, base_rss_mb=10, peak_rss_mb=20,
            flops_per_eval=18_900_000_000, batches=batches,
        )  # fmt: skip

    return bn.NNBenchResult(
        model="net", seconds=1.0, batches=[1, 8, 16], threads=2,
        artifacts=[art("a", {1: 10.0, 8: 23.1, 16: 20.0}), art("b", {1: 4.0, 8: 4.2, 16: 4.62})],
        baselines=list(baselines),
    )  # fmt: skip


def test_baselines_are_quoted_and_divided_by():
    assert bn.parse_baseline("KataGo v1.17.2 Eigen=2.31") == bn.Baseline("KataGo v1.17.2 Eigen", 2.31)
    for bad in ("2.31", "Eigen=", "Eigen=-1", "=3", "Eigen=fast"):
        with pytest.raises(BenchError, match="LABEL=EVALS_PER_S"):
            bn.parse_baseline(bad)
    result = _result([bn.parse_baseline("Eigen=2.31")])
    md = R.format_markdown(result)
    assert "Baseline Eigen: 2.31 evals/s, quoted, not measured in this run." in md
    side = [ln for ln in md.splitlines() if ln.startswith("| a |") and "(8)" in ln]
    assert len(side) == 1
    cells = side[0].strip("| ").split(" | ")
    assert cells[5] == "23.1 (8)" and cells[-1] == f"{23.1 / 2.31:.2f}x" == "10.00x"
    rows = R.table_rows(result)
    assert rows[0][-1] == f"{10.0 / 2.31:.2f}x" and rows[-1][-1] == f"{4.62 / 2.31:.2f}x" == "2.00x"
    assert json.loads(json.dumps(result.to_dict()))["baselines"] == [{"label": "Eigen", "evals_per_s": 2.31}]


def test_plot_is_a_png(tmp_path):
    path = R.write_plot(_result([bn.Baseline("Eigen", 2.31)]), tmp_path / "plot" / "nn.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_inflight_keeps_several_batches_in_flight(net_path, tmp_path):
    pytest.importorskip("openvino")
    from katadeploy.export.request import export_artifact

    art = str(export_artifact(str(net_path), "openvino-fp32", tmp_path, progress=False))
    result = bn.run_nn_bench(
        [art, "torch"], model_path=net_path, batches=[2], seconds=0.3, inflight=[1, 3], progress=False
    )
    # the OpenVINO artifact runs once per mode (async first), torch (no async path) once, sync
    assert [(a.name, a.batches[0].inflight) for a in result.artifacts] == [
        (Path(art).name, 3),
        (Path(art).name, 1),
        ("torch", 1),
    ]
    ov_async, ov_sync, torch_sync = (a.batches[0] for a in result.artifacts)
    assert ov_async.evals == 2 * 3 * ov_async.calls
    assert ov_sync.evals == 2 * ov_sync.calls and torch_sync.evals == 2 * torch_sync.calls
    md = R.format_markdown(result)
    assert "openvino-fp32 async x3" in md and "| openvino-fp32 |" in md
    with pytest.raises(BenchError, match="--inflight"):
        bn.run_nn_bench([art], model_path=net_path, inflight=0, progress=False)
