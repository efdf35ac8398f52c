"""The search log ``katadeploy analysis`` writes to stderr after each search when ``logSearchInfo = true``.

Contract
--------
:func:`search_log` is KataGo's ``PlayUtils::printGenmoveLog`` (``cpp/program/playutils.cpp``) as the analysis
engine calls it (no chosen move, no time): the root board (``Board::printBoard``), the rules, then

* ``Root visits: N``, ``New playouts: N`` (this search),
* ``NN rows: N``, ``NN batches: N``, ``NN avg batch size: X`` - the evaluator's cumulative counters since the
  engine started (rows evaluated by the net and evaluator calls; cache hits are not rows), exactly the lines
  ``katadeploy bench engine`` reads from KataGo,
* ``PlayoutDoublingAdvantage: X`` when it is not 0, and ``PV: ...`` (the principal variation, 25 moves at most).

KataGo then prints the top of the search tree; this log does not (``Tree: (not printed by katadeploy)``). The
server writes the log before the search's final reply, as KataGo does.

One line is katadeploy's own, last, so the engine's cost can be measured from outside
(:mod:`katadeploy.bench.engine`)::

    katadeploy timing: searches=S playouts=P search_wall_s=W search_cpu_s=C nn_rows=R nn_batches=B nn_wall_s=NW nn_cpu_s=NC

Every value is cumulative since the engine started: ``searches``/``playouts`` over all finished searches;
``search_wall_s`` the wall time from creating each search to its end; ``search_cpu_s`` the CPU time
(``time.thread_time``) of the analysis threads over the same spans less the CPU time those threads spent inside
the evaluator (a search thread that finds the evaluator idle runs the batch itself, see
:mod:`~katadeploy.search.batcher`) - so tree work, move making, features, NN cache, symmetries and
post-processing, but not the net;
``nn_wall_s`` the wall time inside the evaluator's ``evaluate`` calls and ``nn_cpu_s`` the CPU time of the whole
process (every thread, so a runtime's own thread pool counts) over those calls. :class:`SearchCounters` keeps
the search side of these totals, thread-safely.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from katadeploy.go.coords import loc_to_string
from katadeploy.go.history import get_opp
from katadeploy.search.batcher import NNBatcher
from katadeploy.search.results import principal_variation
from katadeploy.search.search import Search

PV_LEN = 25
TIMING_PREFIX = "katadeploy timing:"


@dataclass
class SearchTotals:
    searches: int = 0
    playouts: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0


class SearchCounters:
    """Cumulative search totals of one engine (every analysis thread adds its finished searches)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._totals = SearchTotals()

    def add(self, playouts: int, wall_s: float, cpu_s: float) -> SearchTotals:
        """Add one finished search; returns a snapshot of the totals including it."""
        with self._lock:
            t = self._totals
            t.searches += 1
            t.playouts += playouts
            t.wall_s += wall_s
            t.cpu_s += cpu_s
            return self.snapshot()

    def snapshot(self) -> SearchTotals:
        with self._lock:
            t = self._totals
            return SearchTotals(t.searches, t.playouts, t.wall_s, t.cpu_s)


def _num(x: float) -> str:
    """C++ ``ostream << double`` (6 significant digits)."""
    return f"{x:g}"


def timing_line(totals: SearchTotals, batcher: NNBatcher) -> str:
    return (
        f"{TIMING_PREFIX} searches={totals.searches} playouts={totals.playouts} "
        f"search_wall_s={totals.wall_s:.6f} search_cpu_s={totals.cpu_s:.6f} nn_rows={batcher.rows} "
        f"nn_batches={batcher.batches} nn_wall_s={batcher.nn_seconds:.6f} nn_cpu_s={batcher.nn_cpu_seconds:.6f}"
    )


def search_log(s: Search, batcher: NNBatcher, totals: SearchTotals) -> str:
    """The whole log of one finished search (see the module contract), lines joined by newlines."""
    hist = s.root_hist
    xs, ys = s.x_size, s.y_size
    rows, batches = batcher.rows, batcher.batches
    lines = [s.root_board.to_printed(hist=hist.move_history).rstrip("\n"), str(hist.rules)]
    lines.append(f"Root visits: {s.root.visits}")
    lines.append(f"New playouts: {s.playouts}")
    lines.append(f"NN rows: {rows}")
    lines.append(f"NN batches: {batches}")
    lines.append(f"NN avg batch size: {_num(rows / batches if batches else 0.0)}")
    p = s.params
    if p.playout_doubling_advantage != 0:
        pda_pla = p.playout_doubling_advantage_pla or s.root_pla
        pda = (
            -p.playout_doubling_advantage if s.root_pla == get_opp(pda_pla) else p.playout_doubling_advantage
        )
        lines.append(f"PlayoutDoublingAdvantage: {_num(pda)}")
    pv, _, _ = principal_variation(s, s.root, PV_LEN)
    lines.append("PV: " + " ".join(loc_to_string(s.pos_to_loc(pos), xs, ys) for pos in pv))
    lines.append("Tree: (not printed by katadeploy)")
    lines.append(timing_line(totals, batcher))
    return "\n".join(lines)
