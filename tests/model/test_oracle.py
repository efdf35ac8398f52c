"""raw-nn (torch, FP32) against KataGo v1.17.2 Eigen goldens: 80 positions x 6 nets.

The 20 random small-board positions (7x7, 9x9, 13x13) are evaluated in the default 19x19 tensor with masking,
while KataGo evaluated them on an exact-size tensor: agreement also proves the masking.
"""

from __future__ import annotations

import pytest

from katadeploy.go.position import load_positions
from katadeploy.model.format import load_model
from katadeploy.runtime.rawnn import raw_nn
from katadeploy.runtime.torch_runtime import TorchEvaluator
from tests.conftest import REAL_NETS, SHARED, SMALL_NETS, load_golden, real_net_path, small_net_path
from tests.golden_check import GATES, assert_within_gates, golden_errors, raw_errors

POSITIONS = SHARED / "oracle" / "positions.jsonl"

# Acceptance gates: tests.golden_check.GATES (goldens are printed to 6 decimals for probabilities, 3 for scores)


def compare(stem: str, model_path) -> dict:
    states = load_positions(POSITIONS)
    model = load_model(model_path)
    worst = golden_errors(stem, TorchEvaluator(model), model, states, all_golden=True)
    assert_within_gates(worst)
    return worst


@pytest.mark.parametrize("stem", sorted(SMALL_NETS))
def test_small_nets_match_katago(stem):
    compare(stem, small_net_path(stem))


@pytest.mark.slow
@pytest.mark.parametrize("stem", sorted(REAL_NETS))
def test_real_nets_match_katago(stem):
    compare(stem, real_net_path(stem))


class _NoMaskEvaluator(TorchEvaluator):
    """The exact-board variant (KataGo's requireExactNNLen): no mask ops at all."""

    def __init__(self, model):
        super().__init__(model)
        from katadeploy.model.net import KataGoNet

        self.net = KataGoNet(model, use_mask=False).eval()


@pytest.mark.parametrize("stem", ["g170-b6c96-s175395328-d26788732", "b7c96h3tfrs-test5-cnorm"])
def test_exact_tensor_modes_match_katago(stem):
    """Boards evaluated on a tensor of their own size (as KataGo's GTP did for the goldens): 9x9 positions on a 9x9
    tensor, and 19x19 positions through the mask-free graph."""
    model = load_model(small_net_path(stem))
    golden = load_golden(stem)
    states = load_positions(POSITIONS)
    cases = [
        (TorchEvaluator(model), [s for s in states if s.x_size == 9], 9),
        (_NoMaskEvaluator(model), [s for s in states if s.x_size == 19][:12], 19),
    ]
    for evaluator, subset, size in cases:
        assert subset
        for state, raw in raw_nn(evaluator, model, subset, nn_x=size, nn_y=size):
            err = raw_errors(raw, golden[state.id], state.id)
            assert err["whiteWin"] <= GATES["winloss"], state.id
            assert err["whiteLead"] <= GATES["lead"], state.id
            assert err["policy"] <= GATES["policy"], (state.id, err["policy"])
