"""Core ML artifacts, checked structurally (Core ML predictions need macOS, so no numbers are verified here).

- ``coreml-fp32`` / ``coreml-fp16`` / ``coreml-w8`` of a small net: float32 inputs/outputs with the manifest's names
  and shapes, float32-only compute in fp32, float16 compute in fp16 and w8, 8-bit ``constexpr`` weights for every
  large convolution/linear in w8, and the manifest carrying that structure;
- the transformer test net (RoPE, attention) converts;
- Mish: the exp form leaves no softplus/tanh and reproduces Mish in float32 and (op by op) in float16; the
  native form is coremltools' softplus + tanh; the exported program matches the net;
- loading a Core ML artifact for predictions on Linux gives the clear macOS error;
- slow: kata1-b18c384nbt (a Mish net) exports to ``coreml-fp16`` with the exp form.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from katadeploy.artifact import read_manifest
from katadeploy.errors import KatadeployError
from katadeploy.export import coreml as C
from katadeploy.export.request import export_artifact
from katadeploy.model.format import load_model
from katadeploy.model.synthetic import random_model
from katadeploy.model.writer import save_model
from katadeploy.runtime.coreml_runtime import inspect_mlpackage
from katadeploy.runtime.loader import open_evaluator
from tests.conftest import real_net_path, small_net_path
from tests.export.artifacts import (
    RESNET,
    TRANSFORMER,
    artifact_builder,
)

pytest.importorskip("coremltools")

OUTPUTS = ["policy", "policy_pass", "value", "score", "ownership"]
artifact = artifact_builder()


@pytest.fixture(scope="module")
def mish_net(tmp_path_factory) -> Path:
    model = random_model(14, "ordinary,gpool,nested(ordinary,ordinary)", 32, seed=3, name="synthetic-mish")
    return save_model(model, tmp_path_factory.mktemp("mishnet") / "synthetic-mish.bin.gz")


def details(path: Path) -> dict:
    return json.loads(Path(str(path) + ".json").read_text())["details"]


# ---------------------------------------------------------------------------------------------- structure
@pytest.mark.parametrize("precision", ["fp32", "fp16", "w8"])
def test_structure_per_precision(out_dir, precision):
    path = artifact(out_dir, small_net_path(RESNET), f"coreml-{precision}")
    assert path.is_dir() and path.suffix == ".mlpackage"
    s = inspect_mlpackage(path)
    assert s["verified"] is False and "not evidence" in s["note"]
    assert [(f["name"], f["shape"], f["dtype"]) for f in s["inputs"]] == [
        ("spatial", [8, 22, 19, 19], "float32"), ("global", [8, 19], "float32"),
    ]  # fmt: skip
    assert [(f["name"], f["dtype"]) for f in s["outputs"]] == [(n, "float32") for n in OUTPUTS]
    assert [f["shape"] for f in s["outputs"]] == [[8, 1, 19, 19], [8, 1], [8, 3], [8, 4], [8, 1, 19, 19]]
    ops = s["op_histogram"]
    assert ops["conv"] == 20 and ops["linear"] == 8  # stem + 6 blocks + heads, as in the net
    if precision == "fp32":
        assert s["fp32_compute_ops"] > 0 and s["fp16_compute_ops"] == 0
        assert "float16" not in s["const_tensors"] and not s["constexpr_ops"]
    else:
        assert s["fp16_compute_ops"] > 0 and s["fp32_compute_ops"] == 0
        assert ops.get("cast", 0) >= 7  # float32 in/out around a float16 body: 2 inputs + 5 outputs
    if precision == "w8":
        # every conv/linear weight of at least 2048 elements is int8 (the 3x3 trunk convs: 96*96*9 each)
        assert s["constexpr_ops"]["constexpr_affine_dequantize"] == {"quantized_data:int8": s["weights_8bit"]}
        assert s["weights_8bit"] == len(weights_at_least(load_model(small_net_path(RESNET)), 2048))
    m = read_manifest(path)
    assert (m.format, m.precision, m.batch) == ("coreml", precision, {"fixed": 8})
    assert details(path)["structure"] == s
    assert details(path)["compute_precision"] == ("float32" if precision == "fp32" else "float16")


def weights_at_least(model, elements: int) -> list[torch.nn.Module]:
    """The net's convolution/linear layers whose weight has at least ``elements`` entries."""
    from katadeploy.model.net import KataGoNet

    layers = (torch.nn.Conv2d, torch.nn.Linear)
    return [m for m in KataGoNet(model).modules() if isinstance(m, layers) and m.weight.numel() >= elements]


