"""ONNX artifacts of the three real full-size nets (slow): FP32 against KataGo's goldens, FP16 and INT8 against
KataGo's FP16 ``testgpuerror`` limits (PyTorch FP32 reference) on the 80 oracle positions.

Kept lean: one masked 19x19 artifact per precision, and INT8 calibrated on a small slice of the bundled
calibration data (its method choice still runs all three methods).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from katadeploy.export.request import export_artifact
from katadeploy.go.position import load_positions
from katadeploy.hashing import sha256_file
from katadeploy.model.format import load_model
from katadeploy.runtime.loader import open_evaluator
from katadeploy.runtime.torch_runtime import TorchEvaluator
from katadeploy.validate.metrics import compare
from katadeploy.validate.positions import load_validation_set
from tests.conftest import REAL_NETS, real_net_path
from tests.export.artifacts import int8_known_failure
from tests.export.test_onnx import INT8_KNOWN_FAILURE, POSITIONS, assert_within_gates, golden_errors

INT8_OPTIONS = {  # plain PTQ (range methods, s8, no fallback): the cheap regression of the real nets
    "calib_positions": 32, "val_positions": 16, "int8_methods": "minmax,percentile,entropy",
    "int8_activations": "s8", "mixed_precision": False, "int8_gpool_float": False,
}


#: the range method pinned where the three methods' validation scores are within noise of each other, so that the
#: regression measures one recipe, not a coin flip. b10c384h6nbttflrs on the 16 validation positions: minmax 21.5,
#: percentile 22.9 (entropy 1550). The pick flips with the CPU's float rounding: an Intel Xeon (AVX-512 VNNI) measured
#: 53.5x on the oracle; an AMD EPYC Zen 3 (AVX2) picked minmax, 133x, where percentile measures 71.1x (2026-12-06)
INT8_METHOD = {"b10c384h6nbttflrs": "percentile"}


def _metrics(stem, model_path, model, sha, target, out, vs, ref):
    options = None
    if target == "onnx-int8":
        options = {**INT8_OPTIONS, **({"int8_methods": INT8_METHOD[stem]} if stem in INT8_METHOD else {})}
    path = export_artifact(model_path, target, out, progress=False, options=options)
    test = open_evaluator(path, model=model, model_sha256=sha, threads=2).evaluate(vs.spatial, vs.global_)
    metrics = compare(
        ref, test, vs.legal, model, no_result_allowed=vs.no_result_allowed, on_board=vs.on_board
    )
    return path, metrics


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    cache = {}

    def get(stem):
        if stem not in cache:
            model_path = real_net_path(stem)
            model = load_model(model_path)
            vs = load_validation_set(None, model)
            ref = TorchEvaluator(model, threads=2).evaluate(vs.spatial, vs.global_)
            cache[stem] = (model_path, model, sha256_file(model_path), vs, ref, tmp_path_factory.mktemp(stem))
        return cache[stem]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(REAL_NETS))
def test_real_net_onnx_fp32_matches_katago_and_fp16_passes(stem, real):
    model_path, model, sha, vs, ref, out = real(stem)
    fp32 = export_artifact(model_path, "onnx-fp32", out, progress=False)
    ev = open_evaluator(fp32, model=model, model_sha256=sha, threads=2)
    assert_within_gates(golden_errors(stem, ev, model, load_positions(POSITIONS)))
    _, metrics = _metrics(stem, model_path, model, sha, "onnx-fp16", out, vs, ref)
    assert metrics.passed("fp16"), json.dumps(metrics.to_json("fp16")["worst"])


#: measured 2026-12-03 with onnx-int8's default calibration of every board size (policy KL over KataGo's FP16
#: limit): 58.3x kata1-b18c384nbt (p99), 57.0x g170e-b15c192 (max), 89.7x b10c384h6nbttflrs (p99; 42.9x with the
#: old 19x19-only set, 271x / 221x for the ResNets). With random-play positions in that set (2026-12-03, later):
#: 31.7x (max), 21.1x (p99), 53.5x (p99); regression ceilings at about 1.5x that. On an AMD EPYC Zen 3 (AVX2, no
#: VNNI; onnxruntime running u8 weight codes there, katadeploy.runtime.qdq_weights), 2026-12-06: b18 44.0x
#: (percentile chosen), b15 17.5x (minmax chosen), b10 71.1x (percentile, pinned: INT8_METHOD)
REAL_INT8_CEILING = {"kata1-b18c384nbt": 48.0, "g170e-b15c192": 32.0, "b10c384h6nbttflrs": 80.0}


@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(REAL_NETS))
def test_real_net_onnx_int8_is_built_and_reports_its_float_layers(stem, real):
    """The INT8 artifact exists for every real net and its manifest says what stayed float and how it was chosen."""
    model_path, model, sha, vs, ref, out = real(stem)
    path, metrics = _metrics(stem, model_path, model, sha, "onnx-int8", out, vs, ref)
    details = json.loads(Path(str(path) + ".json").read_text())["details"]["int8"]
    assert details["method"] in ("minmax", "percentile", "entropy")
    assert details["float_nodes"], details.keys()
    int8_known_failure(metrics, REAL_INT8_CEILING[stem], INT8_KNOWN_FAILURE)
