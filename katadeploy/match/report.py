"""Match statistics and reports: ``match.json``, ``match.md`` and ``elo.png`` in the output directory.

Contract: :func:`summarize` turns the ledger's records (in the order games finished) into the match summary
dict, whose keys include ``games``, ``wins``, ``losses``, ``draws`` (player A's view), ``elo`` and
``elo_ci95: [lo, hi]`` (:func:`katadeploy.match.elo.fit`), ``players``, ``visits``, ``board``, ``as_black`` /
``as_white`` (A's results by colour), ``end`` (games by how they ended), ``forfeits`` and ``history``
(``[games, elo, lo, hi]`` after each finished game, at most :data:`HISTORY_POINTS` points). :func:`a_score` is
A's score in one record (1, 0.5, 0). :func:`write_reports` writes the three files (JSON and Markdown atomically;
the plot is skipped, with a note in the summary, when matplotlib cannot be imported) and returns their paths.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from katadeploy.files import atomic_write_text
from katadeploy.match.elo import PRIOR, fit

HISTORY_POINTS = 200
MODEL = (
    f"BayesElo model (Rao-Kupper draw parameter), maximum likelihood with a prior of {PRIOR:g} virtual win and "
    f"{PRIOR:g} virtual loss; 95% profile-likelihood interval"
)


def a_score(record: dict[str, Any]) -> float:
    return {"A": 1.0, "B": 0.0}.get(record.get("winner"), 0.5)  # type: ignore[arg-type]


def _wld(records: list[dict[str, Any]]) -> tuple[int, int, int]:
    scores = [a_score(r) for r in records]
    return scores.count(1.0), scores.count(0.0), scores.count(0.5)


def summarize(records: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    wins, losses, draws = _wld(records)
    est = fit(wins, losses, draws)
    n = len(records)
    step = max(1, -(-n // HISTORY_POINTS))
    history = []
    for k in range(step, n + 1, step):
        e = fit(*_wld(records[:k]))
        history.append([k, round(e.elo, 2), round(e.lo, 2), round(e.hi, 2)])
    if n and (not history or history[-1][0] != n):
        history.append([n, round(est.elo, 2), round(est.lo, 2), round(est.hi, 2)])
    black = [r for r in records if r.get("black") == "A"]
    white = [r for r in records if r.get("black") == "B"]
    out = {
        "games": n, "wins": wins, "losses": losses, "draws": draws,
        "elo": round(est.elo, 2), "elo_ci95": [round(est.lo, 2), round(est.hi, 2)], "draw_elo": round(est.draw_elo, 2),
        "score": round((wins + draws / 2) / n, 4) if n else None, "elo_model": MODEL,
        **extra,
        "as_black": dict(zip(("wins", "losses", "draws"), _wld(black))),
        "as_white": dict(zip(("wins", "losses", "draws"), _wld(white))),
        "end": dict(Counter(r.get("end", "?") for r in records)),
        "forfeits": [f"game {r['game']}: {r.get('note')}" for r in records if r.get("end") == "forfeit"],
        "mean_moves": round(sum(len(r.get("moves", ())) for r in records) / n, 1) if n else None,
        "history": history,
    }  # fmt: skip
    return out


def markdown(s: dict[str, Any]) -> str:
    pa, pb = s["players"]["A"], s["players"]["B"]
    lo, hi = s["elo_ci95"]
    lines = [
        f"# katadeploy match: {pa['label']} vs {pb['label']}",
        "",
        f"**A = {pa['label']}** ({pa['kind']}, {pa['visits']} visits) vs **B = {pb['label']}** ({pb['kind']}, "
        f"{pb['visits']} visits), {s['board']}x{s['board']}, komi {s['komi']:g}, rules {s['rules']}",
        "",
        f"**A's Elo over B: {s['elo']:+.1f}, 95% interval [{lo:+.1f}, {hi:+.1f}]** over {s['games']} games "
        f"(A: {s['wins']} wins, {s['losses']} losses, {s['draws']} draws).",
        "",
        "| | wins | losses | draws |",
        "|---|---|---|---|",
        f"| A as Black | {s['as_black']['wins']} | {s['as_black']['losses']} | {s['as_black']['draws']} |",
        f"| A as White | {s['as_white']['wins']} | {s['as_white']['losses']} | {s['as_white']['draws']} |",
        "",
        f"- Elo model: {s['elo_model']}",
        f"- games ended by: {', '.join(f'{k} {v}' for k, v in sorted(s['end'].items())) or '-'}; "
        f"mean length {s['mean_moves']} moves",
        f"- openings: {s['openings']['source']}",
        f"- throughput: {s['games_per_hour']:.1f} games/hour with {s['workers']} worker(s) on {s['address']} "
        f"({s['cluster_cpus']:g} CPUs); engines started in {s['engine_start_seconds']:.1f} s; "
        f"{s['replays']} game(s) replayed after a worker failure",
    ]
    if s.get("sprt"):
        t = s["sprt"]
        lines.append(
            f"- SPRT elo0={t['elo0']:g} elo1={t['elo1']:g} (alpha {t['alpha']:g}, beta {t['beta']:g}): LLR "
            f"{t['llr']:.2f} in [{t['lower']:.2f}, {t['upper']:.2f}] over {t['samples']} game pairs -> "
            f"{t['verdict'] or 'undecided'}"
        )
    if s["forfeits"]:
        lines.append(f"- forfeits: {'; '.join(s['forfeits'])}")
    if s.get("plot_note"):
        lines.append(f"- plot: {s['plot_note']}")
    lines += ["", "Every game: `games.jsonl` (ledger) and `sgf/`."]
    return "\n".join(lines) + "\n"


def write_plot(s: dict[str, Any], path: Path) -> str | None:
    """Elo against games with its 95% band; returns a note instead when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return "matplotlib is not installed; elo.png skipped"
    h = s["history"]
    fig, ax = plt.subplots(figsize=(7, 4))
    if h:
        n = [p[0] for p in h]
        ax.fill_between(n, [p[2] for p in h], [p[3] for p in h], alpha=0.25, label="95% interval")
        ax.plot(n, [p[1] for p in h], label="Elo (A over B)")
    ax.axhline(0.0, color="gray", lw=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("games")
    ax.set_ylabel("Elo")
    ax.set_title(f"{s['players']['A']['label']} vs {s['players']['B']['label']}", fontsize=9)
    ax.legend(loc="best", fontsize=8)
    lo = min([p[2] for p in h] + [-50.0])
    hi = max([p[3] for p in h] + [50.0])
    ax.set_ylim(max(lo, -800.0), min(hi, 800.0))
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return None


def write_reports(s: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    out = Path(out_dir)
    paths = {"json": out / "match.json", "md": out / "match.md"}
    note = write_plot(s, out / "elo.png")
    if note:
        s["plot_note"] = note
    else:
        paths["png"] = out / "elo.png"
    atomic_write_text(paths["json"], json.dumps(s, indent=2) + "\n")
    atomic_write_text(paths["md"], markdown(s))
    return paths
