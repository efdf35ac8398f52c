"""``katadeploy match``: play player A against player B on Ray, keep a ledger, report Elo with its interval.

Contract: :func:`run_match` takes :class:`MatchOptions` and

1. checks the options and resolves both players on the driver (:func:`katadeploy.match.players.resolve_player`),
   chooses the openings (:func:`katadeploy.match.openings.choose_openings`) and opens the ledger
   ``OUT/games.jsonl`` (:func:`katadeploy.match.ledger.open_ledger`; ``resume`` continues it, skipping the
   games it holds; a ledger whose games used other openings is refused);
2. plays the missing games ``0..games-1`` on Ray (:mod:`katadeploy.match.cluster`): game ``i`` uses opening
   ``i // 2`` and gives A Black when ``i`` is even, so every opening is played once with each colour; ``workers``
   defaults to the cluster's CPUs (capped at the games left);
3. as each game ends: appends it to the ledger, writes ``OUT/sgf/game-NNNN.sgf``, updates the progress line
   (running Elo and interval) and, with ``sprt``, stops at a verdict (:mod:`katadeploy.match.sprt`, pentanomial on
   complete pairs);
4. writes ``match.json``, ``match.md`` and ``elo.png`` (:mod:`katadeploy.match.report`) and returns the summary.

``games_per_hour`` counts the games played in this run over the time from the engines being ready to the last
game (the engines' start-up is ``engine_start_seconds``); it is the steady rate of the whole pool. Interrupting
(Ctrl-C) leaves a valid ledger; ``--resume`` continues it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from katadeploy.errors import KatadeployError
from katadeploy.go.rules import MAX_USER_KOMI, MIN_USER_KOMI, komi_is_int_or_half_int, parse_rules
from katadeploy.match.elo import fit
from katadeploy.match.game import GameSettings, GameSpec
from katadeploy.match.ledger import open_ledger
from katadeploy.match.openings import OpeningSet, choose_openings, default_moves
from katadeploy.match.players import PlayerSpec, resolve_player
from katadeploy.match.record import write_game_sgf
from katadeploy.match.report import a_score, summarize, write_reports
from katadeploy.match.sprt import SprtResult, pentanomial, sprt
from katadeploy.progress import Progress, log

DEFAULT_GAMES = 100
DEFAULT_VISITS = 100
START_TIMEOUT_S = 1800.0


@dataclass
class MatchOptions:
    a: str
    b: str
    visits_a: int = DEFAULT_VISITS
    visits_b: int = DEFAULT_VISITS
    games: int = DEFAULT_GAMES
    board: int = 19
    komi: float = 7.5
    rules: str = "tromp-taylor"
    openings: list[str] | None = None
    opening_moves: int | None = None
    out_dir: str | os.PathLike[str] = "match-out"
    address: str | None = None
    workers: int | None = None
    resume: bool = False
    sprt: tuple[float, float] | None = None
    max_moves: int | None = None
    resign_threshold: float = 0.05
    resign_moves: int = 3
    seed: int = 0
    net: str | None = None  # the source net of artifact players (default: found from their manifests)
    move_timeout: float | None = 600.0
    progress: bool = True


def _check(o: MatchOptions) -> GameSettings:
    if o.games < 1:
        raise KatadeployError("--games must be >= 1")
    if not 2 <= o.board <= 19:
        raise KatadeployError(f"--board {o.board}: katadeploy plays boards of 2..19")
    parse_rules(o.rules)  # a RulesError is a one-line KatadeployError
    if not (MIN_USER_KOMI <= o.komi <= MAX_USER_KOMI and komi_is_int_or_half_int(o.komi)):
        raise KatadeployError(f"--komi {o.komi:g}: must be an integer or half-integer in [-150, 150]")
    if not 0.0 <= o.resign_threshold < 0.5:
        raise KatadeployError("--resign-threshold must lie in [0, 0.5) (0 disables resignation)")
    if o.resign_moves < 1:
        raise KatadeployError("--resign-moves must be >= 1")
    max_moves = o.max_moves if o.max_moves is not None else 3 * o.board * o.board
    if max_moves < 1:
        raise KatadeployError("--max-moves must be >= 1")
    if o.workers is not None and o.workers < 1:
        raise KatadeployError("--workers must be >= 1")
    return GameSettings(o.board, float(o.komi), o.rules, max_moves, o.resign_threshold, o.resign_moves)


def _config(
    o: MatchOptions, players: tuple[PlayerSpec, PlayerSpec], settings: GameSettings
) -> dict[str, Any]:
    moves = default_moves(o.board) if o.opening_moves is None else o.opening_moves
    sources = sorted(str(Path(s).resolve()) for s in o.openings) if o.openings else None
    return {
        "players": [p.fingerprint for p in players], "labels": [p.label for p in players],
        "visits": [p.visits for p in players], "board": o.board, "komi": settings.komi, "rules": o.rules,
        "openings": {"sources": sources, "moves": moves, "seed": o.seed}, "max_moves": settings.max_moves,
        "resign_threshold": settings.resign_threshold, "resign_moves": settings.resign_moves, "games": o.games,
    }  # fmt: skip


def _sprt(records: list[dict[str, Any]], bounds: tuple[float, float] | None) -> SprtResult | None:
    if bounds is None:
        return None
    by_index = {int(r["game"]): a_score(r) for r in records}
    pairs = [(by_index[i], by_index[i + 1]) for i in sorted(by_index) if i % 2 == 0 and i + 1 in by_index]
    return sprt(pentanomial(pairs), *bounds)


def _label(records: list[dict[str, Any]]) -> str:
    scores = [a_score(r) for r in records]
    w, l, d = scores.count(1.0), scores.count(0.0), scores.count(0.5)
    return f"match {fit(w, l, d)} (+{w} -{l} ={d})"


def run_match(o: MatchOptions) -> dict[str, Any]:
    settings = _check(o)
    players = (resolve_player(o.a, o.visits_a, o.net), resolve_player(o.b, o.visits_b, o.net))
    openings: OpeningSet = choose_openings(
        o.board, -(-o.games // 2), sources=o.openings, moves=o.opening_moves, rules=o.rules, komi=settings.komi,
        seed=o.seed,
    )  # fmt: skip
    out = Path(o.out_dir)
    config = _config(o, players, settings)
    ledger = open_ledger(out, config, o.resume)
    for note in ledger.notes:
        log(note, o.progress)
    for r in ledger.records.values():
        if r.get("opening") != openings.for_game(int(r["game"])).id:
            ledger.close()
            raise KatadeployError(
                f"--resume: game {r['game']} in {ledger.path} used opening {r.get('opening')!r}, this match would "
                f"use {openings.for_game(int(r['game'])).id!r}; use another -o"
            )
    names = {
        "A": f"A: {players[0].label} ({players[0].visits}v)",
        "B": f"B: {players[1].label} ({players[1].visits}v)",
    }
    todo = [i for i in range(o.games) if i not in ledger.records]
    verdict = _sprt(ledger.ordered(), o.sprt)
    if verdict is not None and verdict.verdict:
        todo = []
    extra: dict[str, Any] = {"workers": 0, "address": o.address or "local", "cluster_cpus": 0.0,
                             "engine_start_seconds": 0.0, "games_per_hour": 0.0, "replays": 0}  # fmt: skip
    played = 0
    t_ready = time.monotonic()
    t_last = t_ready
    stopped = False
    try:
        if todo:
            from katadeploy.match.cluster import WorkerPool, connect

            cluster = connect(o.address)
            try:
                workers = min(o.workers or max(1, int(cluster.cpus)), len(todo))
                log(f"{players[0].label} vs {players[1].label}: {len(todo)} game(s) on {workers} Ray worker(s) "
                    f"({cluster.address}, {cluster.cpus:g} CPUs); {openings.source}", o.progress)  # fmt: skip
                pool = WorkerPool(players, workers, cluster.cpus, o.move_timeout)
                t0 = time.monotonic()
                try:
                    pool.start(timeout=START_TIMEOUT_S)
                    t_ready = t_last = time.monotonic()
                    extra.update(workers=workers, address=cluster.address, cluster_cpus=cluster.cpus,
                                 engine_start_seconds=round(t_ready - t0, 2))  # fmt: skip
                    bar = Progress(len(todo), _label(ledger.ordered()), quiet=not o.progress)

                    def on_record(record: dict[str, Any]) -> bool:
                        nonlocal played, t_last, verdict
                        ledger.append(record)
                        write_game_sgf(out / "sgf", record, names, o.board, settings.komi, o.rules)
                        played += 1
                        t_last = time.monotonic()
                        verdict = _sprt(ledger.ordered(), o.sprt)
                        bar.label = _label(ledger.ordered())
                        bar.advance()
                        return bool(verdict is not None and verdict.verdict)

                    specs = [GameSpec(i, openings.for_game(i), i % 2 == 0, settings) for i in todo]
                    with bar:
                        stopped = pool.run(specs, on_record)
                finally:
                    extra["replays"] = pool.stats.replays
                    pool.close()
            finally:
                cluster.close()
    finally:
        ledger.close()
    hours = (t_last - t_ready) / 3600.0
    extra["games_per_hour"] = round(played / hours, 2) if played and hours > 0 else 0.0
    extra.update(
        players={"A": players[0].to_dict(), "B": players[1].to_dict()},
        visits={"A": players[0].visits, "B": players[1].visits}, board=o.board, komi=settings.komi,
        rules=o.rules, max_moves=settings.max_moves, resign_threshold=settings.resign_threshold,
        resign_moves=settings.resign_moves, requested_games=o.games, played_this_run=played,
        openings={"source": openings.source, "count": len(openings.openings),
                  "moves": config["openings"]["moves"]},
        sprt=verdict.to_dict() if verdict is not None else None, stopped_by_sprt=stopped,
        ledger=str(ledger.path),
    )  # fmt: skip
    summary = summarize(ledger.ordered(), extra)
    write_reports(summary, out)
    return summary
