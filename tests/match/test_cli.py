"""``katadeploy match`` refuses bad input with one error line (exit code 2), before any Ray work."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from katadeploy.cli import main
from katadeploy.errors import MissingExtraError


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(["match", *argv])
    err = capsys.readouterr().err
    return code, err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("katadeploy: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["no-such-net.bin.gz", "{net}"], "does not exist"),
        (["{net}", "{readme}"], "neither a KataGo net"),
        (["{net}", "katago:"], "katago:NET needs a net"),
        (["{net}", "{net}", "--sprt", "10,0"], "elo0 must be smaller"),
        (["{net}", "{net}", "--sprt", "ten"], "--sprt takes elo0,elo1"),
        (["{net}", "{net}", "--komi", "7.3"], "--komi 7.3"),
        (["{net}", "{net}", "--rules", "nonsense-rules"], "nonsense"),
        (["{net}", "{net}", "--games", "0"], "--games must be >= 1"),
        (["{net}", "{net}", "--visits", "0"], "visits must be >= 1"),
        (["{net}", "{net}", "--resign-threshold", "0.7"], "--resign-threshold"),
        (["{net}", "{net}", "--board", "9", "--openings", "{nowhere}"], "no such SGF"),
    ],
)
def test_bad_input_is_one_error_line(capsys, g170_path: Path, tmp_path: Path, argv, expect):
    subs = {"net": str(g170_path), "readme": str(Path(__file__).resolve().parents[2] / "README.md"),
            "nowhere": str(tmp_path / "none")}  # fmt: skip
    argv = [a.format(**subs) for a in argv]
    code, err = run(capsys, *argv, "-o", str(tmp_path / "out"))
    assert code == 2
    assert expect in one_error_line(err)


def test_an_existing_ledger_needs_resume(capsys, g170_path: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    header = {"kind": "match", "version": 1, "config": {}}
    game = {"kind": "game", "game": 0, "winner": "A", "opening": "random-0"}
    (out / "games.jsonl").write_text(json.dumps(header) + "\n" + json.dumps(game) + "\n")
    code, err = run(capsys, str(g170_path), str(g170_path), "--board", "9", "-o", str(out))
    assert code == 2 and "--resume" in one_error_line(err)
    code, err = run(capsys, str(g170_path), str(g170_path), "--board", "9", "--visits", "3", "--resume",
                    "-o", str(out))  # fmt: skip
    assert code == 2 and "different match" in one_error_line(err)


def test_board_sizes_are_limited_to_9_13_19(capsys, g170_path: Path):
    with pytest.raises(SystemExit) as exc:
        main(["match", str(g170_path), str(g170_path), "--board", "7"])
    assert exc.value.code == 2


def test_negative_sprt_bounds_parse_with_equals():
    from katadeploy.cli import build_parser

    args = build_parser().parse_args(["match", "a", "b", "--sprt=-10,0"])
    assert args.sprt == "-10,0"


def test_missing_ray_names_the_extra(monkeypatch):
    from katadeploy.match.cluster import connect

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(MissingExtraError, match=r"katadeploy\[match\]"):
        connect()
