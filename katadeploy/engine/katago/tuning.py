"""KataGo's OpenCL tuning, with a salvage for tuner crashes.

Contract
--------
* :func:`ensure_tuning` makes sure KataGo's OpenCL tuning for a net exists under ``homeDataDir`` (default
  :func:`~katadeploy.engine.katago.installer.katago_home`) by starting ``katago gtp`` once (which tunes on first
  use: minutes on a CPU) and returns the tune file, or None for a binary that is not an OpenCL build. The
  start-up runs under :func:`katadeploy.subprocess_run.run_process` (no shell; on timeout the whole process
  group is killed and :class:`~katadeploy.engine.katago.errors.KataGoError` is raised).
* With pocl 3.1 the v1.18.1 tuner crashes on transformer nets; the tune file is then rebuilt from the tuner's own
  progress output (:class:`TunerLog`, :func:`write_salvaged_tuning`, written atomically), which
  :class:`katadeploy.engine.katago.gtp.GTPEngine` also does by itself when its start-up dies that way.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

from katadeploy.engine.katago.configs import write_gtp_config
from katadeploy.engine.katago.errors import KataGoError
from katadeploy.engine.katago.installer import KataGoBinary, katago_home, locate
from katadeploy.errors import KatadeployError
from katadeploy.files import atomic_write_text
from katadeploy.progress import log
from katadeploy.subprocess_run import ProcessTimeout, run_process

# KataGo tunes its OpenCL kernels once per (device, net shape) and stores the result in
# <homeDataDir>/opencltuning/tune13_gpu<dev>_x19_y19_c<C>[_m<M>_h<H>]_mv<V>.txt. With pocl 3.1 the v1.18.1 tuner
# crashes (heap corruption, SIGSEGV/SIGABRT) while trying transformerRMSNorm work-group shapes, so transformer
# nets (v15+, v17 test nets) can never start. ensure_tuning() runs the normal start-up, and if the tuner dies
# it rebuilds the tune file from the tuner's own progress output: the best configuration found so far for each
# section it finished or was in (each printed line is a configuration that ran and passed the error check),
# KataGo's untuned defaults for the sections it never reached, and FP32 everywhere. Kernels are bounds-checked,
# so any valid parameter set is correct; only speed differs.

_TUNE_FILE_SECTIONS: tuple[tuple[str, str], ...] = (
    ("xGemmDirect", "WGD=8 MDIMCD=1 NDIMCD=1 MDIMAD=1 NDIMBD=1 KWID=1 VWMD=1 VWND=1 PADA=1 PADB=1"),
    ("xGemm", "MWG=8 NWG=8 KWG=8 MDIMC=1 NDIMC=1 MDIMA=1 NDIMB=1 KWI=1 VWM=1 VWN=1 STRM=0 STRN=0 SA=0 SB=0"),
    (
        "xGemm16",
        "MWG=8 NWG=8 KWG=8 MDIMC=1 NDIMC=1 MDIMA=1 NDIMB=1 KWI=1 VWM=1 VWN=1 STRM=0 STRN=0 SA=0 SB=0",
    ),
    ("hGemmWmma", "MWG=16 NWG=16 KWG=16 MWAVE=16 NWAVE=16 MWARP=16 NWARP=16 VWM=2 VWN=2 SA=0 SB=0"),
    (
        "hGemmWmmaNCHW",
        "MWG=16 NWG=16 KWG=16 MWAVE=16 NWAVE=16 MWARP=16 NWARP=16 VWM=1 VWN=2 SB=0 "
        "PAD_ELTS_PER_THREAD=1 PAD_ROWS_PER_THREAD=1",
    ),
    ("conv3x3", ""),  # built from the winograd sections
    ("conv5x5", ""),
    ("gPool", "XYSTRIDE=1 CHANNELSTRIDE=1 BATCHSTRIDE=1"),
    ("transformer", "ATTN_BLOCK_Q=32 ATTN_BLOCK_KV=32 Q_PER_THREAD=1 USE_TILED_ATTN=1"),
    ("transformerRMSNorm", "WG_C_SIZE=64 WG_XY_SIZE=1 C_PER_THREAD=4"),
    ("pointWise", "ELTS_PER_THREAD=1 LOCAL_SIZE=32"),
    ("addChannelBiasesNCHW", "XY_ELTS_PER_THREAD=1 NC_ELTS_PER_THREAD=1"),
    ("spatialRMSNorm", "TILE_SIZE=32 APPLY_ELTS_PER_THREAD=1"),
)
_TUNE_FLAGS = (
    "canUseFP16Storage",
    "canUseFP16Compute",
    "canUseFP16TensorCores",
    "canUseFP16TensorCoresFor1x1",
    "shouldUseFP16Storage",
    "shouldUseFP16Compute",
    "shouldUseFP16TensorCores",
    "shouldUseFP16TensorCoresFor1x1",
)
#: tuner section headers (prefixes, most specific first) -> tune-file section; None = not stored
_TUNER_HEADERS: tuple[tuple[str, str | None], ...] = (
    ("Tuning xGemmDirect", "xGemmDirect"),
    ("Tuning xGemm for convolutions - trying with FP16", None),
    ("Tuning xGemm16", "xGemm16"),
    ("Tuning xGemm", "xGemm"),
    ("Tuning hGemmWmmaNCHW", None),  # FP16 tensor cores: salvage always writes FP32
    ("Tuning hGemmWmma", None),
    ("Tuning winograd untransform", "untrans"),
    ("Tuning winograd transform", "trans"),
    ("Tuning global pooling", "gPool"),
    ("Tuning transformer attention", "transformer"),
    ("Tuning transformerRMSNorm", "transformerRMSNorm"),
    ("Tuning pointWise", "pointWise"),
    ("Tuning addChannelBiasesNCHW", "addChannelBiasesNCHW"),
    ("Tuning spatialRMSNorm", "spatialRMSNorm"),
)
_TUNE_RESULT = re.compile(r"^Tuning (?:\* )?\d+/\d+\b.*?ErrorProp\s+\S+\s+(\S.*?)\s*$")
_TUNE_MISSING = re.compile(r"No existing tuning parameters found or parseable or valid at: (\S.*?)\s*$")
_TUNE_LOADED = re.compile(r"Loaded tuning parameters from: (\S.*?)\s*$")
_TUNE_SAVED = re.compile(r"Done tuning, saved results to (\S.*?)\s*$")
TUNE_TIMEOUT_S = 3600.0


class TunerLog:
    """Incremental parser of tuner output: keeps only the best line per section (bounded memory)."""

    def __init__(self) -> None:
        self.section: str | None = None
        self.best: dict[str, str] = {}
        self.tile_size = 4
        self.missing: Path | None = None
        self.loaded: Path | None = None
        self.saved: Path | None = None

    def feed(self, line: str) -> None:
        line = line.strip()
        for regex, attr in ((_TUNE_MISSING, "missing"), (_TUNE_LOADED, "loaded"), (_TUNE_SAVED, "saved")):
            m = regex.search(line)
            if m:
                setattr(self, attr, Path(m.group(1)))
                return
        m = re.match(r"Setting winograd3x3TileSize = (\d+)", line)
        if m:
            self.tile_size = int(m.group(1))
            return
        m = _TUNE_RESULT.match(line)
        if m:
            if self.section is not None:
                self.best[self.section] = m.group(1)
            return
        if line.startswith("Tuning ") and not re.match(r"Tuning\s+(\*\s+)?\d", line):
            self.section = "?"
            for prefix, key in _TUNER_HEADERS:
                if line.startswith(prefix):
                    self.section = key
                    break
            if self.section == "?":
                self.section = None

    def tune_file_text(self) -> str:
        lines = ["VERSION=13"]
        for flag in _TUNE_FLAGS:
            lines += [f"#{flag}", "0"]
        inner, outer = (6, 4) if self.tile_size == 4 else (4, 2)
        local = " ".join(
            x
            for x in (
                self.best.get("trans", "transLocalSize0=1 transLocalSize1=1"),
                self.best.get("untrans", "untransLocalSize0=1 untransLocalSize1=1 untransLocalSize2=1"),
            )
        )
        for key, default in _TUNE_FILE_SECTIONS:
            if key == "conv3x3":
                desc = f"INTILE_XSIZE={inner} INTILE_YSIZE={inner} OUTTILE_XSIZE={outer} OUTTILE_YSIZE={outer} {local}"
            elif key == "conv5x5":
                desc = f"INTILE_XSIZE=6 INTILE_YSIZE=6 OUTTILE_XSIZE=2 OUTTILE_YSIZE=2 {local}"
            elif key == "xGemm16":
                desc = self.best.get("xGemm16", self.best.get("xGemm", default))
            else:
                desc = self.best.get(key, default)
            lines += [f"#{key}", desc]
        return "\n".join(lines) + "\n"


def write_salvaged_tuning(log: TunerLog) -> Path:
    """Write the tune file KataGo was looking for, rebuilt from a crashed tuner's output; return its path."""
    if log.missing is None:
        raise KataGoError("the KataGo output did not name the tune file it was looking for")
    atomic_write_text(log.missing, log.tune_file_text())
    return log.missing


