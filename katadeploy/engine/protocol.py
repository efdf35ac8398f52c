"""Types and JSON codec of KataGo's analysis protocol (``docs/Analysis_Engine.md``).

Contract
--------
* :class:`AnalysisQuery` is a dataclass with one snake_case attribute per query field of the protocol
  (``id``, ``moves``, ``initial_stones``, ..., ``first_report_during_search_after``, ``priorities``) plus
  ``extra``, a dict of fields this version does not know. :meth:`AnalysisQuery.to_dict` gives the camelCase wire
  dict (``None`` attributes are left out, ``extra`` is merged last); :meth:`AnalysisQuery.from_dict` is its
  inverse and keeps unknown keys in ``extra``. A plain ``dict`` in wire form is accepted wherever a query is.
* Replies are *views* over the decoded JSON object: :class:`AnalysisResponse`, :class:`MoveInfo`,
  :class:`RootInfo`, :class:`VersionInfo` and :class:`ModelInfo` expose every documented field as a typed,
  read-only snake_case attribute (``None`` when absent) and keep the whole object in ``raw``, so fields added by
  newer KataGo versions are never lost (``extra`` lists the ones these classes do not name). Views are cheap to
  build: nothing is copied or converted until an attribute is read.
* :func:`dumps` encodes to one line of UTF-8 JSON bytes *without* the newline; :func:`loads` decodes bytes or
  str. Both use ``orjson`` when it is installed and the standard ``json`` module otherwise; numpy scalars and
  arrays are encoded as plain numbers and lists. Decoding errors are ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar, overload

T = TypeVar("T")

#: Substring of the line KataGo prints on stderr once the analysis engine reads queries.
KATAGO_READY_PATTERN = "Started, ready to begin handling requests"

#: Action names KataGo's analysis engine accepts.
ACTIONS = frozenset({"query_version", "query_models", "clear_cache", "terminate", "terminate_all"})

# ----------------------------------------------------------------------------------------------------- codec


def _default(obj: Any) -> Any:
    """Fallback encoder: numpy scalars/arrays, tuples-likes, sets."""
    item = getattr(obj, "item", None)
    tolist = getattr(obj, "tolist", None)
    if tolist is not None:
        return tolist()
    if item is not None:
        return item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


try:  # pragma: no branch - depends on the environment
    import orjson as _orjson

    _ORJSON_OPTS = _orjson.OPT_SERIALIZE_NUMPY

    def dumps(obj: Any) -> bytes:
        """Encode ``obj`` as compact single-line JSON bytes (no trailing newline)."""
        return _orjson.dumps(obj, default=_default, option=_ORJSON_OPTS)

    def loads(data: bytes | str) -> Any:
        """Decode JSON from bytes or str; raises ``ValueError`` on malformed input."""
        return _orjson.loads(data)

    JSON_BACKEND = "orjson"
except ImportError:  # pragma: no cover - exercised only without orjson
    _encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_default)

    def dumps(obj: Any) -> bytes:
        """Encode ``obj`` as compact single-line JSON bytes (no trailing newline)."""
        return _encoder.encode(obj).encode("utf-8")

    def loads(data: bytes | str) -> Any:
        """Decode JSON from bytes or str; raises ``ValueError`` on malformed input."""
        return json.loads(data)

    JSON_BACKEND = "json"


# ----------------------------------------------------------------------------------------------------- queries

#: snake_case attribute -> wire key, for every documented query field (plus ``firstReportDuringSearchAfter``).
QUERY_FIELDS: dict[str, str] = {
    "id": "id",
    "moves": "moves",
    "initial_stones": "initialStones",
    "initial_player": "initialPlayer",
    "rules": "rules",
    "komi": "komi",
    "white_handicap_bonus": "whiteHandicapBonus",
    "board_x_size": "boardXSize",
    "board_y_size": "boardYSize",
    "analyze_turns": "analyzeTurns",
    "max_visits": "maxVisits",
    "root_policy_temperature": "rootPolicyTemperature",
    "root_fpu_reduction_max": "rootFpuReductionMax",
    "analysis_pv_len": "analysisPVLen",
    "include_ownership": "includeOwnership",
    "include_ownership_stdev": "includeOwnershipStdev",
    "include_moves_ownership": "includeMovesOwnership",
    "include_moves_ownership_stdev": "includeMovesOwnershipStdev",
    "include_policy": "includePolicy",
    "include_pv_visits": "includePVVisits",
    "include_no_result_value": "includeNoResultValue",
    "avoid_moves": "avoidMoves",
    "allow_moves": "allowMoves",
    "override_settings": "overrideSettings",
    "report_during_search_every": "reportDuringSearchEvery",
    "first_report_during_search_after": "firstReportDuringSearchAfter",
    "priority": "priority",
    "priorities": "priorities",
}
_QUERY_KEYS_TO_ATTR = {v: k for k, v in QUERY_FIELDS.items()}

Move = tuple[str, str] | list[str]


@dataclass
class AnalysisQuery:
    """One analysis query. Attributes mirror the protocol fields; ``None`` means "not sent".

    ``moves``/``initial_stones`` are ``[player, vertex]`` pairs (``"B"``/``"W"``, GTP vertex, ``"pass"`` or
    ``"(x,y)"``). ``avoid_moves``/``allow_moves`` are lists of ``{"player", "moves", "untilDepth"}`` dicts.
    ``extra`` holds any further wire fields verbatim (merged last by :meth:`to_dict`). ``id`` may be left
    ``None``: the engine client then names the query itself.
    """

    moves: list[Move] = field(default_factory=list)
    rules: str | dict[str, Any] | None = "tromp-taylor"
    komi: float | None = None
    board_x_size: int = 19
    board_y_size: int = 19
    id: str | None = None
    initial_stones: list[Move] | None = None
    initial_player: str | None = None
    white_handicap_bonus: str | None = None
    analyze_turns: list[int] | None = None
    max_visits: int | None = None
    root_policy_temperature: float | None = None
    root_fpu_reduction_max: float | None = None
    analysis_pv_len: int | None = None
    include_ownership: bool | None = None
    include_ownership_stdev: bool | None = None
    include_moves_ownership: bool | None = None
    include_moves_ownership_stdev: bool | None = None
    include_policy: bool | None = None
    include_pv_visits: bool | None = None
    include_no_result_value: bool | None = None
    avoid_moves: list[dict[str, Any]] | None = None
    allow_moves: list[dict[str, Any]] | None = None
    override_settings: dict[str, Any] | None = None
    report_during_search_every: float | None = None
    first_report_during_search_after: float | None = None
    priority: int | None = None
    priorities: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The wire form: camelCase keys, ``None`` attributes omitted, ``extra`` merged last."""
        out: dict[str, Any] = {}
        for attr, key in QUERY_FIELDS.items():
            value = getattr(self, attr)
            if value is not None:
                if attr in ("moves", "initial_stones"):
                    value = [list(m) for m in value]
                out[key] = value
        out.update(self.extra)
        return out

    def to_json(self) -> bytes:
        """The wire form encoded as one JSON line (without newline)."""
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnalysisQuery:
        """Build a query from its wire form; unknown keys go to ``extra``. ``action`` queries are rejected."""
        if "action" in data:
            raise ValueError(f"{data.get('action')!r} is an action, not an analysis query")
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            attr = _QUERY_KEYS_TO_ATTR.get(key)
            if attr is None:
                extra[key] = value
            else:
                kwargs[attr] = value
        # Keys absent from the dict must stay absent on the way back, even where the dataclass has a default.
        for attr in ("rules", "board_x_size", "board_y_size"):
            kwargs.setdefault(attr, None)
        kwargs.setdefault("moves", [])
        return cls(**kwargs, extra=extra)

    def replace(self, **changes: Any) -> AnalysisQuery:
        """A copy with some attributes changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


def query_to_dict(query: AnalysisQuery | Mapping[str, Any]) -> dict[str, Any]:
    """Wire dict of a query given as :class:`AnalysisQuery` or mapping (always a new, shallow-copied dict)."""
    if isinstance(query, AnalysisQuery):
        return query.to_dict()
    if isinstance(query, Mapping):
        return dict(query)
    raise TypeError(f"a query must be an AnalysisQuery or a mapping, not {type(query).__name__}")


def expected_turns(wire: Mapping[str, Any]) -> tuple[int, ...]:
    """The turn numbers KataGo will answer for a query in wire form, ascending and without duplicates.

    ``analyzeTurns`` when given (it must be a list of ints; ``bool`` is rejected), else the last turn,
    ``len(moves)``. Raises ``ValueError`` for a malformed ``analyzeTurns``; range checks are left to KataGo.
    """
    turns = wire.get("analyzeTurns")
    if turns is None:
        moves = wire.get("moves")
        return (len(moves) if isinstance(moves, list) else 0,)
    if not isinstance(turns, (list, tuple)) or any(type(t) is not int for t in turns):
        raise ValueError(f"analyzeTurns must be a list of integers, got {turns!r}")
    return tuple(sorted(set(turns)))


# ----------------------------------------------------------------------------------------------------- replies


class _Field(Generic[T]):
    """Read-only attribute that looks a key up in the view's ``raw`` dict (``None`` when absent)."""

    def __init__(self, key: str):
        self.key = key

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _Field[T]: ...

    @overload
    def __get__(self, obj: JsonView, owner: type) -> T | None: ...

    def __get__(self, obj: JsonView | None, owner: type) -> Any:
        if obj is None:
            return self
        return obj.raw.get(self.key)


