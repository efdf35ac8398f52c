"""Match players: what ``A`` and ``B`` on the command line name, and the engine process that plays for each.

Contract
--------
* :func:`resolve_player` turns a command-line spec into a :class:`PlayerSpec`, on the driver, failing early with
  one clear :class:`~katadeploy.errors.KatadeployError` line:

  - ``katago:NET``: the real KataGo binary (:func:`katadeploy.engine.katago.locate`: ``$KATADEPLOY_KATAGO`` or
    the installed v1.18.1; OpenCL is checked) searching ``NET`` (a path, URL or known name);
  - a KataGo net (``.bin.gz`` ...; or a known name / URL, pulled once here) or an exported artifact (a file or
    directory with its sidecar manifest): searched by ``katadeploy analysis`` (our port of KataGo's MCTS),
    started with :func:`katadeploy.search.commands.analysis_argv` and ``-nn-threads 1``. An artifact also needs
    its source net (``-net``): ``net`` when given, else the manifest's ``source.file`` looked for next to the
    artifact and in the working directory, else its ``source.name`` if that is a known net; a candidate whose
    sha256 differs from the manifest's is skipped, and none found is an error asking for ``--net``.

  Paths become absolute; on a Ray cluster every node must see them (a shared file system or the same paths).
  ``fingerprint`` (kind, visits and the sha256 of the net, or an artifact's
  :func:`~katadeploy.artifact.content_sha256`: its payload and function, not its build date) identifies the
  player in the ledger, so ``--resume`` refuses a changed player but accepts the same artifact re-exported on
  another machine (a long match can go on across sessions from its ledger).
* :class:`EnginePlayer` starts the player's engine under
  :class:`katadeploy.engine.AnalysisEngine` (restart on crash, per-move timeout) with a config written by
  :func:`write_config`: both engines get the same search settings - one analysis thread, one search thread,
  ``maxVisits`` = the player's visits, ``nnRandomize = true`` (a random symmetry per evaluation, so games
  differ), graph search off (katadeploy's search does not implement it, so KataGo runs without it too), a 2^18
  NN cache, winrates reported from Black's side, everything else at each engine's analysis defaults (KataGo's
  own config also turns FP16 off). :meth:`EnginePlayer.genmove` plays the reply's first move (``order`` 0 in
  ``moveInfos``: the engine's own choice, which KataGo makes from visits with an LCB check) and reports the root
  winrate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import katadeploy
from katadeploy.artifact import content_sha256, sidecar_path
from katadeploy.errors import KatadeployError
from katadeploy.hashing import sha256_file
from katadeploy.match.game import EngineMove

KATAGO_PREFIX = "katago:"
NET_SUFFIXES = (".bin.gz", ".bin", ".txt.gz", ".txt")
START_TIMEOUT_S = 300.0
KATAGO_START_TIMEOUT_S = 1800.0  # first use of a net shape on an OpenCL CPU device runs KataGo's tuner

SEARCH_KEYS: dict[str, Any] = {
    "reportAnalysisWinratesAs": "BLACK",
    "numAnalysisThreads": 1,
    "numSearchThreads": 1,
    "nnMaxBatchSize": 1,
    "nnRandomize": True,
    "useGraphSearch": False,
    "nnCacheSizePowerOfTwo": 18,
}
KATAGO_KEYS: dict[str, Any] = {"openclUseFP16": False}


@dataclass(frozen=True)
class PlayerSpec:
    """``kind`` is ``"katadeploy"`` or ``"katago"``; ``model`` an absolute path; ``label`` for reports."""

    label: str
    kind: str
    model: str
    visits: int
    sha256: str
    net: str | None = None  # an artifact's source net (absolute path)

    @property
    def fingerprint(self) -> dict[str, Any]:
        return {"kind": self.kind, "visits": self.visits, "sha256": self.sha256}

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "model": self.model, "visits": self.visits,
                "sha256": self.sha256, "net": self.net}  # fmt: skip


def _net_path(spec: str) -> Path:
    from katadeploy.model.hub import resolve_model

    return Path(resolve_model(spec, quiet=True)).resolve()


def _source_net(artifact: Path, net: str | None) -> Path:
    """The net ``artifact`` was exported from (see the module contract)."""
    from katadeploy.artifact import read_manifest
    from katadeploy.model.hub import find_entry

    if net is not None:
        return _net_path(net)
    source = read_manifest(artifact).source
    want = source.get("sha256")
    candidates: list[Path] = []
    if source.get("file"):
        f = Path(str(source["file"]))
        candidates += [f] if f.is_absolute() else [artifact.parent / f, Path.cwd() / f]
    if source.get("name") and find_entry(str(source["name"])) is not None:
        candidates.append(_net_path(str(source["name"])))
    for c in candidates:
        if c.is_file() and (not want or sha256_file(c) == want):
            return c.resolve()
    raise KatadeployError(
        f"{artifact.name}: cannot find the net it was exported from ({source.get('file') or source.get('name')}); "
        "pass --net NET"
    )


def resolve_player(spec: str, visits: int, net: str | None = None) -> PlayerSpec:
    """A :class:`PlayerSpec` for ``spec`` (see the module contract); ``net``: an artifact's source net."""
    if visits < 1:
        raise KatadeployError(f"visits must be >= 1, got {visits}")
    if spec.startswith(KATAGO_PREFIX):
        from katadeploy.engine import katago

        name = spec[len(KATAGO_PREFIX) :]
        if not name:
            raise KatadeployError("katago:NET needs a net, e.g. katago:g170-b6c96.bin.gz")
        path = _net_path(name)
        katago.locate()
        katago.check_opencl()
        return PlayerSpec(f"katago:{path.name}", "katago", str(path), visits, sha256_file(path))
    p = Path(spec).expanduser()
    if p.exists():
        p = p.resolve()
        if p.name.lower().endswith(NET_SUFFIXES) and p.is_file():
            return PlayerSpec(p.name, "katadeploy", str(p), visits, sha256_file(p))
        manifest = p if p.suffix == ".json" and p.is_file() else sidecar_path(p)
        if manifest.is_file():
            source = _source_net(p, net)
            return PlayerSpec(p.name, "katadeploy", str(p), visits, content_sha256(manifest), str(source))
        raise KatadeployError(
            f"{spec} is neither a KataGo net (.bin.gz, .bin, .txt.gz, .txt) nor an artifact with its manifest "
            f"({manifest.name})"
        )
    path = _net_path(spec)
    return PlayerSpec(path.name, "katadeploy", str(path), visits, sha256_file(path))


