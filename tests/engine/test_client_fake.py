"""Client tests against the scripted fake engine (tests/engine/fake_engine.py).

They cover what the real engine cannot be made to do on demand (garbage, partial lines, out-of-spec replies,
hangs, crashes at chosen moments) and the protocol paths that it can, quickly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
import tracemalloc
import warnings
from pathlib import Path

import pytest

from katadeploy.engine import (
    AnalysisEngine,
    AnalysisQuery,
    AnalysisResponse,
    AsyncAnalysisEngine,
    EngineClosed,
    EngineCrashed,
    EngineError,
    EngineStartError,
    EngineWarning,
    QueryError,
    QueryTimeout,
)
from katadeploy.errors import KatadeployError

pytestmark = pytest.mark.timeout(90)

FAKE = Path(__file__).with_name("fake_engine.py")


def fake(*args: object) -> list[str]:
    return [sys.executable, str(FAKE), *map(str, args)]


def q(**kw: object) -> dict:
    base = {"moves": [["B", "D4"]], "rules": "chinese", "boardXSize": 19, "boardYSize": 19}
    base.update(kw)
    return base


def engine(*args: object, **options: object) -> AnalysisEngine:
    options.setdefault("backoff_initial", 0.05)
    return AnalysisEngine(fake(*args), **options)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); check its state
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# ================================================================================================= basics


def test_analyze_returns_typed_response_keeping_unknown_fields():
    with engine() as eng:
        r = eng.analyze(q(id="mine", maxVisits=7, includePolicy=True))
    assert isinstance(r, AnalysisResponse)
    assert r.id == "mine" and r.turn_number == 1 and not r.is_during_search and not r.no_results
    assert r.best_move is not None and r.best_move.move == "D4" and r.best_move.visits == 7
    assert r.best_move.extra == {"futureField": 7}
    assert r.move_infos[1].move == "Q16" and r.move_infos[1].pv == ["Q16"]
    assert (
        r.root_info is not None
        and r.root_info.current_player == "B"
        and r.root_info.extra == {"futureRoot": 1}
    )
    assert r.extra["futureTopLevel"] is True
    assert len(r.policy) == 362
    assert r["futureTopLevel"] is True and "fakeEcho" in r


def test_analysis_query_dataclass_roundtrip_and_passthrough():
    query = AnalysisQuery(
        moves=[("B", "Q16"), ("W", "D4")],
        komi=6.5,
        max_visits=3,
        priority=5,
        override_settings={"wideRootNoise": 0.04},
        include_pv_visits=True,
        first_report_during_search_after=0.5,
        extra={"futureQueryField": [1, 2]},
    )
    wire = query.to_dict()
    assert wire["moves"] == [["B", "Q16"], ["W", "D4"]]
    assert wire["includePVVisits"] is True and wire["firstReportDuringSearchAfter"] == 0.5
    assert wire["futureQueryField"] == [1, 2] and "id" not in wire
    assert AnalysisQuery.from_dict(wire).to_dict() == wire
    assert AnalysisQuery.from_dict({"moves": []}).to_dict() == {"moves": []}
    with engine() as eng:
        r = eng.analyze(query)
    echo = r["fakeEcho"]
    assert (
        echo["maxVisits"] == 3
        and echo["priority"] == 5
        and echo["overrideSettings"] == {"wideRootNoise": 0.04}
    )


def test_user_ids_may_repeat_and_are_written_back():
    with engine("--threads", 4) as eng:
        handles = [eng.submit(q(id="same", maxVisits=i + 1)) for i in range(5)]
        results = [h.result(timeout=10) for h in handles]
    assert [r.id for r in results] == ["same"] * 5
    assert [r.best_move.visits for r in results] == [1, 2, 3, 4, 5]


def test_hundred_queries_answered_in_reverse_order():
    with engine("--threads", 100, "--reverse-batch", 100) as eng:
        order: list[int] = []
        lock = threading.Lock()
        handles = []
        for i in range(100):
            h = eng.submit(q(id=f"q{i}", maxVisits=i + 1))
            h.futures[1].add_done_callback(lambda f, i=i: (lock.acquire(), order.append(i), lock.release()))
            handles.append(h)
        results = [h.result(timeout=20) for h in handles]
    assert [r.id for r in results] == [f"q{i}" for i in range(100)]
    assert [r.best_move.visits for r in results] == list(range(1, 101))
    assert order == list(range(99, -1, -1))  # the fake really answered in reverse


def test_out_of_order_by_search_time():
    with engine("--threads", 20) as eng:
        handles = [eng.submit(q(id=str(i), _fake={"delay": 0.02 * (20 - i)})) for i in range(20)]
        finished = [r.id for r in (h.result(timeout=20) for h in handles)]
        assert finished == [str(i) for i in range(20)]


def test_analyze_turns_one_result_per_turn_in_turn_order():
    query = q(
        moves=[["B", "D4"], ["W", "Q16"], ["B", "D16"]],
        analyzeTurns=[3, 0, 1, 1],
        _fake={"turn_delays": {"0": 0.3, "1": 0.1, "3": 0.0}},
    )
    with engine("--threads", 4) as eng:
        results = eng.analyze_turns(query)
        assert [r.turn_number for r in results] == [0, 1, 3]
        handle = eng.submit(query)
        assert handle.turns == (0, 1, 3)
        with pytest.raises(ValueError, match="3 turns"):
            handle.result()
        before = eng.stats.submitted
        with pytest.raises(ValueError, match="analyze_turns"):
            eng.analyze(query)
        assert eng.stats.submitted == before  # refused before anything was sent
        completed = [r.turn_number for r in handle.as_completed(timeout=10)]
        assert completed == [3, 1, 0]


def test_empty_analyze_turns_finishes_at_once():
    with engine() as eng:
        handle = eng.submit(q(analyzeTurns=[]))
        assert handle.done() and handle.results() == []
        with pytest.raises(ValueError, match="analyzeTurns"):
            eng.submit(q(analyzeTurns="all"))
        with pytest.raises(ValueError, match="action"):
            eng.submit({"id": "x", "action": "query_version"})


def test_priority_is_honoured_by_engine():
    with engine("--threads", 1) as eng:
        blocker = eng.submit(q(id="blocker", _fake={"delay": 0.3}))
        time.sleep(0.1)
        low = eng.submit(q(id="low", priority=-5))
        high = eng.submit(q(id="high", priority=10))
        done: list[str] = []
        for h in (low, high):
            h.futures[1].add_done_callback(lambda f: done.append(f.result().id))
        blocker.result(10), low.result(10), high.result(10)
    assert done == ["high", "low"]


# ================================================================================================= streaming


def test_partial_results_via_callback_then_final():
    seen: list[AnalysisResponse] = []
    with engine() as eng:
        final = eng.analyze(q(reportDuringSearchEvery=0.05, _fake={"delay": 0.4}), on_partial=seen.append)
    assert len(seen) >= 3
    assert all(r.is_during_search and r.turn_number == 1 for r in seen)
    assert not final.is_during_search and final.best_move.visits == 10


def test_first_report_during_search_after_is_sent():
    seen: list[AnalysisResponse] = []
    with engine() as eng:
        eng.analyze(
            q(reportDuringSearchEvery=10.0, firstReportDuringSearchAfter=0.05, _fake={"delay": 0.3}),
            on_partial=seen.append,
        )
    assert len(seen) == 1


def test_stream_iterator_yields_partials_then_finals_per_turn():
    with engine("--threads", 2) as eng:
        items = list(
            eng.stream(
                q(
                    moves=[["B", "D4"]],
                    analyzeTurns=[0, 1],
                    reportDuringSearchEvery=0.05,
                    _fake={"delay": 0.3},
                )
            )
        )
    finals = [r for r in items if not r.is_during_search]
    assert sorted(r.turn_number for r in finals) == [0, 1]
    assert not items[-1].is_during_search
    for turn in (0, 1):
        mine = [r for r in items if r.turn_number == turn]
        assert len(mine) >= 3 and all(r.is_during_search for r in mine[:-1]) and not mine[-1].is_during_search


def test_leaving_stream_early_terminates_query():
    with engine() as eng:
        start = time.monotonic()
        for item in eng.stream(q(reportDuringSearchEvery=0.05, _fake={"delay": 30})):
            assert item.is_during_search
            break
        deadline = time.monotonic() + 5
        while eng.pending_count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert eng.pending_count == 0
        assert time.monotonic() - start < 5


# ================================================================================================= actions


def test_query_version_models_clear_cache():
    with engine() as eng:
        version = eng.query_version()
        assert version.version == "1.99.0-fake" and version.git_hash == "fake"
        models = eng.query_models()
        assert [m.name for m in models] == ["fake.bin.gz"] and models[0].max_batch_size == 8
        assert eng.clear_cache() is None
        with pytest.raises(ValueError):
            eng.send_action("reboot")


def test_terminate_query_that_has_not_started():
    with engine("--threads", 1) as eng:
        running = eng.submit(q(id="running", _fake={"delay": 0.5}))
        queued = eng.submit(q(id="queued", _fake={"delay": 5}))
        t0 = time.monotonic()
        eng.terminate(queued)
        r = queued.result(timeout=2)
        assert r.no_results and r.id == "queued" and r.turn_number == 1 and r.best_move is None
        assert time.monotonic() - t0 < 0.4  # not waiting for the running search
        assert not running.result(timeout=5).no_results


def test_terminate_during_search_returns_partial_result():
    with engine() as eng:
        handle = eng.submit(q(id="long", _fake={"delay": 30}))
        time.sleep(0.2)
        t0 = time.monotonic()
        handle.terminate()
        r = handle.result(timeout=3)
        assert time.monotonic() - t0 < 2
        assert not r.no_results and r.best_move is not None
        eng.terminate("no-such-id")  # unknown ids are a no-op
        eng.terminate(handle)  # finished handles too


def test_terminate_by_caller_id_and_turn_numbers():
    with engine("--threads", 1) as eng:
        first = eng.submit(
            q(id="game", moves=[["B", "D4"], ["W", "Q16"]], analyzeTurns=[0, 1, 2], _fake={"delay": 0.3})
        )
        eng.terminate("game", turn_numbers=[1, 2])
        results = first.results(timeout=5)
        assert [r.turn_number for r in results] == [0, 1, 2]
        assert not results[0].no_results and results[1].no_results and results[2].no_results


def test_terminate_all_ends_queued_and_running_queries():
    with engine("--threads", 2) as eng:
        handles = [eng.submit(q(id=str(i), _fake={"delay": 30})) for i in range(6)]
        time.sleep(0.2)
        t0 = time.monotonic()
        eng.terminate_all()
        results = [h.result(timeout=3) for h in handles]
        assert time.monotonic() - t0 < 2
        assert sum(r.no_results for r in results) == 4  # two were searching
        assert eng.analyze(q()).best_move is not None  # engine still usable


# ================================================================================================= engine-reported problems


def test_error_reply_raises_query_error_with_field_and_id():
    with engine() as eng:
        bad = eng.submit({"id": "bad", "moves": [], "boardXSize": 19, "boardYSize": 19})
        good = eng.submit(q(id="good"))
        with pytest.raises(QueryError) as info:
            bad.result(timeout=5)
        assert info.value.field == "rules" and info.value.query_id == "bad"
        assert isinstance(info.value, EngineError) and isinstance(info.value, KatadeployError)
        assert good.result(timeout=5).id == "good"
        with pytest.raises(QueryError, match="Invalid turn number: 9"):
            eng.analyze_turns(q(analyzeTurns=[0, 9]))
        with pytest.raises(QueryError, match="forced") as info:
            eng.analyze(q(id="f", _fake={"error": "forced", "error_field": "komi"}))
        assert info.value.field == "komi"


def test_idless_error_echoing_the_query_is_attributed():
    with engine() as eng:
        with pytest.raises(QueryError, match="parse"):
            eng.analyze(q(id="echoed", _fake={"noid_error": "boom"}), timeout=5)
        assert eng.pending_count == 0


def test_warning_reply_becomes_engine_warning_and_query_still_runs():
    with engine() as eng:
        handle = eng.submit(
            q(id="w", _fake={"warning": "Unexpected or unused field", "warning_field": "maxVisitz"})
        )
        with pytest.warns(EngineWarning, match="Unexpected or unused field") as record:
            r = handle.result(timeout=5)
        assert r.best_move is not None
        w = record[0].message
        assert isinstance(w, EngineWarning) and w.field == "maxVisitz" and w.query_id == "w"
        assert handle.warnings == [w]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            handle.result()  # issued only once per handle


# ================================================================================================= client-side robustness


def test_garbage_lines_and_split_writes_are_survived():
    with engine("--garbage-every", 2, "--split-writes", "--threads", 8) as eng:
        handles = [eng.submit(q(id=str(i), maxVisits=i + 1)) for i in range(40)]
        results = [h.result(timeout=20) for h in handles]
        assert [r.best_move.visits for r in results] == list(range(1, 41))
        assert eng.stats.junk_lines >= 8  # non-JSON lines and JSON lists
        assert eng.stats.unmatched >= 8  # unknown id and id-less replies
        assert eng.stats.completed == 40


def test_out_of_spec_replies_are_ignored():
    with engine() as eng:
        r = eng.analyze(q(id="a", _fake={"wrong_turn": True, "delay": 0.1}))
        assert not r.get("bogus")
        assert eng.stats.unexpected == 1
        r = eng.analyze(q(id="b", _fake={"duplicate_final": True, "delay": 0.1}))
        assert r.get("bogus")  # the first final reply wins; the later one is dropped
        deadline = time.monotonic() + 5
        while eng.stats.unmatched < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert eng.stats.unmatched == 1


def test_huge_garbage_line_is_skipped_with_bounded_memory():
    tracemalloc.start()
    try:
        with engine("--huge-line", 30_000_000, max_line_bytes=1 << 20) as eng:
            r = eng.analyze(q(), timeout=30)
            _, peak = tracemalloc.get_traced_memory()
            assert r.best_move is not None
            assert eng.stats.junk_lines == 1
    finally:
        tracemalloc.stop()
    assert peak < 8 * (1 << 20)  # the 30 MB line was never held


def test_stderr_flood_neither_blocks_nor_grows_memory():
    # 200 replies x 500 lines x 113 bytes = 11 MB of stderr, written before each reply: without draining,
    # the fake would block after 64 KiB and stop answering.
    with engine("--stderr-flood", 500, "--threads", 8, stderr_lines=200) as eng:
        handles = [eng.submit(q(id=str(i), _fake={"delay": 0.01})) for i in range(200)]
        assert all(h.result(timeout=60).id == str(i) for i, h in enumerate(handles))
        time.sleep(0.3)
        tail = eng.stderr_tail(None)
        assert 0 < len(tail) <= 200
        assert any("flood" in line for line in tail)


def test_per_query_timeout_fires_on_hung_engine_and_close_kills_it():
    eng = engine("--hang-after", 1, "--ignore-sigterm", close_timeout=0.3)
    try:
        assert eng.analyze(q()).best_move is not None
        pid = eng.pid
        t0 = time.monotonic()
        with pytest.raises(QueryTimeout) as info:
            eng.analyze(q(id="stuck"), timeout=0.5)
        assert info.value.terminated and info.value.query_id == "stuck"
        assert 0.4 < time.monotonic() - t0 < 3
        stuck = eng.submit(q(id="pending"))
    finally:
        t0 = time.monotonic()
        eng.close()
        assert time.monotonic() - t0 < 8
    with pytest.raises(EngineClosed):
        stuck.result(timeout=1)
    assert not pid_alive(pid)


def test_default_query_timeout_option():
    with engine("--hang-after", 0, query_timeout=0.3, close_timeout=0.2) as eng:
        with pytest.raises(QueryTimeout):
            eng.analyze(q())
        assert eng.stats.timeouts == 1


def test_caller_side_wait_timeout_does_not_cancel_query():
    with engine() as eng:
        handle = eng.submit(q(_fake={"delay": 0.5}))
        with pytest.raises(QueryTimeout) as info:
            handle.result(timeout=0.05)
        assert not info.value.terminated and isinstance(info.value, TimeoutError)
        assert handle.result(timeout=5).best_move is not None


# ================================================================================================= crashes and restarts


def test_crash_restarts_engine_and_resends_in_flight_queries(tmp_path):
    state = tmp_path / "crash"
    with engine(
        "--crash-after", 5, "--crash-state", state, "--crash-times", 1, "--threads", 2, "--delay", 0.1
    ) as eng:
        first_pid = eng.pid
        handles = [eng.submit(q(id=str(i), maxVisits=i + 1)) for i in range(12)]
        results = [h.result(timeout=30) for h in handles]
        assert [r.best_move.visits for r in results] == list(range(1, 13))
        assert eng.stats.restarts == 1 and eng.pid != first_pid and eng.state == "running"
        assert any(r["fakeEcho"]["pid"] == eng.pid for r in results)
        assert any("exited with code" in line for line in eng.stderr_tail(None))
        assert eng.analyze(q()).best_move is not None


def test_crash_resends_only_unfinished_turns(tmp_path):
    state = tmp_path / "crash"
    query = q(
        moves=[["B", "D4"], ["W", "Q16"], ["B", "D16"], ["W", "Q4"]],
        analyzeTurns=[0, 1, 2, 3, 4],
        priorities=[1, 2, 3, 4, 5],
    )
    with engine(
        "--crash-after-finals", 2, "--crash-state", state, "--crash-times", 1, "--threads", 1, "--delay", 0.05
    ) as eng:
        results = eng.analyze_turns(query, timeout=30)
    assert [r.turn_number for r in results] == [0, 1, 2, 3, 4]
    # the fake runs highest priority first: turns 4 and 3 finished before the crash
    echoes = [r["fakeEcho"]["analyzeTurns"] for r in results]
    assert echoes[3] == echoes[4] == [0, 1, 2, 3, 4]
    assert echoes[0] == echoes[1] == echoes[2] == [0, 1, 2]
    assert results[0]["fakeEcho"]["priority"] == 1 and results[2]["fakeEcho"]["priority"] == 3


def test_sigkill_mid_run_resends_pending_queries():
    with engine("--threads", 4, "--delay", 0.2) as eng:
        handles = [eng.submit(q(id=str(i))) for i in range(20)]
        time.sleep(0.1)
        os.kill(eng.pid, signal.SIGKILL)
        results = [h.result(timeout=30) for h in handles]
        assert [r.id for r in results] == [str(i) for i in range(20)]
        assert eng.stats.restarts == 1
        assert eng.stats.resent >= 1


def test_crash_loop_gives_up_with_engine_crashed_and_stderr_tail():
    t0 = time.monotonic()
    with engine("--crash-after", 1, max_restarts=2) as eng:
        handles = [eng.submit(q(id=str(i))) for i in range(3)]
        for h in handles:
            with pytest.raises(EngineCrashed) as info:
                h.result(timeout=20)
        exc = info.value
        assert any("crashing on purpose" in line for line in exc.stderr_tail)
        assert exc.returncode == -signal.SIGKILL and exc.restarts == 2
        assert "crashing on purpose" in str(exc)
        assert eng.state == "failed"
        with pytest.raises(EngineCrashed):
            eng.submit(q())
        with pytest.raises(EngineCrashed):
            eng.query_version()
    assert time.monotonic() - t0 < 20


def test_restarts_disabled():
    with engine(max_restarts=0) as eng:
        handle = eng.submit(q(_fake={"delay": 5}))
        os.kill(eng.pid, signal.SIGKILL)
        with pytest.raises(EngineCrashed, match="restarts disabled"):
            handle.result(timeout=10)


def test_terminate_while_restarting_ends_query_locally(tmp_path):
    state = tmp_path / "crash"
    with engine("--crash-after", 2, "--crash-state", state, backoff_initial=1.0) as eng:
        long = eng.submit(q(id="long", _fake={"delay": 30}))
        trigger = eng.submit(q(id="trigger"))
        deadline = time.monotonic() + 5
        while eng.state != "restarting" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert eng.state == "restarting"
        eng.terminate(long)
        r = long.result(timeout=0.5)  # local noResults, no need to wait for the restart
        assert r.no_results and r.id == "long"
        assert eng.state == "restarting"
        assert trigger.result(timeout=10).best_move is not None  # re-sent after the restart


def test_engine_closing_stdout_counts_as_crash():
    with engine("--close-stdout", 2, max_restarts=0) as eng:
        assert eng.analyze(q()).best_move is not None
        pid = eng.pid
        with pytest.raises(EngineCrashed):
            eng.analyze(q(), timeout=10)
        assert not pid_alive(pid)  # it was still running: the client killed it


# ================================================================================================= start-up and close


def test_start_failure_raises_start_error_with_stderr():
    with pytest.raises(EngineStartError) as info:
        engine("--fail-start", "Could not open model file: nope.bin.gz")
    exc = info.value
    assert exc.returncode == 1
    assert any("Could not open model file" in line for line in exc.stderr_tail)
    assert "Could not open model file" in exc.reason


def test_start_timeout_when_never_ready():
    t0 = time.monotonic()
    with pytest.raises(EngineStartError, match="not ready after"):
        engine("--no-ready", start_timeout=0.5)
    assert time.monotonic() - t0 < 5


def test_missing_executable():
    with pytest.raises(EngineStartError, match="cannot execute"):
        AnalysisEngine(["/nonexistent/katago", "analysis"])
    with pytest.raises(TypeError):
        AnalysisEngine("katago analysis")  # type: ignore[arg-type]


def test_custom_ready_pattern_and_probe():
    with engine("--ready-line", "engine up!", ready_pattern=r"engine up") as eng:
        assert eng.analyze(q()).best_move is not None
    with engine("--no-ready", ready_pattern=None, probe=True) as eng:
        assert eng.query_version().version == "1.99.0-fake"


def test_close_is_idempotent_and_blocks_further_use():
    eng = engine()
    eng.close()
    eng.close()
    assert eng.state == "closed"
    with pytest.raises(EngineClosed):
        eng.submit(q())
    with pytest.raises(EngineClosed):
        eng.query_version()


def test_close_terminates_pending_queries_quickly():
    eng = engine("--threads", 1)
    handles = [eng.submit(q(id=str(i), _fake={"delay": 30})) for i in range(5)]
    time.sleep(0.1)
    t0 = time.monotonic()
    eng.close()
    assert time.monotonic() - t0 < 5
    results = [h.result(timeout=1) for h in handles]
    assert sum(r.no_results for r in results) == 4


def test_close_finish_pending_waits_for_results():
    eng = engine("--threads", 2)
    handles = [eng.submit(q(id=str(i), _fake={"delay": 0.1})) for i in range(6)]
    eng.close(finish_pending=True)
    assert all(not h.result(timeout=1).no_results for h in handles)


def test_close_from_another_thread_while_waiting():
    eng = engine("--hang-after", 0, close_timeout=0.2)
    handle = eng.submit(q())
    threading.Timer(0.2, eng.close).start()
    with pytest.raises(EngineClosed):
        handle.result(timeout=10)


# ================================================================================================= asyncio


def test_async_engine_end_to_end():
    async def main() -> None:
        async with AsyncAnalysisEngine(fake("--threads", 50, "--reverse-batch", 50)) as eng:
            results = await asyncio.gather(*(eng.analyze(q(id=f"a{i}", maxVisits=i + 1)) for i in range(100)))
            assert [r.id for r in results] == [f"a{i}" for i in range(100)]
            assert [r.best_move.visits for r in results] == list(range(1, 101))
            handle = eng.submit(q(moves=[["B", "D4"], ["W", "Q16"]], analyzeTurns=[0, 2]))
            assert [r.turn_number for r in await handle.results(timeout=10)] == [0, 2]
            assert (await eng.query_version()).version == "1.99.0-fake"
            assert (await eng.query_models())[0].internal_name == "fake"
            await eng.clear_cache()
            assert (await eng.submit(q())).turn_number == 1
        assert eng.state == "closed"
        await eng.close()

    asyncio.run(main())


def test_async_stream_and_partial_callback():
    async def main() -> None:
        async with AsyncAnalysisEngine(fake()) as eng:
            items = [r async for r in eng.stream(q(reportDuringSearchEvery=0.05, _fake={"delay": 0.3}))]
            assert len(items) >= 3 and all(r.is_during_search for r in items[:-1])
            assert not items[-1].is_during_search
            seen: list[AnalysisResponse] = []
            loop_thread = threading.get_ident()
            threads: set[int] = set()

            def cb(r: AnalysisResponse) -> None:
                seen.append(r)
                threads.add(threading.get_ident())

            await eng.analyze(q(reportDuringSearchEvery=0.05, _fake={"delay": 0.3}), on_partial=cb)
            assert len(seen) >= 3 and threads == {loop_thread}

    asyncio.run(main())


def test_async_cancellation_terminates_query_and_errors_propagate():
    async def main() -> None:
        async with AsyncAnalysisEngine(fake(), backoff_initial=0.05) as eng:
            task = asyncio.create_task(eng.analyze(q(id="slow", _fake={"delay": 30})))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for _ in range(100):
                if eng.pending_count == 0:
                    break
                await asyncio.sleep(0.02)
            assert eng.pending_count == 0
            with pytest.raises(QueryError):
                await eng.analyze({"moves": [], "boardXSize": 19, "boardYSize": 19})
            with pytest.raises(QueryTimeout):
                await eng.analyze(q(_fake={"delay": 5}), timeout=0.2)
            handle = eng.submit(q(_fake={"delay": 5}))
            await asyncio.sleep(0.1)
            await handle.terminate()
            assert not (await handle).no_results
            os.kill(eng.pid, signal.SIGKILL)
            assert (await eng.analyze(q(), timeout=20)).best_move is not None
            assert eng.stats.restarts == 1

    asyncio.run(main())


def test_async_start_failure():
    async def main() -> None:
        with pytest.raises(EngineStartError):
            async with AsyncAnalysisEngine(fake("--fail-start", "bad config")):
                pass

    asyncio.run(main())


# ================================================================================================= soak-style overhead


def test_client_overhead_per_query_is_small():
    """5,000 one-visit queries, up to 1,000 in flight: nothing lost, and the client's own CPU time per query
    (this process: caller, reader and writer threads; the fake engine is a separate process) stays far below
    1 ms."""
    n, window = 5000, 1000
    with engine("--threads", 64) as eng:
        eng.analyze(q())  # warm up
        cpu0, wall0 = time.process_time(), time.perf_counter()
        inflight: list = []
        done = 0
        for i in range(n):
            inflight.append(
                eng.submit(
                    {
                        "id": str(i),
                        "moves": [],
                        "rules": "chinese",
                        "boardXSize": 19,
                        "boardYSize": 19,
                        "maxVisits": 1,
                    }
                )
            )
            if len(inflight) >= window:
                for h in inflight[: window // 2]:
                    h.result(timeout=60)
                    done += 1
                del inflight[: window // 2]
        for h in inflight:
            h.result(timeout=60)
            done += 1
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        assert done == n and eng.stats.completed == n + 1 and eng.pending_count == 0
    per_query_ms = cpu / n * 1000
    print(f"\nclient CPU {per_query_ms:.3f} ms/query, wall {wall / n * 1000:.3f} ms/query over {n} queries")
    assert per_query_ms < 1.0


def test_deadline_bookkeeping_stays_bounded():
    with engine("--threads", 16) as eng:
        for _wave in range(10):  # steady traffic: 10 waves of 500 queries, each with a long deadline
            handles = [eng.submit(q(id=str(i)), timeout=300) for i in range(500)]
            assert all(h.result(timeout=60).id == str(i) for i, h in enumerate(handles))
        assert eng.pending_count == 0
        assert len(eng._core._deadlines) <= 2048  # not one entry per query ever sent (5000)
