"""``katadeploy configure``: every platform/backend/mode config holds against the key table transcribed from
KataGo's source; the real KataGo v1.18.1 (OpenCL) loads the ``cpu`` configs with no unused-key warning and
answers; ``--tune`` measures this box."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from katadeploy.cli import main
from katadeploy.deploy import keys as kt
from katadeploy.deploy.configure import build_config, cache_power, configure, pick_from_deploy
from katadeploy.deploy.platforms import PLATFORMS
from katadeploy.errors import KatadeployError
from katadeploy.subprocess_run import run_process
from tests.conftest import small_net_path

NET = "g170-b6c96-s175395328-d26788732"
SOURCE_ENV = "KATADEPLOY_KATAGO_SOURCE"
ONNX_SOURCE_ENV = "KATADEPLOY_KATAGO_ONNX_SOURCE"

CASES = [
    (p, be, mode)
    for p, plat in PLATFORMS.items()
    if p != "onnx"
    for be in plat.backends
    for mode in ("gtp", "analysis")
]
_LINE = re.compile(r"^([A-Za-z0-9_]+) = (.*)$")


def parse_cfg(text: str) -> dict[str, str]:
    """``key = value`` lines of a rendered config; every key line must follow a ``# why`` comment line."""
    items: dict[str, str] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _LINE.match(line)
        if m:
            assert i > 0 and lines[i - 1].startswith("# "), f"{m.group(1)} has no reason comment"
            assert m.group(1) not in items, f"{m.group(1)} twice"
            items[m.group(1)] = m.group(2)
        else:
            assert line == "" or line.startswith("#"), line
    return items


@pytest.fixture(scope="module")
def onnx_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from katadeploy.export.request import export_artifact

    out = tmp_path_factory.mktemp("onnx")
    return export_artifact(small_net_path(NET), "onnx-fp32", out, progress=False)


@pytest.mark.parametrize("platform,backend,mode", CASES)
def test_every_config_key_is_in_the_table(platform, backend, mode):
    cfg = build_config(platform, mode, backend)
    items = parse_cfg(cfg.render())
    assert items == cfg.items
    assert kt.check_config(items, mode, {"coreml": "metal"}.get(backend, backend)) == []
    assert "numSearchThreads" in items and "nnCacheSizePowerOfTwo" in items
    assert "not measured on the box" in cfg.render()
    for key in items:
        entry = kt.lookup(key)
        assert (
            entry is not None
            and re.fullmatch(r"cpp/[a-z]+/[a-z0-9_]+\.(cpp|h)", entry["file"])
            and entry["line"] > 0
        )


def test_platform_specific_keys():
    assert build_config("rtx", "gtp").items["trtUseFP16"] == "true"
    assert build_config("rtx", "gtp").items["trtDeviceToUseThread0"] == "0"
    nano = build_config("jetson-nano", "gtp").items
    assert nano["cudaUseFP16"] == "true" and nano["cudaUseNHWC"] == "false"
    ane = build_config("mac", "gtp", "coreml").items
    assert ane["metalDeviceToUseThread0"] == ane["metalDeviceToUseThread1"] == "100"
    pi = build_config("rpi4", "analysis").items
    assert pi["numEigenThreadsPerModel"] == "4" and int(pi["nnCacheSizePowerOfTwo"]) <= 18
    assert "numNNServerThreadsPerModel" not in pi  # Eigen builds ignore it
    assert build_config("cpu", "gtp", "opencl").items["openclUseFP16"] == "auto"
    assert "onnxProvider" not in build_config("cpu", "gtp").items  # a non-ONNX KataGo refuses onnx* keys


def test_table_has_backend_prefixed_and_thread_indexed_forms():
    for key in (
        "trtUseFP16",
        "cudaDeviceToUseThread0",
        "openclDeviceToUseThread3",
        "onnxProvider",
        "cudaUseNHWC",
    ):
        assert kt.lookup(key) is not None, key
    assert kt.lookup("cudaUseFP16")["backend"] == "cuda"
    assert kt.lookup("numSearchThreads")["min"] == 1
    assert kt.lookup("nosuchKey") is None
    assert kt.check_config({"numSearchThreads": "0"}, "gtp", "eigen")  # below KataGo's range [1, 4096]
    assert any("trt key" in p for p in kt.check_config({"trtUseFP16": "true"}, "gtp", "cuda"))
    # read only inside #ifdef USE_CUDA_BACKEND (cudabackend.cpp): flagged for another backend
    assert kt.lookup("cudaUseNHWC")["builds"] == ["USE_CUDA_BACKEND"]
    assert any("USE_ONNX_BACKEND" in p for p in kt.check_config({"onnxProvider": "cpu"}, "gtp", "eigen"))


