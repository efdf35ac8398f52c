"""A finished match game as an SGF file (FF[4], written with sgfmill).

Contract: :func:`game_sgf` turns a ledger record (:func:`katadeploy.match.game.play_game`) into SGF bytes with
``SZ``, ``KM``, ``RU`` (KataGo's rules name, which KataGo's SGF reader accepts), ``PB``/``PW`` (the players'
labels with their visits), ``RE`` (``B+R``, ``W+3.5``, ``0``...), ``DT``, ``GN`` (the game index), ``AP``
(katadeploy and its version) and a root comment with the opening, how the game ended and the move count; the
main line holds every move (passes included). :func:`write_game_sgf` writes it atomically to
``DIR/game-NNNN.sgf`` (``NNNN`` the zero-padded game index).
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

from sgfmill import common, sgf

from katadeploy import __version__
from katadeploy.files import atomic_write_bytes


def sgf_name(index: int) -> str:
    return f"game-{index:04d}.sgf"


def game_sgf(record: dict[str, Any], names: dict[str, str], board: int, komi: float, rules: str) -> bytes:
    """SGF of ``record``; ``names`` maps ``"A"``/``"B"`` to the players' labels."""
    game = sgf.Sgf_game(size=board)
    root = game.get_root()
    root.set("KM", float(komi))
    root.set("RU", rules)
    root.set("PB", names[record["black"]])
    root.set("PW", names[record["white"]])
    root.set("RE", record["result"])
    root.set("GN", f"game {record['game']}")
    root.set("DT", datetime.date.today().isoformat())
    root.set("AP", ("katadeploy", __version__))
    comment = (
        f"katadeploy match game {record['game']}: opening {record['opening']} "
        f"({record['opening_moves']} moves), ended by {record['end']} after {len(record['moves'])} moves"
    )
    if record.get("note"):
        comment += f"; {record['note']}"
    root.set("C", comment)
    for colour, vertex in record["moves"]:
        node = game.extend_main_sequence()
        node.set_move(colour.lower(), common.move_from_vertex(vertex, board))
    return game.serialise()


def write_game_sgf(
    directory: str | os.PathLike[str], record: dict[str, Any], names: dict[str, str], board: int, komi: float,
    rules: str,
) -> Path:  # fmt: skip
    path = Path(directory) / sgf_name(int(record["game"]))
    return atomic_write_bytes(path, game_sgf(record, names, board, komi, rules))
