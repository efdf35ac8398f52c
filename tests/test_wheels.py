"""pip downloads (how nets and the KataGo binary arrive) never write to stdout, which carries JSON lines."""

from __future__ import annotations

import subprocess
import sys

import pytest

from katadeploy.errors import KatadeployError
from katadeploy.wheels import pip_download

SNIPPET = "import sys, pathlib; from katadeploy.wheels import pip_download; print('GOT', pip_download('six==1.16.0', pathlib.Path(sys.argv[1])).name)"


def test_pip_progress_goes_to_stderr_not_stdout(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", SNIPPET, str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["GOT six-1.16.0-py2.py3-none-any.whl"]
    assert "six" in proc.stderr  # pip's progress was shown, on stderr


def test_pip_failure_is_a_clear_error(tmp_path):
    with pytest.raises(KatadeployError, match="pip download"):
        pip_download("katadeploy-no-such-package-xyz==0.0.1", tmp_path, quiet=True, timeout=300)
