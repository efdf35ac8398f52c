"""Distributed play on Ray: a pool of worker actors, each keeping its two engines warm across games.

Contract
--------
* :func:`connect` joins Ray: ``address`` None starts a local cluster on this box (``ray.init(address="local")``,
  ``num_cpus`` = the box's cores unless given, no dashboard, Ray's own logging at ERROR, worker output not
  forwarded); an address (``HOST:PORT`` of a running ``ray start --head``, or ``ray://...``) joins that cluster.
  A Ray already initialised in this process is used as it is. It returns a :class:`RayCluster`;
  :meth:`RayCluster.close` shuts Ray down only if ``connect`` started it. A cluster that cannot be reached is one
  :class:`~katadeploy.errors.KatadeployError` line (Ray's token authentication: set ``RAY_AUTH_MODE=token`` and
  provide the cluster's token, ``~/.ray/auth_token`` or ``$RAY_AUTH_TOKEN``).
* :class:`MatchWorker` is the actor: it starts the engines of players A and B on its first call
  (:class:`~katadeploy.match.players.EnginePlayer`; configs in a private temporary directory on its node, which
  a later worker removes if this one was killed) and plays one :class:`~katadeploy.match.game.GameSpec` per
  :meth:`MatchWorker.play` call, returning the game's record with ``worker`` (host, pid, the engines' pids) and
  ``attempt`` added. Each actor asks Ray for ``min(1, cluster CPUs / workers)`` CPUs, so the pool always fits
  the cluster.
* :class:`WorkerPool.run` keeps one game in flight per worker and hands each finished record to ``on_record``
  as soon as it arrives (the next game goes to that worker first, so it never idles on the ledger write). A
  worker that dies (its process killed, its node lost) loses only the game it was playing: the game goes back
  to the front of the queue and the dead actor is replaced by a fresh one. A game whose play raised (an engine
  that crashed past its restarts, a move timeout) is replayed the same way, on a fresh actor. A game that fails
  :data:`MAX_ATTEMPTS` times stops the match with the last error. ``on_record`` returning True stops the match
  (an SPRT verdict): games still in flight are abandoned and the actors killed. So does Ctrl-C, in ``run`` or
  while the engines start, and ``close`` does not wait on the killed actors (the match exits in seconds).
* The first engine start is checked: if a worker cannot start its engines (a bad net, a config the engine
  refuses) the match stops at once with that error instead of retrying.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from katadeploy.errors import KatadeployError
from katadeploy.extras import require
from katadeploy.match.game import GameSpec, play_game
from katadeploy.match.players import EnginePlayer, PlayerSpec

MAX_ATTEMPTS = 3
POLL_S = 0.5
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20
WORKDIR_PREFIX = "katadeploy-match-"


def _ray() -> Any:
    return require("ray", "match")


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    base = cause if isinstance(cause, BaseException) else exc
    text = str(base).strip().splitlines()
    return f"{type(base).__name__}: {text[0] if text else ''}".rstrip(": ")


@dataclass
class RayCluster:
    address: str
    cpus: float
    started: bool

    def close(self) -> None:
        if self.started:
            ray = _ray()
            if ray.is_initialized():
                ray.shutdown()


def connect(address: str | None = None, num_cpus: int | None = None) -> RayCluster:
    """Join or start Ray (see the module contract)."""
    ray = _ray()
    if ray.is_initialized():
        return RayCluster("existing", float(ray.cluster_resources().get("CPU", 1)), started=False)
    common = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address is None:
            cpus = num_cpus or os.cpu_count() or 1
            ray.init(address="local", num_cpus=cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES, **common)
        else:
            common.pop("include_dashboard")
            ray.init(address=address, **common)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "start a local Ray" if address is None else f"connect to the Ray cluster at {address}"
        hint = ""
        if "auth" in str(exc).lower() or "token" in str(exc).lower():
            hint = "; the cluster uses token authentication: set RAY_AUTH_MODE=token and its token"
        raise KatadeployError(f"cannot {where}: {_first_line(exc)}{hint}") from None
    cpus = float(ray.cluster_resources().get("CPU", 0))
    if cpus <= 0:
        ray.shutdown()
        raise KatadeployError(f"the Ray cluster at {address or 'local'} has no CPUs for match workers")
    return RayCluster(address or "local", cpus, started=True)


def _sweep_stale_workdirs() -> None:
    """Remove the config directories of workers that were killed (their pid is gone) on this node."""
    for d in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*-*"):
        try:
            os.kill(int(d.name[len(WORKDIR_PREFIX) :].split("-")[0]), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (ValueError, OSError):
            continue


class MatchWorker:
    """The Ray actor (plain class; :class:`WorkerPool` wraps it with ``ray.remote``)."""

    def __init__(self, players: tuple[PlayerSpec, PlayerSpec], move_timeout: float | None):
        self.players = players
        self.move_timeout = move_timeout
        self.engines: tuple[EnginePlayer, EnginePlayer] | None = None
        _sweep_stale_workdirs()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
        self.start_seconds = 0.0

    def start(self) -> dict[str, Any]:
        if self.engines is None:
            t0 = time.monotonic()
            a = EnginePlayer(self.players[0], self.workdir, "A", self.move_timeout)
            try:
                b = EnginePlayer(self.players[1], self.workdir, "B", self.move_timeout)
            except BaseException:
                a.close()
                raise
            self.engines = (a, b)
            self.start_seconds = time.monotonic() - t0
        return self.info()

    def info(self) -> dict[str, Any]:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "start_seconds": round(self.start_seconds, 2),
        }

    def play(self, spec: GameSpec, attempt: int = 1) -> dict[str, Any]:
        self.start()
        assert self.engines is not None
        a, b = self.engines
        black, white = (a, b) if spec.a_black else (b, a)
        record = play_game(spec, black, white)
        record["worker"] = {"host": socket.gethostname(), "pid": os.getpid(), "engines": [a.pid, b.pid]}
        record["attempt"] = attempt
        return record

    def close(self) -> None:
        for engine in self.engines or ():
            engine.close()
        self.engines = None
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class PoolStats:
    workers: int = 0
    replays: int = 0
    actors_started: int = 0
    failures: list[str] = field(default_factory=list)


class WorkerPool:
    def __init__(self, players: tuple[PlayerSpec, PlayerSpec], workers: int, cluster_cpus: float,
                 move_timeout: float | None = 600.0):  # fmt: skip
        ray = _ray()
        if workers < 1:
            raise KatadeployError("--workers must be >= 1")
        self._ray = ray
        self._cls = ray.remote(MatchWorker).options(num_cpus=min(1.0, cluster_cpus / workers), max_restarts=0)
        self._players = players
        self._move_timeout = move_timeout
        self.stats = PoolStats(workers=workers)
        self._actors: list[Any] = []  # None: a killed actor (close() skips it)

    def _new_actor(self) -> Any:
        self.stats.actors_started += 1
        return self._cls.remote(self._players, self._move_timeout)

    def _kill(self, actor: Any) -> None:
        try:
            self._ray.kill(actor, no_restart=True)
        except Exception:  # already dead
            pass

    def _abandon(self, slots: Iterable[int]) -> None:
        """Kill these slots' actors and forget them, so that close() does not wait on calls to dead actors."""
        for slot in slots:
            if self._actors[slot] is not None:
                self._kill(self._actors[slot])
                self._actors[slot] = None

    def start(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """Start every worker's engines; the first failure stops the match with its error."""
        ray = self._ray
        self._actors = [self._new_actor() for _ in range(self.stats.workers)]
        refs = [actor.start.remote() for actor in self._actors]
        try:
            return ray.get(refs, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise KatadeployError(
                f"the workers' engines did not start within {timeout:g} s (is the cluster short of CPUs?)"
            ) from None
        except ray.exceptions.RayError as exc:
            self.close()
            raise KatadeployError(f"a worker could not start its engines: {_first_line(exc)}") from None
        except KeyboardInterrupt:  # Ctrl-C while engines start: kill the actors, do not wait for them
            self._abandon(range(len(self._actors)))
            raise

    def run(self, specs: Iterable[GameSpec], on_record: Callable[[dict[str, Any]], bool]) -> bool:
        """Play ``specs``; returns True if ``on_record`` stopped the match early."""
        ray = self._ray
        queue: deque[GameSpec] = deque(specs)
        attempts: dict[int, int] = {}
        inflight: dict[Any, tuple[int, GameSpec]] = {}
        # Slots not started yet, or whose actor was abandoned, get a new actor.
        slots = self._actors or [None] * self.stats.workers
        self._actors = [a if a is not None else self._new_actor() for a in slots]

        def submit(slot: int) -> None:
            if queue:
                spec = queue.popleft()
                attempts[spec.index] = attempts.get(spec.index, 0) + 1
                inflight[self._actors[slot].play.remote(spec, attempts[spec.index])] = (slot, spec)

        for slot in range(len(self._actors)):
            submit(slot)
        try:
            while inflight:
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    slot, spec = inflight.pop(ref)
                    try:
                        record = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        why = _first_line(exc)
                        self.stats.failures.append(f"game {spec.index} attempt {attempts[spec.index]}: {why}")
                        if attempts[spec.index] >= MAX_ATTEMPTS:
                            raise KatadeployError(
                                f"game {spec.index} failed {MAX_ATTEMPTS} times; last: {why}"
                            ) from None
                        self.stats.replays += 1
                        self._kill(self._actors[slot])
                        self._actors[slot] = self._new_actor()
                        queue.appendleft(spec)
                        submit(slot)
                        continue
                    submit(slot)
                    if on_record(record):
                        return True
            return False
        finally:
            # Games still in flight (an SPRT verdict, Ctrl-C) are abandoned with their actors (Ctrl-C took 33 s
            # before, 30 of them close() waiting on calls to those actors).
            self._abandon({slot for slot, _ in inflight.values()})

    def close(self) -> None:
        ray = self._ray
        actors = [a for a in self._actors if a is not None]
        refs = []
        for actor in actors:
            try:
                refs.append(actor.close.remote())
            except Exception:
                pass
        try:
            ray.wait(refs, num_returns=len(refs), timeout=30)
        except Exception:
            pass
        for actor in actors:
            self._kill(actor)
        self._actors = []
