"""katadeploy's engine against the real KataGo binary (``katago:NET``), and KataGo reading our SGF."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from katadeploy.match.runner import MatchOptions, run_match

pytestmark = [pytest.mark.katago, pytest.mark.ray, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def katago_match(katago: Any, ray_local, g170_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("katago-match")
    run_match(MatchOptions(a=str(g170_path), b=f"katago:{g170_path}", visits_a=4, visits_b=4, games=2, board=9,
                           max_moves=30, workers=1, out_dir=out, progress=False))  # fmt: skip
    return out


def test_katadeploy_against_katago(katago_match: Path):
    s = json.loads((katago_match / "match.json").read_text())
    assert (
        s["games"] == 2
        and s["players"]["B"]["kind"] == "katago"
        and s["players"]["A"]["kind"] == "katadeploy"
    )
    assert s["players"]["A"]["sha256"] == s["players"]["B"]["sha256"]  # same net on both sides
    assert s["forfeits"] == []  # KataGo and katadeploy's referee agree on every move's legality
    lo, hi = s["elo_ci95"]
    assert lo <= s["elo"] <= hi


def test_katago_loads_the_match_sgf(
    katago: Any, katago_gtp_config: Path, g170_path: Path, katago_match: Path
):
    sgf_path = katago_match / "sgf" / "game-0000.sgf"
    games = [json.loads(line) for line in (katago_match / "games.jsonl").read_text().splitlines()[1:]]
    game = next(g for g in games if g["game"] == 0)
    proc = subprocess.run(
        katago.argv("gtp", "-config", katago_gtp_config, "-model", g170_path),
        env=katago.env, input=f"loadsgf {sgf_path}\nkata-get-rules\nget_komi\nprintsgf\nquit\n", capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    replies = [r.strip() for r in proc.stdout.split("\n\n") if r.strip()]
    assert replies[0] == "=", proc.stdout + proc.stderr[-2000:]
    rules = json.loads(replies[1].lstrip("= "))
    assert rules["scoring"] == "AREA" and rules["ko"] == "POSITIONAL"  # tromp-taylor
    assert replies[2] == "= 7.5"
    held = replies[3]  # KataGo's own SGF of the position it loaded: every move of the game
    assert held.count(";B[") + held.count(";W[") == len(game["moves"])
