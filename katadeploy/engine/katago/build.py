"""Build KataGo from source with cmake (Eigen, OpenCL or the ONNX Runtime backend), and runnable launchers.

Contract
--------
* :func:`build` compiles KataGo's ``cpp/`` tree with cmake (``-DUSE_BACKEND=EIGEN|OPENCL|ONNX``, Release,
  ``-DUSE_AVX2=1`` for Eigen on an x86 CPU that has AVX2) into ``cache_dir("katago-build", KEY)`` where ``KEY``
  is ``<backend>-<ref or source tag>-<12 hex of sha256(source identity, options)>``; a finished build (its
  ``katadeploy-build.json`` marker) is reused unless ``force``. The source is a directory holding
  ``cpp/CMakeLists.txt`` (or the ``cpp`` directory itself; built as it is, ``ref`` ignored), or a git URL cloned
  (``git clone --depth 1 --branch REF``) into the cache; with neither, ``$KATADEPLOY_KATAGO_SOURCE``, else :data:`DEFAULT_GIT_URL` at
  :data:`DEFAULT_REF`.
* Before cmake runs, :func:`missing_requirements` checks the Debian packages each backend needs and every
  missing one is named in the :class:`BuildRequirementError` message (one line, with the ``apt-get install``
  fix). The ONNX backend (KataGo sources that have ``cpp/neuralnet/onnxbackend.cpp``, e.g. lightvector/KataGo
  pull/1171) needs protobuf and ONNX Runtime's C API (``include/onnxruntime/onnxruntime_c_api.h`` and
  ``lib/libonnxruntime.so`` under ``--onnxruntime-root`` / ``$ONNXRUNTIME_ROOT``), which Debian bookworm does not
  package; :func:`assemble_onnxruntime_root` (``--onnxruntime-headers DIR``) builds such a root in the cache from
  C API headers (Debian trixie's ``libonnxruntime-dev``) and pip ``onnxruntime``'s ``libonnxruntime.so``. cmake
  runs with ``-DKATAGO_AUTO_FETCH_DEPS=OFF`` there (no vcpkg downloads); the executable finds the library through
  its build RPATH.
* :func:`built` returns the cached build for a backend (newest marker) or None; :func:`launcher` returns a
  path that runs as it is: the build's ``katago`` itself, or for the extracted AppImage its ``AppRun`` (which
  sets ``LD_LIBRARY_PATH`` to the bundled libraries) — ``$(katadeploy katago path) version`` works.

No shell is used for child processes (:func:`katadeploy.subprocess_run.run_process`, each with a timeout).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from katadeploy.cache import cache_dir, cache_root
from katadeploy.engine.katago.errors import KataGoError
from katadeploy.engine.katago.installer import KataGoBinary, _binary_for
from katadeploy.subprocess_run import ProcessTimeout, run_process

BUILD_BACKENDS = ("eigen", "opencl", "onnx")
CMAKE_BACKEND = {"eigen": "EIGEN", "opencl": "OPENCL", "onnx": "ONNX"}
DEFAULT_GIT_URL = "https://github.com/lightvector/KataGo.git"
DEFAULT_REF = "v1.17.2"
SOURCE_ENV = "KATADEPLOY_KATAGO_SOURCE"
ONNXRUNTIME_ENV = "ONNXRUNTIME_ROOT"
CONFIGURE_TIMEOUT_S = 600.0
COMPILE_TIMEOUT_S = 4 * 3600.0
CLONE_TIMEOUT_S = 1800.0
_MARKER = "katadeploy-build.json"


class BuildRequirementError(KataGoError):
    """A package the build needs is missing; the message names each one and the apt-get line."""


@dataclass(frozen=True)
class Requirement:
    """One build dependency: the Debian package, what it provides, and a probe (True = present)."""

    package: str
    provides: str
    present: Callable[[], bool]


def _header(*candidates: str) -> Callable[[], bool]:
    return lambda: any(Path(c).is_file() for c in candidates)


def _tool(name: str) -> Callable[[], bool]:
    return lambda: shutil.which(name) is not None


def _lib(stem: str) -> Callable[[], bool]:
    dirs = ("/usr/lib", "/usr/lib64", "/usr/local/lib", f"/usr/lib/{platform.machine()}-linux-gnu")
    return lambda: any(Path(d, f"{stem}.so").exists() for d in dirs)


_COMMON = (
    Requirement("g++", "the C++ compiler (g++)", _tool("g++")),
    Requirement("cmake", "cmake", _tool("cmake")),
    Requirement("zlib1g-dev", "zlib.h", _header("/usr/include/zlib.h")),
    Requirement(
        "libzip-dev",
        "zip.h/zipconf.h",
        _header("/usr/include/zip.h"),
    ),
)
_PER_BACKEND = {
    "eigen": (
        Requirement(
            "libeigen3-dev",
            "Eigen3 headers",
            _header("/usr/include/eigen3/Eigen/Core", "/usr/local/include/eigen3/Eigen/Core"),
        ),
    ),
    "opencl": (
        Requirement("opencl-headers", "CL/cl.h", _header("/usr/include/CL/cl.h")),
        Requirement("ocl-icd-opencl-dev", "libOpenCL.so", _lib("libOpenCL")),
    ),
    "onnx": (
        Requirement("libprotobuf-dev", "protobuf headers", _header("/usr/include/google/protobuf/message.h")),
        Requirement("protobuf-compiler", "protoc", _tool("protoc")),
    ),
}


def requirements(backend: str) -> tuple[Requirement, ...]:
    _check_backend(backend)
    return _COMMON + _PER_BACKEND[backend]


def _check_backend(backend: str) -> None:
    if backend not in BUILD_BACKENDS:
        raise KataGoError(f"unknown build backend {backend!r}; choose one of {', '.join(BUILD_BACKENDS)}")


def onnxruntime_root(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    raw = explicit or os.environ.get(ONNXRUNTIME_ENV)
    return Path(raw).expanduser() if raw else None


def _onnxruntime_problem(root: Path | None) -> str | None:
    fix = (
        "ONNX Runtime's C API is not in Debian bookworm: pass --onnxruntime-root DIR (an onnxruntime-linux "
        "release, or ONNXRUNTIME_ROOT) or --onnxruntime-headers DIR (the headers of Debian trixie's "
        "libonnxruntime-dev, used with pip onnxruntime's libonnxruntime.so)"
    )
    if root is None:
        return f"the ONNX backend needs ONNX Runtime's C API; {fix}"
    if (
        not (root / "include" / "onnxruntime" / "onnxruntime_c_api.h").is_file()
        and not (root / "include" / "onnxruntime_c_api.h").is_file()
    ):
        return f"{root} has no include/onnxruntime/onnxruntime_c_api.h; {fix}"
    if not any((root / "lib").glob("libonnxruntime.so*")):
        return f"{root} has no lib/libonnxruntime.so; {fix}"
    return None


def assemble_onnxruntime_root(headers: str | os.PathLike[str]) -> Path:
    """An ``ONNXRUNTIME_ROOT`` in the cache from C API headers plus pip ``onnxruntime``'s shared library.

    ``headers`` is a directory holding ``onnxruntime_c_api.h`` and ``onnxruntime_cxx_api.h`` (e.g. Debian
    trixie's ``libonnxruntime-dev``: ``apt-get download`` + ``dpkg-deb -x``). The C API is versioned: headers
    older than the library work (``OrtGetApi(ORT_API_VERSION)``), newer ones do not.
    """
    src = Path(headers).expanduser()
    if (src / "onnxruntime").is_dir() and not (src / "onnxruntime_c_api.h").is_file():
        src = src / "onnxruntime"
    if not (src / "onnxruntime_c_api.h").is_file() or not (src / "onnxruntime_cxx_api.h").is_file():
        raise KataGoError(f"{src} has no onnxruntime_c_api.h / onnxruntime_cxx_api.h")
    m = re.search(r"#define ORT_API_VERSION (\d+)", (src / "onnxruntime_c_api.h").read_text(errors="replace"))
    api = int(m.group(1)) if m else 0
    try:
        import onnxruntime
    except ImportError as exc:
        raise KataGoError(
            "--onnxruntime-headers needs pip's onnxruntime for the library (pip install onnxruntime)"
        ) from exc
    libs = sorted(Path(onnxruntime.__file__).parent.joinpath("capi").glob("libonnxruntime.so.*"))
    if not libs:
        raise KataGoError(f"pip onnxruntime {onnxruntime.__version__} has no capi/libonnxruntime.so.*")
    lib_minor = int(onnxruntime.__version__.split(".")[1])
    if api > lib_minor:
        raise KataGoError(f"headers for C API {api} are newer than onnxruntime {onnxruntime.__version__}")
    root = cache_dir("onnxruntime-c", f"{onnxruntime.__version__}-api{api}")
    inc = root / "include" / "onnxruntime"
    if inc.exists():
        shutil.rmtree(inc)
    shutil.copytree(src, inc)
    (root / "lib").mkdir(exist_ok=True)
    for name in ("libonnxruntime.so", "libonnxruntime.so.1"):
        link = root / "lib" / name
        link.unlink(missing_ok=True)
        link.symlink_to(libs[-1])
    return root


def missing_requirements(backend: str, onnxruntime: Path | None = None) -> list[str]:
    """One message per missing dependency of ``backend`` (empty when everything is there)."""
    out = [f"missing {r.package} ({r.provides})" for r in requirements(backend) if not r.present()]
    if backend == "onnx":
        problem = _onnxruntime_problem(onnxruntime)
        if problem:
            out.append(problem)
    return out


def check_requirements(backend: str, onnxruntime: Path | None = None) -> None:
    missing = missing_requirements(backend, onnxruntime)
    if not missing:
        return
    pkgs = [r.package for r in requirements(backend) if not r.present()]
    fix = f"; install with: sudo apt-get update && sudo apt-get install -y {' '.join(pkgs)}" if pkgs else ""
    raise BuildRequirementError(f"cannot build KataGo ({backend}): {'; '.join(missing)}{fix}")


# ----------------------------------------------------------------------------------------------------------
# Source


def _is_git_url(source: str) -> bool:
    return bool(re.match(r"^(https?://|git@|ssh://|git://|file://)", source)) or source.endswith(".git")


def _cpp_dir(path: Path) -> Path:
    for cand in (path / "cpp", path):
        if (cand / "CMakeLists.txt").is_file() and (cand / "main.cpp").is_file():
            return cand
    raise KataGoError(f"{path} is not a KataGo source tree (no cpp/CMakeLists.txt and cpp/main.cpp)")


def _clone(url: str, ref: str, progress: bool) -> Path:
    if shutil.which("git") is None:
        raise BuildRequirementError(
            "cannot clone KataGo: missing git; install with: sudo apt-get install -y git"
        )
    key = hashlib.sha256(f"{url}\0{ref}".encode()).hexdigest()[:12]
    dest = cache_dir("katago-src") / f"{_slug(ref)}-{key}"
    if (dest / "cpp" / "CMakeLists.txt").is_file():
        return dest
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    _log(progress, f"cloning {url} at {ref}")
    res = run_process(
        ["git", "clone", "--depth", "1", "--branch", ref, url, str(tmp)],
        timeout=CLONE_TIMEOUT_S,
        capture_stdout=False,
    )
    if res.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise KataGoError(f"git clone {url} --branch {ref} failed: {(res.stderr_tail or ['?'])[-1]}")
    os.replace(tmp, dest)
    return dest


def resolve_source(source: str | os.PathLike[str] | None, ref: str | None, progress: bool = False) -> Path:
    """The ``cpp`` directory of the KataGo source to build (cloning a git URL when given one)."""
    raw = os.fspath(source) if source is not None else os.environ.get(SOURCE_ENV)
    if not raw:
        raw = DEFAULT_GIT_URL
    if _is_git_url(raw):
        return _cpp_dir(_clone(raw, ref or DEFAULT_REF, progress))
    path = Path(raw).expanduser()
    if not path.exists():
        raise KataGoError(f"KataGo source {path} does not exist; pass --source DIR or a git URL")
    return _cpp_dir(path.resolve())


def source_version(cpp: Path) -> str | None:
    """The version in ``cpp/main.cpp``'s ``Version::getKataGoVersion`` (``"1.17.2"``), if found."""
    for rel in ("core/version.cpp", "program/version.cpp", "main.cpp"):
        f = cpp / rel
        if f.is_file():
            m = re.search(
                r'return\s+(?:std::)?string\("(\d+\.\d+\.\d+[^"]*)"\)', f.read_text(errors="replace")
            )
            if m:
                return m.group(1)
    return None


# ----------------------------------------------------------------------------------------------------------
# Build


@dataclass(frozen=True)
class KataGoBuild:
    """A finished build: its directory, the executable, the backend and what it was built from."""

    root: Path
    exe: Path
    backend: str
    source: str
    ref: str | None
    version: str | None

    def binary(self) -> KataGoBinary:
        return _binary_for(self.exe, None)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:40] or "src"


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(f"katadeploy: {msg}", file=sys.stderr, flush=True)


