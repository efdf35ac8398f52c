"""TensorRT targets: the pure-Python parts everywhere, real engines where TensorRT (and a GPU) are present.

The engine tests build ``tensorrt-fp16`` / ``tensorrt-int8`` for a small real net and hold the engine's outputs
against the PyTorch FP32 reference with KataGo's testgpuerror limits. CI has neither TensorRT nor a GPU, so
they skip there with the reason; ``scripts/gpu_check.py`` runs the same checks on the real nets on a GPU box.
The TensorRT-RTX ahead-of-time test needs only the ``tensorrt_rtx`` package (no GPU).
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest

from katadeploy.artifact import ArtifactManifest, TensorSpec
from katadeploy.errors import KatadeployError, MissingExtraError
from katadeploy.export import tensorrt as T
from katadeploy.runtime import tensorrt_env as E
from katadeploy.runtime.tensorrt_runtime import check_compatible
from tests.conftest import small_net_path

NET = "g170-b6c96-s175395328-d26788732"


def _available(module: str) -> bool:
    try:
        E.load_tensorrt(None if module == "any" else module)
    except KatadeployError:
        return False
    return True


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


HAVE_TRT = _available("any")
HAVE_RTX = _available("tensorrt-rtx")
needs_trt_gpu = pytest.mark.skipif(
    not (HAVE_TRT and _cuda()),
    reason="needs TensorRT or TensorRT-RTX and a CUDA GPU (CI has neither; scripts/gpu_check.py covers it)",
)


# ------------------------------------------------------------------------------------------ missing extra
def test_missing_tensorrt_names_the_extra_and_tensorrt_rtx(monkeypatch):
    for name, _ in E.MODULES:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    monkeypatch.delenv(E.FLAVOUR_ENV, raising=False)
    with pytest.raises(MissingExtraError) as exc:
        E.load_tensorrt()
    msg = str(exc.value)
    assert "pip install 'katadeploy[tensorrt]'" in msg
    assert "TensorRT-RTX" in msg and "tensorrt_rtx" in msg


def test_export_without_tensorrt_fails_before_any_work(monkeypatch, tmp_path):
    from katadeploy.export.request import load_request

    for name, _ in E.MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    req = load_request(small_net_path(NET), "tensorrt-fp16", tmp_path, progress=False)
    with pytest.raises(MissingExtraError, match=r"katadeploy\[tensorrt\]"):
        T.export(req)
    assert list(tmp_path.iterdir()) == []


def test_engine_of_a_missing_flavour_says_which(monkeypatch):
    for name, _ in E.MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(KatadeployError, match="built with tensorrt-rtx.*tensorrt-rtx-cu13"):
        E.load_tensorrt("tensorrt-rtx")
    with pytest.raises(MissingExtraError, match=r"built with tensorrt,.*katadeploy\[tensorrt\]"):
        E.load_tensorrt("tensorrt")
    with pytest.raises(KatadeployError, match="unknown TensorRT flavour"):
        E.load_tensorrt("tensorflow")


def test_stub_package_without_builder_is_not_tensorrt(monkeypatch):
    for name, _ in E.MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorrt", SimpleNamespace(__version__="11.4.0"))
    monkeypatch.delenv(E.FLAVOUR_ENV, raising=False)
    with pytest.raises(MissingExtraError, match="tensorrt: imported, but it has no Builder"):
        E.load_tensorrt()


# ---------------------------------------------------------------------------------------------- no GPU
@pytest.mark.skipif(_cuda(), reason="this machine has a CUDA GPU")
def test_no_gpu_is_a_clear_error():
    with pytest.raises(KatadeployError, match="needs an NVIDIA GPU"):
        E.gpu_info()


def test_device_names():
    assert E.device_index(None) is None
    assert E.device_index("cuda") is None
    assert E.device_index("cuda:1") == 1
    assert E.device_index(2) == 2
    with pytest.raises(KatadeployError, match="CUDA GPUs"):
        E.device_index("cpu")


def test_short_gpu_names():
    assert E.short_gpu_name("NVIDIA H100 80GB HBM3") == "H100"
    assert E.short_gpu_name("NVIDIA GeForce RTX 4090") == "RTX4090"
    assert E.short_gpu_name("NVIDIA A100-SXM4-80GB") == "A100"
    assert E.short_gpu_name("Tesla T4") == "T4"


# ------------------------------------------------------------------------------------------- profile/keys
def test_batch_profile():
    assert T.batch_profile(8) == (1, 8, 64)
    assert T.batch_profile(1, 1) == (1, 1, 1)
    assert T.batch_profile(128) == (1, 128, 128)  # max never below opt
    assert T.batch_profile(64, 256) == (1, 64, 256)
    for bad in ((0, None), (8, 0), (8, -3), (2.5, None), (True, None)):
        with pytest.raises(KatadeployError, match="positive integer"):
            T.batch_profile(*bad)


BASE = dict(
    flavour="tensorrt",
    version="10.13.0.35",
    gpu="NVIDIA H100 80GB HBM3",
    compute_capability="9.0",
    model_sha256="a" * 64,
    profile=(1, 8, 64),
)


def test_cache_key_is_stable_and_changes_with_every_component():
    key = E.cache_key(**BASE)
    assert key == E.cache_key(**dict(reversed(list(BASE.items()))))
    assert key == E.cache_key(**{**BASE, "profile": [1, 8, 64]})
    changed = {
        "flavour": "tensorrt-rtx",
        "version": "10.13.0.36",
        "gpu": "NVIDIA H100 PCIe",
        "compute_capability": "8.9",
        "model_sha256": "b" * 64,
        "profile": (1, 16, 64),
    }
    keys = {key}
    for field, value in changed.items():
        k = E.cache_key(**{**BASE, field: value})
        assert k != key, field
        keys.add(k)
    for p in ((2, 8, 64), (1, 8, 128)):
        keys.add(E.cache_key(**{**BASE, "profile": p}))
    keys.add(E.cache_key(**BASE, precision="int8"))
    keys.add(E.cache_key(**BASE, precision="fp16"))
    assert len(keys) == len(changed) + 5


def test_compute_capability_parsing():
    supported = ["SM75", "SM80", "SM86", "SM89", "SM120"]
    assert E.parse_compute_capabilities("sm_89, 8.6,SM89", supported) == ["SM89", "SM86"]
    assert E.parse_compute_capabilities(["120"], supported) == ["SM120"]
    with pytest.raises(KatadeployError, match="not a TensorRT-RTX target"):
        E.parse_compute_capabilities("SM90", supported)
    assert [E.sm_to_cc(s) for s in supported] == ["7.5", "8.0", "8.6", "8.9", "12.0"]


def _fake_lib(flavour: str) -> E.TensorRTLib:
    members = {m: i for i, m in enumerate(["NONE", "CURRENT", "SM75", "SM80", "SM86", "SM89", "SM120"])}
    module = SimpleNamespace(ComputeCapability=SimpleNamespace(__members__=members))
    return E.TensorRTLib(module, flavour, "1.7.1.116" if flavour == "tensorrt-rtx" else "10.13.0.35")


def _req(**options):
    return SimpleNamespace(batch=8, options=options)


def test_rtx_refuses_a_gpu_it_does_not_support_and_takes_explicit_targets():
    h100 = E.GpuInfo("NVIDIA H100 80GB HBM3", "9.0")
    rtx = _fake_lib("tensorrt-rtx")
    with pytest.raises(KatadeployError, match=r"does not support NVIDIA H100.*9\.0.*full TensorRT"):
        T.settings_from_options(rtx, _req(), h100)
    assert T.settings_from_options(rtx, _req(allow_unsupported_gpu=True), h100).targets == ["CURRENT"]
    ada = E.GpuInfo("NVIDIA GeForce RTX 4090", "8.9")
    s = T.settings_from_options(rtx, _req(max_batch=32, opt_level=5), ada)
    assert (s.targets, s.profile, s.opt_level) == (["CURRENT"], (1, 8, 32), 5)
    assert T.settings_from_options(rtx, _req(compute_capability="SM86,SM89"), None).targets == [
        "SM86",
        "SM89",
    ]
    with pytest.raises(KatadeployError, match="for TensorRT-RTX ahead-of-time builds"):
        T.settings_from_options(_fake_lib("tensorrt"), _req(compute_capability="SM89"), h100)
    with pytest.raises(KatadeployError, match="opt_level"):
        T.settings_from_options(_fake_lib("tensorrt"), _req(opt_level=9), h100)
    with pytest.raises(KatadeployError, match="workspace_mib"):
        T.settings_from_options(_fake_lib("tensorrt"), _req(workspace_mib="lots"), h100)


# ------------------------------------------------------------------------------------ runtime compat check
def _manifest(flavour="tensorrt", version="10.13.0.35", gpu="NVIDIA H100 80GB HBM3", ccs=("9.0",)):
    return ArtifactManifest(
        target="tensorrt-fp16",
        format="tensorrt",
        precision="fp16",
        artifact="net-tensorrt-fp16.engine",
        source={"name": "net", "file": "net.bin.gz", "sha256": "a" * 64},
        board={"nn_x": 19, "nn_y": 19, "exact": False},
        batch={"dynamic": True, "min": 1, "opt": 8, "max": 64},
        inputs=[TensorSpec("spatial", ["N", 22, 19, 19])],
        outputs=[TensorSpec("policy", ["N", 1, 19, 19])],
        details={
            "tensorrt": {"flavour": flavour, "version": version, "compute_capabilities": list(ccs)},
            "gpu": {"name": gpu, "compute_capability": ccs[0]} if gpu else None,
        },
    )


def _env(flavour="tensorrt", version="10.13.0.35", gpu="NVIDIA H100 80GB HBM3", cc="9.0"):
    return {"flavour": flavour, "version": version, "gpu": gpu, "compute_capability": cc}


def test_runtime_accepts_the_same_tensorrt_and_gpu():
    check_compatible(_manifest(), _env())


@pytest.mark.parametrize(
    "env, words",
    [
        (_env(version="10.14.1.48"), ["TensorRT 10.13.0.35", "TensorRT 10.14.1.48"]),
        (_env(flavour="tensorrt-rtx", version="1.7.1.116"), ["TensorRT-RTX 1.7.1.116"]),
        (_env(gpu="NVIDIA A100-SXM4-80GB", cc="8.0"), ["compute capability 9.0", "NVIDIA A100"]),
        (_env(gpu="NVIDIA H100 PCIe"), ["tuned on NVIDIA H100 80GB HBM3", "allow_other_gpu"]),
    ],
)
def test_runtime_refuses_an_engine_from_another_tensorrt_or_gpu(env, words):
    with pytest.raises(KatadeployError) as exc:
        check_compatible(_manifest(), env)
    msg = str(exc.value)
    assert "rebuild it here" in msg and "--target tensorrt-fp16" in msg and "GPU- and version-specific" in msg
    for w in words:
        assert w in msg


def test_runtime_other_gpu_of_the_same_kind_on_request_and_rtx_portability():
    check_compatible(_manifest(), _env(gpu="NVIDIA H100 PCIe"), allow_other_gpu=True)
    with pytest.raises(KatadeployError, match="compute capability 9.0"):
        check_compatible(_manifest(), _env(gpu="NVIDIA A100-SXM4-80GB", cc="8.0"), allow_other_gpu=True)
    rtx = _manifest("tensorrt-rtx", "1.7.1.116", gpu=None, ccs=("8.6", "8.9"))
    check_compatible(rtx, _env("tensorrt-rtx", "1.7.1.116", "NVIDIA GeForce RTX 4090", "8.9"))
    check_compatible(rtx, _env("tensorrt-rtx", "1.7.1.116", "NVIDIA RTX A6000", "8.6"))
    with pytest.raises(KatadeployError, match="compute capability 8.6, 8.9"):
        check_compatible(rtx, _env("tensorrt-rtx", "1.7.1.116", "NVIDIA GeForce RTX 5090", "12.0"))


def test_runtime_refuses_a_manifest_without_tensorrt_details():
    m = _manifest()
    m.details = {}
    with pytest.raises(KatadeployError, match="does not say which TensorRT built it"):
        check_compatible(m, _env())


# ----------------------------------------------------------------------------- real engines (TensorRT-RTX)
@pytest.mark.skipif(not HAVE_RTX, reason="needs the tensorrt_rtx package (TensorRT-RTX); not installed in CI")
def test_rtx_ahead_of_time_build_without_gpu(tmp_path, monkeypatch):
    """TensorRT-RTX builds engines for explicit compute capabilities on a CPU-only machine."""
    from katadeploy.export.request import export_artifact

    monkeypatch.setenv("KATADEPLOY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(E.FLAVOUR_ENV, "tensorrt-rtx")
    opts = {"compute_capability": "SM86,SM89", "max_batch": 32}
    path = export_artifact(
        small_net_path(NET), "tensorrt-fp16", tmp_path, batch=4, progress=False, options=opts
    )
    m = json.loads((tmp_path / (path.name + ".json")).read_text())
    assert path.stat().st_size > 1_000_000  # a 6-block x 96 net's weights alone are ~2 MB in FP16
    assert m["format"] == "tensorrt" and m["batch"] == {"dynamic": True, "min": 1, "opt": 4, "max": 32}
    trt = m["details"]["tensorrt"]
    assert trt["flavour"] == "tensorrt-rtx" and trt["compute_capabilities"] == ["8.6", "8.9"]
    assert m["details"]["builder"]["engine_cache_hit"] is False
    again = export_artifact(
        small_net_path(NET), "tensorrt-fp16", tmp_path, batch=4, progress=False, options=opts
    )
    m2 = json.loads((tmp_path / (again.name + ".json")).read_text())
    assert m2["details"]["builder"]["engine_cache_hit"] is True
    assert again.read_bytes() == path.read_bytes()


# ------------------------------------------------------------------------------ real engines (GPU needed)
@pytest.fixture(scope="module")
def vset_and_ref():
    from katadeploy.model.format import load_model
    from katadeploy.runtime.torch_runtime import TorchEvaluator
    from katadeploy.validate.positions import evaluate, load_validation_set

    model = load_model(small_net_path(NET))
    vset = load_validation_set(None, model)
    ref = evaluate(TorchEvaluator(model), vset, batch=16, progress=False)
    return model, vset, ref


@needs_trt_gpu
@pytest.mark.parametrize("target", ["tensorrt-fp16", "tensorrt-int8"])
def test_engine_matches_the_torch_reference(target, tmp_path, vset_and_ref):
    from katadeploy.export.request import export_artifact
    from katadeploy.runtime.loader import open_evaluator
    from katadeploy.validate.metrics import compare
    from katadeploy.validate.positions import evaluate

    model, vset, ref = vset_and_ref
    path = export_artifact(small_net_path(NET), target, tmp_path, batch=8, progress=False)
    ev = open_evaluator(path)
    assert ev.name.startswith(target + "-")
    test = evaluate(ev, vset, batch=len(vset), progress=False)  # 80 > profile max 64: chunked
    metrics = compare(
        ref,
        test,
        vset.legal,
        model,
        test_scale=ev.output_scale,
        no_result_allowed=vset.no_result_allowed,
        on_board=vset.on_board,
    )
    precision = target.rsplit("-", 1)[1]
    assert metrics.passed(precision), metrics.to_json(precision)


# ------------------------------------------------------------------------------------------- INT8 biases
def test_int32_bias_dequantize_becomes_the_same_float_bias(tmp_path):
    """onnxruntime's QDQ quantizer stores Conv biases as INT32 + DequantizeLinear, which TensorRT's parser
    rejects; float_biases folds them into float constants without changing the graph's outputs."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    oc, ic = 4, 3
    w_scale = rng.uniform(0.01, 0.05, oc).astype(np.float32)
    b_scale = (w_scale * 0.02).astype(np.float32)
    inits = [
        numpy_helper.from_array(rng.integers(-127, 128, (oc, ic, 3, 3)).astype(np.int8), "w_q"),
        numpy_helper.from_array(w_scale, "w_scale"),
        numpy_helper.from_array(np.zeros(oc, np.int8), "w_zp"),
        numpy_helper.from_array(rng.integers(-5000, 5000, oc).astype(np.int32), "b_q"),
        numpy_helper.from_array(b_scale, "b_scale"),
        numpy_helper.from_array(np.zeros(oc, np.int32), "b_zp"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], axis=0),
        helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zp"], ["b"], axis=0),
        helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, ic, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, oc, 5, 5])],
        inits,
    )
    path = tmp_path / "qdq.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    x = rng.standard_normal((1, ic, 5, 5)).astype(np.float32)
    before = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    assert T.float_biases(path) == 1
    after_model = onnx.load(str(path))
    assert [n.op_type for n in after_model.graph.node] == ["DequantizeLinear", "Conv"]
    names = {t.name: t for t in after_model.graph.initializer}
    assert "b_q" not in names and names["b"].data_type == TensorProto.FLOAT
    expected = numpy_helper.to_array(inits[3]).astype(np.float64) * b_scale.astype(np.float64)
    np.testing.assert_allclose(numpy_helper.to_array(names["b"]), expected, rtol=1e-7)
    after = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)
    assert T.float_biases(path) == 0  # nothing left to fold
