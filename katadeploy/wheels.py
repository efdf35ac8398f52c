"""Fetch wheels from PyPI with ``python -m pip download --no-deps`` (no shell): how katadeploy gets the real nets
and the KataGo binary that the KaTrain wheels carry.

Contract: :func:`pip_download` downloads one requirement into a fresh temporary folder inside ``dest_dir`` and
returns the path of the wheel it got there (the caller verifies and moves it). pip's own progress goes to our
stderr — never to stdout, which carries command output such as JSON lines — or nowhere when ``quiet``. Failures
raise :class:`~katadeploy.errors.KatadeployError` with pip's last error line and the manual fix.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from pathlib import Path

from katadeploy.errors import KatadeployError

PIP_TIMEOUT_S = 1800.0


def _progress_stream():
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return subprocess.DEVNULL  # e.g. stderr replaced by a test harness
    return sys.stderr


def pip_download(
    requirement: str, dest_dir: Path, *, quiet: bool = False, timeout: float = PIP_TIMEOUT_S
) -> Path:
    """Download the wheel for ``requirement`` (e.g. ``katrain==1.20.0``) into a new temp folder under ``dest_dir``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pip-", dir=dest_dir))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", requirement, "-d", str(tmp)]  # fmt: skip
    if quiet:
        cmd.append("-q")
    try:
        proc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL if quiet else _progress_stream(),
            stderr=subprocess.PIPE, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise KatadeployError(f"pip download {requirement} took over {timeout:g} s") from None
    if not quiet and proc.stderr:
        sys.stderr.write(proc.stderr)
    wheels = sorted(tmp.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = (proc.stderr or "").strip().splitlines()
        raise KatadeployError(
            f"`pip download --no-deps {requirement}` failed (exit {proc.returncode})"
            + (f": {lines[-1]}" if lines else "")
            + f"; download the wheel by hand into {dest_dir}"
        )
    return wheels[0]