def _cpu_has_avx2() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        return " avx2 " in " " + Path("/proc/cpuinfo").read_text(errors="replace").replace("\n", " ") + " "
    except OSError:
        return False


def build_dir(backend: str, cpp: Path, ref: str | None, options: Sequence[str]) -> Path:
    ident = json.dumps([backend, str(cpp), ref, source_version(cpp), list(options)])
    key = hashlib.sha256(ident.encode()).hexdigest()[:12]
    tag = _slug(ref or f"v{source_version(cpp) or 'src'}")
    return cache_root() / "katago-build" / f"{backend}-{tag}-{key}"


def _read_marker(root: Path) -> KataGoBuild | None:
    try:
        data = json.loads((root / _MARKER).read_text())
    except (OSError, ValueError):
        return None
    exe = root / "build" / "katago"
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        return None
    return KataGoBuild(
        root=root,
        exe=exe,
        backend=data.get("backend", "?"),
        source=data.get("source", "?"),
        ref=data.get("ref"),
        version=data.get("version"),
    )


def built(backend: str | None = None) -> KataGoBuild | None:
    """The newest finished build in the cache (of ``backend`` if given), or None."""
    base = cache_root() / "katago-build"
    if not base.is_dir():
        return None
    found = []
    for root in base.iterdir():
        b = _read_marker(root)
        if b is not None and (backend is None or b.backend == backend):
            found.append(((root / _MARKER).stat().st_mtime, b))
    return max(found, key=lambda t: t[0])[1] if found else None


