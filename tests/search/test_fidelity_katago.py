"""katadeploy's search against the real KataGo (v1.18.1 OpenCL) on a few 19x19 oracle positions: same net, same
config, one search thread, fixed symmetry. The full 60-position measurement is ``python -m
katadeploy.search.fidelity``; this keeps a small, fast guard in the suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from katadeploy.search import fidelity
from katadeploy.search.commands import analysis_argv

pytestmark = [pytest.mark.katago, pytest.mark.timeout(1800)]


def test_agrees_with_katago(katago, g170_path: Path, shared_dir: Path, tmp_path: Path):
    from katadeploy.engine import katago as kg

    visits = 50
    positions = fidelity.load_positions(shared_dir, 6)
    queries = [{**p, "maxVisits": visits} for p in positions]
    kg_cfg = kg.write_analysis_config(tmp_path / "katago.cfg", **{**fidelity.CONFIG, "maxVisits": visits})
    ours_cfg = fidelity.write_config(tmp_path / "ours.cfg", visits)
    theirs, _ = fidelity.run_engine(
        katago.argv("analysis", "-config", kg_cfg, "-model", g170_path), katago.env, queries, 900
    )
    ours_argv = analysis_argv(g170_path, ours_cfg)
    ours, _ = fidelity.run_engine(ours_argv, None, queries, 900)
    rows = fidelity.compare(theirs, ours, positions)
    assert all(r["raw_winrate_diff"] < 0.002 for r in rows)  # same net, same root inputs
    assert sum(r["katago_best"] == r["ours_best"] for r in rows) >= len(rows) - 1
    assert max(r["winrate_diff"] for r in rows) < 0.05
