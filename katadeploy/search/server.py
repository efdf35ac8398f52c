"""The analysis engine: KataGo's JSON analysis protocol on a pair of text streams (``cpp/command/analysis.cpp``).

Contract
--------
:class:`AnalysisServer` reads one JSON object per line and writes one JSON object per line (compact, flushed):

* Lines that are not JSON objects or lack a string ``id`` get an id-less ``{"error"}`` reply, with KataGo's
  wording; the engine keeps serving.
* Actions: ``query_version`` (echo + ``version``/``git_hash``; the version is the KataGo protocol level this engine
  follows), ``query_models``, ``clear_cache`` (NN cache), ``terminate`` (``terminateId`` [+ ``turnNumbers``]) and
  ``terminate_all`` [+ ``turnNumbers``], each echoed at once; a queued terminated request is answered
  ``{"id","turnNumber","isDuringSearch":false,"noResults":true}``, a running one stops and reports what it has.
* Queries (:mod:`katadeploy.search.requests`) are queued by ``priority`` (higher first, then arrival) and
  searched by ``numAnalysisThreads`` workers; ``reportDuringSearchEvery`` streams ``isDuringSearch: true``
  replies before the final one. Values follow ``reportAnalysisWinratesAs``.
* A search that fails (the evaluator raised or is gone) is answered ``{"id","turnNumber","error"}`` so no client
  waits for it.
* ``log_search_info`` (the config's ``logSearchInfo``): after each search and before its final reply, the search
  log of :mod:`katadeploy.search.searchlog` goes to ``err`` (board, ``NN rows``/``NN batches`` counters, PV and
  katadeploy's cumulative ``katadeploy timing:`` line), as KataGo writes its ``printGenmoveLog``.
* End of input: queued work is finished (unless ``quit_without_waiting``), then :meth:`serve` returns 0.
"""

from __future__ import annotations

import heapq
import json
import sys
import threading
import time
import traceback
from typing import Any, TextIO

from katadeploy.search.nneval import NNEvaluator
from katadeploy.search.requests import (
    STATUS_IN_QUEUE,
    STATUS_POPPED,
    STATUS_RUNNING,
    STATUS_TERMINATED,
    AnalyzeRequest,
    QueryDefaults,
    parse_query,
)
from katadeploy.search.results import analysis_json
from katadeploy.search.search import Search
from katadeploy.search.searchlog import SearchCounters, search_log

PROTOCOL_VERSION = "1.18.1"
READY_LINE = "Started, ready to begin handling requests"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


