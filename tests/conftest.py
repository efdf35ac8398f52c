"""Shared fixtures: the golden data in ``../shared`` (read at run time) and the real nets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KATADEPLOY_SHARED", REPO.parent / "shared"))

SMALL_NETS = {
    "g170-b6c96-s175395328-d26788732": "g170-b6c96-s175395328-d26788732.bin.gz",
    "b7c96h3tfrs-test5-cnorm": "b7c96h3tfrs-test5-cnorm.bin.gz",
    "b7c96h6kv3qk32v16tflrs-fson-bnh": "b7c96h6kv3qk32v16tflrs-fson-bnh.bin.gz",
}
#: golden file stem -> manifest name of the real full-size nets
REAL_NETS = {
    "g170e-b15c192": "g170e-b15c192",
    "kata1-b18c384nbt": "kata1-b18c384nbt",
    "b10c384h6nbttflrs": "b10c384h6nbttflrs",
}


def pytest_configure(config):
    if not SHARED.is_dir():
        raise pytest.UsageError(f"golden data not found at {SHARED}: check out ../shared or set KATADEPLOY_SHARED")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def oracle_positions_path() -> Path:
    return SHARED / "oracle" / "positions.jsonl"


def load_golden(stem: str) -> dict[str, dict]:
    path = SHARED / "oracle" / f"golden_{stem}.jsonl"
    with open(path, encoding="utf-8") as f:
        return {row["id"]: row["raw"] for row in map(json.loads, f)}


def small_net_path(stem: str) -> Path:
    return SHARED / "models" / SMALL_NETS[stem]


def real_net_path(stem: str) -> Path:
    from katadeploy.model.hub import pull

    return pull(REAL_NETS[stem], quiet=True)