class JsonView:
    """A read-only, typed view over one decoded JSON object; the object itself is ``raw``.

    Mapping-style access (``view["key"]``, ``view.get(key)``, ``key in view``) reads ``raw`` directly.
    """

    __slots__ = ("raw",)
    KNOWN_KEYS: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        keys = set()
        for klass in cls.__mro__:
            for value in vars(klass).values():
                if isinstance(value, _Field):
                    keys.add(value.key)
        cls.KNOWN_KEYS = frozenset(keys)

    def __init__(self, raw: dict[str, Any]):
        self.raw = raw

    @property
    def extra(self) -> dict[str, Any]:
        """Keys of ``raw`` that this class does not name (fields from newer KataGo versions, etc.)."""
        known = self.KNOWN_KEYS
        return {k: v for k, v in self.raw.items() if k not in known}

    def to_dict(self) -> dict[str, Any]:
        """A shallow copy of the underlying JSON object."""
        return dict(self.raw)

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def get(self, key: str, default: Any = None) -> Any:
        """``raw.get(key, default)``."""
        return self.raw.get(key, default)

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self.raw == other.raw  # type: ignore[attr-defined]
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.raw!r})"


class MoveInfo(JsonView):
    """One entry of ``moveInfos``: statistics of a candidate move."""

    __slots__ = ()
    move: _Field[str] = _Field("move")
    visits: _Field[int] = _Field("visits")
    edge_visits: _Field[int] = _Field("edgeVisits")
    winrate: _Field[float] = _Field("winrate")
    score_mean: _Field[float] = _Field("scoreMean")
    score_stdev: _Field[float] = _Field("scoreStdev")
    score_lead: _Field[float] = _Field("scoreLead")
    score_selfplay: _Field[float] = _Field("scoreSelfplay")
    prior: _Field[float] = _Field("prior")
    no_result_value: _Field[float] = _Field("noResultValue")
    human_prior: _Field[float] = _Field("humanPrior")
    utility: _Field[float] = _Field("utility")
    lcb: _Field[float] = _Field("lcb")
    utility_lcb: _Field[float] = _Field("utilityLcb")
    weight: _Field[float] = _Field("weight")
    edge_weight: _Field[float] = _Field("edgeWeight")
    order: _Field[int] = _Field("order")
    play_selection_value: _Field[float] = _Field("playSelectionValue")
    is_symmetry_of: _Field[str] = _Field("isSymmetryOf")
    pv: _Field[list[str]] = _Field("pv")
    pv_visits: _Field[list[int]] = _Field("pvVisits")
    pv_edge_visits: _Field[list[int]] = _Field("pvEdgeVisits")
    ownership: _Field[list[float]] = _Field("ownership")
    ownership_stdev: _Field[list[float]] = _Field("ownershipStdev")


