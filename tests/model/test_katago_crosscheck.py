"""The real KataGo (KaTrain's v1.18.1 OpenCL build, FP32) against our port.

1. KataGo loads nets that *we wrote* — a real net re-written as .txt.gz, and random synthetic nets covering the
   ResNet (v8), nested-bottleneck (v14) and transformer (v15/v17: learnable and fixed RoPE, GQA, RMSNorm tips)
   families — and its ``kata-raw-nn`` agrees with ours.
2. All 8 symmetries agree with KataGo's, on a 19x19 and on a 9x9 board in a 19x19 buffer.

Synthetic nets use the trunk widths of the small test nets so that KataGo's per-shape OpenCL tuning is reused.
"""

from __future__ import annotations

import json

import pytest

from katadeploy.go.position import position_from_query
from katadeploy.model.format import load_model
from katadeploy.model.synthetic import random_model
from katadeploy.model.writer import save_model
from katadeploy.runtime.rawnn import raw_nn
from katadeploy.runtime.torch_runtime import TorchEvaluator
from tests.conftest import SHARED, small_net_path

pytestmark = pytest.mark.katago

BUFFER_19 = {"maxBoardSizeForNNBuffer": 19, "requireMaxBoardSize": False}


def _positions() -> list[dict]:
    rows = [json.loads(l) for l in (SHARED / "oracle" / "positions.jsonl").read_text().splitlines()]
    full = [r for r in rows if r["boardXSize"] == 19][:3]
    small = [r for r in rows if r["boardXSize"] == 9][:1] + [r for r in rows if r["boardXSize"] == 13][:1]
    return full + small


def _ours(model_path, queries, symmetry=0):
    model = load_model(model_path)
    states = [position_from_query(q) for q in queries]
    return [r for _, r in raw_nn(TorchEvaluator(model), model, states, symmetry=symmetry)]


def assert_close(ours: dict, theirs: dict, what: str, policy_tol: float = 1e-4) -> None:
    for key in ("whiteWin", "whiteLoss", "noResult"):
        assert abs(ours[key] - theirs[key]) <= 1e-4, (what, key, ours[key], theirs[key])
    for key in ("whiteLead", "whiteScoreSelfplay"):
        assert abs(ours[key] - theirs[key]) <= 5e-3 + 1e-4 * abs(theirs[key]), (
            what,
            key,
            ours[key],
            theirs[key],
        )
    ours_p, theirs_p = ours["policy"] + [ours["policyPass"]], theirs["policy"] + [theirs["policyPass"]]
    assert [p is None for p in ours_p] == [p is None for p in theirs_p], (what, "illegal moves differ")
    dp = max(abs(a - b) for a, b in zip(ours_p, theirs_p) if a is not None)
    assert dp <= policy_tol, (what, "policy", dp)
    do = max(abs(a - b) for a, b in zip(ours["whiteOwnership"], theirs["whiteOwnership"]))
    assert do <= 1e-3, (what, "ownership", do)


@pytest.fixture(scope="module")
def gtp_factory(katago, katago_gtp_config):
    from katadeploy.engine.katago.gtp import GTPEngine

    def make(model_path):
        return GTPEngine(model_path, katago_gtp_config, binary=katago, overrides=BUFFER_19)

    return make


SYNTHETIC = {
    "resnet-v8": dict(version=8, blocks="ordinary,gpool,ordinary", channels=96, initial_kernel=5),
    "nbt-v14": dict(version=14, blocks="nested(ordinary,gpool),nested(ordinary,ordinary)", channels=96,
                    activation="ACTIVATION_MISH"),
    "transformer-v17-gqa-learnable": dict(
        version=17, blocks="attn:h6:kv3:q32:v16:rope=learn,ffn,attn:h6:kv3:q32:v16:rope=learn,ffn", channels=96,
        activation="ACTIVATION_SILU", tip="bn", mid_channels=96),
    "transformer-v17-fixed-rope": dict(
        version=17, blocks="attn:h3:q32:rope=fixed,ffn,attn:h3:q32:rope=fixed,ffn", channels=96,
        activation="ACTIVATION_SILU", tip="rms", mid_channels=96),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(SYNTHETIC))
def test_katago_loads_our_synthetic_nets_and_agrees(kind, gtp_factory, tmp_path):
    model = random_model(seed=7, name=f"synthetic-{kind}", **SYNTHETIC[kind])
    path = save_model(model, tmp_path / f"{kind}.bin.gz")
    queries = _positions()
    ours = _ours(path, queries)
    with gtp_factory(path) as engine:
        for q, mine in zip(queries, ours):
            assert_close(mine, engine.raw_nn(q, symmetry=0, optimism=0.0), f"{kind}:{q['id']}")


def test_katago_loads_a_real_net_we_rewrote_as_text(gtp_factory, tmp_path):
    src = small_net_path("g170-b6c96-s175395328-d26788732")
    path = save_model(load_model(src), tmp_path / "rewritten.txt.gz")
    queries = _positions()[:2]
    ours = _ours(path, queries)
    with gtp_factory(path) as engine:
        for q, mine in zip(queries, ours):
            assert_close(mine, engine.raw_nn(q), f"rewritten:{q['id']}")


def test_all_symmetries_agree_with_katago(gtp_factory):
    path = small_net_path("b7c96h6kv3qk32v16tflrs-fson-bnh")
    queries = [_positions()[0], _positions()[3]]  # 19x19, and 9x9 in a 19x19 buffer
    with gtp_factory(path) as engine:
        theirs = [engine.raw_nn(q, symmetry="all") for q in queries]
    for sym in range(8):
        for q, mine, their in zip(queries, _ours(path, queries, symmetry=sym), theirs):
            assert their[sym]["symmetry"] == sym
            assert_close(mine, their[sym], f"{q['id']} symmetry {sym}")
