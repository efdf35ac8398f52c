"""Content hashes used to tie artifacts, caches and downloads to their sources.

Contract: :func:`sha256_file` streams a file (or, for a directory such as ``.mlpackage``, every file below it
in sorted relative-path order, each prefixed by its path) and returns the hex digest; :func:`sha256_bytes` and
:func:`sha256_text` hash in-memory data. These are the only SHA-256 helpers in katadeploy.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            h.update(str(f.relative_to(p)).encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
