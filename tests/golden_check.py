"""Shared check of an evaluator's raw outputs against KataGo's golden ``kata-raw-nn`` outputs (``shared/oracle``).

Contract: :func:`golden_errors` runs ``states`` through ``evaluator`` on the ``kata-raw-nn`` path, asserts the
illegal-move sets, ``noResult`` and the short-term/selfplay heads agree with the goldens, that every position
was evaluated (and with ``all_golden=True`` that every golden position was), and returns the worst absolute
error of winrate, lead, policy and ownership; :func:`assert_within_gates` holds that against :data:`GATES`
(the FP32 conversion tolerances, KataGo's own numbers).
"""

from __future__ import annotations

from typing import Any

import pytest

from katadeploy.runtime.rawnn import raw_nn
from tests.conftest import load_golden

GATES = {"winloss": 1e-4, "lead": 5e-3, "policy": 1e-4, "ownership": 1e-3}


def golden_errors(
    stem: str, evaluator: Any, model: Any, states: list, *, all_golden: bool = False, size: int = 19
) -> dict[str, float]:
    golden = load_golden(stem)
    worst = dict.fromkeys(("whiteWin", "whiteLoss", "whiteLead", "policy", "ownership"), 0.0)
    seen = set()
    for state, raw in raw_nn(evaluator, model, states, nn_x=size, nn_y=size):
        g = golden[state.id]
        seen.add(state.id)
        for key in ("whiteWin", "whiteLoss", "whiteLead"):
            worst[key] = max(worst[key], abs(raw[key] - g[key]))
        ours, theirs = raw["policy"] + [raw["policyPass"]], g["policy"] + [g["policyPass"]]
        assert [p is None for p in ours] == [p is None for p in theirs], (
            f"{state.id}: illegal-move sets differ"
        )
        worst["policy"] = max(worst["policy"], max(abs(a - b) for a, b in zip(ours, theirs) if a is not None))
        worst["ownership"] = max(
            worst["ownership"], max(abs(a - b) for a, b in zip(raw["whiteOwnership"], g["whiteOwnership"]))
        )
        assert raw["noResult"] == pytest.approx(g["noResult"], abs=1e-4)
        for key in ("varTimeLeft", "shorttermWinlossError", "shorttermScoreError", "whiteScoreSelfplay"):
            assert raw[key] == pytest.approx(g[key], abs=5e-3), (state.id, key)
    assert seen == {s.id for s in states}, "every position must be evaluated"
    if all_golden:
        assert seen == set(golden), "every golden position must be evaluated"
    return worst


def assert_within_gates(worst: dict[str, float]) -> None:
    assert worst["whiteWin"] <= GATES["winloss"] and worst["whiteLoss"] <= GATES["winloss"], worst
    assert worst["whiteLead"] <= GATES["lead"], worst
    assert worst["policy"] <= GATES["policy"], worst
    assert worst["ownership"] <= GATES["ownership"], worst
