"""katadeploy.subprocess_run: the one kill-on-timeout watchdog for child processes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from katadeploy.errors import KatadeployError
from katadeploy.subprocess_run import ProcessStartError, ProcessTimeout, run_process


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_runs_to_completion_with_input_stdout_and_streamed_stderr():
    seen: list[str] = []
    code = (
        "import sys\n"
        "data = sys.stdin.read()\n"
        "for i in range(3): print('err', i, file=sys.stderr, flush=True)\n"
        "print(data.upper(), end='')\n"
        "sys.exit(3)\n"
    )
    res = run_process(
        [sys.executable, "-c", code], timeout=60, input="hello\n", on_stderr=seen.append, tail_lines=2
    )
    assert res.returncode == 3 and res.stdout == "HELLO\n"
    assert seen == ["err 0\n", "err 1\n", "err 2\n"]
    assert res.stderr_tail == ["err 1", "err 2"] and res.stderr == "err 1\nerr 2"


def test_stdout_can_be_discarded_and_stdin_is_devnull():
    res = run_process(
        [sys.executable, "-c", "import sys; print('x'); print(repr(sys.stdin.read()), file=sys.stderr)"],
        timeout=60,
        capture_stdout=False,
    )
    assert res.returncode == 0 and res.stdout == "" and res.stderr_tail == ["''"]


def test_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(120)\n"
    )
    t0 = time.monotonic()
    with pytest.raises(ProcessTimeout) as info:
        run_process([sys.executable, "-c", code], timeout=3)
    assert time.monotonic() - t0 < 60
    assert isinstance(info.value, KatadeployError) and "did not finish within 3 s" in str(info.value)
    assert info.value.stdout == "started\n" and info.value.timeout == 3
    grandchild = int(pidfile.read_text())
    for _ in range(50):
        if not _alive(grandchild):
            break
        time.sleep(0.1)
    assert not _alive(grandchild)


def test_missing_program_is_a_clear_error(tmp_path):
    with pytest.raises(ProcessStartError, match="cannot run") as info:
        run_process([str(tmp_path / "no-such-program")], timeout=5)
    assert isinstance(info.value, KatadeployError)
    assert isinstance(info.value.__cause__, OSError)
    assert not os.path.exists(tmp_path / "no-such-program")
