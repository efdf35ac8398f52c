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
        raise pytest.UsageError(
            f"golden data not found at {SHARED}: check out ../shared or set KATADEPLOY_SHARED"
        )


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def g170_path(shared_dir: Path) -> Path:
    """The small g170-b6c96 test net of ``shared/models`` (the search and match tests' net); skips if missing."""
    path = shared_dir / "models" / "g170-b6c96-s175395328-d26788732.bin.gz"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return path


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


# ---------------------------------------------------------------------------------------------- real KataGo
@pytest.fixture(scope="session")
def katago_home() -> Path:
    """KataGo's homeDataDir inside katadeploy's cache, so OpenCL tuning is done once per machine."""
    from katadeploy.engine import katago as kg

    home = kg.katago_home()
    (home / "opencltuning").mkdir(parents=True, exist_ok=True)
    return home


@pytest.fixture(scope="session")
def katago(katago_home: Path):
    """The real KataGo binary ($KATADEPLOY_KATAGO, else installed from the katrain wheel). Without OpenCL the
    tests using it skip with the fix — except under CI ($CI set), where that is a failure."""
    from katadeploy.engine import katago as kg

    try:
        kg.check_opencl()
    except kg.OpenCLMissingError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    if os.environ.get(kg.KATAGO_ENV):
        return kg.locate()
    return kg.install(progress=False, check=False)


@pytest.fixture(scope="session")
def katago_gtp_config(katago_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from katadeploy.engine import katago as kg

    return kg.write_gtp_config(tmp_path_factory.mktemp("katago") / "gtp.cfg", homeDataDir=katago_home)
