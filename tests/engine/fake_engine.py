"""A scripted fake of KataGo's analysis engine, for the client tests (run as ``python fake_engine.py ARGS``).

It speaks the protocol (one JSON object per line on stdin/stdout, logs on stderr) and adds controllable
misbehaviour the real engine cannot be made to produce on demand. It uses only the standard library.

Behaviour
---------
* Prints ``Started, ready to begin handling requests`` on stderr when ready (``--ready-line`` changes it,
  ``--no-ready`` suppresses it, ``--startup-delay`` delays it, ``--fail-start MSG`` prints MSG and exits 1).
* Analysis: each turn of ``analyzeTurns`` (default: last turn) is one task; up to ``--threads`` tasks "search"
  at once, the others wait (highest ``priority`` first, then FIFO). A search lasts ``--delay`` seconds
  (per query: ``_fake.delay``; per turn: ``_fake.turn_delays``). ``reportDuringSearchEvery`` /
  ``firstReportDuringSearchAfter`` produce partial replies. Final replies carry ``moveInfos``, ``rootInfo``,
  unknown fields (``futureTopLevel``, ``futureField`` in moveInfos), and ``fakeEcho`` (what the engine
  received: maxVisits, priority, analyzeTurns, overrideSettings, pid).
* Actions: query_version, query_models, clear_cache, terminate (+turnNumbers), terminate_all, as KataGo does:
  queued tasks end with ``noResults``, searching tasks end at once with their partial result.
* Errors like KataGo: missing ``moves``/``rules``/board size, bad ``analyzeTurns``; ``_fake.error`` /
  ``_fake.error_field`` force one; ``_fake.warning`` adds a warning reply; ``_fake.noid_error`` emits an error
  without id that echoes the query line, as KataGo does for unparsable lines.
* Misbehaviour flags: ``--reverse-batch N`` (hold final replies and emit them in reverse order, N at a time),
  ``--garbage-every K`` (after every K-th reply emit garbage: non-JSON, a JSON list, an unknown id, a reply
  without id), ``--split-writes`` (each reply written in pieces with flushes and pauses in between),
  ``--huge-line BYTES`` (one giant garbage line before the first reply), ``--stderr-flood LINES`` (write that many
  stderr lines before every reply, from the replying thread), ``--hang-after N`` (after N analysis queries, go silent and
  ignore stdin EOF), ``--ignore-sigterm``, ``--crash-after N`` (SIGKILL itself on receiving the N-th query),
  ``--crash-after-finals N`` (after writing N final replies), with ``--crash-state FILE --crash-times K`` to
  crash only in the first K runs, ``--exit-on-eof-delay S`` (linger S seconds after stdin EOF), and
  ``--close-stdout N`` (on receiving the N-th analysis query, close stdout but keep running).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import os
import signal
import sys
import threading
import time


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--startup-delay", type=float, default=0.0)
    p.add_argument("--fail-start", default=None)
    p.add_argument("--no-ready", action="store_true")
    p.add_argument("--ready-line", default="Started, ready to begin handling requests")
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--reverse-batch", type=int, default=0)
    p.add_argument("--garbage-every", type=int, default=0)
    p.add_argument("--split-writes", action="store_true")
    p.add_argument("--huge-line", type=int, default=0)
    p.add_argument("--stderr-flood", type=int, default=0)
    p.add_argument("--hang-after", type=int, default=-1)
    p.add_argument("--ignore-sigterm", action="store_true")
    p.add_argument("--crash-after", type=int, default=-1)
    p.add_argument("--crash-after-finals", type=int, default=-1)
    p.add_argument("--crash-state", default=None)
    p.add_argument("--crash-times", type=int, default=1_000_000)
    p.add_argument("--exit-on-eof-delay", type=float, default=0.0)
    p.add_argument("--close-stdout", type=int, default=-1)
    return p.parse_args(argv)


def log(msg: str) -> None:
    sys.stderr.write(f"fake: {msg}\n")
    sys.stderr.flush()


class Task:
    def __init__(self, qid: str, turn: int, query: dict, delay: float, priority: int, seq: int):
        self.id = qid
        self.turn = turn
        self.query = query
        self.delay = delay
        self.priority = priority
        self.seq = seq
        self.state = "queued"  # queued | running | done
        self.started = 0.0
        self.partials = 0


class Fake:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out_lock = threading.Lock()
        self.cond = threading.Condition()
        self.queue: list = []  # (-priority, seq, task)
        self.running: set[Task] = set()
        self.events: list = []  # (time, seq, kind, task)
        self.seq = itertools.count()
        self.tasks: list[Task] = []
        self.replies = 0
        self.finals = 0
        self.analysis_queries = 0
        self.hung = False
        self.held_finals: list[dict] = []
        self.held_since = 0.0
        self.huge_pending = args.huge_line > 0
        self.stdin_done = False
        self.flood_chunk = ("fake: flood " + "z" * 100 + "\n") * args.stderr_flood

    # ------------------------------------------------------------------ output
    def emit_raw(self, data: bytes) -> None:
        if self.hung:
            return
        with self.out_lock:
            out = sys.stdout.buffer
            if self.args.split_writes and len(data) > 4:
                step = max(1, len(data) // 3)
                for i in range(0, len(data), step):
                    out.write(data[i : i + step])
                    out.flush()
                    time.sleep(0.001)
            else:
                out.write(data)
                out.flush()

    def emit(self, obj: dict) -> None:
        if self.hung:
            return
        # like KataGo's logAllResponses: the writer blocks if stderr is not drained
        if self.args.stderr_flood:
            sys.stderr.write(self.flood_chunk)
            sys.stderr.flush()
        if self.huge_pending:
            self.huge_pending = False
            self.emit_raw(b"x" * self.args.huge_line + b"\n")
        self.emit_raw(json.dumps(obj).encode() + b"\n")
        self.replies += 1
        k = self.args.garbage_every
        if k and self.replies % k == 0:
            kind = (self.replies // k) % 4
            garbage = [
                b"this is not json {{{\n",
                b"[1, 2, 3]\n",
                b'{"id": "no-such-query", "isDuringSearch": false, "turnNumber": 0}\n',
                b'{"isDuringSearch": false, "turnNumber": 0, "moveInfos": []}\n',
            ][kind]
            self.emit_raw(garbage)

    def emit_final(self, obj: dict) -> None:
        self.finals += 1
        if self.args.reverse_batch > 1:
            if not self.held_finals:
                self.held_since = time.monotonic()
            self.held_finals.append(obj)
            if len(self.held_finals) >= self.args.reverse_batch:
                self.flush_held()
        else:
            self.emit(obj)
        if self.args.crash_after_finals >= 0 and self.finals >= self.args.crash_after_finals:
            self.maybe_crash("after finals")

    def flush_held(self) -> None:
        held, self.held_finals = self.held_finals, []
        for obj in reversed(held):
            self.emit(obj)

    # ------------------------------------------------------------------ crash
    def maybe_crash(self, why: str) -> None:
        state = self.args.crash_state
        if state:
            try:
                with open(state) as f:
                    n = int(f.read().strip() or 0)
            except (OSError, ValueError):
                n = 0
            if n >= self.args.crash_times:
                return
            with open(state, "w") as f:
                f.write(str(n + 1))
        log(f"crashing on purpose ({why})")
        os.kill(os.getpid(), signal.SIGKILL)

    # ------------------------------------------------------------------ replies
    def result(self, task: Task, during: bool) -> dict:
        q = task.query
        visits = int(q.get("maxVisits") or 10)
        if during:
            visits = max(1, visits // 2)
        reply = {
            "id": task.id,
            "isDuringSearch": during,
            "turnNumber": task.turn,
            "moveInfos": [
                {
                    "move": "D4",
                    "order": 0,
                    "visits": visits,
                    "edgeVisits": visits,
                    "winrate": 0.55,
                    "scoreLead": 1.5,
                    "prior": 0.3,
                    "pv": ["D4", "Q16"],
                    "futureField": 7,
                },
                {
                    "move": "Q16",
                    "order": 1,
                    "visits": 1,
                    "edgeVisits": 1,
                    "winrate": 0.45,
                    "scoreLead": -0.5,
                    "prior": 0.2,
                    "pv": ["Q16"],
                },
            ],
            "rootInfo": {
                "winrate": 0.55,
                "scoreLead": 1.5,
                "visits": visits,
                "currentPlayer": "B",
                "thisHash": "ABC",
                "symHash": "DEF",
                "futureRoot": 1,
            },
            "futureTopLevel": True,
            "fakeEcho": {
                "maxVisits": q.get("maxVisits"),
                "priority": task.priority,
                "analyzeTurns": q.get("analyzeTurns"),
                "overrideSettings": q.get("overrideSettings"),
                "pid": os.getpid(),
            },
        }
        if q.get("includePolicy"):
            n = int(q.get("boardXSize", 19)) * int(q.get("boardYSize", 19)) + 1
            reply["policy"] = [1.0 / n] * n
        if q.get("includeOwnership"):
            reply["ownership"] = [0.0] * (int(q.get("boardXSize", 19)) * int(q.get("boardYSize", 19)))
        return reply

    # ------------------------------------------------------------------ scheduling (call with cond held)
    def schedule(self, when: float, kind: str, task: Task) -> None:
        heapq.heappush(self.events, (when, next(self.seq), kind, task))
        self.cond.notify()

    def start_tasks(self) -> None:
        while self.queue and len(self.running) < self.args.threads:
            _, _, task = heapq.heappop(self.queue)
            if task.state != "queued":
                continue
            task.state = "running"
            task.started = time.monotonic()
            self.running.add(task)
            self.schedule(task.started + task.delay, "final", task)
            every = task.query.get("reportDuringSearchEvery")
            if every is not None:
                first = task.query.get("firstReportDuringSearchAfter", every)
                self.schedule(task.started + float(first), "partial", task)

    def finish(self, task: Task, during_terminate: bool = False) -> None:
        task.state = "done"
        self.running.discard(task)
        self.emit_final(self.result(task, during=False))

    def scheduler(self) -> None:
        with self.cond:
            while True:
                self.start_tasks()
                now = time.monotonic()
                if self.held_finals and now - self.held_since > 0.5:
                    self.flush_held()
                if self.events and self.events[0][0] <= now:
                    _, _, kind, task = heapq.heappop(self.events)
                    if task.state != "running":
                        continue
                    if kind == "final":
                        self.finish(task)
                    elif kind == "partial":
                        task.partials += 1
                        self.emit(self.result(task, during=True))
                        every = float(task.query.get("reportDuringSearchEvery"))
                        self.schedule(now + every, "partial", task)
                    continue
                if self.stdin_done and not self.running and not self.queue and not self.held_finals:
                    return
                timeout = 0.1
                if self.events:
                    timeout = min(timeout, max(0.0, self.events[0][0] - now))
                self.cond.wait(timeout)

    # ------------------------------------------------------------------ requests
    def error(self, qid: str | None, field: str | None, msg: str) -> None:
        obj: dict = {"error": msg}
        if qid is not None:
            obj = {"id": qid, "field": field, "error": msg}
        self.emit(obj)

    def terminate(self, match) -> None:
        for task in self.tasks:
            if task.state == "done" or not match(task):
                continue
            if task.state == "queued":
                task.state = "done"
                self.emit_final(
                    {"id": task.id, "isDuringSearch": False, "noResults": True, "turnNumber": task.turn}
                )
            else:
                self.finish(task)
        self.tasks = [t for t in self.tasks if t.state != "done"]

    def handle(self, line: str) -> None:
        try:
            q = json.loads(line)
        except ValueError as exc:
            self.error(None, None, f"{exc} - could not parse input line as json request: {line}")
            return
        if not isinstance(q, dict):
            self.error(None, None, "Request line was valid json but was not an object, ignoring: " + line)
            return
        qid = q.get("id")
        if not isinstance(qid, str):
            self.error(None, None, 'Request must have a string "id" field')
            return
        action = q.get("action")
        if action is not None:
            with self.cond:
                if action == "query_version":
                    self.emit({**q, "version": "1.99.0-fake", "git_hash": "fake"})
                elif action == "query_models":
                    self.emit(
                        {
                            **q,
                            "models": [
                                {
                                    "name": "fake.bin.gz",
                                    "internalName": "fake",
                                    "maxBatchSize": 8,
                                    "usesHumanSLProfile": False,
                                    "version": 8,
                                    "usingFP16": "false",
                                }
                            ],
                        }
                    )
                elif action == "clear_cache":
                    self.emit(dict(q))
                elif action in ("terminate", "terminate_all"):
                    if action == "terminate" and not isinstance(q.get("terminateId"), str):
                        self.error(
                            qid,
                            "terminateId",
                            'Requests for a terminate action must have a string "terminateId" field',
                        )
                        return
                    turns = q.get("turnNumbers")
                    target = q.get("terminateId")
                    self.terminate(
                        lambda t: (
                            (action == "terminate_all" or t.id == target)
                            and (turns is None or t.turn in turns)
                        )
                    )
                    self.emit(dict(q))
                else:
                    self.error(
                        None,
                        None,
                        "'action' field must be 'query_version' or 'query_models' or 'clear_cache' or 'terminate' or 'terminate_all'",
                    )
            return
        fake = q.pop("_fake", None) or {}
        self.analysis_queries += 1
        if self.args.close_stdout >= 0 and self.analysis_queries >= self.args.close_stdout:
            if not self.hung:
                log("closing stdout on purpose")
                self.hung = True
                sys.stdout.flush()
                os.close(1)
            return
        if self.args.crash_after >= 0 and self.analysis_queries >= self.args.crash_after:
            self.maybe_crash(f"on query {self.analysis_queries}")
        if self.args.hang_after >= 0 and self.analysis_queries > self.args.hang_after:
            if not self.hung:
                log("hanging on purpose")
            self.hung = True
            return
        if fake.get("noid_error"):
            self.error(
                None, None, f"{fake['noid_error']} - could not parse input line as json request: {line}"
            )
            return
        if fake.get("warning"):
            self.emit({"id": qid, "field": fake.get("warning_field", "foo"), "warning": fake["warning"]})
        if fake.get("error"):
            self.error(qid, fake.get("error_field"), fake["error"])
            return
        for req in ("moves", "rules", "boardXSize", "boardYSize"):
            if req not in q:
                self.error(qid, req, f"{req} field is required")
                return
        moves = q["moves"]
        turns = q.get("analyzeTurns")
        if turns is None:
            turns = [len(moves)]
        if not isinstance(turns, list) or any(not isinstance(t, int) for t in turns):
            self.error(qid, "analyzeTurns", "Must specify an array of integers indicating turns to analyze")
            return
        for t in turns:
            if t < 0 or t > len(moves):
                self.error(qid, "analyzeTurns", f"Invalid turn number: {t}")
                return
        delay = float(fake.get("delay", self.args.delay))
        turn_delays = fake.get("turn_delays") or {}
        priorities = q.get("priorities")
        with self.cond:
            for t in sorted(set(turns)):
                prio = int(q.get("priority", 0))
                if priorities is not None:
                    prio = int(priorities[turns.index(t)])
                task = Task(qid, t, q, float(turn_delays.get(str(t), delay)), prio, next(self.seq))
                self.tasks.append(task)
                heapq.heappush(self.queue, (-prio, task.seq, task))
            self.cond.notify()
        if fake.get("duplicate_final") or fake.get("wrong_turn"):
            # out-of-spec extras, emitted right away (the client must ignore them)
            extra = {
                "id": qid,
                "isDuringSearch": False,
                "turnNumber": 999 if fake.get("wrong_turn") else turns[0],
                "moveInfos": [],
                "bogus": True,
            }
            self.emit(extra)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    log(f"fake engine pid {os.getpid()} starting")
    if args.startup_delay:
        time.sleep(args.startup_delay)
    if args.fail_start:
        log(args.fail_start)
        return 1
    fake = Fake(args)
    if not args.no_ready:
        log(args.ready_line)
    sched = threading.Thread(target=fake.scheduler, daemon=True)
    sched.start()
    for raw in sys.stdin.buffer:
        line = raw.decode("utf-8", "replace").strip()
        if line:
            fake.handle(line)
    log("stdin closed")
    if fake.hung:
        while True:
            time.sleep(1)
    with fake.cond:
        fake.stdin_done = True
        fake.cond.notify()
    sched.join()
    if args.exit_on_eof_delay:
        time.sleep(args.exit_on_eof_delay)
    log("exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
