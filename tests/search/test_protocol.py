"""``katadeploy analysis`` driven by ``katadeploy.engine.AnalysisEngine`` as a subprocess, mirroring the client's
real-KataGo scenarios (tests/engine/test_client_real.py) on 9x9 with the small g170 net and few visits."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from katadeploy.engine import AnalysisEngine, AnalysisResponse, EngineStartError, EngineWarning, QueryError
from katadeploy.search.commands import analysis_argv

pytestmark = pytest.mark.timeout(300)


def q9(qid: str | None = None, **kw: Any) -> dict[str, Any]:
    query: dict[str, Any] = {
        "moves": [["B", "E5"], ["W", "C3"]],
        "rules": "tromp-taylor",
        "komi": 7.0,
        "boardXSize": 9,
        "boardYSize": 9,
        "maxVisits": 5,
    }
    if qid is not None:
        query["id"] = qid
    query.update(kw)
    return query


def argv(model: Path, config: Path, *extra: str) -> list[str]:
    return analysis_argv(model, config, *extra)


@pytest.fixture(scope="module")
def engine(g170_path: Path, tmp_path_factory: pytest.TempPathFactory):
    from tests.search.conftest import write_cfg

    cfg = write_cfg(tmp_path_factory.mktemp("cfg") / "analysis.cfg")
    eng = AnalysisEngine(argv(g170_path, cfg, "-nn-threads", "1"), start_timeout=120, backoff_initial=0.2)
    yield eng
    eng.close()


def test_version_models_cache_and_typed_reply(engine):
    assert engine.query_version().version == "1.18.1"
    models = engine.query_models()
    assert models and models[0].name.endswith(".bin.gz") and models[0].version == 8
    engine.clear_cache()
    r = engine.analyze(q9("typed", includeOwnership=True, includePolicy=True, includePVVisits=True))
    assert r.id == "typed" and r.turn_number == 2 and not r.is_during_search
    assert r.root_info is not None and r.root_info.current_player == "B" and r.root_info.visits >= 5
    best = r.best_move
    assert best is not None and best.order == 0 and 0.0 <= best.winrate <= 1.0
    assert best.pv and best.pv[0] == best.move and len(best.raw["pvVisits"]) == len(best.pv)
    for key in (
        "visits",
        "winrate",
        "scoreMean",
        "scoreStdev",
        "scoreLead",
        "prior",
        "utility",
        "lcb",
        "order",
    ):
        assert key in best.raw
    assert len(r.ownership) == 81 and len(r.policy) == 82
    assert abs(sum(p for p in r.policy if p >= 0) - 1.0) < 1e-4
    r = engine.analyze(q9("stdev", includeOwnershipStdev=True, includeMovesOwnership=True, maxVisits=12))
    assert len(r.raw["ownershipStdev"]) == 81 and all(v >= 0 for v in r.raw["ownershipStdev"])
    assert "ownership" not in r.raw and len(r.best_move.raw["ownership"]) == 81


def test_perspective_follows_report_as(engine):
    r_black = engine.analyze(q9("persp", maxVisits=8))
    assert r_black.root_info.current_player == "B"
    # White to move now; values stay from Black's view (reportAnalysisWinratesAs = BLACK)
    r_white = engine.analyze(q9("persp2", moves=[["B", "E5"]], maxVisits=8))
    assert r_white.root_info.current_player == "W"
    assert r_white.root_info.winrate < 0.9 and r_black.root_info.winrate > 0.1


def test_hundred_queries_in_flight(engine):
    handles = []
    for i in range(100):
        h = engine.submit(q9(f"h{i}", maxVisits=1 if i % 2 else 6, moves=[["B", "E5"]] if i % 3 else []))
        handles.append(h)
    results = [h.result(timeout=240) for h in handles]
    assert [r.id for r in results] == [f"h{i}" for i in range(100)]
    for i, r in enumerate(results):
        assert r.turn_number == (1 if i % 3 else 0)
        assert r.root_info.visits >= (1 if i % 2 else 6)


def test_analyze_turns(engine):
    moves = [["B", "E5"], ["W", "C3"], ["B", "G7"], ["W", "C7"]]
    results = engine.analyze_turns(q9(moves=moves, analyzeTurns=[0, 1, 4], maxVisits=3), timeout=120)
    assert [r.turn_number for r in results] == [0, 1, 4]
    assert [r.root_info.current_player for r in results] == ["B", "W", "B"]


def test_streaming_partials_then_final(engine):
    items: list[AnalysisResponse] = []
    for item in engine.stream(q9(maxVisits=100000, reportDuringSearchEvery=0.05), timeout=120):
        items.append(item)
        if sum(r.is_during_search for r in items) == 3:
            engine.terminate(item.id)
    flags = [r.is_during_search for r in items]
    assert flags[:3] == [True, True, True] and flags[-1] is False and flags.count(False) == 1
    visits = [r.root_info.visits for r in items]
    assert visits == sorted(visits) and visits[-1] > 1


def test_terminate_queued_and_running(engine):
    running = [engine.submit(q9(f"run{i}", maxVisits=1_000_000)) for i in range(2)]
    time.sleep(1.0)
    queued = engine.submit(q9("queued", maxVisits=1_000_000))
    engine.terminate(queued)
    r = queued.result(timeout=60)
    assert r.no_results and r.id == "queued"
    assert not any(h.done() for h in running)
    engine.terminate_all()
    for h in running:
        r = h.result(timeout=60)
        assert not r.no_results and r.root_info.visits > 0


def test_error_and_warning_replies_keep_serving(engine):
    with pytest.raises(QueryError) as info:
        engine.analyze(q9("illegal", moves=[["B", "E5"], ["W", "E5"]]))
    assert info.value.field == "moves" and info.value.query_id == "illegal"
    with pytest.raises(QueryError, match="Invalid turn number"):
        engine.analyze_turns(q9(analyzeTurns=[0, 7]))
    with pytest.raises(QueryError) as info:
        engine.analyze(q9("badrules", rules="no-such-rules"))
    assert info.value.field == "rules"
    with pytest.raises(QueryError) as info:
        engine.analyze(q9("bigboard", boardXSize=25))
    assert info.value.field == "boardXSize"
    handle = engine.submit(q9("typo", maxVisitz=3))
    with pytest.warns(EngineWarning, match="Unexpected or unused field") as record:
        assert handle.result(timeout=60).best_move is not None
    assert record[0].message.field == "maxVisitz"
    handle = engine.submit(q9("ovr", overrideSettings={"noSuchParam": 1, "cpuctExploration": 0.9}))
    with pytest.warns(EngineWarning, match="Unknown config params: noSuchParam"):
        assert handle.result(timeout=60).best_move is not None
    assert engine.analyze(q9("after")).best_move is not None


def test_sigkill_restarts_and_resends(g170_path: Path, cfg_factory):
    with AnalysisEngine(argv(g170_path, cfg_factory()), start_timeout=120, backoff_initial=0.2) as eng:
        first = eng.pid
        handles = [eng.submit(q9(f"k{i}", maxVisits=150)) for i in range(10)]
        time.sleep(0.3)
        os.kill(first, signal.SIGKILL)
        results = [h.result(timeout=240) for h in handles]
        assert [r.id for r in results] == [f"k{i}" for i in range(10)]
        assert eng.stats.restarts == 1 and eng.pid != first


def test_bad_model_is_one_line_error(tmp_path: Path, cfg_factory):
    with pytest.raises(EngineStartError) as info:
        AnalysisEngine(argv(tmp_path / "no-such-model.bin.gz", cfg_factory()), start_timeout=60)
    assert "no-such-model" in info.value.reason


def test_artifact_runs_through_its_runtime(g170_path: Path, tmp_path: Path, cfg_factory):
    import subprocess

    pytest.importorskip("onnxruntime")
    out = tmp_path / "art"
    subprocess.run(
        [sys.executable, "-m", "katadeploy.cli", "export", str(g170_path), "--target", "onnx-fp32", "-o", str(out), "-q"],
        check=True, timeout=240,
    )  # fmt: skip
    artifact = next(out.glob("*.onnx"))
    cmd = argv(artifact, cfg_factory(numAnalysisThreads=1), "-net", str(g170_path))
    with AnalysisEngine(cmd, start_timeout=120) as eng:
        assert eng.query_models()[0].name == artifact.name
        r = eng.analyze(q9("onnx", maxVisits=10))  # a 9x9 board in the artifact's 19x19 tensor
        assert r.root_info.visits >= 10 and r.best_move is not None


def test_config_keys_not_used_are_reported(g170_path: Path, cfg_factory):
    import subprocess

    cfg = cfg_factory(cpuctExplorationTypo=1.0, antiMirror="true", openclUseFP16="false")
    proc = subprocess.run(argv(g170_path, cfg), input="", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    err = proc.stderr
    assert "Unused key 'cpuctExplorationTypo'" in err
    assert "antiMirror = true (set in the config) is not implemented" in err
    assert "useGraphSearch = true (KataGo's analysis default)" in err
    assert "no effect on katadeploy's evaluators: logToStderr, openclUseFP16" in err
    bad = cfg_factory(cpuctExploration=99)
    proc = subprocess.run(argv(g170_path, bad), input="", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "cpuctExploration" in proc.stderr and proc.stderr.count("\n") == 1


def test_analyze_turns_from_sgf(engine, shared_dir: Path):
    from katadeploy.engine import query_from_sgf

    query = query_from_sgf(shared_dir / "sgf" / "DeepZenGo_0000.sgf", turns=[0, 1, 30], max_visits=2)
    results = engine.analyze_turns(query, timeout=120)
    assert [r.turn_number for r in results] == [0, 1, 30]
    assert [r.root_info.current_player for r in results] == ["B", "W", "B"]


def test_query_timeout_when_stopped_then_recovers(engine):
    from katadeploy.engine import QueryTimeout

    os.kill(engine.pid, signal.SIGSTOP)
    try:
        with pytest.raises(QueryTimeout):
            engine.analyze(q9("stuck"), timeout=1.0)
    finally:
        os.kill(engine.pid, signal.SIGCONT)
    assert engine.analyze(q9("after-stop")).best_move is not None


def test_stderr_flood_and_async_client(g170_path: Path, cfg_factory):
    import asyncio

    from katadeploy.engine import AsyncAnalysisEngine

    cmd = argv(g170_path, cfg_factory(logAllRequests="true", logAllResponses="true"))
    with AnalysisEngine(cmd, start_timeout=120, stderr_lines=50) as eng:
        handles = [
            eng.submit(q9(f"f{i}", maxVisits=2, includeOwnership=True, includePolicy=True)) for i in range(60)
        ]
        assert all(h.result(timeout=120).id == f"f{i}" for i, h in enumerate(handles))
        assert any("Response" in line for line in eng.stderr_tail(None))

    async def main() -> None:
        async with AsyncAnalysisEngine(argv(g170_path, cfg_factory()), start_timeout=120) as eng:
            results = await asyncio.gather(
                *(eng.analyze(q9(f"a{i}", maxVisits=1 + i % 5)) for i in range(20))
            )
            assert [r.id for r in results] == [f"a{i}" for i in range(20)]
            partials = [r async for r in eng.stream(q9(maxVisits=150, reportDuringSearchEvery=0.02))]
            assert not partials[-1].is_during_search
            assert (await eng.query_version()).version == "1.18.1"

    asyncio.run(main())
