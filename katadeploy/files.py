"""Atomic file output: a reader never sees a half-written file, a crash leaves the old file (or none).

Contract: :func:`staged` yields a temporary path beside ``path`` (same directory, so the final rename is
atomic on POSIX); on a clean exit the temporary file or directory replaces ``path`` (an existing directory is
removed first), on an exception it is deleted and ``path`` is left as it was. :func:`atomic_write_bytes` and
:func:`atomic_write_text` are the one-shot forms. Parent directories are created. Files are created with the
umask's permissions (not ``mkstemp``'s 0600), so an artifact written here is readable like any other output.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staged(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary sibling of ``path`` that replaces ``path`` when the block exits without an exception."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        if tmp.is_dir():
            if out.is_dir() and not out.is_symlink():
                shutil.rmtree(out)
            elif out.exists() or out.is_symlink():
                out.unlink()
        os.replace(tmp, out)
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path`` as a :class:`Path`."""
    with staged(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns ``path`` as a :class:`Path`."""
    with staged(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Copy the file ``src`` to ``dst`` atomically; returns ``dst`` as a :class:`Path`."""
    with staged(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)
