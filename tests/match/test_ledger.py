"""The ledger (katadeploy.match.ledger): durable appends, resume, refusals, a torn last line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from katadeploy.errors import KatadeployError
from katadeploy.match.ledger import LEDGER_NAME, open_ledger

CONFIG = {"players": [{"sha256": "a"}, {"sha256": "b"}], "visits": [4, 4], "board": 9, "komi": 7.5,
          "rules": "tromp-taylor", "openings": {"moves": 2}, "max_moves": 50, "resign_threshold": 0.05,
          "resign_moves": 3, "games": 10}  # fmt: skip


def rec(i: int) -> dict:
    return {"game": i, "winner": "A", "result": "B+R", "moves": [["B", "E5"]]}


def test_append_is_one_line_per_game_and_resume_reads_it_back(tmp_path: Path):
    with open_ledger(tmp_path, CONFIG, resume=False) as led:
        led.append(rec(3))
        led.append(rec(0))
        lines = (tmp_path / LEDGER_NAME).read_text().splitlines()  # on disk before close
        assert len(lines) == 3 and json.loads(lines[0])["kind"] == "match"
        assert json.loads(lines[1]) == {"kind": "game", **rec(3)}
        with pytest.raises(ValueError, match="already"):
            led.append(rec(3))
    with open_ledger(tmp_path, {**CONFIG, "games": 20}, resume=True) as led:  # more games is the same match
        assert list(led.records) == [3, 0] and led.records[0] == rec(0)
        led.append(rec(1))
    with open_ledger(tmp_path, CONFIG, resume=True) as led:
        assert [r["game"] for r in led.ordered()] == [3, 0, 1]


def test_existing_games_need_resume_and_the_same_match(tmp_path: Path):
    with open_ledger(tmp_path, CONFIG, resume=False) as led:
        led.append(rec(0))
    with pytest.raises(KatadeployError, match="--resume"):
        open_ledger(tmp_path, CONFIG, resume=False)
    with pytest.raises(KatadeployError, match="visits, komi differ"):
        open_ledger(tmp_path, {**CONFIG, "visits": [8, 4], "komi": 6.5}, resume=True)
    assert len((tmp_path / LEDGER_NAME).read_text().splitlines()) == 2  # nothing was overwritten


def test_a_ledger_without_games_is_restarted(tmp_path: Path):
    open_ledger(tmp_path, CONFIG, resume=False).close()
    with open_ledger(tmp_path, {**CONFIG, "board": 13}, resume=False) as led:
        assert led.records == {}
    header = json.loads((tmp_path / LEDGER_NAME).read_text().splitlines()[0])
    assert header["config"]["board"] == 13
    with open_ledger(tmp_path / "fresh", CONFIG, resume=True) as led:  # --resume without a ledger: a new one
        assert led.records == {}


def test_torn_last_line_is_dropped_and_a_bad_line_is_an_error(tmp_path: Path):
    with open_ledger(tmp_path, CONFIG, resume=False) as led:
        led.append(rec(0))
        led.append(rec(1))
    path = tmp_path / LEDGER_NAME
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"kind":"game","game":2,"res')  # a crash in the middle of a write
    with open_ledger(tmp_path, CONFIG, resume=True) as led:
        assert sorted(led.records) == [0, 1] and "unfinished" in led.notes[0]
        assert path.read_bytes() == whole
        led.append(rec(2))
    assert len(path.read_text().splitlines()) == 4
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n")
    with pytest.raises(KatadeployError, match="line 2"):
        open_ledger(tmp_path, CONFIG, resume=True)
    path.write_text('{"some": "thing"}\n' + "\n".join(lines[1:]) + "\n")
    with pytest.raises(KatadeployError, match="not a katadeploy match ledger"):
        open_ledger(tmp_path, CONFIG, resume=True)
