"""The table of KataGo config keys (``katadeploy/configs/keys.json``), transcribed from KataGo's C++ source.

Contract
--------
* :func:`transcribe` reads a KataGo ``cpp/`` tree and returns one entry per config key that the code reads
  through ``cfg.contains/getInt/getDouble/getBool/getString/getEnabled/getFloat/getFileName`` in
  :data:`SCANNED_FILES`: ``{"key", "type", "min", "max", "scope", "backend", "indexed", "file", "line"}``.
  ``key`` is the literal name; ``indexed`` says the code also reads ``key`` followed by a number (``idxStr``,
  a thread index: ``cudaDeviceToUseThread0``), written ``key<N>``-style patterns in ``patterns``.
  ``backendPrefix + "Suffix"`` reads are expanded for every backend prefix (``cudaUseFP16``, ``trtUseFP16``,
  ...). ``scope`` is ``common`` (setup.cpp, logger, backends: read by gtp and analysis alike), ``gtp``
  (command/gtp.cpp) or ``analysis`` (command/analysis.cpp); ``required`` lists the scopes whose command file
  reads the key with no ``cfg.contains`` guard (KataGo stops with "Could not find key" without it; a heuristic
  on the surrounding lines, command files only — ``numSearchThreads`` in setup.cpp is added by hand);
  ``builds`` is ``["USE_EIGEN_BACKEND"]``-style when every read sits inside one ``#ifdef`` branch (other builds
  never read the key and warn that it is unused). ``backend`` is the prefix owning the key
  (``cuda``, ``trt``, ``metal``, ``opencl``, ``eigen``, ``onnx``) or ``None`` for every backend.
* :func:`load_table` loads the shipped table; :func:`lookup` finds the entry for a concrete key (thread- and
  model-indexed forms included) or None. :func:`check_config` returns one problem string per key of a config
  that KataGo does not read in that mode/backend, or whose value is out of the transcribed range.
* The table records the KataGo revision each entry was read from (``refs``); ``python -m
  katadeploy.deploy.keys CPP_DIR[=REF] ... -o keys.json`` regenerates it (the first tree wins an entry's
  ``file:line``; later ones add keys only they have, e.g. the ONNX backend).
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

BACKEND_PREFIXES = ("cuda", "trt", "metal", "opencl", "eigen", "onnx")

SCANNED_FILES = (
    "program/setup.cpp",
    "core/logger.cpp",
    "command/gtp.cpp",
    "command/analysis.cpp",
    "neuralnet/cudabackend.cpp",
    "neuralnet/trtbackend.cpp",
    "neuralnet/openclbackend.cpp",
    "neuralnet/eigenbackend.cpp",
    "neuralnet/metalbackend.cpp",
    "neuralnet/onnxbackend.cpp",
)

_GETTERS = "contains|getInt|getInt64|getUInt64|getDouble|getFloat|getBool|getString|getEnabled|getFileName|getStrings|getStringsNonEmptyTrim|markAllKeysUsedWithPrefix"
# cfg.getX("key" ...   or   cfg->getX("key" ...
_LITERAL = re.compile(r"cfg(?:\.|->)(" + _GETTERS + r')\(\s*"([A-Za-z][A-Za-z0-9_]*)"\s*(\+)?(?=([^;]*))')
# cfg.getX(backendPrefix+"Suffix" ...
_PREFIXED = re.compile(
    r"cfg(?:\.|->)(" + _GETTERS + r')\(\s*backendPrefix\s*\+\s*"([A-Za-z0-9_-]+)"\s*(\+)?(?=([^;]*))'
)
# string key = "onnxOpenVINODeviceTypeThread" + Global::intToString(t);  (then cfg.contains(key))
_KEYVAR = re.compile(r'string\s+key\s*=\s*"([A-Za-z][A-Za-z0-9_]*)"\s*\+\s*Global::intToString')
_PREPROC = re.compile(r"^#\s*(ifdef|ifndef|if|elif|else|endif)\b\s*(?:defined\()?\s*([A-Z0-9_]+)?")
_RANGE = re.compile(
    r"^[^,;]*,\s*(?:\([a-z0-9_]+\))?\s*(-?[0-9.eE+]+)\s*,\s*(?:\([a-z0-9_]+\))?\s*(-?[0-9.eE+]+)(?:\s*<<\s*(\d+))?\s*\)"
)

_TYPES = {
    "getInt": "int",
    "getInt64": "int",
    "getUInt64": "int",
    "getDouble": "float",
    "getFloat": "float",
    "getBool": "bool",
    "getString": "string",
    "getStrings": "strings",
    "getStringsNonEmptyTrim": "strings",
    "getEnabled": "enabled",
    "getFileName": "file",
    "contains": None,
    "markAllKeysUsedWithPrefix": "prefix",
}


def _scope(rel: str) -> str:
    if rel == "command/gtp.cpp":
        return "gtp"
    if rel == "command/analysis.cpp":
        return "analysis"
    return "common"


def _backend_of(key: str, rel: str) -> str | None:
    for p in BACKEND_PREFIXES:
        if key.startswith(p) and len(key) > len(p) and (key[len(p)].isupper() or key[len(p)] == "_"):
            return p
    if rel.startswith("neuralnet/") and rel.endswith("backend.cpp"):
        name = Path(rel).stem.removesuffix("backend")
        return {"opencl": "opencl", "cuda": "cuda", "trt": "trt", "eigen": "eigen"}.get(name, name)
    return None


def _num(text: str) -> float | int:
    v = float(text)
    return int(v) if v.is_integer() and "." not in text and "e" not in text.lower() else v


def transcribe(cpp: Path, ref: str) -> dict[str, dict[str, Any]]:
    """Every config key read in :data:`SCANNED_FILES` under ``cpp`` (see the module contract)."""
    table: dict[str, dict[str, Any]] = {}

    def add(
        key: str,
        getter: str,
        indexed: bool,
        rest: str,
        rel: str,
        lineno: int,
        required: bool = False,
        cond: str = "",
    ) -> None:
        entry = table.get(key)
        if entry is None:
            entry = table[key] = {
                "key": key,
                "type": None,
                "min": None,
                "max": None,
                "scopes": [],
                "backend": _backend_of(key, rel),
                "indexed": False,
                "file": f"cpp/{rel}",
                "line": lineno,
                "refs": [ref],
                "required": [],
                "builds": [],
                "_conds": set(),
            }
        entry["_conds"].add(cond)
        if required and _scope(rel) not in entry["required"]:
            entry["required"].append(_scope(rel))
        sc = _scope(rel)
        if sc not in entry["scopes"]:
            entry["scopes"].append(sc)
        entry["indexed"] = entry["indexed"] or indexed
        t = _TYPES[getter]
        if t is not None and entry["type"] in (None, "prefix"):
            entry["type"] = t
        if t in ("int", "float") and entry["min"] is None:
            m = _RANGE.match(rest)
            if m:
                hi = _num(m.group(2))
                entry["min"], entry["max"] = _num(m.group(1)), hi << int(m.group(3)) if m.group(3) else hi

    for rel in SCANNED_FILES:
        path = cpp / rel
        if not path.is_file():
            continue
        lines = path.read_text(errors="replace").splitlines()
        conds: list[str] = []  # #ifdef/#ifndef USE_*_BACKEND nesting, "!" for the negated branch
        for lineno, line in enumerate(lines, start=1):
            stripped = line.strip()
            if stripped.startswith("//"):
                continue
            pm = _PREPROC.match(stripped)
            if pm:
                kind, macro = pm.groups()
                if kind in ("ifdef", "ifndef", "if"):
                    conds.append(("!" if kind == "ifndef" else "") + (macro or "?"))
                elif kind == "else" and conds:
                    conds[-1] = conds[-1][1:] if conds[-1].startswith("!") else "!" + conds[-1]
                elif kind == "endif" and conds:
                    conds.pop()
                continue
            cond = next((c for c in reversed(conds) if c.lstrip("!").startswith("USE_")), "")
            for m in _LITERAL.finditer(line):
                getter, key, plus, rest = m.groups()
                # read with no cfg.contains(key) guard nearby: KataGo fails without it ("Could not find key")
                near = "\n".join(lines[max(0, lineno - 4) : lineno])
                required = (
                    getter not in ("contains", "markAllKeysUsedWithPrefix")
                    and not plus
                    and f'contains("{key}"' not in near
                    and "else" not in near.splitlines()[-1]
                    and rel.startswith("command/")
                )
                add(key, getter, bool(plus), rest, rel, lineno, required, cond)
            for m in _PREFIXED.finditer(line):
                getter, suffix, plus, rest = m.groups()
                for p in BACKEND_PREFIXES:
                    if rel == "program/setup.cpp" and p == "onnx" and not _has_onnx_prefix(cpp):
                        continue
                    add(p + suffix, getter, bool(plus), rest, rel, lineno, False, cond)
            for m in _KEYVAR.finditer(line):
                add(m.group(1), "getString", True, "", rel, lineno, False, cond)
    for entry in table.values():
        if entry["type"] is None:
            entry["type"] = "any"
        conds = entry.pop("_conds")
        # read only inside #ifdef USE_X_BACKEND: other builds never read it (and warn "Unused key")
        entry["builds"] = sorted(conds) if "" not in conds and len(conds) == 1 else []
    if "numSearchThreads" in table:  # setup.cpp:445, read unguarded by gtp and analysis alike
        table["numSearchThreads"]["required"] = ["gtp", "analysis"]
    if "nnMaxBatchSize" in table:  # setup.cpp:277, unguarded in analysis (no default batch size) except Eigen
        table["nnMaxBatchSize"]["required"] = ["analysis"]
    if "numAnalysisThreads" in table:  # analysis.cpp:103, unless -analysis-threads is given
        table["numAnalysisThreads"]["required"] = ["analysis"]
    return table


@lru_cache(maxsize=8)
def _has_onnx_prefix_cached(setup: str) -> bool:
    return 'prefixes.push_back("onnx")' in Path(setup).read_text(errors="replace")


def _has_onnx_prefix(cpp: Path) -> bool:
    return _has_onnx_prefix_cached(str(cpp / "program" / "setup.cpp"))


def merge(tables: list[dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for table in tables:
        for key, entry in table.items():
            have = out.get(key)
            if have is None:
                out[key] = dict(entry)
            else:
                for r in entry["refs"]:
                    if r not in have["refs"]:
                        have["refs"].append(r)
                have["indexed"] = have["indexed"] or entry["indexed"]
                for s in entry["scopes"]:
                    if s not in have["scopes"]:
                        have["scopes"].append(s)
    return sorted(out.values(), key=lambda e: e["key"].lower())


# ----------------------------------------------------------------------------------------------------------
# The shipped table


@dataclass(frozen=True)
class KeyTable:
    sources: dict[str, str]
    entries: dict[str, dict[str, Any]]

    def lookup(self, key: str) -> dict[str, Any] | None:
        entry = self.entries.get(key)
        if entry is not None:
            return entry
        m = re.match(r"^(.*?)-?(\d+)$", key)  # thread/model-indexed form: cudaDeviceToUseThread0, xUseFP16-0
        if m:
            base = self.entries.get(m.group(1)) or self.entries.get(m.group(1) + "-")
            if base is not None and base["indexed"]:
                return base
        return None


@lru_cache(maxsize=1)
def load_table() -> KeyTable:
    data = json.loads(resources.files("katadeploy.configs").joinpath("keys.json").read_text())
    return KeyTable(sources=data["sources"], entries={e["key"]: e for e in data["keys"]})


def lookup(key: str) -> dict[str, Any] | None:
    return load_table().lookup(key)


def _value_problem(entry: dict[str, Any], value: str) -> str | None:
    t = entry["type"]
    v = value.strip()
    if t == "bool" and v.lower() not in ("true", "false"):
        return f"expects true/false, got {v!r}"
    if t == "enabled" and v.lower() not in ("true", "false", "auto"):
        return f"expects true/false/auto, got {v!r}"
    if t in ("int", "float"):
        try:
            num = int(v) if t == "int" else float(v)
        except ValueError:
            return f"expects {t}, got {v!r}"
        lo, hi = entry.get("min"), entry.get("max")
        if lo is not None and num < lo or hi is not None and num > hi:
            return f"{v} is outside KataGo's range [{lo}, {hi}]"
    return None


_MACRO = {
    "trt": "TENSORRT",
    "cuda": "CUDA",
    "opencl": "OPENCL",
    "eigen": "EIGEN",
    "metal": "METAL",
    "onnx": "ONNX",
}


def check_config(items: dict[str, str], mode: str, backend: str) -> list[str]:
    """Problems (one line each) with config ``items`` for a KataGo of ``backend`` run in ``mode``."""
    table = load_table()
    problems = missing_required(items, mode)
    for key, value in items.items():
        entry = table.lookup(key)
        if entry is None:
            problems.append(f"{key}: not a key KataGo reads (not in keys.json)")
            continue
        if not ({"common", mode} & set(entry["scopes"])):
            problems.append(f"{key}: KataGo reads it only in {'/'.join(entry['scopes'])}, not {mode}")
        if entry["backend"] is not None and entry["backend"] != backend:
            problems.append(f"{key}: a {entry['backend']} key in a {backend} config")
        builds = entry.get("builds") or []
        if (
            builds
            and not builds[0].startswith("!")
            and builds[0] != f"USE_{_MACRO.get(backend, backend.upper())}_BACKEND"
        ):
            problems.append(f"{key}: read only by {builds[0]} builds ({entry['file']}:{entry['line']})")
        bad = _value_problem(entry, value)
        if bad:
            problems.append(f"{key}: {bad} ({entry['file']}:{entry['line']})")
    return problems


def missing_required(items: dict[str, str], mode: str) -> list[str]:
    """Keys KataGo reads unguarded in ``mode`` that ``items`` lacks (KataGo would stop at startup)."""
    return [
        f"{e['key']}: required in {mode} ({e['file']}:{e['line']})"
        for e in load_table().entries.values()
        if mode in e.get("required", []) and e["key"] not in items
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="regenerate katadeploy/configs/keys.json from KataGo source trees"
    )
    ap.add_argument(
        "trees", nargs="+", help="CPP_DIR=REF (the cpp/ directory of a KataGo checkout, and its ref)"
    )
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args(argv)
    tables, sources = [], {}
    for item in args.trees:
        path, _, ref = item.partition("=")
        tables.append(transcribe(Path(path), ref or path))
        sources[ref or path] = path
    keys = merge(tables)
    doc = {
        "about": "Config keys KataGo reads, transcribed from its C++ source by katadeploy.deploy.keys",
        "sources": {ref: _describe(ref) for ref in sources},
        "files": list(SCANNED_FILES),
        "keys": keys,
    }
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(keys)} keys -> {args.out}")
    return 0


def _describe(ref: str) -> str:
    return {
        "v1.17.2": "lightvector/KataGo tag v1.17.2 (commit 6a1fc5de)",
        "a4ac35b3": "lightvector/KataGo pull/1171 head a4ac35b392945d6af609420b759a8f2c47170546 (ONNX backend; no tag has it)",
    }.get(ref, ref)


if __name__ == "__main__":
    raise SystemExit(main())
