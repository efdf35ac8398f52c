"""Settings of an analysis-engine client (shared by the sync and asyncio engines).

Contract: :class:`EngineOptions` is a frozen dataclass; :meth:`EngineOptions.validated` checks ranges and
compiles the ready pattern. Every time limit is in seconds; ``None`` means "no limit" only where stated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike

from katadeploy.engine.protocol import KATAGO_READY_PATTERN


@dataclass(frozen=True)
class EngineOptions:
    """How to run and supervise one engine process.

    * ``command``: the argv to start (never run through a shell), e.g.
      ``["katago", "analysis", "-config", "a.cfg", "-model", "m.bin.gz"]``.
    * ``env`` / ``cwd``: environment (``None`` = inherit) and working directory of the process.
    * ``ready_pattern``: regex searched in each stderr line; the engine counts as started once it matches.
      ``None`` means "ready as soon as spawned". Default: KataGo's ``Started, ready to begin handling requests``.
    * ``probe``: after the ready pattern (if any), also send ``query_version`` and wait for its reply.
    * ``start_timeout``: limit for spawning + becoming ready (OpenCL tuning on first use can take minutes).
    * ``query_timeout``: default per-query deadline (``None`` = no deadline); queries may override it.
    * ``action_timeout``: default deadline of actions (version, models, cache, terminate); ``None`` = none.
    * ``max_restarts``: restarts allowed within ``restart_window`` seconds after unexpected exits; 0 disables
      restarting. A query is sent at most ``1 + max_restarts`` times.
    * ``backoff_initial`` / ``backoff_max``: delay before the n-th restart in the window is
      ``min(backoff_max, backoff_initial * 2**(n-1))``.
    * ``stderr_lines``: how many stderr lines are kept (bounded ring); ``max_stderr_line_bytes`` truncates each.
    * ``max_line_bytes``: longest stdout line accepted; longer lines are discarded without being held in memory.
    * ``close_timeout``: how long ``close()`` waits for the process to exit after closing its stdin before
      it is terminated (SIGTERM) and then killed (SIGKILL).
    """

    command: Sequence[str | PathLike[str]]
    env: Mapping[str, str] | None = None
    cwd: str | PathLike[str] | None = None
    ready_pattern: str | re.Pattern[str] | None = re.escape(KATAGO_READY_PATTERN)
    probe: bool = False
    start_timeout: float = 600.0
    query_timeout: float | None = None
    action_timeout: float | None = 60.0
    max_restarts: int = 3
    restart_window: float = 300.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    stderr_lines: int = 1000
    max_stderr_line_bytes: int = 16384
    max_line_bytes: int = 64 * 1024 * 1024
    close_timeout: float = 10.0
    compiled_ready: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def validated(self) -> EngineOptions:
        """A copy with ``compiled_ready`` set; raises ``ValueError``/``TypeError`` for bad settings."""
        if isinstance(self.command, (str, bytes)) or not self.command:
            raise TypeError("command must be a non-empty sequence of arguments (no shell string)")
        for name in ("start_timeout", "backoff_initial", "backoff_max", "close_timeout", "restart_window"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("query_timeout", "action_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 or None")
        if self.max_restarts < 0:
            raise ValueError("max_restarts must be >= 0")
        if self.stderr_lines < 1 or self.max_line_bytes < 1024 or self.max_stderr_line_bytes < 80:
            raise ValueError(
                "stderr_lines >= 1, max_line_bytes >= 1024 and max_stderr_line_bytes >= 80 required"
            )
        pattern = self.ready_pattern
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
        # frozen dataclass: bypass __setattr__ on a fresh copy
        copy = EngineOptions(
            **{f: getattr(self, f) for f in self.__dataclass_fields__ if f != "compiled_ready"}
        )
        object.__setattr__(copy, "compiled_ready", compiled)
        object.__setattr__(copy, "command", tuple(os.fspath(a) for a in self.command))
        return copy
