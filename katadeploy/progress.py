"""A tiny progress bar for long CLI work, written to stderr.

Contract: :func:`log` prints one ``katadeploy: ...`` status line on stderr when ``enabled`` (the one way long
work reports its steps). ``Progress(total, label)`` is a context manager; ``advance(n)`` updates it. On a terminal it redraws one
line (at most ~10 times a second); otherwise it prints a line every 10% so logs stay short. ``quiet=True`` disables it.
"""

from __future__ import annotations

import sys
import time


def log(msg: str, enabled: bool = True) -> None:
    """One status line on stderr, ``katadeploy: msg``, when ``enabled``."""
    if enabled:
        print(f"katadeploy: {msg}", file=sys.stderr, flush=True)


class Progress:
    def __init__(self, total: int, label: str = "", quiet: bool = False, stream=None):
        self.total = max(0, int(total))
        self.label = label
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._last_decile = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.quiet or self.total == 0:
            return
        now = time.perf_counter()
        if self._tty:
            if now - self._last_draw >= 0.1 or self.done >= self.total:
                self._last_draw = now
                self._draw(now, end="")
        else:
            decile = (10 * self.done) // self.total
            if decile != self._last_decile:
                self._last_decile = decile
                self._draw(now, end="\n")

    def _draw(self, now: float, end: str) -> None:
        frac = self.done / self.total if self.total else 1.0
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        rate = self.done / max(now - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        prefix = "\r" if self._tty else ""
        self.stream.write(
            f"{prefix}{self.label} [{bar}] {self.done}/{self.total} {rate:.1f}/s eta {eta:.0f}s{end}"
        )
        self.stream.flush()

    def close(self) -> None:
        if not self.quiet and self._tty and self.total:
            self.stream.write("\n")
            self.stream.flush()
