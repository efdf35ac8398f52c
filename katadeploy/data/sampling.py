"""Real games read from SGF files, and the positions sampled from them for calibration.

Contract
--------
* :func:`find_sgf_files` expands arguments into SGF files: a file is taken as is, a directory means every
  ``*.sgf`` below it (recursively, sorted); a path that does not exist raises
  :class:`~katadeploy.errors.KatadeployError`.
* :func:`read_game` turns one SGF (path or bytes) into a :class:`GameRecord`, or raises :class:`GameSkipped`
  with a short ``reason`` key (see :data:`SKIP_REASONS`) — it never raises anything else for bad content. The
  main line is converted with :func:`katadeploy.go.sgf.query_dict_from_game` (setup/handicap stones, colours, komi
  normalisation ``KM[750]`` -> 7.5), a missing ``KM`` gets the default komi of the game's own rules (6.5 for
  Japanese/Korean, else 7.5), a komi outside KataGo's [-400, 400] is clamped (and noted), and the whole game is
  replayed with :func:`katadeploy.go.position.position_from_query` under its own rules (strict legality) before
  it is accepted. Only boards of exactly ``nn_size`` x ``nn_size`` are accepted.
* A game's identity (:attr:`GameRecord.sha256`) is the sha256 of its normalised content: the board size, the
  setup stones and the move sequence (canonical JSON). Names, dates, comments, komi, rules and file encoding
  are left out, so the same game copied, re-encoded or re-annotated is one game.
* :func:`plan_samples` is deterministic for a given seed and list of games (the games are ordered by their
  hash first, so file order does not matter). It assigns whole games to the calibration or validation split,
  divides the requested positions between the splits by ``val_fraction``, and within a split spreads them
  evenly over the three game phases (thirds of each game's turns: opening, middle, endgame) and round-robin
  over the games, drawing turns without replacement. Each split is then shuffled, and its positions get
  balanced assignments of the 8 symmetries and of the rules in :data:`RULES_MIX` (the game's own rules only
  decide its komi).
* :meth:`GameRecord.query` gives the analysis query (``position_from_query`` shape) of the position after
  ``turn`` moves under the chosen rules; :func:`position_of` builds its :class:`~katadeploy.go.position.GameState`
  (KataGo's tolerant move checks, as the analysis engine uses).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sgfmill import sgf

from katadeploy.errors import KatadeployError, PositionError
from katadeploy.go.position import GameState, position_from_query
from katadeploy.go.sgf import normalize_komi, query_dict_from_game, rules_from_sgf
from katadeploy.hashing import sha256_text

#: Rules the sampled positions cycle through (the game's own rules only decide its komi).
RULES_MIX: tuple[str, ...] = (
    "chinese",
    "japanese",
    "tromp-taylor",
    "aga",
    "korean",
    "new-zealand",
    "stone-scoring",
)
PHASES: tuple[str, ...] = ("opening", "middle", "endgame")
SPLITS: tuple[str, ...] = ("calib", "val")
NUM_SYMMETRIES = 8

#: Skip reason keys -> human wording (used in reports).
SKIP_REASONS: dict[str, str] = {
    "unreadable": "file cannot be read",
    "unparsable": "not valid SGF",
    "not-go": "not a Go game (GM is not 1)",
    "board-size": "board size differs from the tensor size",
    "board-too-large": "board larger than the tensor",
    "bad-komi": "komi is not a number",
    "bad-rules": "rules cannot be used",
    "bad-setup": "setup stones cannot be placed",
    "illegal-move": "a move cannot be replayed",
    "no-moves": "no moves",
    "duplicate": "same game as another input",
    "held-out": "a game of the bundled test positions (kept out of the default calibration)",
}

_TERRITORY_RULES = ("japanese", "korean")
_MAX_KOMI = 400.0


class GameSkipped(KatadeployError):
    """A game that cannot be used; ``reason`` is a key of :data:`SKIP_REASONS`, ``detail`` says why."""

    def __init__(self, reason: str, detail: str, source: str = ""):
        self.reason = reason
        self.detail = detail
        self.source = source
        super().__init__(f"{source}: {detail}" if source else detail)


@dataclass(frozen=True)
class GameRecord:
    """One usable game: its main line in analysis-query form and its identity hash."""

    source: str
    sha256: str
    size: int
    initial_stones: tuple[tuple[str, str], ...]
    moves: tuple[tuple[str, str], ...]
    initial_player: str
    komi: float
    game_rules: str
    notes: tuple[str, ...] = ()
    y_size: int | None = None  # rectangular boards (self-play): the height; None means square (size x size)

    @property
    def x_size(self) -> int:
        return self.size

    @property
    def board_y(self) -> int:
        return self.y_size or self.size

    @property
    def n_moves(self) -> int:
        return len(self.moves)

    @property
    def first_turn(self) -> int:
        """The first turn sampled: 0 (right after the setup) for games with setup stones, else 1."""
        return 0 if self.initial_stones else 1

    def phase_of(self, turn: int) -> int:
        """0 opening, 1 middle, 2 endgame: which third of the game's sampled turns ``turn`` lies in."""
        span = self.n_moves - self.first_turn + 1
        return min(2, 3 * (turn - self.first_turn) // span)

    def turns_in_phase(self, phase: int) -> list[int]:
        return [t for t in range(self.first_turn, self.n_moves + 1) if self.phase_of(t) == phase]

    def query(self, turn: int, rules: str, query_id: str | None = None) -> dict[str, Any]:
        """Analysis query of the position after ``turn`` moves, under ``rules`` with the game's komi."""
        if not 0 <= turn <= self.n_moves:
            raise ValueError(f"turn {turn} is outside 0..{self.n_moves}")
        return {
            "id": query_id if query_id is not None else f"{self.sha256[:12]}@{turn}",
            "initialStones": [list(s) for s in self.initial_stones],
            "moves": [list(m) for m in self.moves[:turn]],
            "initialPlayer": self.initial_player,
            "rules": rules,
            "komi": self.komi,
            "boardXSize": self.size,
            "boardYSize": self.board_y,
        }


@dataclass(frozen=True)
class SampledPosition:
    """A position chosen for the calibration file: ``games[game]`` after ``turn`` moves."""

    game: int
    turn: int
    phase: int
    split: int
    rules: str
    symmetry: int


@dataclass
class SamplePlan:
    """The games in file order (sorted by hash), their split (0 calib, 1 val) and the chosen positions."""

    games: list[GameRecord]
    game_split: list[int]
    positions: list[SampledPosition]
    notes: dict[str, int] = field(default_factory=dict)

    def games_in(self, split: int) -> int:
        return sum(1 for s in self.game_split if s == split)


# ---------------------------------------------------------------------------------------------------- files
def find_sgf_files(sources: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and directories (every ``*.sgf`` below, case-insensitive, sorted); duplicates dropped."""
    out: list[Path] = []
    seen: set[Path] = set()
    for src in sources:
        p = Path(src)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() == ".sgf" and q.is_file())
        elif p.exists():
            found = [p]
        else:
            raise KatadeployError(f"no such SGF file or directory: {os.fspath(src)!r}")
        for q in found:
            key = q.resolve()
            if key not in seen:
                seen.add(key)
                out.append(q)
    return out


def bundled_games_dir() -> Path:
    """The real games shipped with katadeploy (``katadeploy/data/games``)."""
    return Path(__file__).resolve().parent / "games"


# ---------------------------------------------------------------------------------------------------- games
def game_identity(
    size: int, initial_stones: Sequence[Sequence[str]], moves: Sequence[Sequence[str]], y_size: int | None = None
) -> str:
    """sha256 (hex) of a game's normalised content: size, setup stones and moves as canonical JSON (a
    rectangular board's ``y_size`` is part of it; square boards hash as they always did)."""
    content: dict[str, Any] = {
        "size": size if y_size in (None, size) else [size, y_size],
        "initialStones": sorted([c.upper(), v.upper()] for c, v in initial_stones),
        "moves": [[c.upper(), v.upper()] for c, v in moves],
    }
    text = json.dumps(content, separators=(",", ":"), sort_keys=True)
    return sha256_text(text)  # json.dumps escapes non-ASCII, so this is the ASCII bytes


def _root_text(game: sgf.Sgf_game, name: str) -> str | None:
    root = game.get_root()
    if not root.has_property(name):
        return None
    raw = root.get_raw(name)
    return raw.decode(root.get_encoding(), "replace") if isinstance(raw, bytes) else str(raw)


def _komi(game: sgf.Sgf_game, game_rules: str, notes: list[str]) -> float:
    default = 6.5 if game_rules in _TERRITORY_RULES else 7.5
    text = _root_text(game, "KM")
    try:
        komi = normalize_komi(text, default)
    except PositionError as exc:
        try:
            value = float((text or "").strip().replace(",", "."))
        except ValueError:
            raise GameSkipped("bad-komi", f"komi KM[{text}] is not a number") from None
        if not np.isfinite(value):
            raise GameSkipped("bad-komi", str(exc)) from None
        notes.append("komi-clamped")
        komi = float(np.clip(round(value * 2) / 2, -_MAX_KOMI, _MAX_KOMI))
    if text is None or not text.strip():
        notes.append("komi-missing")
    assert komi is not None
    return komi


def read_game(
    source: str | os.PathLike[str] | bytes, nn_size: int = 19, *, name: str | None = None
) -> GameRecord:
    """Parse and check one SGF game (see the module contract); raises :class:`GameSkipped` if it is unusable."""
    label = name if name is not None else ("<bytes>" if isinstance(source, bytes) else os.fspath(source))
    try:
        return _read_game(source, nn_size, label)
    except GameSkipped as exc:
        exc.source = label
        raise


def _read_game(source: str | os.PathLike[str] | bytes, nn_size: int, label: str) -> GameRecord:
    if isinstance(source, bytes):
        data = source
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise GameSkipped("unreadable", f"cannot read: {exc.strerror or exc}") from None
    try:
        game = sgf.Sgf_game.from_bytes(data)
        size = game.get_size()
    except ValueError as exc:
        text = str(exc)
        if "size out of range" in text:
            raise GameSkipped("board-too-large", f"unsupported board size ({text})") from None
        if "SZ" in text:
            raise GameSkipped("board-size", f"unsupported board size ({text})") from None
        raise GameSkipped("unparsable", f"cannot parse SGF ({text or 'bad SGF'})") from None
    gm = (_root_text(game, "GM") or "1").strip()
    if gm != "1":
        raise GameSkipped("not-go", f"GM[{gm}] is not a Go game")
    if size > nn_size:
        raise GameSkipped(
            "board-too-large", f"{size}x{size} board is larger than the {nn_size}x{nn_size} tensor"
        )
    if size != nn_size:
        raise GameSkipped("board-size", f"{size}x{size} board, but the tensor is {nn_size}x{nn_size}")

    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        game_rules = rules_from_sgf(_root_text(game, "RU"), "japanese")
        try:
            query = query_dict_from_game(game, komi=0.0)  # komi is decided below
        except PositionError as exc:
            text = str(exc)
            if "replayed" in text:
                reason = "illegal-move"
            elif "handicap" in text:
                reason = "bad-setup"
            else:
                reason = "unparsable"
            raise GameSkipped(reason, text) from None
    if caught:
        notes.append("sgf-warning")
    if not isinstance(game_rules, str):  # pragma: no cover - rules_from_sgf returns names or compact strings
        game_rules = "japanese"
    komi = _komi(game, game_rules, notes)

    moves = tuple((str(c), str(v)) for c, v in query.get("moves", []))
    stones = tuple((str(c), str(v)) for c, v in (query.get("initialStones") or []))
    if not moves:
        raise GameSkipped("no-moves", "the game has no moves")
    initial_player = str(query.get("initialPlayer") or moves[0][0])
    record = GameRecord(
        source=label,
        sha256=game_identity(size, stones, moves),
        size=size,
        initial_stones=stones,
        moves=moves,
        initial_player=initial_player,
        komi=komi,
        game_rules=game_rules,
        notes=tuple(notes),
    )
    check_query = record.query(record.n_moves, game_rules, query_id=label)
    try:
        position_from_query(check_query, max_board_size=nn_size, strict=True)
    except PositionError as exc:
        text = str(exc)
        if "bad rules" in text:
            check_query["rules"] = "japanese"
            try:
                position_from_query(check_query, max_board_size=nn_size, strict=True)
            except PositionError as exc2:
                raise GameSkipped(_replay_reason(str(exc2)), str(exc2)) from None
            return record
        raise GameSkipped(_replay_reason(text), text) from None
    return record


def _replay_reason(text: str) -> str:
    if "initialStones" in text:
        return "bad-setup"
    if "illegal move" in text or "could not parse" in text:
        return "illegal-move"
    if "komi" in text:
        return "bad-komi"
    if "rules" in text:
        return "bad-rules"
    return "illegal-move"


def position_of(game: GameRecord, turn: int, rules: str, nn_size: int = 19) -> GameState:
    """The :class:`GameState` after ``turn`` moves of ``game`` under ``rules`` (tolerant move checks)."""
    return position_from_query(game.query(turn, rules), max_board_size=nn_size, strict=False)


# ---------------------------------------------------------------------------------------------------- plan
def split_games(n_games: int, val_fraction: float, rng: np.random.Generator) -> list[int]:
    """Split (0 calib / 1 val) of each of ``n_games`` games: ``round(n * val_fraction)`` random games go to
    validation, at least one and leaving at least one for calibration when ``0 < val_fraction``."""
    if not 0.0 <= val_fraction < 1.0:
        raise KatadeployError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if n_games == 0:
        return []
    n_val = 0
    if val_fraction > 0:
        if n_games < 2:
            raise KatadeployError(
                "only 1 usable game: a validation split needs at least 2 games (or use --val-fraction 0)"
            )
        n_val = min(max(1, round(n_games * val_fraction)), n_games - 1)
    order = rng.permutation(n_games)
    split = [0] * n_games
    for i in order[:n_val]:
        split[int(i)] = 1
    return split


def _sample_split(
    games: list[GameRecord], members: list[int], quota: int, rng: np.random.Generator
) -> list[tuple[int, int, int]]:
    """``quota`` distinct (game, turn, phase) triples from ``members``, even over phases, round-robin over
    games. Phases that run out hand their remaining quota to the next ones."""
    chosen: list[tuple[int, int, int]] = []
    per_phase = [quota // 3 + (1 if p < quota % 3 else 0) for p in range(3)]
    carry = 0
    for phase in range(3):
        want = per_phase[phase] + carry
        pools = {g: list(rng.permutation(games[g].turns_in_phase(phase))) for g in members}
        order = [members[int(i)] for i in rng.permutation(len(members))]
        got = 0
        while got < want and any(pools[g] for g in order):
            for g in order:
                if got >= want:
                    break
                if pools[g]:
                    chosen.append((g, int(pools[g].pop()), phase))
                    got += 1
        carry = want - got
    # Earlier phases may still have turns left if a later phase ran out.
    if carry:
        taken = set((g, t) for g, t, _ in chosen)
        spare = [
            (g, t, games[g].phase_of(t))
            for g in members
            for t in range(games[g].first_turn, games[g].n_moves + 1)
            if (g, t) not in taken
        ]
        for i in rng.permutation(len(spare))[:carry]:
            chosen.append(spare[int(i)])
    return chosen


def plan_samples(
    games: Sequence[GameRecord], positions: int, val_fraction: float = 0.25, seed: int = 0
) -> SamplePlan:
    """Choose ``positions`` positions from ``games`` (see the module contract)."""
    if positions < 1:
        raise KatadeployError(f"--positions must be at least 1, got {positions}")
    ordered = sorted(games, key=lambda g: g.sha256)
    if not ordered:
        raise KatadeployError("no usable games to sample positions from")
    rng = np.random.default_rng(np.random.PCG64(seed))
    game_split = split_games(len(ordered), val_fraction, rng)
    n_val = min(positions - 1, round(positions * val_fraction)) if 1 in game_split else 0
    quotas = (positions - n_val, n_val)
    out: list[SampledPosition] = []
    notes: dict[str, int] = {}
    for split, quota in enumerate(quotas):
        members = [i for i, s in enumerate(game_split) if s == split]
        if quota == 0 or not members:
            continue
        triples = _sample_split(ordered, members, quota, rng)
        if len(triples) < quota:
            notes[f"{SPLITS[split]}-positions-short"] = quota - len(triples)
        order = rng.permutation(len(triples))
        rules_idx = rng.permutation(len(triples)) % len(RULES_MIX)
        syms = rng.permutation(len(triples)) % NUM_SYMMETRIES
        for k, i in enumerate(order):
            g, t, phase = triples[int(i)]
            out.append(SampledPosition(g, t, phase, split, RULES_MIX[int(rules_idx[k])], int(syms[k])))
    return SamplePlan(list(ordered), game_split, out, notes)
