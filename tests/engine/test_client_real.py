"""Client tests against the real KataGo binary (v1.18.1 OpenCL, installed by ``katadeploy katago install``).

They use the smallest test net (g170 b6c96) on 9x9 boards with few visits, so they take a few minutes on a
CPU-only OpenCL (pocl) machine once KataGo's per-net OpenCL tuning is cached. The binary is installed when
missing (see the ``katago`` fixture in ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from katadeploy.engine import (
    AnalysisEngine,
    AnalysisResponse,
    AsyncAnalysisEngine,
    EngineStartError,
    EngineWarning,
    QueryError,
    QueryTimeout,
    query_from_sgf,
)

pytestmark = [pytest.mark.katago, pytest.mark.timeout(900)]

NET = "g170-b6c96-s175395328-d26788732.bin.gz"
START_TIMEOUT = 900.0  # first use of a net on an OpenCL CPU device runs KataGo's tuner


@pytest.fixture(scope="module")
def katago_binary(katago: Any) -> Any:
    """The shared session fixture: installs KataGo when missing (and fails under CI without OpenCL)."""
    return katago


@pytest.fixture(scope="module")
def model_path(shared_dir: Path) -> Path:
    path = shared_dir / "models" / NET
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return path


@pytest.fixture(scope="module")
def make_engine(katago_binary: Any, model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """Factory: ``make_engine(**config_overrides, options=dict(...))`` -> started AnalysisEngine."""
    from katadeploy.engine import katago

    engines: list[AnalysisEngine] = []
    counter = iter(range(1000))

    def make(
        options: dict[str, Any] | None = None, model: Path | None = None, **overrides: Any
    ) -> AnalysisEngine:
        config = tmp_path_factory.mktemp("cfg") / f"analysis{next(counter)}.cfg"
        katago.write_analysis_config(config, **{"numAnalysisThreads": 2, "maxVisits": 20, **overrides})
        argv = katago_binary.argv("analysis", "-config", config, "-model", model or model_path)
        opts = {"env": katago_binary.env, "start_timeout": START_TIMEOUT, "backoff_initial": 0.2}
        opts.update(options or {})
        eng = AnalysisEngine(argv, **opts)
        engines.append(eng)
        return eng

    yield make
    for eng in engines:
        eng.close()


@pytest.fixture(scope="module")
def shared_engine(make_engine):
    return make_engine()


def q9(qid: str | None = None, **kw: Any) -> dict[str, Any]:
    query = {
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


def test_version_models_cache_and_typed_reply(shared_engine):
    eng = shared_engine
    assert eng.query_version().version == "1.18.1"
    models = eng.query_models()
    assert models and models[0].name.endswith(NET) and models[0].version == 8
    eng.clear_cache()
    r = eng.analyze(q9("typed", includeOwnership=True, includePolicy=True))
    assert r.id == "typed" and r.turn_number == 2 and not r.is_during_search
    assert r.root_info is not None and r.root_info.current_player == "B" and r.root_info.visits >= 5
    assert r.best_move is not None and r.best_move.order == 0 and 0.0 <= r.best_move.winrate <= 1.0
    assert len(r.ownership) == 81 and len(r.policy) == 82


def test_hundred_queries_in_flight_answered_out_of_order(shared_engine):
    eng = shared_engine
    arrival: list[str] = []
    handles = []
    for i in range(100):
        # alternate cheap and dearer searches so that KataGo's two analysis threads finish out of order
        h = eng.submit(q9(f"h{i}", maxVisits=1 if i % 2 else 40, moves=[["B", "E5"]] if i % 3 else []))
        h.futures[h.turns[0]].add_done_callback(lambda f: arrival.append(f.result().id))
        handles.append(h)
    results = [h.result(timeout=600) for h in handles]
    assert [r.id for r in results] == [f"h{i}" for i in range(100)]
    for i, r in enumerate(results):
        assert r.turn_number == (1 if i % 3 else 0)
        assert r.root_info.visits >= (1 if i % 2 else 40)
    assert sorted(arrival) == sorted(f"h{i}" for i in range(100))
    assert arrival != [f"h{i}" for i in range(100)]  # really out of order


def test_analyze_turns_from_sgf(shared_engine, shared_dir):
    query = query_from_sgf(shared_dir / "sgf" / "DeepZenGo_0000.sgf", turns=[0, 1, 30], max_visits=2)
    results = shared_engine.analyze_turns(query, timeout=600)
    assert [r.turn_number for r in results] == [0, 1, 30]
    assert [r.root_info.current_player for r in results] == ["B", "W", "B"]


def test_streaming_partials_then_final(shared_engine):
    items: list[AnalysisResponse] = []
    for item in shared_engine.stream(q9(maxVisits=100000, reportDuringSearchEvery=0.05), timeout=600):
        items.append(item)
        if sum(r.is_during_search for r in items) == 3:
            shared_engine.terminate(item.id)
    flags = [r.is_during_search for r in items]
    assert flags[:3] == [True, True, True] and flags[-1] is False and flags.count(False) == 1
    visits = [r.root_info.visits for r in items]
    assert visits == sorted(visits) and visits[-1] > 1


def test_terminate_before_and_during_search(shared_engine):
    eng = shared_engine
    # occupy both analysis threads, then queue a third query
    running = [eng.submit(q9(f"run{i}", maxVisits=1_000_000)) for i in range(2)]
    time.sleep(1.0)
    queued = eng.submit(q9("queued", maxVisits=1_000_000))
    eng.terminate(queued)
    r = queued.result(timeout=60)
    assert r.no_results and r.id == "queued"
    assert not any(h.done() for h in running)
    eng.terminate_all()
    for h in running:
        r = h.result(timeout=60)
        assert not r.no_results and r.root_info.visits > 0  # partial search results


def test_terminate_right_after_submit(shared_engine):
    handles = [shared_engine.submit(q9(f"t{i}", maxVisits=1_000_000)) for i in range(5)]
    for h in handles:
        h.terminate(wait=False)
    results = [h.result(timeout=60) for h in handles]
    # Each query is answered, under its own id, long before its million visits. Whether a query was still queued
    # (noResults) or already picked up by one of the two analysis threads (a partial search) when KataGo read its
    # terminate is a race that a loaded CI box decides either way (a CI run saw 3 of 5 started), so it is not asserted.
    assert [r.id for r in results] == [f"t{i}" for i in range(5)]
    for r in results:
        assert r.no_results or 0 < r.root_info.visits < 100_000


def test_error_and_warning_replies(shared_engine):
    with pytest.raises(QueryError) as info:
        shared_engine.analyze(q9("illegal", moves=[["B", "E5"], ["W", "E5"]]))
    assert info.value.field == "moves" and info.value.query_id == "illegal"
    with pytest.raises(QueryError, match="analyzeTurns|turn"):
        shared_engine.analyze_turns(q9(analyzeTurns=[0, 7]))
    handle = shared_engine.submit(q9("typo", maxVisitz=3))
    with pytest.warns(EngineWarning, match="Unexpected or unused field") as record:
        assert handle.result(timeout=60).best_move is not None
    assert record[0].message.field == "maxVisitz"


def test_query_timeout_when_engine_is_stuck(shared_engine):
    eng = shared_engine
    pid = eng.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(QueryTimeout):
            eng.analyze(q9("stuck"), timeout=1.0)
        assert time.monotonic() - t0 < 5
    finally:
        os.kill(pid, signal.SIGCONT)
    assert eng.analyze(q9("after")).best_move is not None
    assert eng.pid == pid


def test_sigkill_mid_run_restarts_and_resends(make_engine):
    eng = make_engine()
    first_pid = eng.pid
    handles = [eng.submit(q9(f"k{i}", maxVisits=30)) for i in range(30)]
    time.sleep(0.3)
    os.kill(first_pid, signal.SIGKILL)
    results = [h.result(timeout=600) for h in handles]
    assert [r.id for r in results] == [f"k{i}" for i in range(30)]
    assert eng.stats.restarts == 1 and eng.pid != first_pid
    assert any("exited with code -9" in line for line in eng.stderr_tail(None))


def test_stderr_flood_does_not_block(make_engine):
    # Logging every request and response to stderr makes KataGo write over a megabyte there (the pipe holds
    # 64 KiB): a client that did not drain stderr would deadlock.
    eng = make_engine(logAllRequests=True, logAllResponses=True, options={"stderr_lines": 100})
    handles = [
        eng.submit(
            q9(f"f{i}", maxVisits=2, includeOwnership=True, includePolicy=True, includeMovesOwnership=True)
        )
        for i in range(150)
    ]
    assert all(h.result(timeout=600).id == f"f{i}" for i, h in enumerate(handles))
    tail = eng.stderr_tail(None)
    assert len(tail) <= 100 and any("Response" in line or "Request" in line for line in tail)


def test_bad_config_fails_clearly_at_startup(make_engine, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(EngineStartError) as info:
        make_engine(model=tmp_path / "no-such-model.bin.gz")
    exc = info.value
    assert exc.returncode not in (None, 0)
    assert "no-such-model" in exc.reason  # the cause is in the headline, not only in the stderr tail
    assert any("no-such-model" in line for line in exc.stderr_tail)
    assert time.monotonic() - t0 < 120
    with pytest.raises(EngineStartError) as info:
        make_engine(numAnalysisThreads="lots")
    assert "numAnalysisThreads" in info.value.reason


def test_async_client_against_real_engine(katago_binary, model_path, tmp_path):
    from katadeploy.engine import katago

    config = katago.write_analysis_config(tmp_path / "a.cfg", numAnalysisThreads=2)
    argv = katago_binary.argv("analysis", "-config", config, "-model", model_path)

    async def main() -> None:
        async with AsyncAnalysisEngine(argv, env=katago_binary.env, start_timeout=START_TIMEOUT) as eng:
            results = await asyncio.gather(
                *(eng.analyze(q9(f"a{i}", maxVisits=1 + i % 7)) for i in range(40))
            )
            assert [r.id for r in results] == [f"a{i}" for i in range(40)]
            partials = [r async for r in eng.stream(q9(maxVisits=200, reportDuringSearchEvery=0.02))]
            assert not partials[-1].is_during_search
            assert (await eng.query_version()).version == "1.18.1"

    asyncio.run(main())
