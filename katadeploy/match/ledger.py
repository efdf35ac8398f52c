"""The match ledger: ``games.jsonl``, one JSON line per finished game, written the moment the game ends.

Contract: the first line is a header ``{"kind": "match", "version": 1, "config": {...}}`` holding everything
that decides what a game is (players, visits, board, rules, komi, openings, limits); each further line is one
game record (:func:`katadeploy.match.game.play_game`, plus ``worker`` and ``attempt``) with ``"kind": "game"``.
:meth:`Ledger.append` writes one whole line, flushes and ``fsync``\\ s it before returning, so a crash loses at
most the game being written.

:func:`open_ledger`:

* no ledger, or one with no game: a fresh ledger is started (the file is rewritten);
* a ledger with games and no ``resume``: :class:`~katadeploy.errors.KatadeployError` (nothing is overwritten);
* ``resume``: the header's config must equal this match's on every key of :data:`FIXED_KEYS` (the error names
  the keys that differ); the games it holds are returned in :attr:`Ledger.records` (by game index; a repeated
  index keeps its first record). A last line cut off by a crash (no newline, not JSON) is dropped with a note and
  the file is truncated after the last whole line; any other bad line is an error naming its line number.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from katadeploy.errors import KatadeployError
from katadeploy.files import atomic_write_text

LEDGER_NAME = "games.jsonl"
VERSION = 1
#: config keys that must match for --resume (the number of games, workers, address and SPRT may change)
FIXED_KEYS = ("players", "visits", "board", "komi", "rules", "openings", "max_moves", "resign_threshold",
              "resign_moves")  # fmt: skip


class Ledger:
    def __init__(
        self, path: Path, config: dict[str, Any], records: dict[int, dict[str, Any]], notes: list[str]
    ):
        self.path = path
        self.config = config
        self.records = records
        self.notes = notes
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def append(self, record: dict[str, Any]) -> None:
        """Write one finished game (``record["game"]`` must be new), durably."""
        index = int(record["game"])
        if index in self.records:
            raise ValueError(f"game {index} is already in the ledger")
        line = json.dumps({"kind": "game", **record}, separators=(",", ":"), allow_nan=False)
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.records[index] = record

    def ordered(self) -> list[dict[str, Any]]:
        """Records in the order they were written (the order games finished)."""
        return list(self.records.values())

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read(path: Path) -> tuple[dict[str, Any] | None, dict[int, dict[str, Any]], list[str]]:
    data = path.read_bytes()
    notes: list[str] = []
    lines = data.split(b"\n")
    complete = data.endswith(b"\n")
    header: dict[str, Any] | None = None
    records: dict[int, dict[str, Any]] = {}
    good_bytes = 0
    for number, raw in enumerate(lines, 1):
        last = number == len(lines)
        if last and not raw:
            break
        try:
            row = json.loads(raw.decode("utf-8"))
            if not isinstance(row, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            if last and not complete:
                notes.append(
                    f"{path}: dropped an unfinished last line (a game cut off by a crash is replayed)"
                )
                with open(path, "r+b") as f:
                    f.truncate(good_bytes)
                break
            raise KatadeployError(
                f"{path} line {number} is not a ledger record; remove it or use another -o"
            ) from None
        good_bytes += len(raw) + 1
        if number == 1:
            if row.get("kind") != "match" or not isinstance(row.get("config"), dict):
                raise KatadeployError(f"{path} is not a katadeploy match ledger (no header line)")
            header = row
            continue
        if row.get("kind") != "game" or not isinstance(row.get("game"), int):
            raise KatadeployError(f"{path} line {number} is not a game record")
        row.pop("kind")
        records.setdefault(row["game"], row)
    return header, records, notes


def open_ledger(out_dir: str | os.PathLike[str], config: dict[str, Any], resume: bool) -> Ledger:
    """Start or continue ``out_dir/games.jsonl`` (see the module contract)."""
    path = Path(out_dir) / LEDGER_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    header, records, notes = (None, {}, []) if not path.exists() else _read(path)
    if records and not resume:
        raise KatadeployError(
            f"{path} already holds {len(records)} game(s): pass --resume to continue that match, or use another -o"
        )
    if resume and header is not None and records:
        old = header["config"]
        differ = [k for k in FIXED_KEYS if old.get(k) != config.get(k)]
        if differ:
            raise KatadeployError(
                f"--resume: {path} is a different match ({', '.join(differ)} differ); use another -o"
            )
    if header is None or not records:
        text = json.dumps({"kind": "match", "version": VERSION, "config": config}, separators=(",", ":"))
        atomic_write_text(path, text + "\n")
        records = {}
    return Ledger(path, config, records, notes)
