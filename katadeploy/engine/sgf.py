"""Analysis queries from SGF game records: :mod:`katadeploy.go.sgf` wrapped into :class:`AnalysisQuery`.

Contract
--------
* :func:`query_from_sgf` accepts a path, SGF text/bytes or an ``sgfmill`` game; :func:`query_from_game` takes
  an ``sgfmill.sgf.Sgf_game``. Both return an :class:`~katadeploy.engine.protocol.AnalysisQuery` for the main
  line (leftmost variation), built from :func:`katadeploy.go.sgf.query_dict_from_game` (see there for how size,
  setup and handicap stones, moves, initial player, ``RU``, ``KM`` and ``turns`` are read; unknown rules and a
  history restarted at later setup stones issue an :class:`~katadeploy.go.sgf.SgfWarning`, also importable as
  ``katadeploy.engine.errors.SgfWarning``). Extra keyword arguments are :class:`AnalysisQuery` attributes.
* Unreadable SGF, rectangular or oversized boards, and moves that cannot be replayed raise
  :class:`~katadeploy.errors.PositionError`; bad ``turns`` raise it too.
* The SGF helpers (:func:`vertex`, :func:`normalize_komi`, :func:`rules_from_sgf`, :func:`select_turns`,
  :func:`fixed_handicap_points`) live in :mod:`katadeploy.go.sgf` and are re-exported here.
"""

from __future__ import annotations

import os
from typing import Any

from sgfmill import sgf

from katadeploy.engine.protocol import AnalysisQuery
from katadeploy.go.sgf import (
    TurnSelection,
    fixed_handicap_points,
    load_game,
    normalize_komi,
    query_dict_from_game,
    rules_from_sgf,
    select_turns,
    vertex,
)

__all__ = [
    "TurnSelection",
    "fixed_handicap_points",
    "normalize_komi",
    "query_from_game",
    "query_from_sgf",
    "rules_from_sgf",
    "select_turns",
    "vertex",
]


def query_from_sgf(source: str | bytes | os.PathLike[str] | sgf.Sgf_game, **options: Any) -> AnalysisQuery:
    """Query for the main line of an SGF file, SGF text/bytes or sgfmill game (see module contract).

    ``options`` are :func:`query_from_game`'s keywords (``turns``, ``rules``, ``default_rules``, ``komi``,
    ``default_komi``, ``query_id``) and :class:`AnalysisQuery` attributes (``max_visits=...``,
    ``include_policy=...``).
    """
    return query_from_game(load_game(source), **options)


#: the keywords :func:`katadeploy.go.sgf.query_dict_from_game` takes; every other keyword is an AnalysisQuery field
SGF_OPTIONS = ("turns", "rules", "default_rules", "komi", "default_komi", "query_id")


def query_from_game(game: sgf.Sgf_game, **options: Any) -> AnalysisQuery:
    """Query for the main line of an sgfmill game (see module contract): ``turns``, ``rules``,
    ``default_rules``, ``komi``, ``default_komi`` and ``query_id`` as in
    :func:`katadeploy.go.sgf.query_dict_from_game`; other keywords are :class:`AnalysisQuery` attributes."""
    sgf_options = {k: options.pop(k) for k in SGF_OPTIONS if k in options}
    fields = options
    wire = query_dict_from_game(game, stacklevel=3, **sgf_options)
    return AnalysisQuery(
        id=wire.get("id"),
        moves=wire["moves"],
        initial_stones=wire.get("initialStones"),
        initial_player=wire["initialPlayer"],
        rules=wire.get("rules"),
        komi=wire.get("komi"),
        board_x_size=wire["boardXSize"],
        board_y_size=wire["boardYSize"],
        analyze_turns=wire.get("analyzeTurns"),
        **fields,
    )
