"""A single timer thread that fires per-query deadlines.

Contract: :meth:`Deadlines.add` schedules ``on_expire(key)`` at monotonic time ``when``; it costs a heap push
and never starts a thread per call (the one thread starts lazily on the first ``add``). Entries are not
cancelled one by one: the callback must ignore keys that finished in the meantime, and when the heap has grown
to twice its size after the last clean-up (at least 1024 entries) the entries whose key ``is_live`` no longer
accepts are dropped, so memory stays proportional to the live keys, not to the traffic. Callbacks run on the
timer thread, in deadline order, and their exceptions are logged. :meth:`stop` ends the thread; later ``add``
calls are ignored.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable

log = logging.getLogger("katadeploy.engine")


class Deadlines:
    """Heap of ``(when, key)`` served by one daemon thread."""

    def __init__(
        self,
        on_expire: Callable[[Hashable], None],
        is_live: Callable[[Hashable], bool] = lambda key: True,
        name: str = "katadeploy-engine-deadlines",
    ):
        self._on_expire = on_expire
        self._is_live = is_live
        self._compact_at = 1024
        self._name = name
        self._heap: list[tuple[float, int, Hashable]] = []
        self._cond = threading.Condition(threading.Lock())
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def add(self, when: float, key: Hashable) -> None:
        """Call ``on_expire(key)`` once ``time.monotonic() >= when``."""
        with self._cond:
            if self._stopped:
                return
            heap = self._heap
            if len(heap) >= self._compact_at:
                is_live = self._is_live
                heap[:] = [entry for entry in heap if is_live(entry[2])]
                heapq.heapify(heap)
                self._compact_at = max(1024, 2 * len(heap))
            heapq.heappush(heap, (when, next(self._seq), key))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif self._heap[0][2] is key:
                self._cond.notify()

    def __len__(self) -> int:
        return len(self._heap)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread (pending entries are dropped) and join it unless called from it."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        heap = self._heap
        while True:
            with self._cond:
                while not self._stopped:
                    if heap:
                        delay = heap[0][0] - time.monotonic()
                        if delay <= 0:
                            break
                        self._cond.wait(delay)
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                _, _, key = heapq.heappop(heap)
            try:
                self._on_expire(key)
            except Exception:  # pragma: no cover - defensive
                log.exception("deadline callback failed")
