"""CandidateScorer: the exporters' candidate score, and its per-board-size statistics (``per_board``)."""

from __future__ import annotations

import numpy as np
import pytest

from katadeploy.model.format import load_model
from katadeploy.runtime.base import RawBatch
from katadeploy.runtime.torch_runtime import TorchEvaluator
from katadeploy.validate.metrics import REDUCED_LIMITS, compare, error_energy
from katadeploy.validate.positions import ValidationSet, evaluate, load_validation_set
from katadeploy.validate.scoring import CandidateScorer
from tests.conftest import small_net_path


class _Shifted:
    """The reference outputs, with the win logit of the positions ``rows`` shifted by ``delta``."""

    name = "shifted"
    output_scale = 1.0

    def __init__(self, ref: RawBatch, rows: list[int], delta: float):
        self.value = ref.value.copy()
        self.value[rows, 0] += delta
        self.ref, self.at = ref, 0

    def evaluate(self, spatial, global_, meta=None):
        sl = slice(self.at, self.at + len(spatial))
        self.at += len(spatial)
        return RawBatch(self.ref.policy[sl], self.ref.policy_pass[sl], self.value[sl], self.ref.score[sl],
                        self.ref.ownership[sl])  # fmt: skip


@pytest.fixture(scope="module")
def tripled():
    """The 80 bundled positions three times over (240: the whole set's p99 is its 4th-largest error, a board
    size's own p99 its 2nd-largest) and the torch reference outputs."""
    model = load_model(small_net_path("g170-b6c96-s175395328-d26788732"))
    one = load_validation_set(None, model)
    idx = np.tile(np.arange(len(one)), 3)
    vset: ValidationSet = one.subset(idx)
    ref = evaluate(TorchEvaluator(model), vset, 16, progress=False)
    return model, vset, ref


def test_per_board_catches_errors_that_the_whole_sets_p99_forgives(tripled):
    model, vset, ref = tripled
    area = vset.on_board.reshape(len(vset), -1).sum(axis=1)
    group = np.flatnonzero(area[:80] == 81)
    nine = int(group[np.argmin(np.abs(ref.value[group, 0] - ref.value[group, 1]))])  # the most open 9x9 game
    rows = [nine, nine + 80]  # two positions of the 9x9 group (one position and its copy)
    limit = REDUCED_LIMITS.limit("winrate", "p99")
    for delta in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0):  # a winrate error between the p99 and the max limits
        err = compare(ref, _Shifted(ref, rows, delta).evaluate(vset.spatial, vset.global_), vset.legal, model,
                      no_result_allowed=vset.no_result_allowed).errors["winrate"]  # fmt: skip
        if limit < err[-1] < REDUCED_LIMITS.limit("winrate", "max"):
            break
    else:
        pytest.fail("no shift gave a winrate error between the p99 and max limits")
    whole = CandidateScorer(vset, ref, model, "int8")
    per_board = CandidateScorer(vset, ref, model, "int8", per_board=True)
    loss, metrics = whole.score(_Shifted(ref, rows, delta))
    assert metrics.n == len(vset) and metrics.passed("int8")
    loss_b, metrics_b = per_board.score(_Shifted(ref, rows, delta))
    assert metrics_b.n == int((area == 81).sum()) and not metrics_b.passed("int8")
    assert metrics_b.worst("int8").metric == "winrate" and loss_b > loss
    # the error energy (the energy fallback's ranking) reads the whole set, not the worst board size
    assert metrics_b.overall is not None and metrics_b.overall.n == len(vset)
    assert error_energy(metrics_b, "int8") == pytest.approx(error_energy(metrics, "int8"))
    # the reference itself scores 0 either way
    assert per_board.score(_Shifted(ref, rows, 0.0))[0] == 0.0


def test_a_sample_keeps_every_board_size_and_scores_its_own_positions(tripled):
    """The cheap ranking scorer: evenly spaced positions (every board size keeps a share), the matching reference
    rows (a shift on an unsampled position is invisible to it, one on a sampled position is seen)."""
    model, vset, ref = tripled
    whole = CandidateScorer(vset, ref, model, "int8")
    assert whole.sample(0) is whole and whole.sample(len(vset)) is whole
    part = whole.sample(60)
    assert len(part) == 60
    area = lambda v: set(v.on_board.reshape(len(v), -1).sum(axis=1).tolist())  # noqa: E731
    assert area(part.vset) == area(vset)
    index = np.linspace(0, len(vset) - 1, 60).round().astype(int)
    assert part.vset.ids == [vset.ids[i] for i in index]
    assert np.array_equal(part.reference.value, ref.value[index])
    assert part.score(_Shifted(part.reference, [], 0.0))[0] == 0.0
    worse = part.score(_Shifted(part.reference, [0, 1, 2], 1.0))
    assert worse[0] > 0.0 and not worse[1].passed("int8")
