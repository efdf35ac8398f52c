"""Run a child process with a kill-on-timeout watchdog.

Contract: :func:`run_process` runs ``argv`` (a list; never a shell) in its own session, so it leads a new
process group. ``input`` (text) is written to its stdin, which is then closed (without ``input`` stdin is
``/dev/null``). stdout is collected (or discarded with ``capture_stdout=False``); stderr is read line by line as
it streams, each line handed to ``on_stderr`` (called from a reader thread) and the last ``tail_lines`` kept.
When ``timeout`` seconds pass before the child exits, the whole process group gets ``SIGKILL`` and
:class:`ProcessTimeout` is raised; a child that cannot be started raises :class:`ProcessStartError`. Both are
:class:`~katadeploy.errors.KatadeployError`. On any exception (``KeyboardInterrupt`` included) the process group
is killed before it propagates; a normal return means the child has exited.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from katadeploy.errors import KatadeployError

_READER_JOIN_S = 10.0


class ProcessStartError(KatadeployError):
    """The child process could not be started (missing or non-executable program)."""


class ProcessTimeout(KatadeployError):
    """The child did not exit within ``timeout`` seconds; its process group was killed.

    ``stdout`` and ``stderr_tail`` hold what had been read when it was killed.
    """

    def __init__(
        self, argv: Sequence[str], timeout: float, stdout: str = "", stderr_tail: Sequence[str] = ()
    ):
        self.argv = list(argv)
        self.timeout = timeout
        self.stdout = stdout
        self.stderr_tail = list(stderr_tail)
        super().__init__(f"{self.argv[0] if self.argv else '?'} did not finish within {timeout:g} s (killed)")


@dataclass(frozen=True)
class ProcessResult:
    """A finished child: exit status (negative for a signal), stdout text, the last stderr lines."""

    returncode: int
    stdout: str = ""
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_tail)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def run_process(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
    capture_stdout: bool = True,
    on_stderr: Callable[[str], None] | None = None,
    tail_lines: int = 200,
) -> ProcessResult:
    """Run ``argv`` to completion under a watchdog (see the module contract)."""
    args = [os.fspath(a) for a in argv]
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=dict(env) if env is not None else None,
            cwd=Path(cwd) if cwd is not None else None,
            start_new_session=True,
        )
    except OSError as exc:
        raise ProcessStartError(f"cannot run {args[0] if args else '?'}: {exc.strerror or exc}") from exc

    tail: collections.deque[str] = collections.deque(maxlen=max(tail_lines, 0) or None)
    timed_out = threading.Event()

    def _read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if on_stderr is not None:
                on_stderr(line)
            if tail_lines > 0:
                tail.append(line.rstrip("\n"))

    def _on_timeout() -> None:
        timed_out.set()
        _kill_group(proc)

    killer = threading.Timer(timeout, _on_timeout)
    killer.daemon = True
    reader = threading.Thread(target=_read_stderr, daemon=True)
    out = ""
    try:
        killer.start()
        reader.start()
        if input is not None:
            assert proc.stdin is not None
            with contextlib.suppress(OSError):
                proc.stdin.write(input)
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if capture_stdout:
            assert proc.stdout is not None
            out = proc.stdout.read()
        rc = proc.wait()
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        killer.cancel()
    reader.join(timeout=_READER_JOIN_S)
    if timed_out.is_set():
        raise ProcessTimeout(args, timeout, out, list(tail))
    return ProcessResult(returncode=rc, stdout=out, stderr_tail=list(tail))
