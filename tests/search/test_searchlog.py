"""``logSearchInfo``: the search log (KataGo's ``printGenmoveLog`` lines, NN counters, katadeploy's timing line),
written before the final reply; and the NN row counts against the real KataGo's on the same searches."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from katadeploy.search.batcher import NNBatcher
from katadeploy.search.config import Config
from katadeploy.search.nneval import NNEvaluator, NNSettings
from katadeploy.search.params import load_search_params
from katadeploy.search.requests import QueryDefaults
from katadeploy.search.searchlog import TIMING_PREFIX
from katadeploy.search.server import AnalysisServer

pytestmark = pytest.mark.timeout(600)

Q = {"rules": "tromp-taylor", "komi": 7.0, "boardXSize": 9, "boardYSize": 9}


class _CountingEvaluator:
    """Wraps the torch evaluator and counts the rows and calls it really gets."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.output_scale = inner.output_scale
        self.rows = 0
        self.calls = 0

    def evaluate(self, spatial, global_, meta=None):
        self.rows += len(spatial)
        self.calls += 1
        return self.inner.evaluate(spatial, global_, meta)


def _server(g170, evaluator, stream, threads: int = 1, log: bool = True):
    cfg = Config({"numSearchThreads": str(threads), "wideRootNoise": "0"})
    params, _ = load_search_params(cfg)
    batcher = NNBatcher(evaluator, 8)
    nneval = NNEvaluator(batcher, g170, NNSettings(randomize=False))
    server = AnalysisServer(
        nneval, QueryDefaults(cfg, params, 0), out=stream, err=stream, log_search_info=log
    )
    return server, batcher


def _blocks(text: str) -> list[dict[str, str]]:
    """Each search log as {key: value} of its ``Key: value`` lines, plus the timing line's fields."""
    out: list[dict[str, str]] = []
    for line in text.splitlines():
        if line.startswith("Root visits:"):
            out.append({})
        if out and ": " in line and not line.startswith("{"):
            k, v = line.split(": ", 1)
            out[-1].setdefault(k, v)
        if line.startswith(TIMING_PREFIX):
            out[-1].update(dict(re.findall(r"(\w+)=([-+0-9.eE]+)", line)))
    return out


def test_log_counts_rows_and_batches_before_each_reply(g170, torch_eval):
    ev = _CountingEvaluator(torch_eval)
    stream = io.StringIO()
    server, batcher = _server(g170, ev, stream, threads=4)
    server.start()
    try:
        for i, moves in enumerate([[["B", "E5"]], [["B", "E5"], ["W", "C3"]]]):
            server.handle_line(json.dumps({"id": f"s{i}", "moves": moves, "maxVisits": 30, **Q}))
        server.finish()
    finally:
        batcher.close()
    text = stream.getvalue()
    lines = text.splitlines()
    replies = [i for i, ln in enumerate(lines) if ln.startswith('{"id"')]
    logs = [i for i, ln in enumerate(lines) if ln.startswith("NN rows:")]
    assert len(replies) == 2 and len(logs) == 2
    assert logs[0] < replies[0] < logs[1] < replies[1]  # each log is written before its reply
    blocks = _blocks(text)
    last = blocks[-1]
    # the counters are the rows and calls the evaluator really saw
    assert int(last["NN rows"]) == ev.rows == batcher.rows and int(last["NN batches"]) == ev.calls
    assert float(last["NN avg batch size"]) == pytest.approx(ev.rows / ev.calls, rel=1e-5)
    assert ev.rows / ev.calls > 1.0  # 4 search threads: leaves batched
    assert int(blocks[0]["NN rows"]) < ev.rows
    for b, vis in zip(blocks, (30, 30)):
        assert int(b["Root visits"]) >= vis and int(b["New playouts"]) >= vis - 1
        assert len(b["PV"].split()) >= 1
    assert int(last["searches"]) == 2
    assert int(last["playouts"]) == sum(int(b["New playouts"]) for b in blocks)
    assert int(last["nn_rows"]) == ev.rows and int(last["nn_batches"]) == ev.calls
    wall, cpu, nn = float(last["search_wall_s"]), float(last["search_cpu_s"]), float(last["nn_wall_s"])
    assert 0 < cpu and 0 < nn < wall and float(last["nn_cpu_s"]) > 0
    assert (
        "koPOSITIONALscoreAREAtaxNONEsui1komi7" in text
        and "MoveNum: 2" in text
        and "A B C D E F G H J" in text
    )


def test_no_log_without_log_search_info(g170, torch_eval):
    stream = io.StringIO()
    server, batcher = _server(g170, torch_eval, stream, log=False)
    server.start()
    try:
        server.handle_line(json.dumps({"id": "q", "moves": [], "maxVisits": 3, **Q}))
        server.finish()
    finally:
        batcher.close()
    assert "NN rows" not in stream.getvalue() and server.counters.snapshot().searches == 1


@pytest.mark.katago
@pytest.mark.timeout(1800)
def test_nn_rows_match_katago_search_for_search(katago, g170_path: Path, shared_dir: Path, tmp_path: Path):
    """Same net and config, one search thread, fixed symmetry, cache cleared per position: a faithful port
    evaluates exactly the positions KataGo evaluates, so the ``NN rows`` each search adds are equal."""
    from katadeploy.bench.engine import bench_engine, katago_spec
    from katadeploy.bench.engine_compare import Backend, katadeploy_spec
    from katadeploy.engine import katago as kg
    from katadeploy.search import fidelity

    visits = 40
    positions = fidelity.load_positions(shared_dir, 4)
    cfg = kg.write_analysis_config(tmp_path / "same.cfg", **{**fidelity.CONFIG, "maxVisits": visits})
    ours = katadeploy_spec(Backend("torch", "", "torch", "katadeploy torch", None, None), g170_path)
    runs = {}
    for spec in (katago_spec(katago, g170_path), ours):
        runs[spec.kind] = bench_engine(
            spec, cfg, threads=[1], visits=visits, positions=positions, batch=1, progress=False
        )[0]
    theirs, mine = runs["katago"], runs["katadeploy"]
    assert [p.visits for p in mine.per_position] == [p.visits for p in theirs.per_position]
    assert [p.nn_evals for p in mine.per_position] == [p.nn_evals for p in theirs.per_position]
    assert [p.playouts for p in mine.per_position] == [p.playouts for p in theirs.per_position]
    assert mine.nn_batches == theirs.nn_batches == mine.nn_evals