def test_cache_sized_from_ram():
    assert cache_power(4, "gtp", 23) == 18
    assert cache_power(64, "analysis", 23) == 21
    assert cache_power(1024, "gtp", 23) == 23
    assert cache_power(8, "gtp", 23, shared=True) == 18


def test_onnx_config_matches_the_backend_contract(onnx_artifact, tmp_path):
    from katadeploy.export.katago_onnx import DEFAULT_NAMES, check_contract, katago_onnx_path

    out = tmp_path / "onnx.cfg"
    assert (
        main(
            ["configure", "onnx", "--artifact", str(onnx_artifact), "--provider", "openvino", "-o", str(out)]
        )
        == 0
    )
    items = parse_cfg(out.read_text())
    assert kt.check_config(items, "gtp", "onnx") == []
    model = katago_onnx_path(onnx_artifact)
    assert check_contract(model) == []
    assert items["onnxProvider"] == "openvino" and items["onnxModelVersion"] == "8"
    for role in ("spatial", "global", "policy_pass", "policy", "value", "score", "ownership"):
        name, key = DEFAULT_NAMES[role]
        assert items[key] == name
        assert kt.lookup(key)["file"] == "cpp/neuralnet/onnxbackend.cpp"
    assert "useFP16" not in items and "onnxUseFP16" not in items  # the backend refuses useFP16 = true
    # the artifact's tensor is fixed at 19x19: one NN buffer for every board size, smaller boards masked
    assert items["maxBoardSizeForNNBuffer"] == "19" and items["gtpForceMaxNNSize"] == "true"
    assert items["requireMaxBoardSize"] == "false"
    assert str(model) in out.read_text()


