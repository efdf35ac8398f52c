"""The ``katadeploy`` command line.

Contract: this module only composes subcommands. Each area registers its own subcommands through a
``register(subparsers)`` function in its ``commands`` module; a registered handler takes the parsed
``argparse.Namespace`` and returns an exit code. Errors derived from :class:`KatadeployError` (bad input,
missing extras) are printed as one line on stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from katadeploy import __version__
from katadeploy.errors import KatadeployError

#: Modules providing ``register(subparsers)``; order decides the order in ``--help``.
COMMAND_MODULES = (
    "katadeploy.runtime.commands",
    "katadeploy.model.commands",
    "katadeploy.data.commands",
    "katadeploy.export.commands",
    "katadeploy.validate.commands",
    "katadeploy.deploy.commands",
    "katadeploy.engine.commands",
    "katadeploy.bench.commands",
    "katadeploy.search.commands",
    "katadeploy.match.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="katadeploy",
        description="Convert, check, benchmark and deploy KataGo nets.",
    )
    parser.add_argument("--version", action="version", version=f"katadeploy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:  # a module that fails to import is a broken install: let it raise
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KatadeployError as exc:
        print(f"katadeploy: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("katadeploy: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # missing files, permissions: user-facing, not a bug
        print(f"katadeploy: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
