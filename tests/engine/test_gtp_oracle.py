"""The real KataGo (v1.18.1 OpenCL, FP32 GTP config) as a raw-NN oracle: ``kata-raw-nn 0 0`` through
:class:`katadeploy.engine.katago.gtp.GTPEngine` agrees with the Eigen FP32 goldens in ``shared/oracle``."""

from __future__ import annotations

import json
import math

import pytest

from katadeploy.engine.katago.gtp import (
    RAW_SCALAR_KEYS,
    GTPEngine,
    GTPError,
    GTPTimeout,
    format_overrides,
    parse_raw_nn,
)
from katadeploy.errors import KatadeployError, PositionError
from tests.conftest import load_golden
from tests.golden_check import raw_errors

SMALL_NETS = (
    "g170-b6c96-s175395328-d26788732",
    "b7c96h3tfrs-test5-cnorm",
    "b7c96h6kv3qk32v16tflrs-fson-bnh",
)
#: three 19x19 game positions (one handicap game among the first ten is fine too) and two small random boards
POSITION_IDS = (
    "DeepZenGo_0021.sgf@94",
    "Jin_Mao_Ce_Shi_0062.sgf@3",
    "FineArt_0116.sgf@63",
    "rand9_101_1",
    "rand13_101_0",
)
PROB_TOL = 1e-4  # probabilities: policy, policyPass, whiteWin/Loss/noResult, ownership
#: the score-like keys (whiteLead .. shorttermScoreError): compared to print precision
SCALAR_KEYS = RAW_SCALAR_KEYS[
    RAW_SCALAR_KEYS.index("whiteLead") : RAW_SCALAR_KEYS.index("shorttermScoreError") + 1
]
BUFFER_19 = {"maxBoardSizeForNNBuffer": 19, "requireMaxBoardSize": False}


def _positions(shared_dir) -> dict[str, dict]:
    with open(shared_dir / "oracle" / "positions.jsonl", encoding="utf-8") as f:
        return {p["id"]: p for p in map(json.loads, f)}


def assert_matches_golden(got: dict, want: dict, where: str) -> None:
    """KataGo's own kata-raw-nn against its goldens: every probability (ownership included) within
    :data:`PROB_TOL` (tighter than the torch port's gates: both sides are KataGo), scalars to print precision."""
    assert set(want) <= set(got), f"{where}: missing keys {set(want) - set(got)}"
    assert got["symmetry"] == 0
    assert len(got["policy"]) == len(want["policy"]) == len(got["whiteOwnership"])
    err = raw_errors(got, want, where)
    for key in ("whiteWin", "whiteLoss", "noResult", "policyPass", "policy", "ownership"):
        assert err[key] <= PROB_TOL, f"{where} {key} off by {err[key]}"
    for key in SCALAR_KEYS:
        assert math.isclose(got[key], want[key], rel_tol=1e-4, abs_tol=2e-3), (
            f"{where} {key}: {got[key]} vs {want[key]}"
        )


@pytest.mark.katago
@pytest.mark.timeout(900)
@pytest.mark.parametrize("stem", SMALL_NETS)
def test_kata_raw_nn_matches_golden(stem, katago, katago_gtp_config, shared_dir):
    positions, golden = _positions(shared_dir), load_golden(stem)
    with GTPEngine(shared_dir / "models" / f"{stem}.bin.gz", katago_gtp_config, binary=katago) as engine:
        assert engine.version.startswith("1.18.1")
        for pid in POSITION_IDS:
            assert_matches_golden(
                engine.raw_nn(positions[pid], symmetry=0, optimism=0.0), golden[pid], f"{stem} {pid}"
            )


@pytest.mark.katago
@pytest.mark.timeout(600)
def test_padded_nn_buffer_override_still_matches(katago, katago_gtp_config, shared_dir):
    """With a 19x19 buffer for a 9x9 board KataGo masks the padding: still the same numbers."""
    stem = SMALL_NETS[0]
    positions, golden = _positions(shared_dir), load_golden(stem)
    assert format_overrides(BUFFER_19) == "maxBoardSizeForNNBuffer=19,requireMaxBoardSize=false"
    with GTPEngine(
        shared_dir / "models" / f"{stem}.bin.gz",
        katago_gtp_config,
        binary=katago,
        overrides={**BUFFER_19, "logToStderr": True},
    ) as engine:
        got = engine.raw_nn(positions["rand9_101_1"])
        assert any("19 * 19 allowing smaller boards" in line for line in engine.stderr_tail)
    assert_matches_golden(got, golden["rand9_101_1"], "padded rand9_101_1")


@pytest.mark.katago
@pytest.mark.timeout(600)
def test_gtp_client_protocol_errors_timeouts_and_symmetries(katago, katago_gtp_config, shared_dir):
    positions = _positions(shared_dir)
    with GTPEngine(
        shared_dir / "models" / f"{SMALL_NETS[0]}.bin.gz", katago_gtp_config, binary=katago
    ) as engine:
        with pytest.raises(GTPError, match="KataGo rejected"):
            engine.send("play B Z99")
        with pytest.raises(GTPError):
            engine.send("no-such-command")
        with pytest.raises(KatadeployError):
            engine.send("version\nquit")
        # a reply that comes after its timeout is recognised by its id and dropped
        with pytest.raises(GTPTimeout):
            engine.send("kata-raw-nn 0 0", timeout=1e-6)
        assert engine.send("name") == "KataGo"
        bad = dict(positions["rand9_101_1"], moves=[["B", "E5"], ["W", "E5"]])
        with pytest.raises(PositionError, match="rand9_101_1"):
            engine.raw_nn(bad)
        with pytest.raises(KatadeployError):
            engine.raw_nn(positions["rand9_101_1"], symmetry=8)
        every = engine.raw_nn(positions["rand9_101_1"], symmetry="all")
        assert [b["symmetry"] for b in every] == list(range(8))
        one = engine.raw_nn(positions["rand9_101_1"], symmetry=0)
        assert every[0] == one
        assert engine.alive
    assert not engine.alive
    with pytest.raises(GTPError, match="exited"):
        engine.send("name")


def test_parse_raw_nn_marks_illegal_moves_none():
    # KataGo pads grid rows with a trailing space and prints "NAN" for illegal moves
    text = "\n".join(
        [
            "symmetry 3",
            "whiteWin 0.250000",
            "whiteLoss 0.750000",
            "noResult 0.000000",
            "whiteLead -1.500",
            "whiteScoreSelfplay -1.250",
            "whiteScoreSelfplaySq 4.000",
            "varTimeLeft 0.500",
            "shorttermWinlossError 0.100",
            "shorttermScoreError 1.000",
            "policy",
            "0.500000     NAN ",
            "0.250000 0.200000 ",
            "policyPass 0.050000 ",
            "whiteOwnership",
            "-0.5000000 1.0000000 ",
            "0.0000000 -1.0000000 ",
            "",
        ]
    )
    (block,) = parse_raw_nn(text)
    assert block["symmetry"] == 3 and block["whiteWin"] == 0.25 and block["whiteLead"] == -1.5
    assert block["policy"] == [0.5, None, 0.25, 0.2]
    assert block["policyPass"] == 0.05
    assert block["whiteOwnership"] == [-0.5, 1.0, 0.0, -1.0]
    with pytest.raises(GTPError):
        parse_raw_nn("whiteWin 0.5")


def test_missing_model_or_config_is_a_clear_error(tmp_path, katago_gtp_config):
    with pytest.raises(KatadeployError, match="does not exist"):
        GTPEngine(tmp_path / "missing.bin.gz", katago_gtp_config, binary=object())  # type: ignore[arg-type]
