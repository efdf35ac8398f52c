"""Plot where an INT8 graph's error sits: each layer's error energy alone in int8, from an export's manifest.

Usage: ``python scripts/reports/int8/energy_plot.py MANIFEST.json OUT.png [--title T]``

Reads ``details.int8.fallback`` of an onnx-int8 manifest exported with ``--option int8_fallback_rank=energy``
(:func:`katadeploy.export.int8_fallback.rank_by_energy`: every candidate layer measured alone in int8, the others
float, on the export's validation split) and draws one bar per layer in network order: its energy (the mean squared
error in units of KataGo's p99 limits that it alone causes) and, on a second axis, its share of the MACs; the layers
the fallback returned to float are marked. The title line gives the all-int8 energy and the sum of the layers'
energies (``additivity`` near 1: the errors add). Prints the same as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


def _order(layer: str) -> tuple[int, str]:
    m = re.search(r"blocks\.(\d+)", layer)
    return (int(m.group(1)) if m else -1, layer)


def _short(layer: str) -> str:
    return layer.replace("/net/", "").replace("/conv/Conv", "").replace("/Conv", "").strip("/")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("manifest", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--title", default="")
    a = ap.parse_args(argv)
    fb = json.loads(a.manifest.read_text())["details"]["int8"].get("fallback") or {}
    if fb.get("rank") != "energy" or not fb.get("ranking"):
        print(f"{a.manifest}: no energy fallback ranking (export with --option int8_fallback_rank=energy)")
        return 1
    rows = sorted(fb["ranking"], key=lambda r: _order(r["layer"]))
    floated = set(fb["floated"])
    e = fb["energy"]
    head = (f"all int8 {e['all_int8']:.3f}, all float {e['all_float']:.3f}, layers alone sum to {e['sum_alone']:.3f} "
            f"(additivity {e['additivity']:.2f}); floated {len(floated)}, int8 MACs {fb['int8_mac_fraction']:.1%}")
    print(f"{a.title}: {head}\n\n| layer | energy alone | MAC share | energy per MAC | floated |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {_short(r['layer'])} | {r['gain']:.4f} | {r['int8_mac_fraction']:.4f} | {r['gain_per_mac']:.3f} | "
              f"{'yes' if r['layer'] in floated else ''} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(8, 0.22 * len(rows)), 4.5))
    x = range(len(rows))
    ax.bar(x, [r["gain"] for r in rows], color=["tab:red" if r["layer"] in floated else "tab:blue" for r in rows])
    ax.set_ylabel("error energy alone in int8")
    ax.set_xticks(list(x), [_short(r["layer"]) for r in rows], rotation=90, fontsize=6)
    ax2 = ax.twinx()
    ax2.plot(list(x), [r["int8_mac_fraction"] for r in rows], "k.", markersize=3)
    ax2.set_ylabel("share of MACs (dots)")
    ax.set_title(f"{a.title}\n{head} (red: floated)", fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