def test_deploy_json_picks_fastest_passing_onnx(tmp_path):
    for name in ("a.onnx", "b.onnx", "c.onnx", "d.xml"):
        (tmp_path / name).write_text("x")
    targets = [
        {
            "target": "onnx-fp32",
            "artifact": "a.onnx",
            "verdict": "PASS",
            "evals_per_s": {"1": 10.0, "8": 20.0},
        },
        {"target": "onnx-fp16", "artifact": "b.onnx", "verdict": "PASS", "evals_per_s": {"8": 30.0}},
        {"target": "onnx-int8", "artifact": "c.onnx", "verdict": "FAIL", "evals_per_s": {"8": 90.0}},
        {"target": "openvino-fp32", "artifact": "d.xml", "verdict": "PASS", "evals_per_s": {"8": 99.0}},
    ]
    (tmp_path / "deploy.json").write_text(json.dumps({"targets": targets}))
    assert pick_from_deploy(tmp_path / "deploy.json") == tmp_path / "b.onnx"
    (tmp_path / "none.json").write_text(json.dumps({"targets": targets[2:]}))
    with pytest.raises(KatadeployError, match="no ONNX artifact passed"):
        pick_from_deploy(tmp_path / "none.json")


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["configure", "cpu", "--backend", "cuda"], "has no backend 'cuda'"),
        (["configure", "onnx"], "needs --artifact"),
        (["configure", "rtx", "--tune", "--model", NET], "measures this machine"),
        (["configure", "cpu", "--tune"], "--tune needs --model"),
    ],
)
def test_bad_input_is_one_line(argv, expect, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("katadeploy: error: ") and expect in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_prints_without_output(capsys):
    assert main(["configure", "rpi5", "--mode", "analysis"]) == 0
    items = parse_cfg(capsys.readouterr().out)
    assert items["numAnalysisThreads"] == "2"


# ---------------------------------------------------------------------------------------------- against source


def _source(env: str) -> Path:
    raw = os.environ.get(env)
    if not raw:
        pytest.skip(f"needs a KataGo source tree: set ${env}")
    cpp = Path(raw) / "cpp" if (Path(raw) / "cpp").is_dir() else Path(raw)
    return cpp


def test_table_lines_match_source():
    cpp = _source(SOURCE_ENV)
    table = kt.load_table()
    checked = 0
    for e in table.entries.values():
        if "v1.17.2" not in e["refs"] or e["refs"][0] != "v1.17.2":
            continue
        line = (cpp.parent / e["file"]).read_text(errors="replace").splitlines()[e["line"] - 1]
        pref = e["backend"] if e["backend"] and f'"{e["key"]}"' not in line else ""
        needle = e["key"][len(pref) :] if pref else e["key"]
        assert f'"{needle}' in line, f"{e['key']} not at {e['file']}:{e['line']}: {line.strip()}"
        checked += 1
    assert checked > 200


def test_table_regenerates_from_source():
    cpp = _source(SOURCE_ENV)
    fresh = kt.transcribe(cpp, "v1.17.2")
    shipped = {k: e for k, e in kt.load_table().entries.items() if "v1.17.2" in e["refs"]}
    assert set(fresh) == set(shipped)
    for k, e in fresh.items():
        assert (e["file"], e["line"], e["type"], e["min"], e["max"]) == (
            shipped[k]["file"], shipped[k]["line"], shipped[k]["type"], shipped[k]["min"], shipped[k]["max"]
        ), k  # fmt: skip


def test_onnx_keys_match_onnx_backend_source():
    cpp = _source(ONNX_SOURCE_ENV)
    text = (cpp / "neuralnet" / "onnxbackend.cpp").read_text()
    fresh = kt.transcribe(cpp, "a4ac35b3")
    for k, e in kt.load_table().entries.items():
        if e["backend"] == "onnx" and e["file"].endswith("onnxbackend.cpp"):
            assert k in fresh and fresh[k]["line"] == e["line"], k
    assert 'cfg.contains("onnxProvider")' in text


# ---------------------------------------------------------------------------------------------- real KataGo

QUERY = {"id": "q", "moves": [["B", "Q16"]], "rules": "chinese", "komi": 7.5, "boardXSize": 19,
         "boardYSize": 19, "maxVisits": 20}  # fmt: skip


def _run_katago(binary, mode: str, cfg: Path) -> tuple[str, str]:
    model = small_net_path(NET)
    if mode == "gtp":
        res = run_process(binary.argv("gtp", "-config", cfg, "-model", model), input="genmove b\nquit\n",
                          env=binary.env, timeout=600)  # fmt: skip
    else:
        res = run_process(binary.argv("analysis", "-config", cfg, "-model", model), input=json.dumps(QUERY) + "\n",
                          env=binary.env, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout, res.stderr


@pytest.mark.katago
@pytest.mark.parametrize("backend", ["eigen", "opencl"])
@pytest.mark.parametrize("mode", ["gtp", "analysis"])
def test_real_katago_loads_cpu_configs(katago, katago_home, backend, mode, tmp_path):
    _, path = configure("cpu", tmp_path / f"{backend}-{mode}.cfg", mode=mode, backend=backend)
    out, err = _run_katago(katago, mode, path)
    assert "Unused key" not in err and "WARNING: Config had unused keys" not in err, err
    if mode == "gtp":
        assert re.search(r"^= [A-T]\d+", out, re.M), out
    else:
        reply = json.loads(out.strip().splitlines()[-1])
        assert reply["id"] == "q" and reply["rootInfo"]["visits"] >= 20


@pytest.mark.katago
@pytest.mark.parametrize("mode", ["gtp", "analysis"])
def test_eigen_build_loads_cpu_config(katago_home, mode, tmp_path):
    from katadeploy.engine.katago.build import built

    b = built("eigen")
    if b is None:
        pytest.skip("no Eigen build in the cache (run `katadeploy katago build --backend eigen`)")
    _, path = configure("cpu", tmp_path / f"eigen-{mode}.cfg", mode=mode, backend="eigen")
    _, err = _run_katago(b.binary(), mode, path)
    assert "Unused key" not in err, err


@pytest.mark.katago
def test_tune_writes_threads_and_reports_default(katago, katago_home, tmp_path):
    cfg, path = configure("cpu", tmp_path / "tuned.cfg", backend="opencl", model=str(small_net_path(NET)),
                          do_tune=True, threads=[1, 2], visits=16, positions=1, progress=False)  # fmt: skip
    rep = cfg.tuned
    assert rep is not None and rep["tuned"]["threads"] in (1, 2)
    assert set(rep["sweep"]) == {1, 2, 6}  # 6 = numSearchThreads of KataGo's gtp_example.cfg
    assert rep["katago_default"]["visits_per_s"] > 0 and rep["tuned"]["visits_per_s"] > 0
    text = path.read_text()
    items = parse_cfg(text)
    assert items["numSearchThreads"] == str(rep["tuned"]["threads"])
    assert "vs KataGo's default 6" in text and "presets (not measured on the box" not in text
    # the other CPU backend is measured when its build is in the cache, else the file says why (a fresh machine)
    assert "eigen build (" in text or "eigen build not measured: no Eigen KataGo build" in text
    _, err = _run_katago(katago, "gtp", path)
    assert "Unused key" not in err
