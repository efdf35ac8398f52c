"""Analysis-query dicts from SGF game records (via sgfmill).

Contract
--------
* :func:`query_dict_from_sgf` accepts a path, SGF text/bytes or an ``sgfmill`` game (:func:`load_game` reads
  it); :func:`query_dict_from_game` takes an ``sgfmill.sgf.Sgf_game``. Both return a plain dict in KataGo's
  analysis-query wire form (camelCase keys, absent values left out; what
  :func:`katadeploy.go.position.position_from_query` reads) for the main line (leftmost variation) with:

  - ``id`` from ``query_id`` (left out when None);
  - ``boardXSize``/``boardYSize`` from ``SZ`` (square boards, as sgfmill supports; 19 when absent);
  - ``initialStones`` from the root's ``AB``/``AW`` setup (handicap stones included; Black's first, each colour
    in reading order from the top left; left out when there are none). If ``HA >= 2`` but the record has no
    ``AB`` and White moves first, the standard fixed handicap points are used;
  - ``moves`` as ``[colour, GTP vertex]`` pairs (``pass`` for passes), in order;
  - ``initialPlayer``: the colour of the first move; with no moves ``PL``, else White when there are handicap
    stones, else Black;
  - ``rules`` from ``RU`` via :func:`rules_from_sgf` (unknown names fall back to ``default_rules`` with an
    :class:`SgfWarning`); ``rules=`` overrides;
  - ``komi`` from ``KM`` via :func:`normalize_komi` (``KM[750]`` -> 7.5); ``komi=`` overrides, and
    ``default_komi`` is used when ``KM`` is absent or empty (left out when that is None);
  - ``analyzeTurns`` from ``turns`` via :func:`select_turns` (``"last"`` — the default — leaves it out, which
    KataGo reads as the final position).

  Setup properties (``AB``/``AW``/``AE``) after the root cannot be expressed as a move history: the history is
  then restarted at the last such node (its position becomes ``initialStones``; turn numbers count from there)
  and an :class:`SgfWarning` is issued.
* Unreadable SGF, rectangular or oversized boards, and moves that cannot be replayed raise
  :class:`~katadeploy.errors.PositionError`; bad ``turns`` raise it too.
* :class:`SgfWarning` is the one definition of the warning category (``katadeploy.engine.errors`` re-exports it).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sgfmill import boards, sgf

from katadeploy.errors import PositionError


class SgfWarning(UserWarning):
    """Warning category for SGF content that was interpreted with a fallback (unknown rules, odd komi...)."""


_COLUMNS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"

TurnSelection = str | int | range | slice | Iterable[int] | None

#: Lower-cased, separator-free RU values -> KataGo rules names.
_RULE_ALIASES: dict[str, str] = {
    "japanese": "japanese",
    "jp": "japanese",
    "ja": "japanese",
    "jpn": "japanese",
    "japan": "japanese",
    "日本": "japanese",
    "日本规则": "japanese",
    "korean": "korean",
    "ko": "korean",
    "kr": "korean",
    "韩国": "korean",
    "chinese": "chinese",
    "cn": "chinese",
    "zh": "chinese",
    "china": "chinese",
    "中国": "chinese",
    "中国规则": "chinese",
    "chineseogs": "chinese-ogs",
    "chinesekgs": "chinese-kgs",
    "aga": "aga",
    "agabutton": "aga-button",
    "bga": "bga",
    "british": "bga",
    "french": "french",
    "nz": "new-zealand",
    "newzealand": "new-zealand",
    "tromptaylor": "tromp-taylor",
    "tt": "tromp-taylor",
    "goe": "goe",
    "ing": "goe",
    "stonescoring": "stone-scoring",
    "ancientarea": "stone-scoring",
    "ancientterritory": "ancient-territory",
}
_COMPACT_RULES = re.compile(r"^ko[A-Z]+score[A-Z]+", re.ASCII)


# --------------------------------------------------------------------------------------------------- helpers


def vertex(row: int, col: int) -> str:
    """GTP vertex of sgfmill point ``(row, col)`` (row 0 = bottom): ``(0, 0)`` -> ``"A1"``; columns past Z use
    KataGo's two-letter form (``AA`` is column 26)."""
    if col < len(_COLUMNS):
        letters = _COLUMNS[col]
    else:
        letters = _COLUMNS[col // 25 - 1] + _COLUMNS[col % 25]
    return f"{letters}{row + 1}"


def normalize_komi(value: str | bytes | float | int | None, default: float | None = None) -> float | None:
    """Komi as KataGo accepts it (an integer or half-integer in [-400, 400]).

    * Text is parsed leniently (``"7,5"`` -> 7.5); empty/absent gives ``default``.
    * Values stored scaled, as some servers do, are recognised when the raw value is not a plausible komi
      (``|k| > 150``): ``KM[750]``/``KM[650]`` (×100) -> 7.5/6.5 and Fox's ``KM[375]`` (×50) -> 7.5.
    * Anything else off the half-integer grid is rounded to the nearest half point (ties away from zero).
    Raises :class:`PositionError` for text that is not a number or a komi outside [-400, 400].
    """
    if value is None:
        return default
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip().replace(",", ".")
        if not text:
            return default
        try:
            k = float(text)
        except ValueError:
            raise PositionError(f"komi {value!r} is not a number") from None
    else:
        k = float(value)
    if not math.isfinite(k):
        raise PositionError(f"komi {value!r} is not finite")
    if abs(k) > 150 and k == int(k):
        for scale in (100.0, 50.0):
            scaled = k / scale
            if scaled * 2 == int(scaled * 2) and abs(scaled) <= 150:
                k = scaled
                break
    k = math.copysign(math.floor(abs(k) * 2 + 0.5) / 2, k)
    if abs(k) > 400:
        raise PositionError(f"komi {value!r} is outside KataGo's range [-400, 400]")
    return k + 0.0  # no -0.0


def rules_from_sgf(ru: str | None, default: str = "japanese") -> str:
    """KataGo rules name for an SGF ``RU`` value (case, spaces, ``-``/``_`` ignored).

    Known aliases map to KataGo's names (``Japanese`` -> ``japanese``, ``NZ`` -> ``new-zealand``,
    ``Chinese_OGS`` -> ``chinese-ogs``, ``GOE``/``Ing`` -> ``goe`` ...); KataGo's compact form
    (``koPOSITIONALscoreAREA...``) and JSON objects pass through unchanged. Absent -> ``default``; unknown ->
    ``default`` with an :class:`SgfWarning`.
    """
    if ru is None or not ru.strip():
        return default
    text = ru.strip()
    if _COMPACT_RULES.match(text) or text.startswith("{"):
        return text
    key = re.sub(r"[\s_\-]+", "", text).lower()
    if key in _RULE_ALIASES:
        return _RULE_ALIASES[key]
    warnings.warn(SgfWarning(f"unknown SGF rules RU[{ru}]; using {default!r}"), stacklevel=2)
    return default


def select_turns(turns: TurnSelection, n_moves: int) -> list[int] | None:
    """Turn numbers to analyse for a game of ``n_moves`` moves (turn ``t`` = position after ``t`` moves).

    ``"last"``/``None`` -> ``None`` (KataGo's default: the final position); ``"all"`` -> ``0..n_moves``;
    an int (negative counts from the end, ``-1`` = last); a ``range``/``slice`` over ``0..n_moves``; or any
    iterable of ints (sorted, duplicates dropped). Out-of-range turns raise :class:`PositionError`.
    """
    count = n_moves + 1
    if turns is None or turns == "last":
        return None
    if turns == "all":
        return list(range(count))
    if isinstance(turns, str):
        raise PositionError(f"turns must be 'all', 'last', an int or a list of ints, not {turns!r}")
    if isinstance(turns, slice):
        return list(range(count)[turns])
    values = [turns] if isinstance(turns, int) else list(turns)
    out = set()
    for t in values:
        if isinstance(t, bool) or not isinstance(t, int):
            raise PositionError(f"turn {t!r} is not an integer")
        if not -count <= t < count:
            raise PositionError(f"turn {t} is out of range for a game of {n_moves} moves (0..{n_moves})")
        out.add(t % count)
    return sorted(out)


def fixed_handicap_points(size: int, stones: int) -> list[tuple[int, int]]:
    """GTP ``fixed_handicap`` points (sgfmill ``(row, col)``) for 2..9 stones on odd boards >= 7."""
    if stones < 2 or size < 7 or stones > (9 if size % 2 else 4):
        raise PositionError(f"no fixed handicap placement for {stones} stones on {size}x{size}")
    edge = 2 if size < 13 else 3
    lo, mid, hi = edge, size // 2, size - 1 - edge
    corners = [(lo, lo), (hi, hi), (hi, lo), (lo, hi)]  # (row, col), row 0 at the bottom: D4 Q16 D16 Q4
    points = corners[: min(stones, 4)]
    if stones in (5, 7, 9):
        points.append((mid, mid))
    if stones >= 6:
        points += [(mid, lo), (mid, hi)]
    if stones >= 8:
        points += [(lo, mid), (hi, mid)]
    return points


# --------------------------------------------------------------------------------------------------- queries


def load_game(source: str | bytes | os.PathLike[str] | sgf.Sgf_game) -> sgf.Sgf_game:
    """An sgfmill game from a path, SGF text/bytes or a game (returned as is); :class:`PositionError` if unusable."""
    if isinstance(source, sgf.Sgf_game):
        return source
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, str) and source.lstrip().startswith("("):
        data = source.encode("utf-8")
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise PositionError(f"cannot read SGF file {os.fspath(source)!r}: {exc}") from exc
    try:
        return sgf.Sgf_game.from_bytes(data)
    except ValueError as exc:
        raise PositionError(f"cannot parse SGF: {exc}") from exc


