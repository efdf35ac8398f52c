"""KataGo testgpuerror metrics on hand-built raw outputs whose errors are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from katadeploy.model.format import load_model
from katadeploy.runtime.base import RawBatch
from katadeploy.validate.metrics import (
    COMFORT,
    FP32_LIMITS,
    REDUCED_LIMITS,
    Metrics,
    compare,
    error_energy,
    katago_percentile,
    limits_for,
    selection_loss,
)
from tests.conftest import small_net_path

H = W = 5


@pytest.fixture(scope="module")
def v8():
    return load_model(small_net_path("g170-b6c96-s175395328-d26788732"))


@pytest.fixture(scope="module")
def v17():
    return load_model(small_net_path("b7c96h3tfrs-test5-cnorm"))


def _batch(model, n: int, seed: int = 0) -> RawBatch:
    rng = np.random.default_rng(seed)
    p = model.num_policy_channels
    f = np.float32
    return RawBatch(
        rng.normal(0, 2, (n, p, H, W)).astype(f),
        rng.normal(0, 2, (n, p)).astype(f),
        rng.normal(0, 1, (n, 3)).astype(f),
        rng.normal(0, 0.3, (n, model.num_score_channels)).astype(f),
        rng.normal(0, 0.5, (n, 1, H, W)).astype(f),
    )


def _legal(n: int, seed: int = 1) -> np.ndarray:
    legal = np.random.default_rng(seed).random((n, H * W + 1)) < 0.7
    legal[:, -1] = True
    return legal


def _with(raw: RawBatch, **fields) -> RawBatch:
    return raw._replace(**{k: np.asarray(v, dtype=np.float32) for k, v in fields.items()})


def test_identical_outputs_give_zero_errors_and_pass(v17):
    raw = _batch(v17, 12)
    m = compare(raw, raw, _legal(12), v17)
    assert m.n == 12 and m.top1 == 1.0
    assert set(m.metrics) == {"winrate", "lead", "score_mean", "score_stdev", "top_policy", "policy_kl",
                              "st_winloss", "st_score", "ownership"}  # fmt: skip
    for name in m.metrics:
        assert m.stats[name]["max"] == 0.0, name
    assert m.passed("fp32") and selection_loss(m, "fp32") == 0.0


def test_v8_net_has_no_short_term_error_metrics(v8):
    raw = _batch(v8, 4)
    assert "st_winloss" not in compare(raw, raw, _legal(4), v8).metrics


@pytest.mark.parametrize("test_scale", [1.0, 8.0])
def test_value_shift_gives_known_winrate_error(v8, test_scale):
    n = 10
    ref = _with(_batch(v8, n), value=np.zeros((n, 3)))  # W = L: winrate 0
    d = np.linspace(0.0, 0.2, n)  # win logit raised by d: 0.5*(W-L) = 0.5*tanh(d/2) with no-result disallowed
    test = _with(ref, value=np.stack([d, np.zeros(n), np.zeros(n)], axis=1))
    test = RawBatch(
        *(x / np.float32(test_scale) for x in test)
    )  # an artifact with KataGo's output scale baked in
    m = compare(ref, test, _legal(n), v8, test_scale=test_scale, no_result_allowed=False)
    want = np.sort(0.5 * np.abs(np.tanh(d / 2)))
    np.testing.assert_allclose(m.errors["winrate"], want, atol=2e-7)
    assert m.stats["winrate"]["max"] == pytest.approx(0.5 * math.tanh(0.1), abs=1e-7)
    assert m.stats["lead"]["max"] == 0.0 and m.stats["policy_kl"]["max"] == 0.0


def test_no_result_difference_counts_when_allowed(v8):
    n = 3
    ref = _with(_batch(v8, n), value=np.zeros((n, 3)))
    test = _with(ref, value=np.tile([0.0, 0.0, 1.0], (n, 1)))
    on = compare(ref, test, _legal(n), v8, no_result_allowed=True)
    off = compare(ref, test, _legal(n), v8, no_result_allowed=False)
    e = math.e
    # allowed: W = L = 1/(2+e), N = e/(2+e) vs all 1/3; winrate term 0, no-result term |N - 1/3|
    assert on.stats["winrate"]["max"] == pytest.approx(abs(e / (2 + e) - 1 / 3), abs=1e-6)
    assert off.stats["winrate"]["max"] == 0.0


def test_lead_shift_gives_known_lead_error(v8):
    n = 6
    ref = _batch(v8, n)
    lead_mult = v8.multipliers[3]
    test = _with(ref, score=ref.score + np.array([0, 0, 0.5 / lead_mult, 0], dtype=np.float32))
    m = compare(ref, test, _legal(n), v8, no_result_allowed=False)
    np.testing.assert_allclose(m.errors["lead"], 0.5, rtol=1e-5)
    assert m.stats["score_mean"]["max"] == 0.0


def _softmax(z: np.ndarray, legal: np.ndarray) -> np.ndarray:
    z = np.where(legal, z.astype(np.float64), -np.inf)
    e = np.exp(z - z.max())
    return e / e.sum()


def test_policy_kl_and_top_policy_delta_match_an_independent_computation(v8):
    n = 8
    ref, test = _batch(v8, n, seed=3), _batch(v8, n, seed=3)
    test = _with(test, policy=test.policy + np.random.default_rng(9).normal(0, 0.3, test.policy.shape))
    legal = _legal(n)
    m = compare(ref, test, legal, v8)
    kls, tops, agree = [], [], 0
    for i in range(n):
        p = _softmax(np.append(ref.policy[i, 0].ravel(), ref.policy_pass[i, 0]), legal[i])
        q = _softmax(np.append(test.policy[i, 0].ravel(), test.policy_pass[i, 0]), legal[i])
        kls.append(sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0))
        top = int(np.argmax(p))
        tops.append(abs(p[top] - q[top]))
        agree += int(np.argmax(q)) == top
    np.testing.assert_allclose(m.errors["policy_kl"], np.sort(kls), rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(m.errors["top_policy"], np.sort(tops), atol=1e-6)
    assert m.top1 == agree / n
    assert min(kls) > 0


def test_ownership_counts_on_board_points_only(v8):
    n = 2
    ref = _with(_batch(v8, n), ownership=np.zeros((n, 1, H, W)))
    own = np.full((n, 1, H, W), math.atanh(0.1))
    own[:, :, 3:, :] = 5.0  # rows 3-4 are off the board: huge error there must not count
    test = _with(ref, ownership=own)
    on_board = np.zeros((n, H, W), dtype=bool)
    on_board[:, :3, :] = True
    m = compare(ref, test, _legal(n), v8, on_board=on_board)
    assert len(m.errors["ownership"]) == n * 3 * W
    np.testing.assert_allclose(m.errors["ownership"], 0.1, atol=1e-6)
    whole = compare(ref, test, _legal(n), v8)
    assert whole.stats["ownership"]["max"] == pytest.approx(math.tanh(5.0), abs=1e-6)


def test_percentiles_are_katagos_order_statistics():
    errs = np.arange(100, dtype=np.float64)
    assert katago_percentile(errs, "p90") == 89.0  # sorted[(100-1)*9//10]
    assert katago_percentile(errs, "p99") == 98.0  # sorted[(100-1)*99//100]
    assert katago_percentile(errs, "max") == 99.0
    assert katago_percentile(errs, "avg") == 49.5
    assert katago_percentile(np.arange(10.0), "p99") == 8.0  # (10-1)*99//100 = 8: not the max


def test_limits_are_katagos():
    # cpp/tests/testnnevalcanary.cpp, Tests::runBackendErrorTest
    assert FP32_LIMITS.p99 == (0.45, 0.34, 0.45, 0.0006) and FP32_LIMITS.max == (1.35, 0.9, 1.35, 0.0012)
    assert REDUCED_LIMITS.p99 == (2.0, 1.0, 2.5, 0.002) and REDUCED_LIMITS.max == (5.0, 3.0, 6.0, 0.004)
    assert limits_for("fp16") is limits_for("int8") is limits_for("w8") is REDUCED_LIMITS
    assert limits_for("fp32").limit("winrate", "p99") == pytest.approx(0.0045)
    assert limits_for("fp16").limit("score_stdev", "p99") == pytest.approx(0.6)
    assert limits_for("fp16").limit("ownership", "p99") == pytest.approx(0.035)
    assert limits_for("fp16").limit("ownership", "max") == pytest.approx(0.20)
    assert limits_for("fp32").limit("st_winloss", "max") == pytest.approx(1.35 * 1.8 / 100)
    with pytest.raises(ValueError):
        limits_for("fp8")


def test_verdicts_and_selection_loss_follow_the_worst_ratio(v8):
    n = 100
    ref = _with(_batch(v8, n), value=np.zeros((n, 3)))

    def shifted(err: float):
        d = 2 * math.atanh(2 * err)  # 0.5*tanh(d/2) = err
        test = _with(ref, value=np.tile([d, 0.0, 0.0], (n, 1)))
        return compare(ref, test, _legal(n), v8, no_result_allowed=False)

    small, mid, big = shifted(0.006), shifted(0.015), shifted(0.03)
    assert selection_loss(small, "fp16") == 0.0  # 0.3x of the 2% p99 limit: comfortably inside
    assert small.passed("fp16") and not small.passed("fp32")  # 0.6% is over FP32's 0.45%
    assert small.worst("fp32").metric == "winrate"
    assert mid.passed("fp16") and selection_loss(mid, "fp16") == pytest.approx(0.75 - COMFORT, abs=1e-4)
    assert not big.passed("fp16")
    failed = {(v.metric, v.stat) for v in big.verdicts("fp16") if not v.passed}
    assert failed == {("winrate", "p99")}  # 3% > 2% p99 limit, < 5% max limit
    assert selection_loss(big, "fp16") == pytest.approx(1.5 - COMFORT, abs=1e-4)
    assert selection_loss(big, "fp16") > selection_loss(mid, "fp16") > selection_loss(small, "fp16")


def test_error_energy_is_the_mean_square_in_p99_limits_and_adds_over_independent_noise():
    m = Metrics(2, {"policy_kl": np.array([0.001, 0.003]), "winrate": np.array([0.02, 0.0])}, 1.0)
    # KL: mean 0.002 / 0.002 = 1 (linear: KL is already quadratic); winrate: mean((0.02/0.02)^2, 0) = 0.5
    assert error_energy(m, "int8") == pytest.approx(1.5)
    assert error_energy(m, "fp32") == pytest.approx(0.002 / 0.0006 + 0.5 * (0.02 / 0.0045) ** 2)
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.01, 100_000), rng.normal(0, 0.005, 100_000)  # two independent error sources

    def energy(err):
        return error_energy(Metrics(err.size, {"winrate": np.abs(err)}, 1.0), "int8")

    assert energy(a + b) == pytest.approx(energy(a) + energy(b), rel=0.02)
    assert error_energy(Metrics(2, {"lead": np.array([0.1, np.inf])}, 1.0), "int8") == math.inf


def test_non_finite_outputs_fail(v8):
    n = 4
    ref = _batch(v8, n)
    bad = ref.value.copy()
    bad[1, 0] = np.nan
    m = compare(ref, _with(ref, value=bad), _legal(n), v8)
    assert not m.passed("fp16") and selection_loss(m, "fp16") == math.inf


def test_shape_mismatch_is_refused(v8):
    ref = _batch(v8, 3)
    with pytest.raises(ValueError, match="legal mask"):
        compare(ref, ref, _legal(3)[:, :-1], v8)
    with pytest.raises(ValueError, match="differ in shape"):
        compare(ref, _batch(v8, 2), _legal(3), v8)
