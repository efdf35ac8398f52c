"""The package's layers follow the data: an import graph of ``katadeploy/`` read from the source (``ast``).

Order (a module may import its own layer and the layers before it, never a later one):
utilities (top-level helper modules) -> ``go``, ``model`` -> ``data`` -> the artifact contract
(``katadeploy/artifact.py``) -> ``runtime`` -> ``validate`` -> ``export`` -> ``search`` -> ``bench``, ``match``
-> ``deploy`` -> ``cli``; the analysis-engine client ``engine`` stands beside them: it may use the utilities,
``go`` and ``model``, and only ``search``, ``bench``, ``match``, ``deploy`` and ``cli`` may use it.
Module-level imports must form no cycle. Lazy imports (inside functions) obey the same order.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "katadeploy"

RANK = {
    "go": 1, "model": 1, "data": 2, "artifact": 3, "runtime": 4, "validate": 5, "export": 6, "search": 7,
    "bench": 8, "match": 8, "deploy": 9, "cli": 10,
}  # fmt: skip
ENGINE_MAY_IMPORT = {"go", "model"}
MAY_IMPORT_ENGINE = {"search", "bench", "match", "deploy", "cli"}


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _layer(module: str) -> str:
    """``katadeploy.go.board`` -> ``go``; a top-level helper module (``katadeploy.files``) -> ``util``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "util"
    if (PKG / parts[1]).is_dir():
        return parts[1] if parts[1] in RANK or parts[1] == "engine" else "util"
    return parts[1] if parts[1] in ("artifact", "cli") else "util"


def _type_checking_only(node: ast.stmt) -> bool:
    """``if TYPE_CHECKING:`` blocks: imports for annotations only, never run."""
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(mods: dict[str, Path]) -> list[tuple[str, str, bool]]:
    """``(importer, imported, module_level)`` for every import of a katadeploy module."""
    edges = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(n) for n in tree.body} | {
            id(c)
            for n in tree.body
            if isinstance(n, (ast.Try, ast.If)) and not _type_checking_only(n)
            for c in ast.walk(n)
        }
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join(pkg + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                if t in mods and t != name:
                    edges.append((name, t, id(node) in top))
    return edges


def _allowed(a: str, b: str) -> bool:
    la, lb = _layer(a), _layer(b)
    if lb == "util" or la == lb:
        return True
    if la == "util":
        return b == "katadeploy"  # helpers import only the package root (its __version__)
    if la == "engine":
        return lb in ENGINE_MAY_IMPORT
    if lb == "engine":
        return la in MAY_IMPORT_ENGINE
    return RANK[lb] <= RANK[la]


def test_imports_follow_the_layers():
    mods = _modules()
    bad = sorted(
        f"{a} -> {b}{'' if top else ' (lazy)'}" for a, b, top in _imports(mods) if not _allowed(a, b)
    )
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_module_level_import_cycle():
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for a, b, top in _imports(mods):
        if top:
            graph[a].add(b)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n) :] + [n]
                pytest.fail("module-level import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(mods):
        if m not in state:
            visit(m)


@pytest.mark.parametrize(
    "module",
    [
        "katadeploy.artifact",
        "katadeploy.runtime.onnx_runtime",
        "katadeploy.runtime.litert_runtime",
        "katadeploy.runtime.openvino_runtime",
        "katadeploy.runtime.coreml_runtime",
        "katadeploy.runtime.tensorrt_runtime",
        "katadeploy.runtime.loader",
        "katadeploy.runtime.rawnn",
    ],
)
def test_runtime_evaluators_load_without_torch(module):
    """Edge boxes run artifacts without torch: importing an evaluator must not import it (or the exporters)."""
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('katadeploy.export'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"