def test_transformer_net_converts(out_dir):
    path = artifact(out_dir, small_net_path(TRANSFORMER), "coreml-fp16")
    s = details(path)["structure"]
    assert s["op_histogram"]["softmax"] > 0 and s["op_histogram"]["matmul"] > 0
    assert s["fp16_compute_ops"] > 0
    assert max(details(path)["torch_export_check"]["max_abs_error_vs_torch_fp32"].values()) < 1e-4


# ---------------------------------------------------------------------------------------------- Mish
def test_exp_mish_equals_mish():
    x = torch.linspace(-30, 30, 600001, dtype=torch.float64)
    ref = F.mish(x)
    got = C.exp_mish(x.float()).double()
    rel = ((got - ref).abs() / ref.abs().clamp_min(1e-6)).max()
    assert float(rel) < 4e-5
    # float16, op by op: finite everywhere (the clamp keeps e * (e + 2) below 65504) and as close as native Mish
    h = torch.linspace(-60000, 60000, 200001).half()
    assert torch.isfinite(C.exp_mish(h)).all()
    xh = torch.linspace(-12, 12, 100001).half()
    exact = F.mish(xh.double())
    err_exp = (C.exp_mish(xh).double() - exact).abs().max()
    err_native = (xh * torch.tanh(F.softplus(xh))).double().sub(exact).abs().max()
    assert float(err_exp) <= 1.5 * float(err_native) + 1e-4


def test_mish_forms(out_dir, mish_net):
    exp = artifact(out_dir, mish_net, "coreml-fp16")
    native = artifact(out_dir, mish_net, "coreml-fp16", mish="native")
    d_exp, d_native = details(exp), details(native)
    n = d_exp["mish"]["activations"]
    assert d_exp["mish"]["form"] == "exp" and d_native["mish"]["form"] == "native" and n > 0
    ops_exp, ops_native = d_exp["structure"]["op_histogram"], d_native["structure"]["op_histogram"]
    assert "softplus" not in ops_exp and "tanh" not in ops_exp and ops_exp["exp"] == n
    assert ops_native["softplus"] == n and ops_native["tanh"] == n
    for d in (d_exp, d_native):
        assert max(d["torch_export_check"]["max_abs_error_vs_torch_fp32"].values()) < 1e-3
    fp32 = artifact(out_dir, mish_net, "coreml-fp32")
    assert details(fp32)["mish"]["form"] == "native"  # fp32 keeps coremltools' lowering by default
    with pytest.raises(KatadeployError, match="mish"):
        export_artifact(mish_net, "coreml-fp16", out_dir / "bad", progress=False, options={"mish": "tanh"})


def test_mish_swap_is_scoped():
    import katadeploy.model.net as N

    original = N._act
    with C.mish_form("exp") as count:
        assert N._act is not original
        x = torch.linspace(-3, 3, 7)
        torch.testing.assert_close(N._act("ACTIVATION_MISH", x), C.exp_mish(x))
        torch.testing.assert_close(N._act("ACTIVATION_RELU", x), F.relu(x))
        assert count == [1]
    assert N._act is original


# ---------------------------------------------------------------------------------------------- runtime
@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML predictions do run on macOS")
def test_load_on_linux_says_macos(out_dir):
    path = artifact(out_dir, small_net_path(RESNET), "coreml-fp16")
    with pytest.raises(KatadeployError, match="need macOS"):
        open_evaluator(path, model=load_model(small_net_path(RESNET)))


def test_inspect_errors(tmp_path):
    with pytest.raises(KatadeployError, match="no such"):
        inspect_mlpackage(tmp_path / "absent.mlpackage")
    junk = tmp_path / "junk.mlpackage"
    junk.mkdir()
    with pytest.raises(KatadeployError):
        inspect_mlpackage(junk)


# ---------------------------------------------------------------------------------------------- real net
@pytest.mark.slow
def test_real_mish_net_coreml_fp16(tmp_path):
    model_path = real_net_path("kata1-b18c384nbt")
    path = export_artifact(model_path, "coreml-fp16", tmp_path, progress=False)
    d = details(path)
    assert d["mish"]["form"] == "exp" and d["mish"]["activations"] > 100
    ops = d["structure"]["op_histogram"]
    assert "softplus" not in ops and ops["exp"] == d["mish"]["activations"]
    assert d["structure"]["fp16_compute_ops"] > 0 and d["structure"]["fp32_compute_ops"] == 0
    assert max(d["torch_export_check"]["max_abs_error_vs_torch_fp32"].values()) < 2e-2
    assert np.isfinite(list(d["torch_export_check"]["max_abs_error_vs_torch_fp32"].values())).all()
