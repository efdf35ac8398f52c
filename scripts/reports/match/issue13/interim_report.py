"""Write match.md / match.json / elo.png for a ledger that is still growing (a match run a slice per session).

Usage: ``python interim_report.py DIR [DIR ...]`` (each DIR holds a ``games.jsonl``). The summary is
:func:`katadeploy.match.report.summarize` over the finished games, with ``"interim": true`` and the ledger
header's players, visits and board, written as ``interim.json``, ``interim.md`` and ``elo.png``; the match itself
writes ``match.*`` (with throughput and cluster facts, which a ledger alone does not hold) when a run ends.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from katadeploy.files import atomic_write_text
from katadeploy.match.report import summarize, write_plot


def main(dirs: list[str]) -> None:
    for d in map(Path, dirs):
        lines = (d / "games.jsonl").read_text("utf-8").splitlines()
        config = json.loads(lines[0])["config"]
        records = [json.loads(line) for line in lines[1:] if line.strip()]
        labels, visits = config["labels"], config["visits"]
        players = {k: {"label": labels[i], "visits": visits[i], **config["players"][i]} for i, k in enumerate("AB")}
        extra = {"interim": True, "players": players, "board": config.get("board"), "komi": config.get("komi"),
                 "rules": config.get("rules"), "ledger": "games.jsonl",
                 "game_seconds_total": round(sum(float(r.get("seconds", 0)) for r in records), 1)}  # fmt: skip
        s = summarize(records, extra)
        note = write_plot(s, d / "elo.png")
        if note:
            s["plot_note"] = note
        atomic_write_text(d / "interim.json", json.dumps(s, indent=2) + "\n")
        line = (f"{labels[0]} (A) vs {labels[1]} (B), {s['board']}x{s['board']}, {visits[0]}/{visits[1]} visits: "
                f"{s['games']} games, A {s['wins']}-{s['losses']}-{s['draws']}, A's Elo {s['elo']:+.1f} "
                f"[{s['elo_ci95'][0]:+.1f}, {s['elo_ci95'][1]:+.1f}] (95%); games ended by {s['end']}, "
                f"mean {s['mean_moves']} moves")  # fmt: skip
        atomic_write_text(d / "interim.md", f"# Interim: {d.name}\n\n{line}\n\nA slice of a longer match; "
                          "`run.sh` continues it.\n")  # fmt: skip
        print(f"{d.name}: {line}")


if __name__ == "__main__":
    main(sys.argv[1:])