def query_dict_from_sgf(
    source: str | bytes | os.PathLike[str] | sgf.Sgf_game, **options: Any
) -> dict[str, Any]:
    """Analysis-query dict for the main line of an SGF file, SGF text/bytes or sgfmill game; ``options`` are
    :func:`query_dict_from_game`'s keywords."""
    options.setdefault("stacklevel", 3)
    return query_dict_from_game(load_game(source), **options)


def query_dict_from_game(
    game: sgf.Sgf_game,
    *,
    turns: TurnSelection = "last",
    rules: str | dict[str, Any] | None = None,
    default_rules: str = "japanese",
    komi: float | None = None,
    default_komi: float | None = None,
    query_id: str | None = None,
    stacklevel: int = 2,
) -> dict[str, Any]:
    """Analysis-query dict for the main line of an sgfmill game (see module contract).

    ``stacklevel`` is passed to :func:`warnings.warn` for the restarted-history warning (2: the caller).
    """
    try:
        size = game.get_size()
        nodes = game.get_main_sequence()
    except ValueError as exc:
        raise PositionError(f"bad SGF: {exc}") from exc
    if size > 25 * 26:  # pragma: no cover - sgfmill caps sizes far lower
        raise PositionError(f"board size {size} is too large")
    root = game.get_root()

    def prop(name: str) -> str | None:
        if not root.has_property(name):
            return None
        raw = root.get_raw(name)
        return raw.decode(root.get_encoding(), "replace") if isinstance(raw, bytes) else str(raw)

    board = boards.Board(size)
    initial: list[tuple[str, tuple[int, int]]] = []
    moves: list[tuple[str, tuple[int, int] | None]] = []
    restarted_at: int | None = None
    for index, node in enumerate(nodes):
        try:
            if node.has_setup_stones():
                black, white, empty = node.get_setup_stones()
                if moves:  # setup after moves: restart the history from the current position
                    _replay(board, moves)
                    moves = []
                    restarted_at = index
                board.apply_setup(black, white, empty)
                initial = sorted(
                    board.list_occupied_points(), key=lambda cp: (cp[0] != "b", -cp[1][0], cp[1][1])
                )
            colour, move = node.get_move()
        except ValueError as exc:
            raise PositionError(f"bad SGF node {index}: {exc}") from exc
        if colour is not None:
            moves.append((colour, move))
    if restarted_at is not None:
        warnings.warn(
            SgfWarning(f"setup stones in node {restarted_at} (after the root): history restarted there"),
            stacklevel=stacklevel,
        )

    try:
        handicap = game.get_handicap()
    except ValueError:
        handicap = None
    if handicap and not initial and restarted_at is None and (not moves or moves[0][0] == "w"):
        initial = [("b", p) for p in fixed_handicap_points(size, handicap)]

    if moves:
        initial_player = moves[0][0]
    else:
        pl = (prop("PL") or "").strip().upper()[:1]
        if pl in ("B", "W"):
            initial_player = pl.lower()
        else:
            initial_player = "w" if any(c == "b" for c, _ in initial) and handicap else "b"

    ru = prop("RU")
    chosen_rules = rules if rules is not None else rules_from_sgf(ru, default_rules)
    chosen_komi = komi if komi is not None else normalize_komi(prop("KM"), default_komi)

    query: dict[str, Any] = {}
    if query_id is not None:
        query["id"] = query_id
    query["moves"] = [[c.upper(), vertex(*m) if m is not None else "pass"] for c, m in moves]
    stones = [[c.upper(), vertex(*p)] for c, p in initial]
    if stones:
        query["initialStones"] = stones
    query["initialPlayer"] = initial_player.upper()
    if chosen_rules is not None:
        query["rules"] = chosen_rules
    if chosen_komi is not None:
        query["komi"] = chosen_komi
    query["boardXSize"] = size
    query["boardYSize"] = size
    analyze_turns = select_turns(turns, len(moves))
    if analyze_turns is not None:
        query["analyzeTurns"] = analyze_turns
    return query


def _replay(board: boards.Board, moves: list[tuple[str, tuple[int, int] | None]]) -> None:
    for number, (colour, move) in enumerate(moves, 1):
        if move is None:
            continue
        try:
            board.play(move[0], move[1], colour)
        except (ValueError, IndexError) as exc:
            raise PositionError(
                f"move {number} ({colour} {vertex(*move)}) cannot be replayed: {exc}"
            ) from exc