class RootInfo(JsonView):
    """``rootInfo``: statistics of the analysed position itself."""

    __slots__ = ()
    winrate: _Field[float] = _Field("winrate")
    score_lead: _Field[float] = _Field("scoreLead")
    score_selfplay: _Field[float] = _Field("scoreSelfplay")
    score_stdev: _Field[float] = _Field("scoreStdev")
    utility: _Field[float] = _Field("utility")
    visits: _Field[int] = _Field("visits")
    lcb: _Field[float] = _Field("lcb")
    this_hash: _Field[str] = _Field("thisHash")
    sym_hash: _Field[str] = _Field("symHash")
    current_player: _Field[str] = _Field("currentPlayer")
    raw_winrate: _Field[float] = _Field("rawWinrate")
    raw_lead: _Field[float] = _Field("rawLead")
    raw_score_selfplay: _Field[float] = _Field("rawScoreSelfplay")
    raw_score_selfplay_stdev: _Field[float] = _Field("rawScoreSelfplayStdev")
    raw_no_result_prob: _Field[float] = _Field("rawNoResultProb")
    raw_st_wr_error: _Field[float] = _Field("rawStWrError")
    raw_st_score_error: _Field[float] = _Field("rawStScoreError")
    raw_var_time_left: _Field[float] = _Field("rawVarTimeLeft")
    human_winrate: _Field[float] = _Field("humanWinrate")
    human_score_mean: _Field[float] = _Field("humanScoreMean")
    human_score_stdev: _Field[float] = _Field("humanScoreStdev")
    human_st_wr_error: _Field[float] = _Field("humanStWrError")
    human_st_score_error: _Field[float] = _Field("humanStScoreError")


