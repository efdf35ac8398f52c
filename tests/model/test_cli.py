"""The model CLI: raw-nn output shape and ordering, inspect, models list, and clean errors (no tracebacks)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import SHARED, load_golden, small_net_path

NET = "g170-b6c96-s175395328-d26788732"


def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "katadeploy.cli", *args], capture_output=True, text=True,
                          input=input, timeout=300)  # fmt: skip


def test_raw_nn_cli_matches_golden_keys_and_values(tmp_path):
    positions = tmp_path / "p.jsonl"
    lines = (SHARED / "oracle" / "positions.jsonl").read_text().splitlines()
    positions.write_text("\n".join(lines[:3] + [l for l in lines if '"rand' in l][:2]) + "\n")
    proc = run("raw-nn", str(small_net_path(NET)), "--positions", str(positions), "-q")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(l) for l in proc.stdout.splitlines()]
    golden = load_golden(NET)
    assert len(rows) == 5
    for row in rows:
        assert list(row) == ["id", "raw"]
        assert list(row["raw"]) == list(golden[row["id"]])
        assert abs(row["raw"]["whiteWin"] - golden[row["id"]]["whiteWin"]) < 1e-4


def test_inspect_cli():
    proc = run("inspect", str(small_net_path(NET)), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["modelVersion"] == 8 and info["trunk"]["blocks"] == 6 and info["trunk"]["channels"] == 96
    assert info["parameters"] > 1_000_000 and info["gflopsPerEval"] > 0


def test_models_list():
    proc = run("models", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    names = {m["name"] for m in json.loads(proc.stdout)}
    assert names == {"g170e-b15c192", "kata1-b18c384nbt", "b10c384h6nbttflrs"}


BAD_POSITIONS = [
    (
        '{"id": "occupied", "moves": [["B","D4"],["W","D4"]], "rules": "chinese", "komi": 7.5, "boardXSize": 19, "boardYSize": 19}',
        "occupied",
    ),
    (
        '{"id": "badvertex", "moves": [["B","Z99"]], "rules": "chinese", "komi": 7.5, "boardXSize": 19, "boardYSize": 19}',
        "badvertex",
    ),
    (
        '{"id": "offboard", "moves": [["B","K10"]], "rules": "chinese", "komi": 7.5, "boardXSize": 9, "boardYSize": 9}',
        "offboard",
    ),
    (
        '{"id": "toobig", "moves": [], "rules": "chinese", "komi": 7.5, "boardXSize": 25, "boardYSize": 25}',
        "toobig",
    ),
    (
        '{"id": "tiny", "moves": [], "rules": "chinese", "komi": 7.5, "boardXSize": 1, "boardYSize": 1}',
        "tiny",
    ),
    (
        '{"id": "badrules", "moves": [], "rules": "calvinball", "komi": 7.5, "boardXSize": 9, "boardYSize": 9}',
        "badrules",
    ),
    (
        '{"id": "badkomi", "moves": [], "rules": "chinese", "komi": "lots", "boardXSize": 9, "boardYSize": 9}',
        "badkomi",
    ),
    (
        '{"id": "ko", "initialStones": [["B","B1"],["B","A2"],["W","C1"],["W","B2"]], "moves": [["W","A1"],["B","B1"],["W","A1"]], "rules": "japanese", "komi": 6.5, "boardXSize": 9, "boardYSize": 9}',
        "ko",
    ),
    ("{not json", ":1:"),
]


@pytest.mark.parametrize("line,needle", BAD_POSITIONS, ids=[b[1] for b in BAD_POSITIONS])
def test_raw_nn_bad_positions_are_clear_errors(tmp_path, line, needle):
    p = tmp_path / "bad.jsonl"
    p.write_text(line + "\n")
    proc = run("raw-nn", str(small_net_path(NET)), "--positions", str(p), "-q")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr, proc.stderr


def test_raw_nn_skip_bad_evaluates_the_rest(tmp_path):
    good = (SHARED / "oracle" / "positions.jsonl").read_text().splitlines()[0]
    p = tmp_path / "mixed.jsonl"
    p.write_text(BAD_POSITIONS[0][0] + "\n" + good + "\n")
    proc = run("raw-nn", str(small_net_path(NET)), "--positions", str(p), "--skip-bad", "-q")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1 and "occupied" in proc.stderr


@pytest.mark.parametrize("content", [b"", b"\x1f\x8b\x08garbage", b"hello world"])
def test_bad_model_files_are_clear_errors(tmp_path, content):
    p = tmp_path / "bad.bin.gz"
    p.write_bytes(content)
    proc = run("inspect", str(p))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "error" in proc.stderr


def test_unknown_model_name():
    proc = run("inspect", "no-such-net")
    assert proc.returncode == 2 and "known" in proc.stderr and "Traceback" not in proc.stderr
