"""Where a benchmark command's report goes: the Markdown on stdout, and each requested file (Markdown, JSON, plot).

Contract: :func:`emit` writes ``md`` to stdout, then, for every ``(path, write)`` pair whose path was given, calls
``write(path)`` (which returns the written path) and notes ``katadeploy: wrote PATH`` on stderr. :func:`text_writer`
is the writer for a text file (atomic, parents created). The one output path of ``bench nn`` and ``bench engine``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from katadeploy.files import atomic_write_text

Writer = Callable[[str], Path]


def text_writer(text: str) -> Writer:
    return lambda path: atomic_write_text(path, text)


def emit(md: str, outputs: Sequence[tuple[str | None, Writer]]) -> None:
    sys.stdout.write(md)
    sys.stdout.flush()
    for path, write in outputs:
        if path:
            print(f"katadeploy: wrote {write(path)}", file=sys.stderr)