def cmake_options(backend: str, onnxruntime: Path | None = None) -> list[str]:
    opts = [f"-DUSE_BACKEND={CMAKE_BACKEND[backend]}", "-DCMAKE_BUILD_TYPE=Release", "-DNO_GIT_REVISION=1"]
    if backend == "eigen" and _cpu_has_avx2():
        opts.append("-DUSE_AVX2=1")
    if backend == "onnx":
        opts.append("-DKATAGO_AUTO_FETCH_DEPS=OFF")  # no vcpkg downloads: Debian's protobuf, the given ORT
        if onnxruntime is not None:
            opts.append(f"-DONNXRUNTIME_ROOT={onnxruntime}")
    return opts


def build(
    backend: str = "eigen",
    source: str | os.PathLike[str] | None = None,
    ref: str | None = None,
    *,
    jobs: int | None = None,
    force: bool = False,
    onnxruntime: str | os.PathLike[str] | None = None,
    onnxruntime_headers: str | os.PathLike[str] | None = None,
    progress: bool = True,
    timeout: float = COMPILE_TIMEOUT_S,
) -> KataGoBuild:
    """Compile KataGo (see the module contract); return the finished build (reused when cached)."""
    _check_backend(backend)
    if onnxruntime_headers is not None and onnxruntime is None:
        onnxruntime = assemble_onnxruntime_root(onnxruntime_headers)
    ort = onnxruntime_root(onnxruntime)
    check_requirements(backend, ort)
    raw = os.fspath(source) if source is not None else os.environ.get(SOURCE_ENV) or DEFAULT_GIT_URL
    is_git = _is_git_url(raw)
    cpp = resolve_source(raw, ref, progress)
    if backend == "onnx" and not (cpp / "neuralnet" / "onnxbackend.cpp").is_file():
        raise KataGoError(
            f"the KataGo source at {cpp} (v{source_version(cpp) or '?'}) has no ONNX backend "
            "(cpp/neuralnet/onnxbackend.cpp): use a KataGo >= 1.18 checkout"
        )
    if not is_git:
        ref = None  # a directory is built as it is; --ref only picks what to clone
    elif ref is None:
        ref = DEFAULT_REF
    opts = cmake_options(backend, ort)
    root = build_dir(backend, cpp, ref, opts)
    if not force:
        have = _read_marker(root)
        if have is not None:
            _log(progress, f"reusing the {backend} build at {have.exe}")
            return have
    bdir = root / "build"
    root.mkdir(parents=True, exist_ok=True)
    (root / _MARKER).unlink(missing_ok=True)
    log_path = root / "build.log"
    jobs = jobs or max(1, os.cpu_count() or 1)

    with open(log_path, "w") as log:

        def _echo(line: str) -> None:
            log.write(line)
            log.flush()
            if progress and ("error" in line.lower()):
                print(f"katadeploy: {line.rstrip()}", file=sys.stderr, flush=True)

        steps = [
            ("configure", ["cmake", "-S", str(cpp), "-B", str(bdir), *opts], CONFIGURE_TIMEOUT_S),
            ("compile", ["cmake", "--build", str(bdir), "--target", "katago", "-j", str(jobs)], timeout),
        ]
        for name, argv, limit in steps:
            _log(progress, f"{name}: {' '.join(argv)} (log: {log_path})")
            log.write(f"$ {' '.join(argv)}\n")
            try:
                res = run_process(argv, timeout=limit, on_stderr=_echo, cwd=bdir.parent)
            except ProcessTimeout as exc:
                log.write(exc.stdout)
                raise KataGoError(f"KataGo {name} step timed out after {limit:g} s; see {log_path}") from exc
            log.write(res.stdout)
            if res.returncode != 0:
                last = [ln for ln in res.stderr_tail if ln.strip()][-1:] or ["no output"]
                raise KataGoError(
                    f"KataGo {name} step failed (exit {res.returncode}): {last[0]}; see {log_path}"
                )
    exe = bdir / "katago"
    if not exe.is_file():
        raise KataGoError(f"the build finished but {exe} is missing; see {log_path}")
    version = _binary_for(exe, None).version()
    (root / _MARKER).write_text(
        json.dumps(
            {
                "backend": backend,
                "source": str(cpp),
                "ref": ref,
                "version": version,
                "cmake_options": opts,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=1,
        )
        + "\n"
    )
    _log(progress, f"built {version} ({backend}) at {exe}")
    have = _read_marker(root)
    assert have is not None
    return have


# ----------------------------------------------------------------------------------------------------------
# Something that runs as it is


def launcher(binary: KataGoBinary) -> Path:
    """A path that runs ``binary`` with no extra environment.

    A binary that needs no ``LD_LIBRARY_PATH`` is returned as is. The extracted AppImage's
    ``squashfs-root/usr/bin/katago`` maps to ``squashfs-root/AppRun`` (it exports ``LD_LIBRARY_PATH`` for the
    bundled libzip/libz and execs the binary). Otherwise a small ``katago-run`` wrapper is written beside the
    cache and returned.
    """
    if not binary.extra_env:
        return binary.path
    exe = binary.path
    if exe.parent.name == "bin" and exe.parent.parent.name == "usr":
        apprun = exe.parent.parent.parent / "AppRun"
        if apprun.is_file() and os.access(apprun, os.X_OK):
            return apprun
    digest = hashlib.sha256(str(exe).encode()).hexdigest()[:12]
    wrapper = cache_dir("katago-launchers") / f"katago-{digest}"
    lines = ["#!/bin/sh"]
    for key, value in binary.extra_env.items():
        lines.append(f"{key}={_sh_quote(value)}; export {key}")
    lines.append(f'exec {_sh_quote(str(exe))} "$@"')
    text = "\n".join(lines) + "\n"
    if not wrapper.is_file() or wrapper.read_text() != text:
        tmp = wrapper.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, wrapper)
    return wrapper


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
