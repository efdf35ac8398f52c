"""Building an analysis engine from ``-model`` and ``-config`` the way ``katago analysis`` does.

Contract: :func:`build_engine` reads the config (plus ``-override-config``), loads KataGo's analysis search
parameters, opens the evaluator - a net (``.bin.gz`` or a known name) runs through the torch reference, an exported
artifact through its runtime (its source net is ``net`` when given, else the manifest's source) - and returns an
:class:`EngineSetup` whose ``server`` is ready to :meth:`~katadeploy.search.server.AnalysisServer.serve`.
``setup.notes`` are the one-line reports for everything in the config this engine does not use: not-ported KataGo
features (active by config or by KataGo's default), keys that only KataGo's own backends read, and unknown keys.
Errors are :class:`~katadeploy.errors.KatadeployError` subclasses with one clear line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from katadeploy import __version__
from katadeploy.errors import KatadeployError
from katadeploy.search.batcher import NNBatcher
from katadeploy.search.config import Config, read_config
from katadeploy.search.nneval import NNEvaluator, NNSettings
from katadeploy.search.params import SearchParams, load_search_params, mark_known_keys
from katadeploy.search.requests import QueryDefaults, parse_perspective
from katadeploy.search.scorevalue import warm_up
from katadeploy.search.server import AnalysisServer

NET_SUFFIXES = (".bin.gz", ".bin", ".txt.gz", ".txt")


@dataclass
class EngineSetup:
    server: AnalysisServer
    nneval: NNEvaluator
    batcher: NNBatcher
    params: SearchParams
    cfg: Config
    model_name: str
    notes: list[str] = field(default_factory=list)


def is_artifact(spec: str) -> bool:
    """Whether ``-model spec`` names an exported artifact (a file with a sidecar manifest, or the manifest)."""
    p = Path(spec)
    if spec.lower().endswith(NET_SUFFIXES) or not p.exists():
        return False
    from katadeploy.artifact import sidecar_path

    return (p.suffix == ".json" and p.is_file()) or sidecar_path(p).is_file()


def artifact_source(manifest: Any) -> str | None:
    """The source net an artifact's manifest names: its recorded file if that still exists, else its name."""
    source = manifest.source.get("file") or manifest.source.get("name")
    if source and not Path(str(source)).exists():
        source = manifest.source.get("name")
    return None if source is None else str(source)


def open_model(spec: str, net: str | None, threads: int | None) -> tuple[Any, Any, str, str]:
    """(evaluator, ModelDesc, display name, internal name) for ``-model``."""
    from katadeploy.model.source import open_net
    from katadeploy.runtime.loader import open_evaluator, open_manifest

    if is_artifact(spec):
        _, manifest = open_manifest(spec)
        source = net or artifact_source(manifest)
        try:
            n = open_net(source, quiet=True)
        except KatadeployError as exc:
            raise KatadeployError(
                f"{spec}: cannot open the artifact's source net ({exc}); pass -net NET"
            ) from None
        ev = open_evaluator(spec, model=n.model, model_sha256=n.sha256, threads=threads)
        return ev, n.model, Path(spec).name, n.model.name
    n = open_net(spec, quiet=True)
    ev = open_evaluator("torch", model=n.model, threads=threads)
    return ev, n.model, Path(n.path).name, n.model.name


def build_engine(
    model: str,
    config: str | os.PathLike[str],
    *,
    overrides: dict[str, str] | None = None,
    net: str | None = None,
    analysis_threads: int | None = None,
    nn_threads: int | None = None,
    evaluator: Any = None,
    model_desc: Any = None,
) -> EngineSetup:
    cfg = read_config(config, overrides)
    cfg.apply_alias("numSearchThreadsPerAnalysisThread", "numSearchThreads")
    if analysis_threads is not None and "numAnalysisThreads" in cfg:
        raise KatadeployError(
            f"When specifying numAnalysisThreads in the config ({cfg.origin}), it is redundant and disallowed to "
            "also specify it via -analysis-threads"
        )
    n_analysis = (
        analysis_threads if analysis_threads is not None else cfg.get_int("numAnalysisThreads", 1, 16384)
    )
    params, notes = load_search_params(cfg)
    perspective = parse_perspective(cfg, 0)
    defaults = QueryDefaults(
        cfg=cfg, params=params, perspective=perspective,
        pv_len=cfg.get_int("analysisPVLen", 1, 100) if "analysisPVLen" in cfg else 15,
        warn_unused_fields=cfg.get_bool("warnUnusedFields") if "warnUnusedFields" in cfg else True,
        prevent_encore=cfg.get_bool("preventCleanupPhase") if "preventCleanupPhase" in cfg else True,
        assume_multiple_black_handicap=(
            cfg.get_bool("assumeMultipleStartingBlackMovesAreHandicap")
            if "assumeMultipleStartingBlackMovesAreHandicap" in cfg else True
        ),
    )  # fmt: skip
    settings = NNSettings(
        max_batch=cfg.get_int("nnMaxBatchSize", 1, 65536) if "nnMaxBatchSize" in cfg else max(1, params.num_threads * n_analysis),
        cache_size_pow2=cfg.get_int("nnCacheSizePowerOfTwo", -1, 48) if "nnCacheSizePowerOfTwo" in cfg else 20,
        randomize=cfg.get_bool("nnRandomize") if "nnRandomize" in cfg else True,
        forced_symmetry=cfg.get_int("nnForcedSymmetry", 0, 7) if "nnForcedSymmetry" in cfg else None,
        seed=_seed(cfg.get_string("nnRandSeed")) if "nnRandSeed" in cfg else None,
    )  # fmt: skip
    log_requests = cfg.get_bool("logAllRequests") if "logAllRequests" in cfg else False
    log_responses = cfg.get_bool("logAllResponses") if "logAllResponses" in cfg else False
    log_search_info = cfg.get_bool("logSearchInfo") if "logSearchInfo" in cfg else False
    backend_keys = mark_known_keys(cfg)
    if backend_keys:
        notes.append("config keys with no effect on katadeploy's evaluators: " + ", ".join(backend_keys))
    for key in cfg.unused_keys():
        notes.append(f"WARNING: Unused key '{key}' in {cfg.origin}")
    if evaluator is None:
        evaluator, model_desc, display, internal = open_model(model, net, nn_threads)
    else:
        display = internal = getattr(model_desc, "name", "model")
    warm_up()
    batcher = NNBatcher(evaluator, settings.max_batch)
    nneval = NNEvaluator(batcher, model_desc, settings)
    models = [{
        "name": display, "internalName": internal, "maxBatchSize": settings.max_batch, "usesHumanSLProfile": False,
        "version": model_desc.version, "usingFP16": "true" if "fp16" in str(getattr(evaluator, "name", "")).lower() else "false",
    }]  # fmt: skip
    server = AnalysisServer(
        nneval, defaults, num_analysis_threads=n_analysis, models=models, log_requests=log_requests,
        log_responses=log_responses, log_search_info=log_search_info, git_hash=f"katadeploy-{__version__}", seed=settings.seed,
    )  # fmt: skip
    return EngineSetup(server, nneval, batcher, params, cfg, display, notes)


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        import hashlib

        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
