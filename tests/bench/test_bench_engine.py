"""``katadeploy bench engine``: a short real run on the small b6c96 net, plus input handling."""

from __future__ import annotations

import io
import json

import pytest

from katadeploy.bench import engine as be
from katadeploy.cli import main

NET = "g170-b6c96-s175395328-d26788732.bin.gz"


@pytest.mark.katago
@pytest.mark.timeout(900)
def test_short_real_run_counts_visits_and_nn_evals(katago, shared_dir):
    visits = 16
    positions = be.default_positions(2)
    progress = io.StringIO()
    result = be.run_engine_bench(
        shared_dir / "models" / NET,
        threads=[1, 2],
        visits=visits,
        positions=positions,
        binary=katago,
        progress=True,
        stream=progress,
    )
    assert result.katago_version == "KataGo v1.18.1"
    assert [r.threads for r in result.results] == [1, 2]
    for r in result.results:
        assert r.batch_size == 8 and r.positions == 2 and len(r.per_position) == 2
        for p in r.per_position:
            # KataGo may overshoot maxVisits by up to threads-1 playouts
            assert visits <= p.visits <= visits + r.threads - 1
            assert 0 < p.seconds < 600
            # cache cleared per position: every visit but transpositions/terminal nodes needs an NN eval
            assert p.nn_evals is not None and 1 <= p.nn_evals <= p.visits
        assert r.nn_evals == sum(p.nn_evals for p in r.per_position)
        assert r.visits_per_s > 0 and r.nn_evals_per_s is not None and 0 < r.nn_evals_per_s <= r.visits_per_s
        assert r.avg_batch_size is not None and 1.0 <= r.avg_batch_size <= r.batch_size
    assert result.results[0].avg_batch_size == pytest.approx(1.0)  # one search thread: batches of one
    assert "threads=1" in progress.getvalue() and "2/2" in progress.getvalue()
    table = be.format_table(result)
    assert "visits/s" in table and "nnEvals/s" in table and len(table.splitlines()) == 5
    data = result.to_dict()
    assert data["kind"] == "katadeploy.bench.engine" and data["positions"] == [p["id"] for p in positions]
    json.dumps(data)


