"""One thread that owns the evaluator and merges concurrent requests into batches (KataGo's NN server thread).

Contract: :meth:`NNBatcher.run` blocks until its rows have been evaluated and returns their
:class:`~katadeploy.runtime.base.RawBatch`. Rows queued by other callers with the same tensor shape are evaluated in
the same call, up to ``max_batch`` rows (a caller with more rows is evaluated in ``max_batch`` chunks). If the
evaluator raises, every request in that batch gets :class:`EvaluatorFailed` (the message names the cause); after
:meth:`close` or once the thread has died, ``run`` raises at once, so no caller ever waits on an evaluator that is
gone. Counters (``rows``, ``batches``, ``nn_seconds``) feed benchmarks.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from katadeploy.errors import KatadeployError
from katadeploy.runtime.base import Evaluator, RawBatch, evaluate_in_chunks


class EvaluatorFailed(KatadeployError):
    """The neural-net evaluator raised or is gone; the searches that needed it fail."""


class _Job:
    __slots__ = ("spatial", "glob", "meta", "done", "result", "error")

    def __init__(self, spatial: np.ndarray, glob: np.ndarray, meta: np.ndarray | None):
        self.spatial = spatial
        self.glob = glob
        self.meta = meta
        self.done = threading.Event()
        self.result: RawBatch | None = None
        self.error: BaseException | None = None


class NNBatcher:
    def __init__(self, evaluator: Evaluator, max_batch: int = 16):
        self.evaluator = evaluator
        self.max_batch = max(1, int(max_batch))
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._dead: str | None = None
        self.rows = 0
        self.batches = 0
        self.nn_seconds = 0.0
        self._thread = threading.Thread(target=self._loop, name="katadeploy-nn", daemon=True)
        self._thread.start()

    def run(self, spatial: np.ndarray, glob: np.ndarray, meta: np.ndarray | None = None) -> RawBatch:
        job = _Job(spatial, glob, meta)
        with self._cond:
            if self._dead is not None:
                raise EvaluatorFailed(self._dead)
            if self._closed:
                raise EvaluatorFailed("the neural-net evaluator is closed")
            self._queue.append(job)
            self._cond.notify()
        while not job.done.wait(0.5):
            if not self._thread.is_alive():
                raise EvaluatorFailed(self._dead or "the neural-net evaluator thread died")
        if job.error is not None:
            raise EvaluatorFailed(f"neural-net evaluation failed: {job.error}") from job.error
        assert job.result is not None
        return job.result

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking jobs and wait (up to ``timeout`` s) for the evaluator thread to finish its last batch, so
        the interpreter never shuts down under a running native evaluator."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _take(self) -> list[_Job] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
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

    def _loop(self) -> None:
        try:
            while True:
                jobs = self._take()
                if jobs is None:
                    return
                self._evaluate(jobs)
        except BaseException as exc:  # noqa: BLE001 - recorded, every waiter fails instead of hanging
            with self._cond:
                self._dead = f"the neural-net evaluator thread died: {exc}"
                pending = list(self._queue)
                self._queue.clear()
            for j in pending:
                j.error = exc
                j.done.set()

    def _evaluate(self, jobs: list[_Job]) -> None:
        try:
            if len(jobs) == 1:
                spatial, glob, meta = jobs[0].spatial, jobs[0].glob, jobs[0].meta
            else:
                spatial = np.concatenate([j.spatial for j in jobs])
                glob = np.concatenate([j.glob for j in jobs])
                meta = None if jobs[0].meta is None else np.concatenate([j.meta for j in jobs])  # type: ignore[misc]
            t0 = time.perf_counter()
            if len(spatial) > self.max_batch:
                out = evaluate_in_chunks(
                    self.evaluator.evaluate, self.max_batch, spatial, glob, meta, pad=False
                )
                self.batches += -(-len(spatial) // self.max_batch)
            else:
                out = self.evaluator.evaluate(spatial, glob, meta)
                self.batches += 1
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
        for j in jobs:
            j.done.set()