class AnalysisResponse(JsonView):
    """One analysis reply for one turn of a query (partial when ``is_during_search``).

    ``id`` is the id the caller gave the query (the client rewrites its internal wire id back).
    ``no_results`` is true for a query terminated before any search; such a reply has no data fields.
    """

    __slots__ = ()
    id: _Field[str] = _Field("id")
    turn_number: _Field[int] = _Field("turnNumber")
    ownership: _Field[list[float]] = _Field("ownership")
    ownership_stdev: _Field[list[float]] = _Field("ownershipStdev")
    policy: _Field[list[float]] = _Field("policy")
    human_policy: _Field[list[float]] = _Field("humanPolicy")
    _is_during_search: _Field[bool] = _Field("isDuringSearch")
    _no_results: _Field[bool] = _Field("noResults")
    _move_infos: _Field[list[dict[str, Any]]] = _Field("moveInfos")
    _root_info: _Field[dict[str, Any]] = _Field("rootInfo")

    @property
    def is_during_search(self) -> bool:
        """True for a partial report sent while the search is still running."""
        return bool(self.raw.get("isDuringSearch", False))

    @property
    def no_results(self) -> bool:
        """True when the query was terminated before anything was searched."""
        return bool(self.raw.get("noResults", False))

    @property
    def move_infos(self) -> list[MoveInfo]:
        """Candidate moves in KataGo's order (empty when absent)."""
        return [MoveInfo(m) for m in self.raw.get("moveInfos") or ()]

    @property
    def root_info(self) -> RootInfo | None:
        """Statistics of the position itself (``None`` when absent, e.g. ``no_results``)."""
        info = self.raw.get("rootInfo")
        return RootInfo(info) if info is not None else None

    @property
    def best_move(self) -> MoveInfo | None:
        """The move KataGo ranks first (``order == 0``, else the first listed), or ``None``."""
        infos = self.raw.get("moveInfos") or ()
        for info in infos:
            if info.get("order") == 0:
                return MoveInfo(info)
        return MoveInfo(infos[0]) if infos else None


class VersionInfo(JsonView):
    """Reply to ``query_version``."""

    __slots__ = ()
    version: _Field[str] = _Field("version")
    git_hash: _Field[str] = _Field("git_hash")
    id: _Field[str] = _Field("id")
    action: _Field[str] = _Field("action")


class ModelInfo(JsonView):
    """One entry of the ``models`` list in the reply to ``query_models``."""

    __slots__ = ()
    name: _Field[str] = _Field("name")
    internal_name: _Field[str] = _Field("internalName")
    max_batch_size: _Field[int] = _Field("maxBatchSize")
    uses_human_sl_profile: _Field[bool] = _Field("usesHumanSLProfile")
    version: _Field[int] = _Field("version")
    using_fp16: _Field[str] = _Field("usingFP16")


def no_results_reply(query_id: str, turn_number: int) -> dict[str, Any]:
    """The reply KataGo sends for a turn terminated before any search (used when the client terminates locally)."""
    return {"id": query_id, "isDuringSearch": False, "noResults": True, "turnNumber": turn_number}