class AnalysisServer:
    def __init__(
        self,
        nneval: NNEvaluator,
        defaults: QueryDefaults,
        *,
        num_analysis_threads: int = 1,
        models: list[dict[str, Any]] | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
        log_requests: bool = False,
        log_responses: bool = False,
        log_search_info: bool = False,
        git_hash: str = "katadeploy",
        seed: int | None = None,
    ):
        self.nneval = nneval
        self.defaults = defaults
        self.models = models or []
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.log_requests = log_requests
        self.log_responses = log_responses
        self.log_search_info = log_search_info
        self.counters = SearchCounters()
        self.git_hash = git_hash
        self._write_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue: list[tuple[int, int, AnalyzeRequest]] = []
        self._seq = 0
        self._open: dict[int, AnalyzeRequest] = {}
        self._closing = False
        self._next_id = [0]
        self._seed = seed
        self._workers = [
            threading.Thread(target=self._worker, name=f"analysis-{i}", daemon=True)
            for i in range(max(1, num_analysis_threads))
        ]

    # ------------------------------------------------------------------------------------------------ output
    def write(self, obj: dict[str, Any]) -> None:
        line = _dumps(obj)
        with self._write_lock:
            try:
                self.out.write(line + "\n")
                self.out.flush()
            except (BrokenPipeError, ValueError):
                pass
            if self.log_responses:
                self.log("Response: " + line)

    def log(self, text: str) -> None:
        try:
            self.err.write(text + "\n")
            self.err.flush()
        except (BrokenPipeError, ValueError):
            pass

    # ------------------------------------------------------------------------------------------------ input
    def handle_line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        if self.log_requests:
            self.log("Request: " + line)
        try:
            q = json.loads(line)
        except ValueError as exc:
            self.write({"error": f"{exc} - could not parse input line as json request: {line}"})
            return
        if not isinstance(q, dict):
            self.write({"error": "Request line was valid json but was not an object, ignoring: " + _dumps(q)})
            return
        if not isinstance(q.get("id"), str):
            self.write({"error": 'Request must have a string "id" field'})
            return
        if isinstance(q.get("action"), str):
            self._action(q)
            return
        try:
            reqs, replies = parse_query(q, self.defaults, self._next_id)
        except Exception as exc:  # noqa: BLE001 - a bad query must never take the engine down
            self.write({"id": q["id"], "error": f"could not handle query: {exc}"})
            return
        for r in replies:
            self.write(r)
        if reqs:
            with self._cond:
                for r in reqs:
                    self._open[r.internal_id] = r
                    heapq.heappush(self._queue, (-r.priority, self._seq, r))
                    self._seq += 1
                self._cond.notify_all()

    def _action(self, q: dict) -> None:
        action = q["action"]
        if action == "query_version":
            self.write({**q, "version": PROTOCOL_VERSION, "git_hash": self.git_hash})
        elif action == "query_models":
            self.write({**q, "models": self.models})
        elif action == "clear_cache":
            self.nneval.clear_cache()
            self.write(q)
        elif action in ("terminate", "terminate_all"):
            target = None
            if action == "terminate":
                target = q.get("terminateId")
                if not isinstance(target, str):
                    self.write({"id": q["id"], "field": "terminateId",
                                "error": 'Requests for a terminate action must have a string "terminateId" field'})  # fmt: skip
                    return
            turns = None
            if "turnNumbers" in q:
                t = q["turnNumbers"]
                if not isinstance(t, list) or not all(
                    isinstance(x, int) and not isinstance(x, bool) for x in t
                ):
                    self.write({"id": q["id"], "field": "turnNumbers",
                                "error": "If provided, must be an array of integers indicating turns to terminate"})  # fmt: skip
                    return
                turns = set(t)
            with self._cond:
                victims = [
                    r for r in self._open.values()
                    if (target is None or r.id == target) and (turns is None or r.turn_number in turns)
                ]  # fmt: skip
                for r in victims:
                    self._terminate(r)
            self.write(q)
        else:
            self.write({"error": "'action' field must be 'query_version' or 'query_models' or 'clear_cache' or "
                                 "'terminate' or 'terminate_all'"})  # fmt: skip

    def _terminate(self, r: AnalyzeRequest) -> None:
        """Call with ``_cond`` held."""
        prev = r.status
        r.status = STATUS_TERMINATED
        r.stop.set()
        if prev == STATUS_IN_QUEUE:
            self._open.pop(r.internal_id, None)
            self._no_results(r)

    def _no_results(self, r: AnalyzeRequest) -> None:
        self.write({"id": r.id, "turnNumber": r.turn_number, "isDuringSearch": False, "noResults": True})

    # ------------------------------------------------------------------------------------------------ workers
    def _pop(self) -> AnalyzeRequest | None:
        with self._cond:
            while True:
                while self._queue:
                    _, _, r = heapq.heappop(self._queue)
                    if r.status == STATUS_TERMINATED:
                        continue
                    r.status = STATUS_POPPED
                    return r
                if self._closing:
                    return None
                self._cond.wait()

    def _worker(self) -> None:
        while True:
            r = self._pop()
            if r is None:
                return
            try:
                self._search(r)
            except Exception as exc:  # noqa: BLE001 - the query fails, the engine keeps serving
                self.log(
                    "katadeploy analysis: search failed: "
                    + "".join(traceback.format_exception_only(exc)).strip()
                )
                self.write({"id": r.id, "turnNumber": r.turn_number, "error": f"search failed: {exc}"})
            finally:
                with self._cond:
                    self._open.pop(r.internal_id, None)

    def _report(self, r: AnalyzeRequest, s: Search, during: bool) -> bool:
        body = analysis_json(
            s, perspective=r.perspective, pv_len=r.pv_len, include_policy=r.include_policy,
            include_ownership=r.include_ownership, include_ownership_stdev=r.include_ownership_stdev,
            include_moves_ownership=r.include_moves_ownership,
            include_moves_ownership_stdev=r.include_moves_ownership_stdev,
            include_pv_visits=r.include_pv_visits,
            include_no_result_value=r.include_no_result_value, prevent_encore=self.defaults.prevent_encore,
        )  # fmt: skip
        if body is None:
            return False
        self.write({"id": r.id, "turnNumber": r.turn_number, "isDuringSearch": during, **body})
        return True

    def _search(self, r: AnalyzeRequest) -> None:
        with self._cond:
            if r.status == STATUS_TERMINATED:
                self._no_results(r)
                return
        batcher = self.nneval.batcher
        t_wall = time.perf_counter()
        t_cpu = time.thread_time() - batcher.thread_nn_cpu_seconds()
        s = Search(self.nneval, r.params, r.hist, r.pla, seed=self._seed)
        with self._cond:
            if r.status == STATUS_TERMINATED:
                self._no_results(r)
                return
            r.status = STATUS_RUNNING
        s.run(
            stop=r.stop,
            report_every=r.report_every,
            first_report_after=r.first_report_after,
            on_report=(lambda srch: self._report(r, srch, True)) if r.report_every is not None else None,
        )
        cpu = time.thread_time() - batcher.thread_nn_cpu_seconds() - t_cpu
        totals = self.counters.add(s.playouts, time.perf_counter() - t_wall, cpu)
        if self.log_search_info:
            self.log(search_log(s, batcher, totals))
        if not self._report(r, s, False):
            self._no_results(r)

    # ------------------------------------------------------------------------------------------------ main loop
    def start(self) -> None:
        for w in self._workers:
            w.start()

    def finish(self, quit_without_waiting: bool = False) -> None:
        with self._cond:
            self._closing = True
            if quit_without_waiting:
                for r in list(self._open.values()):
                    r.status = STATUS_TERMINATED
                    r.stop.set()
                self._queue.clear()
            self._cond.notify_all()
        for w in self._workers:
            w.join()

    def serve(self, stdin: TextIO | None = None, quit_without_waiting: bool = False) -> int:
        stdin = stdin or sys.stdin
        self.start()
        self.log(READY_LINE)
        try:
            for line in stdin:
                self.handle_line(line)
        except KeyboardInterrupt:
            quit_without_waiting = True
        self.finish(quit_without_waiting)
        return 0


__all__ = ["PROTOCOL_VERSION", "READY_LINE", "AnalysisServer", "STATUS_RUNNING"]
