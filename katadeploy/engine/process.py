"""One engine OS process and the three threads that do its I/O.

Contract
--------
* :meth:`EngineProcess.spawn` starts ``command`` with pipes (never a shell) in its own session, so a Ctrl-C
  aimed at the Python program does not kill the engine behind the client's back. Failure to execute raises
  ``OSError``.
* Writer thread: :meth:`send` only enqueues bytes (it never blocks, even if the engine stops reading); the
  thread writes whatever is queued in one batch and flushes after every batch, so no query is left in a buffer.
  :meth:`close_stdin` enqueues an end marker after which stdin is closed. If a write fails (broken pipe) the
  process is killed, because an engine that no longer reads its input cannot make progress.
* Reader thread: reads stdout line by line and calls ``on_line(process, line_bytes)`` for every line (a last
  line without newline at EOF included). A line longer than ``max_line_bytes`` is skipped chunk by chunk without
  being held in memory and reported through ``on_junk(process, description)``. At EOF it calls
  ``on_eof(process)`` exactly once, from the reader thread. Exceptions raised by the callbacks are logged and
  never stop the thread.
* Stderr thread: drains stderr continuously (an engine blocked on a full stderr pipe is a classic hang),
  decodes each line (UTF-8, invalid bytes replaced, truncated to ``max_stderr_line_bytes``), calls
  ``on_stderr(process, text)`` and sets :attr:`ready` once ``ready_pattern`` matches a line (at once when the
  pattern is ``None``).
* All threads are daemons; none of them outlives the process pipes.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger("katadeploy.engine")

_CLOSE = object()
_BATCH = 4096


class EngineProcess:
    """A spawned engine process; see the module docstring for the threading contract."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        generation: int,
        on_line: Callable[[EngineProcess, bytes], None],
        on_eof: Callable[[EngineProcess], None],
        on_stderr: Callable[[EngineProcess, str], None],
        on_junk: Callable[[EngineProcess, str], None],
        ready_pattern: re.Pattern[str] | None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        max_line_bytes: int = 64 * 1024 * 1024,
        max_stderr_line_bytes: int = 16384,
    ):
        self.command = list(command)
        self.generation = generation
        self._on_line = on_line
        self._on_eof = on_eof
        self._on_stderr = on_stderr
        self._on_junk = on_junk
        self._ready_pattern = ready_pattern
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._max_line = max_line_bytes
        self._max_err_line = max_stderr_line_bytes
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.write_failed = False
        #: set (under the client's lock) once stdout reached EOF
        self.stdout_eof = False
        self._threads: list[threading.Thread] = []

    # --------------------------------------------------------------------------------------------- lifecycle

    def spawn(self) -> None:
        """Start the process and its I/O threads. Raises ``OSError`` if the command cannot be executed."""
        self.popen = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=1 << 16,
            env=self._env,
            cwd=self._cwd,
            start_new_session=True,
            close_fds=True,
        )
        self.started_at = time.monotonic()
        if self._ready_pattern is None:
            self.ready.set()
        name = f"katadeploy-engine-{self.popen.pid}"
        for target, suffix in (
            (self._read_stdout, "out"),
            (self._read_stderr, "err"),
            (self._write_stdin, "in"),
        ):
            thread = threading.Thread(target=target, name=f"{name}-{suffix}", daemon=True)
            self._threads.append(thread)
            thread.start()

    @property
    def pid(self) -> int | None:
        """OS process id (``None`` before :meth:`spawn`)."""
        return self.popen.pid if self.popen is not None else None

    def poll(self) -> int | None:
        """Exit status if the process has exited, else ``None``."""
        return self.popen.poll() if self.popen is not None else None

    def wait(self, timeout: float | None) -> int | None:
        """Wait up to ``timeout`` seconds for exit; the exit status, or ``None`` if still running."""
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self) -> None:
        """SIGTERM (ignored if already gone)."""
        if self.popen is not None and self.popen.poll() is None:
            try:
                self.popen.terminate()
            except OSError:  # pragma: no cover - raced with exit
                pass

    def kill(self) -> None:
        """SIGKILL (ignored if already gone)."""
        if self.popen is not None and self.popen.poll() is None:
            try:
                self.popen.kill()
            except OSError:  # pragma: no cover - raced with exit
                pass

    def stop(self, grace: float) -> int | None:
        """Make sure the process is gone: wait ``grace`` s, then SIGTERM, wait 2 s, then SIGKILL. Exit status."""
        rc = self.wait(grace)
        if rc is None:
            self.terminate()
            rc = self.wait(2.0)
        if rc is None:
            self.kill()
            rc = self.wait(5.0)
        return rc

    def join_threads(self, timeout: float, *, stderr_only: bool = False) -> None:
        """Join the I/O threads (never the calling thread), each up to ``timeout`` seconds."""
        current = threading.current_thread()
        for thread in self._threads:
            if thread is current or (stderr_only and not thread.name.endswith("-err")):
                continue
            thread.join(timeout)

    # --------------------------------------------------------------------------------------------- stdin

    def send(self, data: bytes) -> None:
        """Queue one complete line (with its newline) for the engine's stdin; never blocks."""
        self._queue.put(data)

    def close_stdin(self) -> None:
        """Queue the end of input: stdin is closed after everything queued before has been written."""
        self._queue.put(_CLOSE)

    def _write_stdin(self) -> None:
        assert self.popen is not None and self.popen.stdin is not None
        stdin = self.popen.stdin
        get = self._queue.get
        try:
            while True:
                item = get()
                if item is _CLOSE:
                    break
                batch = [item]
                stop = False
                try:
                    while len(batch) < _BATCH:
                        item = get(block=False)
                        if item is _CLOSE:
                            stop = True
                            break
                        batch.append(item)
                except queue.Empty:
                    pass
                try:
                    stdin.write(b"".join(batch))  # type: ignore[arg-type]
                    stdin.flush()
                except (OSError, ValueError) as exc:
                    self.write_failed = True
                    if self.poll() is None:
                        log.warning("engine %s: writing to stdin failed (%s); killing it", self.pid, exc)
                        self.kill()
                    return
                if stop:
                    break
        finally:
            try:
                stdin.close()
            except (OSError, ValueError):
                pass

    # --------------------------------------------------------------------------------------------- stdout

    def _read_stdout(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        readline = self.popen.stdout.readline
        limit = self._max_line + 1
        on_line = self._on_line
        try:
            while True:
                line = readline(limit)
                if not line:
                    break
                if len(line) == limit and line[-1] != 10:
                    skipped = len(line)
                    while True:
                        chunk = readline(limit)
                        skipped += len(chunk)
                        if not chunk or chunk[-1] == 10:
                            break
                    self._safe(self._on_junk, self, f"stdout line of {skipped} bytes exceeds max_line_bytes")
                    continue
                try:
                    on_line(self, line)
                except Exception:  # pragma: no cover - dispatcher bugs must not kill the reader
                    log.exception("engine %s: error while handling a stdout line", self.pid)
        except (OSError, ValueError) as exc:  # pragma: no cover - pipe torn down under us
            log.debug("engine %s: stdout read failed: %s", self.pid, exc)
        finally:
            self._safe(self._on_eof, self)
            self._close_quietly(self.popen.stdout)

    # --------------------------------------------------------------------------------------------- stderr

    def _read_stderr(self) -> None:
        assert self.popen is not None and self.popen.stderr is not None
        readline = self.popen.stderr.readline
        limit = self._max_err_line
        pattern = self._ready_pattern
        ready = self.ready
        truncated = False
        try:
            while True:
                raw = readline(limit)
                if not raw:
                    break
                complete = raw.endswith(b"\n")
                if truncated:  # rest of an over-long line: drop it
                    truncated = not complete
                    continue
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not complete and len(raw) >= limit:
                    truncated = True
                    text += " ...[truncated]"
                if pattern is not None and not ready.is_set() and pattern.search(text):
                    ready.set()
                self._safe(self._on_stderr, self, text)
        except (OSError, ValueError) as exc:  # pragma: no cover
            log.debug("engine %s: stderr read failed: %s", self.pid, exc)
        finally:
            self._close_quietly(self.popen.stderr)

    @staticmethod
    def _close_quietly(stream: object) -> None:
        try:
            stream.close()  # type: ignore[attr-defined]
        except (OSError, ValueError, AttributeError):  # pragma: no cover
            pass

    @staticmethod
    def _safe(fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except Exception:  # pragma: no cover
            log.exception("engine client callback failed")
