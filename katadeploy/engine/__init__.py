"""katadeploy.engine: clients for KataGo's analysis JSON protocol.

Public API
----------
* :class:`AnalysisEngine` (threads, futures) and :class:`AsyncAnalysisEngine` (asyncio) run any command that
  speaks the protocol (e.g. ``katago analysis -config C -model M``), match replies to queries whatever their
  order, stream partial results, restart a crashed engine and never leave a caller waiting forever.
* :class:`AnalysisQuery`, :class:`AnalysisResponse`, :class:`MoveInfo`, :class:`RootInfo`,
  :class:`VersionInfo`, :class:`ModelInfo`: protocol types that keep unknown fields.
* :func:`query_from_sgf` / :func:`query_from_game`: queries from SGF files or sgfmill games.
* Errors: :class:`EngineError` and its subclasses, and the :class:`EngineWarning` warning category.

Example::

    from katadeploy.engine import AnalysisEngine, query_from_sgf

    with AnalysisEngine(["katago", "analysis", "-config", "analysis.cfg", "-model", "net.bin.gz"]) as engine:
        print(engine.query_version().version)
        for reply in engine.analyze_turns(query_from_sgf("game.sgf", turns="all", max_visits=50)):
            print(reply.turn_number, reply.root_info.winrate, reply.best_move.move)
"""

from katadeploy.engine.aio import AsyncAnalysisEngine, AsyncQueryHandle
from katadeploy.engine.client import AnalysisEngine, QueryHandle
from katadeploy.engine.core import EngineStats
from katadeploy.engine.errors import (
    EngineClosed,
    EngineCrashed,
    EngineError,
    EngineStartError,
    EngineWarning,
    QueryError,
    QueryTimeout,
    SgfWarning,
)
from katadeploy.engine.options import EngineOptions
from katadeploy.engine.protocol import (
    KATAGO_READY_PATTERN,
    AnalysisQuery,
    AnalysisResponse,
    ModelInfo,
    MoveInfo,
    RootInfo,
    VersionInfo,
)
from katadeploy.engine.sgf import (
    normalize_komi,
    query_from_game,
    query_from_sgf,
    rules_from_sgf,
    select_turns,
)

__all__ = [
    "KATAGO_READY_PATTERN",
    "AnalysisEngine",
    "AnalysisQuery",
    "AnalysisResponse",
    "AsyncAnalysisEngine",
    "AsyncQueryHandle",
    "EngineClosed",
    "EngineCrashed",
    "EngineError",
    "EngineOptions",
    "EngineStartError",
    "EngineStats",
    "EngineWarning",
    "ModelInfo",
    "MoveInfo",
    "QueryError",
    "QueryHandle",
    "QueryTimeout",
    "RootInfo",
    "SgfWarning",
    "VersionInfo",
    "normalize_komi",
    "query_from_game",
    "query_from_sgf",
    "rules_from_sgf",
    "select_turns",
]
