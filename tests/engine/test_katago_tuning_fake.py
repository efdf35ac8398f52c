"""ensure_tuning's start-up watchdog and tune-file salvage, against a fake ``katago`` (no real binary needed)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from katadeploy.engine import katago as kg

FAKE = """\
import os, re, sys, time
args = sys.argv[1:]
assert args[0] == "gtp", args
cfg = open(args[args.index("-config") + 1]).read()
home = re.search(r"^homeDataDir = (.*)$", cfg, re.M).group(1).strip()
tune = os.path.join(home, "opencltuning", "tune13_gpuFake_x19_y19_c96_mv8.txt")
if os.environ.get("FAKE_MODE") == "hang":
    print("Performing autotuning", file=sys.stderr, flush=True)
    time.sleep(600)
if os.path.exists(tune):
    assert open(tune).read().startswith("VERSION=13")
    print("Loaded tuning parameters from: " + tune, file=sys.stderr, flush=True)
    sys.stdin.read()
    sys.exit(0)
print("No existing tuning parameters found or parseable or valid at: " + tune, file=sys.stderr)
print("Tuning xGemmDirect for 1x1 convolutions and matrix mult", file=sys.stderr)
print("Tuning 3/55 Calls/sec 187.0 ErrorProp 1.9e-07 WGD=32 MDIMCD=8 NDIMCD=8 MDIMAD=8 NDIMBD=16 KWID=2 "
      "VWMD=4 VWND=2 PADA=1 PADB=1", file=sys.stderr, flush=True)
os.abort()
"""


@pytest.fixture
def fake_katago(tmp_path: Path) -> Path:
    exe = tmp_path / "bin" / "katago"
    exe.parent.mkdir()
    exe.write_text(f"#!{sys.executable}\n{FAKE}")
    exe.chmod(0o755)
    return exe


def test_crashed_tuner_is_salvaged_then_reused(fake_katago, tmp_path):
    model = tmp_path / "net.bin.gz"
    model.write_bytes(b"x")
    home = tmp_path / "home"
    binary = kg.KataGoBinary(path=fake_katago)
    path = kg.ensure_tuning(model, binary=binary, home=home, timeout=60, progress=False)
    assert path == home / "opencltuning" / "tune13_gpuFake_x19_y19_c96_mv8.txt"
    text = path.read_text()
    assert text.startswith("VERSION=13") and "#xGemmDirect\nWGD=32 MDIMCD=8" in text
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary files left
    assert kg.ensure_tuning(model, binary=binary, home=home, timeout=60, progress=False) == path


def test_startup_timeout_kills_katago_and_is_a_clear_error(fake_katago, tmp_path):
    model = tmp_path / "net.bin.gz"
    model.write_bytes(b"x")
    binary = kg.KataGoBinary(path=fake_katago, env=dict(os.environ, FAKE_MODE="hang"))
    t0 = time.monotonic()
    with pytest.raises(kg.KataGoError, match=r"start-up/OpenCL tuning for net.bin.gz took over 2 s"):
        kg.ensure_tuning(model, binary=binary, home=tmp_path / "home", timeout=2, progress=False)
    assert time.monotonic() - t0 < 60
