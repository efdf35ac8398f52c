"""Fixtures for the search tests: the small g170 net, a torch evaluator and an analysis config."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def g170(g170_path: Path):
    from katadeploy.model.format import load_model

    return load_model(g170_path)


@pytest.fixture(scope="session")
def torch_eval(g170):
    from katadeploy.runtime.torch_runtime import TorchEvaluator

    return TorchEvaluator(g170, threads=1)


def write_cfg(path: Path, **keys: object) -> Path:
    base = {
        "logToStderr": "true",
        "reportAnalysisWinratesAs": "BLACK",
        "numAnalysisThreads": 2,
        "numSearchThreads": 1,
        "nnMaxBatchSize": 16,
        "maxVisits": 20,
        "nnRandomize": "true",
        "wideRootNoise": 0.04,
    }
    base.update(keys)
    path.write_text("".join(f"{k} = {v}\n" for k, v in base.items() if v is not None), encoding="utf-8")
    return path


@pytest.fixture()
def cfg_factory(tmp_path: Path):
    counter = iter(range(1000))

    def make(**keys: object) -> Path:
        return write_cfg(tmp_path / f"analysis{next(counter)}.cfg", **keys)

    return make
