"""Issue 11 probe: one calibration file from two (``katadeploy calibrate`` outputs of the same tensor size), so an
export can calibrate on both distributions; each split stays disjoint by game, as each input's was.

The arrays are concatenated; B's game indices are offset past A's game names. Validation on either input's own
validation split stays held out, since the merged calibration split holds only the inputs' calibration splits' games.

Usage: python scripts/reports/int8/merge_calib.py A.npz B.npz OUT.npz
"""

from __future__ import annotations

import json
import sys

import numpy as np

from katadeploy.data.calibration import save_calibration


def merge(a_path: str, b_path: str, out: str) -> None:
    a, b = np.load(a_path), np.load(b_path)
    if a["spatial"].shape[1:] != b["spatial"].shape[1:]:
        raise SystemExit(f"tensor shapes differ: {a['spatial'].shape[1:]} vs {b['spatial'].shape[1:]}")
    if set(a.files) != set(b.files):
        raise SystemExit(f"the files hold different fields: {sorted(set(a.files) ^ set(b.files))}")
    arrays = {}
    for k in a.files:
        if k == "info":
            info = json.loads(str(a["info"]))
            info["merged_from"] = [a_path, b_path]
            arrays[k] = np.array(json.dumps(info))
        elif k == "game":
            arrays[k] = np.concatenate([a["game"], b["game"] + len(a["games"])]).astype(a["game"].dtype)
        else:
            arrays[k] = np.concatenate([a[k], b[k]]).astype(a[k].dtype if a[k].dtype.kind != "U" else str)
    save_calibration(arrays, out)
    print(f"{out}: {len(arrays['spatial'])} positions, {len(arrays['games'])} games")


if __name__ == "__main__":
    merge(*sys.argv[1:4])
