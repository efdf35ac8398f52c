"""A small GTP client for the real KataGo binary, enough to use ``kata-raw-nn`` as a raw-NN oracle.

Contract
--------
* :class:`GTPEngine` starts ``katago gtp -config C -model M [-override-config k=v,...]`` (no shell), sends one
  command at a time with a numeric GTP id, and returns the response text (without the ``=id`` prefix). A ``?``
  response raises :class:`GTPError`. Every wait has a timeout (:class:`GTPTimeout`); a timed-out command's late
  answer is recognised by its id and dropped. stderr is drained continuously into a bounded ring buffer
  (:attr:`GTPEngine.stderr_tail`), so the child can never block on a full pipe. ``close`` (also on ``with``
  exit and in ``__del__``) sends ``quit``, then terminates/kills the child if it lingers.
* :meth:`GTPEngine.raw_nn` replays an analysis-query-shaped position (``boardXSize``/``boardYSize``, ``rules``,
  ``komi``, ``initialStones``, ``moves``) exactly as the goldens in ``shared/oracle`` were made: ``boardsize``,
  ``clear_board``, ``kata-set-rules R``, ``komi K``, ``set_position`` (initial stones, no history), then ``play``
  per move; it then runs ``kata-raw-nn <symmetry> <optimism>`` and parses it into the golden keys:
  ``symmetry, whiteWin, whiteLoss, noResult, whiteLead, whiteScoreSelfplay, whiteScoreSelfplaySq, varTimeLeft,
  shorttermWinlossError, shorttermScoreError, policy, policyPass, whiteOwnership``. ``policy`` and
  ``whiteOwnership`` are flat lists of X*Y values in row-major order from the *top* row (highest GTP row
  number), ``None`` marking an illegal move. ``raw_nn(..., symmetry="all")`` returns a list of 8 such dicts.
* If the OpenCL tuner crashes during start-up (pocl 3.1 with transformer nets), the engine writes the tune file
  from the tuner's progress output (:func:`katadeploy.engine.katago.tuning.write_salvaged_tuning`) and starts once more
  (``salvage_tuning=False`` disables this).
* Overrides: pass ``overrides={"maxBoardSizeForNNBuffer": 19, "requireMaxBoardSize": False}`` (or a ready
  string ``"k=v,k=v"``) to run with a padded 19x19 NN buffer, which exercises masking.

Values are printed by KataGo with 6 decimals (3 for scores), so compare with tolerances of that order.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import math
import os
import queue
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from katadeploy.engine.katago.configs import format_config_value
from katadeploy.engine.katago.installer import KataGoBinary, locate
from katadeploy.engine.katago.tuning import TunerLog, write_salvaged_tuning
from katadeploy.errors import KatadeployError, PositionError

#: First command after start may wait for model load and OpenCL tuning (~10 min for b15c192 on a CPU).
DEFAULT_STARTUP_TIMEOUT_S = 1800.0
DEFAULT_COMMAND_TIMEOUT_S = 120.0
_STDERR_LINES = 400

RAW_SCALAR_KEYS = (
    "whiteWin",
    "whiteLoss",
    "noResult",
    "whiteLead",
    "whiteScoreSelfplay",
    "whiteScoreSelfplaySq",
    "varTimeLeft",
    "shorttermWinlossError",
    "shorttermScoreError",
    # human-SL nets print these instead of the lead/selfplay keys
    "whiteScore",
    "whiteScoreSq",
)


class GTPError(KatadeployError):
    """KataGo answered a GTP command with ``?`` (the message is KataGo's), or the engine died."""


class GTPTimeout(GTPError):
    """A GTP command got no answer in time."""


def format_overrides(overrides: Mapping[str, Any] | str | None) -> str | None:
    """``{"a": 1, "b": False}`` -> ``"a=1,b=false"`` for ``-override-config``; strings pass through."""
    if overrides is None:
        return None
    if isinstance(overrides, str):
        return overrides or None
    parts = []
    for key, value in overrides.items():
        text = format_config_value(value)
        if "," in text or "=" in text or "=" in key or "," in key:
            raise KatadeployError(f"override {key}={text!r} may not contain ',' or '='")
        parts.append(f"{key}={text}")
    return ",".join(parts) or None


class GTPEngine:
    """A running ``katago gtp`` process. Use as a context manager."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        config: str | os.PathLike[str],
        binary: KataGoBinary | None = None,
        overrides: Mapping[str, Any] | str | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT_S,
        extra_args: Sequence[str] = (),
        salvage_tuning: bool = True,
    ) -> None:
        self.binary = binary if binary is not None else locate()
        self.model = Path(model)
        self.config = Path(config)
        if not self.model.is_file():
            raise KatadeployError(f"model {self.model} does not exist")
        if not self.config.is_file():
            raise KatadeployError(f"config {self.config} does not exist")
        self.command_timeout = command_timeout
        args: list[str] = ["gtp", "-config", str(self.config), "-model", str(self.model)]
        ov = format_overrides(overrides)
        if ov:
            args += ["-override-config", ov]
        args += list(extra_args)
        self.argv = self.binary.argv(*args)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self.tuner_log = TunerLog()
        self.salvaged_tuning: Path | None = None
        self._lock = threading.Lock()
        self._spawn()
        try:
            # GTP answers only after the model is loaded (and OpenCL tuned, on the first run per net).
            self.version = self.send("version", timeout=startup_timeout)
        except GTPTimeout:
            self.close()
            raise
        except BaseException as exc:
            self.close()
            log = self.tuner_log
            if not (
                salvage_tuning
                and isinstance(exc, GTPError)
                and log.missing is not None
                and log.loaded is None
                and log.saved is None
            ):
                raise
            # The OpenCL tuner crashed (pocl + transformer nets): rebuild its tune file and start once more.
            self.salvaged_tuning = write_salvaged_tuning(log)
            self._spawn()
            try:
                self.version = self.send("version", timeout=startup_timeout)
            except BaseException:
                self.close()
                raise

    def _spawn(self) -> None:
        self._ids = itertools.count(1)
        self._responses: queue.Queue[tuple[int | None, bool, str] | None] = queue.Queue()
        self._closed = False
        self._proc = subprocess.Popen(
            self.argv,
            env=self.binary.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        self._out_thread = threading.Thread(
            target=self._read_stdout, args=(self._proc, self._responses), name="gtp-stdout", daemon=True
        )
        self._err_thread = threading.Thread(
            target=self._read_stderr, args=(self._proc,), name="gtp-stderr", daemon=True
        )
        self._out_thread.start()
        self._err_thread.start()

    # -- plumbing -------------------------------------------------------------------------------------------

    @staticmethod
    def _read_stdout(
        proc: subprocess.Popen[str], responses: queue.Queue[tuple[int | None, bool, str] | None]
    ) -> None:
        assert proc.stdout is not None
        block: list[str] = []
        try:
            for line in proc.stdout:
                line = line.rstrip("\r\n")
                if not block:
                    if not line.strip():
                        continue
                    if line[0] not in "=?":
                        continue  # not a response start (should not happen in GTP)
                block.append(line)
                if not line.strip():
                    responses.put(_parse_block(block))
                    block = []
        except (OSError, ValueError):
            pass
        finally:
            if block:
                responses.put(_parse_block(block + [""]))
            responses.put(None)  # EOF sentinel

    def _read_stderr(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        try:
            for line in proc.stderr:
                line = line.rstrip("\r\n")
                self.stderr_tail.append(line)
                self.tuner_log.feed(line)
        except (OSError, ValueError):
            pass

    def _died(self, command: str) -> GTPError:
        try:
            rc = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        tail = "\n".join(list(self.stderr_tail)[-15:])
        return GTPError(f"katago gtp exited (code {rc}) while running {command!r}; stderr tail:\n{tail}")

    @property
    def alive(self) -> bool:
        return not self._closed and self._proc.poll() is None

    def send(self, command: str, timeout: float | None = None) -> str:
        """Send one GTP command and return its answer text; raise :class:`GTPError` on ``?``."""
        if "\n" in command or "\r" in command:
            raise KatadeployError(f"GTP command may not contain a newline: {command!r}")
        timeout = self.command_timeout if timeout is None else timeout
        with self._lock:
            if not self.alive:
                raise self._died(command)
            cid = next(self._ids)
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(f"{cid} {command}\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise self._died(command) from exc
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GTPTimeout(f"no answer to GTP command {command!r} within {timeout:g} s")
                try:
                    item = self._responses.get(timeout=min(left, 1.0))
                except queue.Empty:
                    if self._proc.poll() is not None and self._responses.empty():
                        raise self._died(command) from None
                    continue
                if item is None:
                    self._responses.put(None)  # keep the sentinel for later callers
                    raise self._died(command)
                rid, ok, text = item
                if rid is not None and rid != cid:
                    continue  # late answer to an earlier, timed-out command
                if not ok:
                    raise GTPError(f"KataGo rejected {command!r}: {text}")
                return text

    def close(self, timeout: float = 10.0) -> int | None:
        """Quit the engine (``quit``, then terminate, then kill); return its exit code."""
        if self._closed:
            return self._proc.returncode
        self._closed = True
        proc = self._proc
        if proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert proc.stdin is not None
                proc.stdin.write("quit\n")
                proc.stdin.flush()
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.close()  # type: ignore[union-attr]
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        for t in (self._out_thread, self._err_thread):
            t.join(timeout=5)
        for stream in (proc.stdout, proc.stderr, proc.stdin):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()
        return proc.returncode

    def __enter__(self) -> GTPEngine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:  # last resort: never leave a katago behind
        with contextlib.suppress(Exception):
            if not self._closed and self._proc.poll() is None:
                self._proc.kill()

    # -- positions and the raw NN -------------------------------------------------------------------------

    def set_position(self, position: Mapping[str, Any]) -> None:
        """Replay an analysis-query-shaped position (see module docstring)."""
        pid = position.get("id")
        try:
            x = int(position.get("boardXSize", 19))
            y = int(position.get("boardYSize", x))
            rules = position.get("rules", "tromp-taylor")
            komi = float(position["komi"]) if position.get("komi") is not None else None
        except (TypeError, ValueError) as exc:
            raise PositionError(f"bad size/komi: {exc}", pid) from exc
        if not (2 <= x <= 19 and 2 <= y <= 19):
            raise PositionError(f"board {x}x{y} out of range 2..19", pid)
        if not isinstance(rules, str):
            raise PositionError("only rule names (strings) are supported for GTP replay", pid)
        self.send(f"boardsize {x}" if x == y else f"rectangular_boardsize {x} {y}")
        self.send("clear_board")
        self.send(f"kata-set-rules {rules}")
        if komi is not None:
            if not math.isfinite(komi):
                raise PositionError(f"komi {komi} is not finite", pid)
            self.send(f"komi {komi:g}")
        stones = position.get("initialStones") or []
        try:
            if stones:
                self.send("set_position " + " ".join(f"{_color(c)} {_vertex(v)}" for c, v in stones))
            for c, v in position.get("moves") or []:
                self.send(f"play {_color(c)} {_vertex(v)}")
        except GTPError as exc:
            raise PositionError(str(exc), pid) from exc
        except (TypeError, ValueError) as exc:
            raise PositionError(f"bad stone/move entry: {exc}", pid) from exc

    def raw_nn_current(
        self, symmetry: int | str = 0, optimism: float = 0.0
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """``kata-raw-nn`` on the current position, parsed (a list for ``symmetry="all"``)."""
        if symmetry != "all" and not (isinstance(symmetry, int) and 0 <= symmetry <= 7):
            raise KatadeployError(f"symmetry must be 0..7 or 'all', not {symmetry!r}")
        if not 0.0 <= float(optimism) <= 1.0:
            raise KatadeployError(f"optimism must be in [0, 1], not {optimism!r}")
        if symmetry == "all":
            # KataGo separates symmetry blocks with blank lines, which GTP uses as the end of a response,
            # so ask for each symmetry on its own.
            return [self._raw_nn_one(s, optimism) for s in range(8)]
        return self._raw_nn_one(symmetry, optimism)

    def _raw_nn_one(self, symmetry: int, optimism: float) -> dict[str, Any]:
        blocks = parse_raw_nn(self.send(f"kata-raw-nn {symmetry} {float(optimism):g}"))
        if len(blocks) != 1 or blocks[0]["symmetry"] != symmetry:
            raise GTPError(
                f"kata-raw-nn {symmetry}: expected one block for symmetry {symmetry}, got {len(blocks)}"
            )
        return blocks[0]

    def raw_nn(
        self, position: Mapping[str, Any], symmetry: int | str = 0, optimism: float = 0.0
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Replay ``position`` and return its parsed ``kata-raw-nn`` output (golden-file keys)."""
        self.set_position(position)
        return self.raw_nn_current(symmetry=symmetry, optimism=optimism)


# -- parsing helpers --------------------------------------------------------------------------------------


def _parse_block(lines: list[str]) -> tuple[int | None, bool, str]:
    """``["=12 text", "more", ""]`` -> ``(12, True, "text\\nmore")``."""
    head = lines[0]
    ok = head[0] == "="
    rest = head[1:]
    digits = ""
    while rest and rest[0].isdigit():
        digits += rest[0]
        rest = rest[1:]
    body = "\n".join([rest.strip(), *lines[1:]]).strip()
    return (int(digits) if digits else None, ok, body)


def _num(tok: str) -> float | None:
    if tok.upper() == "NAN":
        return None
    return float(tok)


def parse_raw_nn(text: str) -> list[dict[str, Any]]:
    """Parse ``kata-raw-nn`` output (one or more symmetry blocks) into golden-shaped dicts."""
    results: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    grid_key: str | None = None
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            grid_key = None
            continue
        head, _, tail = line.partition(" ")
        if head == "symmetry":
            cur = {"symmetry": float(tail)}
            results.append(cur)
            grid_key = None
            continue
        if cur is None:
            raise GTPError(f"unexpected kata-raw-nn output line before 'symmetry': {line!r}")
        if head in ("policy", "whiteOwnership") and not tail:
            grid_key = head
            cur[head] = []
            continue
        if head == "policyPass":
            cur["policyPass"] = _num(tail.strip())
            grid_key = None
            continue
        if head in RAW_SCALAR_KEYS:
            cur[head] = float(tail)
            grid_key = None
            continue
        if grid_key is not None:
            cur[grid_key].extend(_num(t) for t in line.split())
            continue
        # unknown "key value" lines from newer KataGo versions are kept as floats when possible
        try:
            cur[head] = float(tail)
        except ValueError:
            cur[head] = tail
    if not results:
        raise GTPError(f"no kata-raw-nn output to parse: {text[:200]!r}")
    return results


def _color(c: Any) -> str:
    s = str(c).strip().upper()
    if s in ("B", "BLACK"):
        return "B"
    if s in ("W", "WHITE"):
        return "W"
    raise ValueError(f"bad colour {c!r}")


def _vertex(v: Any) -> str:
    s = str(v).strip()
    if not s or any(ch.isspace() for ch in s):
        raise ValueError(f"bad vertex {v!r}")
    return s