@pytest.mark.katago
@pytest.mark.timeout(900)
def test_cli_prints_table_and_writes_json(katago, shared_dir, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(
        [
            "bench",
            "engine",
            "--model",
            str(shared_dir / "models" / NET),
            "--threads",
            "1",
            "--visits",
            "8",
            "--positions",
            "1",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "visits/s" in captured.out and captured.out.splitlines()[3].split()[0] == "1"
    data = json.loads(out.read_text())
    assert data["visits"] == 8 and len(data["results"]) == 1 and data["results"][0]["visits"] >= 8
    assert data["results"][0]["nn_evals"] >= 1


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["--threads", "1,x"], "comma-separated integers"),
        (["--threads", "0"], "1..1024"),
        (["--sgf", "/nonexistent.sgf"], "does not exist"),
        (["--config", "/nonexistent.cfg"], "does not exist"),
    ],
)
def test_bad_input_is_a_clear_error(argv, expect, shared_dir, capsys, monkeypatch, tmp_path):
    fake = tmp_path / "katago"
    fake.write_text("#!/bin/sh\necho 'KataGo v1.18.1'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("KATADEPLOY_KATAGO", str(fake))
    rc = main(["bench", "engine", "--model", str(shared_dir / "models" / NET), "--no-progress", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and expect in err and "Traceback" not in err


def test_missing_model_or_katago_is_a_clear_error(tmp_path, capsys, monkeypatch):
    fake = tmp_path / "katago"
    fake.write_text("#!/bin/sh\necho 'KataGo v1.18.1'\n")
    fake.chmod(0o755)
    assert main(["bench", "engine", "--model", str(tmp_path / "nope.bin.gz"), "--katago", str(fake)]) == 2
    assert "model" in (err := capsys.readouterr().err) and "nope.bin.gz does not exist" in err
    assert (
        main(["bench", "engine", "--model", str(tmp_path / "nope.bin.gz"), "--katago", "/nonexistent"]) == 2
    )
    assert "KataGo binary /nonexistent does not exist" in capsys.readouterr().err


def test_positions_from_sgf_are_deterministic_tromp_taylor(shared_dir):
    games = sorted((shared_dir / "sgf").glob("*.sgf"))[:2]
    a = be.positions_from_sgf(games, 4)
    b = be.positions_from_sgf(games, 4)
    assert a == b and len(a) == 8
    for pos in a:
        assert pos["rules"] == "tromp-taylor" and pos["boardXSize"] == 19
        assert pos["id"].split("@")[0] in {g.name for g in games}
        assert len(pos["moves"]) == int(pos["id"].split("@")[1])
        assert pos["komi"] == pytest.approx(round(pos["komi"] * 2) / 2)


def test_progress_bar_without_tty_prints_at_most_every_tenth():
    buf = io.StringIO()
    bar = be.ProgressBar(100, label="x", stream=buf)
    for _ in range(100):
        bar.update()
    bar.close()
    lines = buf.getvalue().splitlines()
    assert 10 <= len(lines) <= 11 and lines[-1].startswith("x [" + "#" * 30 + "] 100/100")
    silent = io.StringIO()
    be.ProgressBar(3, stream=silent, enabled=False).update()
    assert silent.getvalue() == ""


# ------------------------------------------------------------------------------------------------------------
# bench engine --backend: katadeploy's own engine on artifacts and nets, beside KataGo


@pytest.fixture(scope="module")
def onnx_artifact(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from tests.export.artifacts import artifact_builder

    return artifact_builder()(tmp_path_factory.mktemp("art"), "g170-b6c96-s175395328-d26788732", "onnx-fp32")


@pytest.mark.timeout(900)
def test_backends_side_by_side_without_katago(onnx_artifact, shared_dir, tmp_path):
    from katadeploy.bench.engine_compare import run_backend_bench
    from katadeploy.bench.engine_report import format_markdown, write_plot

    net = shared_dir / "models" / NET
    progress = io.StringIO()
    visits = 12
    positions = be.default_positions(2)
    result = run_backend_bench(
        [str(onnx_artifact), "torch"], net=net, katago=None, threads=[1, 2], visits=visits,
        positions=positions, nn_threads=1, progress=True, stream=progress,
    )  # fmt: skip
    assert [e.label for e in result.engines] == ["katadeploy onnx-fp32", "katadeploy torch"]
    assert [e.backend for e in result.engines] == ["onnx-fp32", "torch"]
    assert result.katago is None and any("KataGo not run" in n for n in result.notes)
    assert any("useGraphSearch" in n for n in result.notes)  # the engine's own config notes are kept
    for e in result.engines:
        assert [r.threads for r in e.results] == [1, 2]
        for r in e.results:
            assert r.batch_size == 8 and len(r.per_position) == 2
            for p in r.per_position:
                assert visits <= p.visits <= visits + r.threads - 1
                assert p.playouts is not None and p.visits - 1 <= p.playouts <= p.visits
                assert p.nn_evals is not None and 1 <= p.nn_evals <= p.visits
                assert 0 < p.search_cpu_seconds and 0 < p.nn_seconds < p.search_wall_seconds
            assert r.nn_evals == sum(p.nn_evals for p in r.per_position)
            assert r.playouts_per_s is not None and r.playouts_per_s > 0
            assert 0 < r.overhead_cpu_ms_per_playout < 1000 and r.overhead_wall_ms_per_playout is not None
            assert r.avg_batch_size is not None and 1.0 <= r.avg_batch_size <= r.batch_size
        assert e.results[0].avg_batch_size == pytest.approx(1.0)
    assert "katadeploy onnx-fp32 threads=1" in progress.getvalue()
    md = format_markdown(result)
    table = [ln for ln in md.splitlines() if ln.startswith("| katadeploy")]
    assert len(table) == 4 and "overhead CPU ms/playout" in md and "x KataGo" in md
    data = result.to_dict()
    assert data["schema"] == 2 and [e["backend"] for e in data["engines"]] == ["onnx-fp32", "torch"]
    assert data["engines"][0]["results"][0]["overhead_cpu_ms_per_playout"] > 0
    json.dumps(data)
    png = write_plot(result, tmp_path / "engine.png")
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.katago
@pytest.mark.timeout(900)
def test_cli_backends_beside_katago(katago, onnx_artifact, shared_dir, tmp_path, capsys):
    out = tmp_path / "engine"
    argv = [
        "bench", "engine", "--backend", str(onnx_artifact), "--model", str(shared_dir / "models" / NET),
        "--threads", "1", "--visits", "8", "--positions", "2", "--no-progress", "--json", f"{out}.json",
        "--markdown", f"{out}.md", "--plot", f"{out}.png",
    ]  # fmt: skip
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    data = json.loads((tmp_path / "engine.json").read_text())
    kg_run, ours = data["engines"]
    assert (
        kg_run["kind"] == "katago"
        and kg_run["version"] == "KataGo v1.18.1"
        and ours["backend"] == "onnx-fp32"
    )
    kg_row, our_row = kg_run["results"][0], ours["results"][0]
    assert (
        kg_row["nn_evals"] >= 2 and kg_row["playouts"] >= 14 and kg_row["overhead_cpu_ms_per_playout"] is None
    )
    assert our_row["nn_evals"] >= 2 and our_row["overhead_cpu_ms_per_playout"] > 0
    rows = [
        ln for ln in captured.out.splitlines() if ln.startswith("| KataGo") or ln.startswith("| katadeploy")
    ]
    assert len(rows) == 2 and "n/a" in rows[0] and rows[1].rstrip(" |").endswith("x")
    assert (tmp_path / "engine.md").read_text() == captured.out and (tmp_path / "engine.png").is_file()


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        ([], "needs --model"),
        (["--model", "MODEL", "--plot", "x.png"], "go with --backend"),
        (["--backend", "/nonexistent.onnx", "--no-katago"], "no such artifact or net"),
        (["--backend", "torch", "--no-katago"], "--backend torch needs --model"),
        (["--backend", "torch", "--model", "MODEL", "--no-katago", "--threads", "0"], "1..1024"),
    ],
)
def test_backend_bad_input_is_a_clear_error(argv, expect, shared_dir, capsys):
    argv = [str(shared_dir / "models" / NET) if a == "MODEL" else a for a in argv]
    rc = main(["bench", "engine", "--no-progress", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and expect in err and "Traceback" not in err and len(err.strip().splitlines()) <= 3


def test_backend_from_another_net_is_refused(onnx_artifact, shared_dir, capsys):
    other = shared_dir / "models" / "b7c96h3tfrs-test5-cnorm.bin.gz"
    rc = main(["bench", "engine", "--backend", str(onnx_artifact), "--model", str(other), "--no-katago"])
    assert rc == 2 and "exported from another net" in capsys.readouterr().err
