"""Match summaries and reports (katadeploy.match.report) from synthetic ledger records."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from katadeploy.match.report import HISTORY_POINTS, a_score, markdown, summarize, write_reports

PLAYERS = {"A": {"label": "a.onnx", "kind": "katadeploy", "visits": 8}, "B": {"label": "b.xml", "kind": "katago",
           "visits": 16}}  # fmt: skip
EXTRA = {"players": PLAYERS, "visits": {"A": 8, "B": 16}, "board": 9, "komi": 7.5, "rules": "tromp-taylor",
         "openings": {"source": "test openings"}, "games_per_hour": 12.5, "workers": 2, "address": "local",
         "cluster_cpus": 2.0, "engine_start_seconds": 1.0, "replays": 1, "sprt": None}  # fmt: skip


def records(n: int) -> list[dict]:
    out = []
    for i in range(n):
        winner = ("A", "B", None)[i % 3] if i % 5 else "A"
        out.append({"game": i, "black": "A" if i % 2 == 0 else "B", "winner": winner, "end": "resign",
                    "moves": [["B", "E5"]] * 10, "note": None})  # fmt: skip
    return out


def test_summary_counts_from_a_point_of_view():
    recs = records(30)
    s = summarize(recs, EXTRA)
    scores = [a_score(r) for r in recs]
    assert (s["wins"], s["losses"], s["draws"]) == (scores.count(1.0), scores.count(0.0), scores.count(0.5))
    assert s["games"] == 30 and s["elo_ci95"][0] < s["elo"] < s["elo_ci95"][1]
    black = s["as_black"]
    assert sum(black.values()) == 15 and sum(s["as_white"].values()) == 15
    assert s["end"] == {"resign": 30} and s["mean_moves"] == 10.0
    assert s["history"][-1][0] == 30 and s["history"][-1][1] == s["elo"]


def test_history_is_capped():
    s = summarize(records(1000), EXTRA)
    assert len(s["history"]) <= HISTORY_POINTS + 1 and s["history"][-1][0] == 1000


def test_reports_are_written_and_the_plot_is_optional(tmp_path: Path, monkeypatch):
    s = summarize(records(6), EXTRA)
    paths = write_reports(s, tmp_path)
    assert set(paths) == {"json", "md", "png"} and paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert json.loads(paths["json"].read_text())["elo_ci95"] == s["elo_ci95"]
    md = markdown(s)
    assert "A = a.onnx" in md and "8 visits" in md and "16 visits" in md and "12.5 games/hour" in md
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "no-plot"
    out.mkdir()
    s = summarize(records(6), EXTRA)
    paths = write_reports(s, out)
    assert "png" not in paths and not (out / "elo.png").exists()
    assert "matplotlib is not installed" in json.loads(paths["json"].read_text())["plot_note"]
