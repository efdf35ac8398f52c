"""Shared check of an evaluator's raw outputs against KataGo's golden ``kata-raw-nn`` outputs (``shared/oracle``).

Contract: :func:`raw_errors` is the one comparison of two raw-output dicts (absolute errors per key, worst over
the board for policy and ownership, illegal-move sets asserted equal); :func:`golden_errors` runs ``states`` through ``evaluator`` on the ``kata-raw-nn`` path, asserts the
illegal-move sets, ``noResult`` and the short-term/selfplay heads agree with the goldens, that every position
was evaluated (and with ``all_golden=True`` that every golden position was), and returns the worst absolute
error of winrate, lead, policy and ownership; :func:`assert_within_gates` holds that against :data:`GATES`
(the FP32 conversion tolerances, KataGo's own numbers).
"""

from __future__ import annotations

from typing import Any

from katadeploy.runtime.rawnn import raw_nn
from tests.conftest import load_golden

GATES = {"winloss": 1e-4, "lead": 5e-3, "policy": 1e-4, "ownership": 1e-3}


def raw_errors(got: dict[str, Any], want: dict[str, Any], where: str = "") -> dict[str, float]:
    """The absolute errors of one ``kata-raw-nn`` dict against another (the one comparison of raw outputs in the
    suite): the worst over the board for ``policy`` (pass included) and ``ownership``, and per scalar key.
    Asserts the two agree on which moves are illegal."""
    ours, theirs = list(got["policy"]) + [got["policyPass"]], list(want["policy"]) + [want["policyPass"]]
    assert len(ours) == len(theirs), f"{where}: policy lengths differ"
    assert [p is None for p in ours] == [p is None for p in theirs], f"{where}: illegal-move sets differ"
    assert len(got["whiteOwnership"]) == len(want["whiteOwnership"]), f"{where}: ownership lengths differ"
    errors = {
        key: abs(got[key] - want[key])
        for key in want
        if key not in ("policy", "whiteOwnership") and key in got
    }
    errors["policy"] = max(abs(a - b) for a, b in zip(ours, theirs) if a is not None)
    errors["ownership"] = max(abs(a - b) for a, b in zip(got["whiteOwnership"], want["whiteOwnership"]))
    return errors


def golden_errors(
    stem: str, evaluator: Any, model: Any, states: list, *, all_golden: bool = False, size: int = 19
) -> dict[str, float]:
    golden = load_golden(stem)
    worst = dict.fromkeys(("whiteWin", "whiteLoss", "whiteLead", "policy", "ownership"), 0.0)
    seen = set()
    for state, raw in raw_nn(evaluator, model, states, nn_x=size, nn_y=size):
        g = golden[state.id]
        seen.add(state.id)
        err = raw_errors(raw, g, state.id)
        for key in worst:
            worst[key] = max(worst[key], err[key])
        assert err["noResult"] <= 1e-4, (state.id, "noResult")
        for key in ("varTimeLeft", "shorttermWinlossError", "shorttermScoreError", "whiteScoreSelfplay"):
            assert err[key] <= 5e-3, (state.id, key)
    assert seen == {s.id for s in states}, "every position must be evaluated"
    if all_golden:
        assert seen == set(golden), "every golden position must be evaluated"
    return worst


def assert_within_gates(worst: dict[str, float]) -> None:
    assert worst["whiteWin"] <= GATES["winloss"] and worst["whiteLoss"] <= GATES["winloss"], worst
    assert worst["whiteLead"] <= GATES["lead"], worst
    assert worst["policy"] <= GATES["policy"], worst
    assert worst["ownership"] <= GATES["ownership"], worst
