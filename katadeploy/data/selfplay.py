"""Self-play games for calibration: positions from every board size users play, from the net's own policy.

Why hand-written: no library plays KataGo-rules games with a KataGo net; the moves come from katadeploy's own
board, history and v7 features (exact ports of KataGo's), the policy from the torch port.

Contract: :func:`parse_board_sizes` reads ``"7,9,13,19,9x13"`` into ``[(x, y), ...]`` (2..19 each side).
:func:`selfplay_games` plays ``games_per_size`` games on each size with ``model`` (a
:class:`~katadeploy.model.desc.ModelDesc`): every move is sampled from the raw policy over the legal moves at
``temperature`` (softmax of logits / T), all games of one size batched into one net call per move; a game ends
after two passes in a row or at ``max_moves_per_point x area`` moves. 19x19 games may start from the first 0-20
moves of ``openings`` (bundled real games), smaller boards start empty. Returns
:class:`~katadeploy.data.sampling.GameRecord` objects (``source`` ``selfplay/<x>x<y>/<n>``, komi 7, Chinese
area scoring during play) that the calibration sampler treats like SGF games, so splits stay disjoint by game.
The same model, sizes, counts and seed give the same games.

:func:`write_games` / :func:`read_games` store games as JSON lines (analysis-query form; SGF has no rectangular
boards in sgfmill). :func:`bundled_selfplay_path` is the set shipped with katadeploy, made by
``scripts/make_selfplay_games.py``; the default calibration adds its games to the bundled real ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from katadeploy.data.sampling import GameRecord, game_identity
from katadeploy.errors import KatadeployError, PositionError
from katadeploy.go.board import C_BLACK, PASS_LOC, get_opp
from katadeploy.go.coords import get_loc, loc_to_string
from katadeploy.go.features import encode_batch, legal_policy_mask
from katadeploy.go.position import GameState, position_from_query
from katadeploy.model.desc import ModelDesc
from katadeploy.progress import Progress

DEFAULT_BOARD_SIZES = ((7, 7), (9, 9), (13, 13), (19, 19), (9, 13))
DEFAULT_TEMPERATURE = 1.0
SELFPLAY_KOMI = 7.0
SELFPLAY_RULES = "chinese"
MAX_MOVES_PER_POINT = 1.2
OPENING_MOVES = 20  # 19x19 self-play games continue a bundled game after 0..OPENING_MOVES of its moves


def parse_board_sizes(text: str) -> list[tuple[int, int]]:
    """``"7,9,13,19,9x13"`` -> ``[(7, 7), (9, 9), (13, 13), (19, 19), (9, 13)]``; ``NxM`` is N wide, M tall."""
    out: list[tuple[int, int]] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        try:
            x, _, y = part.partition("x")
            size = (int(x), int(y or x))
        except ValueError:
            raise KatadeployError(f"bad board size {part!r}: use N or NxM, e.g. 7,9,13,19,9x13") from None
        if not all(2 <= s <= 19 for s in size):
            raise KatadeployError(f"board size {part!r} is outside 2..19")
        if size not in out:
            out.append(size)
    if not out:
        raise KatadeployError("no board sizes given")
    return out


def _start(size: tuple[int, int], opening: GameRecord | None, n_moves: int) -> tuple[GameState, list]:
    x, y = size
    moves = [list(m) for m in (opening.moves[:n_moves] if opening is not None else ())]
    query = {
        "id": "selfplay", "moves": moves, "rules": SELFPLAY_RULES, "komi": SELFPLAY_KOMI,
        "boardXSize": x, "boardYSize": y,
        "initialStones": [list(s) for s in opening.initial_stones] if opening is not None else [],
    }  # fmt: skip
    return position_from_query(query, max_board_size=19, strict=False), moves


def play_move(state: GameState, loc: int) -> tuple[str, str]:
    """Play ``loc`` (legal, or PASS_LOC) for the side to move in ``state``; returns the move in query form."""
    pla = state.next_player
    state.history.make_board_move_assume_legal(loc, pla)
    state.next_player = get_opp(pla)
    x, y = state.history.board.x_size, state.history.board.y_size
    return "B" if pla == C_BLACK else "W", "pass" if loc == PASS_LOC else loc_to_string(loc, x, y)


def selfplay_games(
    model: ModelDesc,
    sizes: Sequence[tuple[int, int]],
    games_per_size: int,
    *,
    seed: int = 0,
    temperature: float = DEFAULT_TEMPERATURE,
    openings: Sequence[GameRecord] = (),
    max_moves_per_point: float = MAX_MOVES_PER_POINT,
    progress: bool = True,
) -> list[GameRecord]:
    import torch

    from katadeploy.model.net import KataGoNet

    if games_per_size < 1:
        raise KatadeployError("--selfplay must be a positive number of games per board size")
    if not temperature > 0:
        raise KatadeployError("the self-play temperature must be positive")
    rng = np.random.default_rng(seed)
    net = KataGoNet(model).eval()
    records: list[GameRecord] = []
    total = games_per_size * len(sizes)
    with Progress(total, "self-play games", quiet=not progress) as bar, torch.inference_mode():
        for size in sizes:
            x, y = size
            cap = int(max_moves_per_point * x * y)
            states, moves, starts = [], [], []
            for _ in range(games_per_size):
                opening = None
                if size == (19, 19) and openings:
                    opening = openings[int(rng.integers(len(openings)))]
                n_open = int(rng.integers(0, OPENING_MOVES + 1)) if opening is not None else 0
                st, mv = _start(size, opening, n_open)
                states.append(st)
                moves.append(mv)
                starts.append(opening)
            passes = [0] * games_per_size
            active = [g for g in range(games_per_size) if len(moves[g]) < cap]
            while active:
                batch = [states[g] for g in active]
                spatial, glob = encode_batch(
                    ((s.history, s.next_player) for s in batch), x, y,
                    prefer_pass_alive_under_suicide=model.prefer_pass_alive_under_suicide,
                )  # fmt: skip
                out = net(torch.from_numpy(spatial), torch.from_numpy(glob), None)
                logits = np.concatenate(
                    [out[0][:, 0].reshape(len(batch), -1).numpy(), out[1][:, :1].numpy()], axis=1
                )
                still = []
                for k, g in enumerate(active):
                    s = states[g]
                    legal = legal_policy_mask(s.history, s.next_player, x, y)
                    z = np.where(legal, logits[k].astype(np.float64) / temperature, -np.inf)
                    p = np.exp(z - z.max())
                    pos = int(rng.choice(len(p), p=p / p.sum()))
                    loc = PASS_LOC if pos == x * y else get_loc(pos % x, pos // x, x)
                    moves[g].append(list(play_move(s, loc)))
                    passes[g] = passes[g] + 1 if loc == PASS_LOC else 0
                    if passes[g] < 2 and len(moves[g]) < cap and not s.history.is_game_finished:
                        still.append(g)
                active = still
            for g in range(games_per_size):
                opening = starts[g]
                init = tuple(tuple(st) for st in opening.initial_stones) if opening is not None else ()
                mv = tuple(tuple(m) for m in moves[g])
                sha = game_identity(x, init, mv, y_size=y)
                records.append(
                    GameRecord(
                        source=f"selfplay/{x}x{y}/{g}",
                        sha256=sha,
                        size=x,
                        initial_stones=init,
                        moves=mv,
                        initial_player=opening.initial_player if opening is not None else "B",
                        komi=SELFPLAY_KOMI,
                        game_rules=SELFPLAY_RULES,
                        y_size=y,
                    )  # fmt: skip
                )
                bar.advance()
    return records


# ------------------------------------------------------------------------------------------ bundled self-play
#: self-play games shipped with katadeploy (``katadeploy/data/games/selfplay.jsonl``): the default calibration's
#: 7x7, 9x9, 13x13 and 9x13 positions (19x19 ones come from the bundled real games)
BUNDLED_SELFPLAY_FILE = "selfplay.jsonl"
_GAME_KEYS = ("source", "boardXSize", "boardYSize", "initialStones", "moves", "initialPlayer", "komi", "rules")


def bundled_selfplay_path() -> Path:
    return Path(__file__).resolve().parent / "games" / BUNDLED_SELFPLAY_FILE


def write_games(records: Sequence[GameRecord], path: Path, generator: dict[str, object]) -> None:
    """One JSON object per game (analysis-query form plus ``source`` and ``generator``), written atomically."""
    from katadeploy.files import staged

    lines = []
    for r in records:
        obj: dict[str, object] = {
            "source": r.source, "boardXSize": r.x_size, "boardYSize": r.board_y,
            "initialStones": [list(s) for s in r.initial_stones], "moves": [list(m) for m in r.moves],
            "initialPlayer": r.initial_player, "komi": r.komi, "rules": r.game_rules, "generator": generator,
        }  # fmt: skip
        lines.append(json.dumps(obj, separators=(",", ":")))
    with staged(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_games(path: Path, nn_size: int = 19) -> list[GameRecord]:
    """The games of a :func:`write_games` file whose board fits ``nn_size`` x ``nn_size``, each replayed by
    katadeploy's rules (an illegal or malformed game raises :class:`KatadeployError` naming its line)."""
    out: list[GameRecord] = []
    for n, line in enumerate(Path(path).read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            missing = [k for k in _GAME_KEYS if k not in obj]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            x, y = int(obj["boardXSize"]), int(obj["boardYSize"])
            if max(x, y) > nn_size:
                continue
            stones = tuple((str(c), str(v)) for c, v in obj["initialStones"])
            moves = tuple((str(c), str(v)) for c, v in obj["moves"])
            record = GameRecord(
                source=str(obj["source"]), sha256=game_identity(x, stones, moves, y_size=y), size=x,
                initial_stones=stones, moves=moves, initial_player=str(obj["initialPlayer"]),
                komi=float(obj["komi"]), game_rules=str(obj["rules"]), y_size=y,
            )  # fmt: skip
            position_from_query(record.query(record.n_moves, record.game_rules), max_board_size=nn_size, strict=True)
        except (ValueError, TypeError, KeyError, PositionError) as exc:
            raise KatadeployError(f"{path}:{n}: bad self-play game: {exc}") from None
        out.append(record)
    return out
