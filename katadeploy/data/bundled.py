"""The 80 bundled positions (``katadeploy/data/positions/oracle80.jsonl``): 60 from real AI games on 19x19 and
20 random 7x7, 9x9 and 13x13 ones, the same positions as ``shared/oracle``.

Contract: :func:`bundled_text` is the file's text and :data:`BUNDLED_SOURCE` how reports name it;
:func:`bundled_queries` parses it into analysis-query dicts (the format :mod:`katadeploy.go.position` reads),
optionally only those that fit an ``nn_x`` x ``nn_y`` tensor (``exact``: only those that fill it);
:func:`position_games` names the SGF files their 19x19 positions were sampled from (``id`` ``"<file>@<move>"``), which
the default calibration holds out so that the 80 positions stay a test set. This is the one reader of the bundled
positions.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

BUNDLED_FILE = "oracle80.jsonl"
BUNDLED_SOURCE = f"bundled {BUNDLED_FILE}"


def bundled_text() -> str:
    return resources.files("katadeploy.data").joinpath("positions", BUNDLED_FILE).read_text("utf-8")


def bundled_queries(
    nn_x: int | None = None, nn_y: int | None = None, exact: bool = False
) -> list[dict[str, Any]]:
    """The bundled positions as query dicts, in file order; with ``nn_x``/``nn_y`` only those that fit (or, with
    ``exact``, fill) that tensor."""
    out = []
    for line in bundled_text().splitlines():
        if not line.strip():
            continue
        q = json.loads(line)
        x, y = int(q.get("boardXSize", 19)), int(q.get("boardYSize", 19))
        if nn_x is not None and (x > nn_x if not exact else x != nn_x):
            continue
        if nn_y is not None and (y > nn_y if not exact else y != nn_y):
            continue
        out.append(q)
    return out


def position_games() -> frozenset[str]:
    """The SGF file names (``DeepZenGo_0021.sgf``) the bundled positions come from; random positions name none."""
    ids = (str(q.get("id", "")) for q in bundled_queries())
    return frozenset(pid.rsplit("@", 1)[0] for pid in ids if "@" in pid)