def _run_startup(
    binary: KataGoBinary, model: Path, config: Path, timeout: float, progress: bool
) -> tuple[int, TunerLog]:
    """Start ``katago gtp``, let it load/tune, send ``version``/``quit``; parse stderr as it streams."""
    state = TunerLog()

    def _line(line: str) -> None:
        state.feed(line)
        if progress and (
            line.startswith(("Tuning ", "Done tuning", "Performing autotuning"))
            and not re.match(r"Tuning\s+(\*\s+)?\d", line)
        ):
            print(f"katago: {line.rstrip()}", file=sys.stderr, flush=True)

    try:
        result = run_process(
            binary.argv("gtp", "-config", config, "-model", model),
            timeout=timeout,
            env=binary.env,
            input="1 version\n2 quit\n",
            capture_stdout=False,
            on_stderr=_line,
            tail_lines=0,
        )
    except ProcessTimeout as exc:
        raise KataGoError(f"KataGo start-up/OpenCL tuning for {model.name} took over {timeout:g} s") from exc
    return result.returncode, state


def ensure_tuning(
    model: str | os.PathLike[str],
    binary: KataGoBinary | None = None,
    home: str | os.PathLike[str] | None = None,
    timeout: float = TUNE_TIMEOUT_S,
    progress: bool = True,
) -> Path | None:
    """Make sure KataGo's OpenCL tuning for ``model`` exists under ``home`` (default :func:`katago_home`).

    Returns the tune file (None if the binary is not an OpenCL build). Runs the tuner on first use (minutes on a
    CPU) and, if it crashes, writes a tune file salvaged from its output (see the comment above).
    """
    binary = binary if binary is not None else locate()
    model = Path(model)
    if not model.is_file():
        raise KatadeployError(f"model {model} does not exist")
    home = Path(home) if home is not None else katago_home()
    with tempfile.TemporaryDirectory(prefix="katadeploy-tune-") as tmp:
        cfg = write_gtp_config(Path(tmp) / "tune.cfg", homeDataDir=home, logToStderr=False)
        rc, state = _run_startup(binary, model, cfg, timeout, progress)
        if rc == 0 and (state.loaded or state.saved):
            return state.loaded or state.saved
        if rc == 0 and state.missing is None:
            return None  # not an OpenCL build: nothing to tune
        if state.missing is None:
            raise KataGoError(f"`katago gtp` on {model.name} exited with {rc} before OpenCL tuning")
        log(f"the KataGo OpenCL tuner crashed (exit {rc}); writing the tune file from its progress", progress)
        write_salvaged_tuning(state)
        rc2, state2 = _run_startup(binary, model, cfg, timeout, progress=False)
        if rc2 != 0 or state2.loaded is None:
            raise KataGoError(f"KataGo did not accept the salvaged tune file {state.missing} (exit {rc2})")
        return state2.loaded
