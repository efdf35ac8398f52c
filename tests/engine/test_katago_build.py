"""``katadeploy katago build`` (KataGo from source with cmake) and a ``katago path`` that runs as it is.

No compile happens in the default run: the build test needs ``$KATADEPLOY_KATAGO_SOURCE`` (it reuses a cached
build of that tree when there is one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from katadeploy.cli import main
from katadeploy.engine.katago import build as kb
from katadeploy.engine.katago.installer import KataGoBinary
from katadeploy.subprocess_run import run_process
from tests.conftest import small_net_path

SOURCE_ENV = "KATADEPLOY_KATAGO_SOURCE"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}


def test_each_missing_package_is_named(monkeypatch):
    fake = (
        kb.Requirement("g++", "the C++ compiler", lambda: False),
        kb.Requirement("cmake", "cmake", lambda: True),
        kb.Requirement("libzip-dev", "zip.h", lambda: False),
        kb.Requirement("libeigen3-dev", "Eigen3 headers", lambda: False),
    )
    monkeypatch.setattr(kb, "requirements", lambda backend: fake)
    with pytest.raises(kb.BuildRequirementError) as info:
        kb.build("eigen", progress=False)
    msg = str(info.value)
    assert "\n" not in msg
    for pkg in ("g++", "libzip-dev", "libeigen3-dev"):
        assert f"missing {pkg}" in msg
    assert "missing cmake" not in msg
    assert "apt-get install -y g++ libzip-dev libeigen3-dev" in msg


def test_onnx_backend_needs_onnxruntime_c_api(tmp_path):
    problems = kb.missing_requirements("onnx", None)
    assert any("ONNX Runtime's C API" in p and "not in Debian bookworm" in p for p in problems)
    (tmp_path / "include").mkdir()
    assert any("onnxruntime_c_api.h" in p for p in kb.missing_requirements("onnx", tmp_path))


def test_bad_source_and_backend(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(kb, "check_requirements", lambda backend, ort=None: None)
    with pytest.raises(kb.KataGoError, match="not a KataGo source tree"):
        kb.build("eigen", tmp_path, progress=False)
    with pytest.raises(kb.KataGoError, match="does not exist"):
        kb.build("eigen", tmp_path / "nope", progress=False)
    with pytest.raises(kb.KataGoError, match="unknown build backend"):
        kb.build("cuda", tmp_path, progress=False)
    cpp = tmp_path / "src" / "cpp"
    cpp.mkdir(parents=True)
    (cpp / "CMakeLists.txt").write_text("")
    (cpp / "main.cpp").write_text('string Version::getKataGoVersion() {\n  return string("1.17.2");\n}\n')
    assert kb.source_version(cpp) == "1.17.2"
    with pytest.raises(kb.KataGoError, match="has no ONNX backend"):
        kb.build("onnx", tmp_path / "src", progress=False)
    with pytest.raises(SystemExit):
        main(["katago", "build", "--backend", "metal"])
    assert "invalid choice" in capsys.readouterr().err


def test_launcher_runs_without_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KATADEPLOY_CACHE", str(tmp_path / "cache"))
    lib = tmp_path / "lib"
    lib.mkdir()
    exe = tmp_path / "bin" / "katago"
    exe.parent.mkdir()
    exe.write_text('#!/bin/sh\necho "KataGo vfake $LD_LIBRARY_PATH $1"\n')
    exe.chmod(0o755)
    plain = KataGoBinary(path=exe, env=dict(os.environ), extra_env={})
    assert kb.launcher(plain) == exe
    needs = KataGoBinary(path=exe, env=dict(os.environ), extra_env={"LD_LIBRARY_PATH": str(lib)})
    wrapper = kb.launcher(needs)
    assert wrapper != exe and os.access(wrapper, os.X_OK)
    res = run_process([wrapper, "version"], env=_clean_env(), timeout=30)
    assert res.returncode == 0 and res.stdout.strip() == f"KataGo vfake {lib} version"
    # the extracted AppImage layout maps to its AppRun
    root = tmp_path / "squashfs-root"
    (root / "usr" / "bin").mkdir(parents=True)
    app_exe = root / "usr" / "bin" / "katago"
    app_exe.write_text("#!/bin/sh\n")
    app_exe.chmod(0o755)
    (root / "AppRun").write_text("#!/bin/sh\n")
    (root / "AppRun").chmod(0o755)
    app = KataGoBinary(path=app_exe, env={}, extra_env={"LD_LIBRARY_PATH": str(root / "usr" / "lib")})
    assert kb.launcher(app) == root / "AppRun"


@pytest.mark.katago
def test_katago_path_runs_as_is(katago, capsys):
    assert main(["katago", "path"]) == 0
    printed = capsys.readouterr().out.strip()
    res = run_process([printed, "version"], env=_clean_env(), timeout=60)  # $(katadeploy katago path) version
    assert res.returncode == 0 and "KataGo v1.18.1" in res.stdout, res.stderr
    assert main(["katago", "path", "--raw"]) == 0
    assert Path(capsys.readouterr().out.strip()) == katago.path


@pytest.mark.katago
def test_build_eigen_from_source(tmp_path):
    src = os.environ.get(SOURCE_ENV)
    if not src:
        pytest.skip(
            f"needs a KataGo source tree (v1.17.2): set ${SOURCE_ENV}; a compile takes ~10 min on 2 cores"
        )
    b = kb.build("eigen", src, jobs=2, progress=False)
    assert b.backend == "eigen" and b.exe.is_file()
    assert kb.built("eigen") is not None
    binary = b.binary()
    assert binary.version().startswith("KataGo v1.")
    assert "Using Eigen(CPU) backend" in binary.run("version").stdout
    assert kb.launcher(binary) == b.exe  # Debian's libzip is on the default library path: runs as it is
    cfg = tmp_path / "b.cfg"
    cfg.write_text("logToStderr = true\nnumSearchThreads = 2\nnumNNServerThreadsPerModel = 2\n")
    res = run_process(
        binary.argv("benchmark", "-model", small_net_path("g170-b6c96-s175395328-d26788732"), "-config", cfg,
                    "-t", "2", "-v", "50", "-n", "1"),
        env=binary.env, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "nnEvals/s" in res.stdout


def test_onnxruntime_root_from_headers_and_pip_library(tmp_path, monkeypatch):
    monkeypatch.setenv("KATADEPLOY_CACHE", str(tmp_path / "cache"))
    ort = pytest.importorskip("onnxruntime")
    minor = int(ort.__version__.split(".")[1])
    inc = tmp_path / "usr" / "include" / "onnxruntime"
    inc.mkdir(parents=True)
    (inc / "onnxruntime_cxx_api.h").write_text("")
    (inc / "onnxruntime_c_api.h").write_text(f"#define ORT_API_VERSION {minor + 1}\n")
    with pytest.raises(kb.KataGoError, match="newer than onnxruntime"):
        kb.assemble_onnxruntime_root(inc.parent)
    (inc / "onnxruntime_c_api.h").write_text("#define ORT_API_VERSION 21\n")
    root = kb.assemble_onnxruntime_root(inc.parent)
    assert (root / "include" / "onnxruntime" / "onnxruntime_c_api.h").is_file()
    assert (root / "lib" / "libonnxruntime.so").resolve().is_file()
    assert not [p for p in kb.missing_requirements("onnx", root) if "ONNX Runtime" in p or "onnxruntime" in p]
    with pytest.raises(kb.KataGoError, match="no onnxruntime_c_api.h"):
        kb.assemble_onnxruntime_root(tmp_path)