def write_config(player: PlayerSpec, path: Path) -> Path:
    """The analysis config of ``player`` (see the module contract)."""
    keys = {**SEARCH_KEYS, "maxVisits": player.visits}
    if player.kind == "katago":
        from katadeploy.engine import katago

        return katago.write_analysis_config(path, **keys, **KATAGO_KEYS)
    from katadeploy.engine.katago import format_config_value
    from katadeploy.files import atomic_write_text

    return atomic_write_text(path, "".join(f"{k} = {format_config_value(v)}\n" for k, v in keys.items()))


def engine_command(player: PlayerSpec, config: Path) -> tuple[list[str], dict[str, str]]:
    """argv and environment of ``player``'s engine (never a shell)."""
    if player.kind == "katago":
        from katadeploy.engine import katago

        kg = katago.locate()
        return kg.argv("analysis", "-config", config, "-model", player.model), dict(kg.env)
    from katadeploy.search.commands import analysis_argv

    env = dict(os.environ)
    root = str(Path(katadeploy.__file__).resolve().parent.parent)  # so `python -m katadeploy.cli` imports it
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    extra = ["-net", player.net] if player.net else []
    return analysis_argv(player.model, config, "-nn-threads", "1", *extra), env


class EnginePlayer:
    """One running engine for ``player`` (see the module contract)."""

    def __init__(self, player: PlayerSpec, workdir: Path, name: str, move_timeout: float | None = 600.0):
        from katadeploy.engine import AnalysisEngine

        self.player = player
        config = write_config(player, workdir / f"{name}.cfg")
        argv, env = engine_command(player, config)
        start = KATAGO_START_TIMEOUT_S if player.kind == "katago" else START_TIMEOUT_S
        self.engine = AnalysisEngine(argv, env=env, start_timeout=start, query_timeout=move_timeout)

    def genmove(self, query: dict[str, Any]) -> EngineMove:
        reply = self.engine.analyze({**query, "maxVisits": self.player.visits})
        best = reply.best_move
        root = reply.root_info
        if best is None or not best.move:
            return EngineMove("(no move)")
        return EngineMove(
            str(best.move), None if root is None else root.winrate, None if root is None else root.visits
        )

    @property
    def pid(self) -> int | None:
        return self.engine.pid

    def close(self) -> None:
        self.engine.close()
