"""Merging concurrent evaluation requests into batches over one evaluator (KataGo's NN server, without its thread).

Contract: :meth:`NNBatcher.run` blocks until its rows have been evaluated and returns their
:class:`~katadeploy.runtime.base.RawBatch`. Rows queued by other callers with the same tensor shape are evaluated in
the same call, up to ``max_batch`` rows (a caller with more rows is evaluated in ``max_batch`` chunks). The
evaluator is used by one caller at a time: a caller that finds it idle evaluates the queue itself (the oldest
jobs first, so its own rows are in the batch or in a later one it also runs), the others wait and take over when
it is done - so a lone search pays no thread hand-off per evaluation, and searches running side by side still share
batches. If the evaluator raises, every request in that batch gets :class:`EvaluatorFailed` (the message names the
cause); a caller interrupted inside the evaluator (``BaseException``) fails every pending request and marks the
batcher dead. After :meth:`close` or once dead, ``run`` raises at once, so no caller ever waits on an evaluator that
is gone; :meth:`close` waits for a running batch to finish, so the interpreter never shuts down under a running
native evaluator.

Counters feed benchmarks and the search log: ``rows`` (positions evaluated), ``batches`` (evaluator calls),
``nn_seconds`` (wall time inside ``evaluate``) and ``nn_cpu_seconds`` (CPU time of the whole process over those
calls, so a runtime's own worker threads count; other threads of the process add to it only if they run
meanwhile). :meth:`thread_nn_cpu_seconds` is the CPU time the *calling* thread has spent inside ``evaluate``
(``time.thread_time``), which a search subtracts from its own CPU time to get its non-NN part.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from katadeploy.errors import KatadeployError
from katadeploy.runtime.base import Evaluator, RawBatch, evaluate_in_chunks

#: how often a waiting caller re-checks that the batcher is alive (seconds)
WAIT_POLL_S = 0.5


class EvaluatorFailed(KatadeployError):
    """The neural-net evaluator raised or is gone; the searches that needed it fail."""


class _Job:
    __slots__ = ("spatial", "glob", "meta", "finished", "result", "error")

    def __init__(self, spatial: np.ndarray, glob: np.ndarray, meta: np.ndarray | None):
        self.spatial = spatial
        self.glob = glob
        self.meta = meta
        self.finished = False
        self.result: RawBatch | None = None
        self.error: BaseException | None = None


class NNBatcher:
    def __init__(self, evaluator: Evaluator, max_batch: int = 16):
        self.evaluator = evaluator
        self.max_batch = max(1, int(max_batch))
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._busy = False
        self._closed = False
        self._dead: str | None = None
        self._tls = threading.local()
        self.rows = 0
        self.batches = 0
        self.nn_seconds = 0.0
        self.nn_cpu_seconds = 0.0

    def thread_nn_cpu_seconds(self) -> float:
        """CPU time (``time.thread_time``) the calling thread has spent inside the evaluator."""
        return getattr(self._tls, "cpu", 0.0)

    def run(self, spatial: np.ndarray, glob: np.ndarray, meta: np.ndarray | None = None) -> RawBatch:
        job = _Job(spatial, glob, meta)
        cond = self._cond
        with cond:
            if self._dead is not None:
                raise EvaluatorFailed(self._dead)
            if self._closed:
                raise EvaluatorFailed("the neural-net evaluator is closed")
            self._queue.append(job)
            while not job.finished:
                if self._dead is not None:
                    raise EvaluatorFailed(self._dead)
                if self._busy:
                    cond.wait(WAIT_POLL_S)
                    continue
                self._busy = True
                jobs = self._take()
                cond.release()
                try:
                    self._evaluate(jobs)
                except BaseException as exc:  # interrupted inside the evaluator: nobody may wait on it any more
                    cond.acquire()
                    for j in jobs:
                        j.error = exc
                    self._die(f"the neural-net evaluator was interrupted: {type(exc).__name__}: {exc}", exc)
                    raise
                else:
                    cond.acquire()
                finally:
                    self._busy = False
                    for j in jobs:
                        j.finished = True
                    cond.notify_all()
        if job.error is not None:
            raise EvaluatorFailed(f"neural-net evaluation failed: {job.error}") from job.error
        assert job.result is not None
        return job.result

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking jobs and wait (up to ``timeout`` s) for a running batch to finish, so the interpreter never
        shuts down under a running native evaluator."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while self._busy and time.monotonic() < deadline:
                self._cond.wait(max(0.0, min(WAIT_POLL_S, deadline - time.monotonic())))

    def _die(self, why: str, exc: BaseException) -> None:
        """Call with the lock held: fail every queued job and refuse new ones."""
        self._dead = why
        for j in self._queue:
            j.error = exc
            j.finished = True
        self._queue.clear()

    def _take(self) -> list[_Job]:
        """Call with the lock held and the queue not empty: the oldest job plus every later one that fits."""
        first = self._queue.popleft()
        jobs = [first]
        rows = len(first.spatial)
        shape = first.spatial.shape[1:]
        keep: deque[_Job] = deque()
        while self._queue:
            j = self._queue.popleft()
            if (j.spatial.shape[1:] == shape and (j.meta is None) == (first.meta is None)
                    and rows + len(j.spatial) <= self.max_batch):  # fmt: skip
                jobs.append(j)
                rows += len(j.spatial)
            else:
                keep.append(j)
        self._queue.extendleft(reversed(keep))
        return jobs

    def _evaluate(self, jobs: list[_Job]) -> None:
        """Evaluate ``jobs`` in one evaluator call (outside the lock); an ``Exception`` goes to the jobs."""
        try:
            if len(jobs) == 1:
                spatial, glob, meta = jobs[0].spatial, jobs[0].glob, jobs[0].meta
            else:
                spatial = np.concatenate([j.spatial for j in jobs])
                glob = np.concatenate([j.glob for j in jobs])
                meta = None if jobs[0].meta is None else np.concatenate([j.meta for j in jobs])  # type: ignore[misc]
            t0 = time.perf_counter()
            c0 = time.process_time()
            tc0 = time.thread_time()
            try:
                if len(spatial) > self.max_batch:
                    out = evaluate_in_chunks(
                        self.evaluator.evaluate, self.max_batch, spatial, glob, meta, pad=False
                    )
                    self.batches += -(-len(spatial) // self.max_batch)
                else:
                    out = self.evaluator.evaluate(spatial, glob, meta)
                    self.batches += 1
            finally:
                self._tls.cpu = getattr(self._tls, "cpu", 0.0) + time.thread_time() - tc0
                self.nn_cpu_seconds += time.process_time() - c0
                self.nn_seconds += time.perf_counter() - t0
            self.rows += len(spatial)
            start = 0
            for j in jobs:
                n = len(j.spatial)
                j.result = RawBatch(*(a[start : start + n] for a in out))
                start += n
        except Exception as exc:  # noqa: BLE001 - handed to the callers
            for j in jobs:
                j.error = exc
