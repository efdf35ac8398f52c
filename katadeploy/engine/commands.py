"""``katadeploy katago ...``: install and locate the real KataGo binary.

Contract: :func:`register` adds the ``katago`` group with these subcommands (handlers return exit codes; bad
input raises :class:`~katadeploy.errors.KatadeployError` subclasses, printed by the CLI as one line):

* ``katago install [--force] [--quiet]`` — install KataGo v1.18.1 (OpenCL) from the katrain 1.20.0 wheel into
  the cache, check OpenCL (naming the apt packages to install when it is missing) and print the binary path.
* ``katago path [--katago PATH] [--env] [--raw] [--no-check]`` — print something that runs the binary katadeploy
  will use (``--katago`` > ``$KATADEPLOY_KATAGO`` > installed copy) as it is: ``$(katadeploy katago path)
  version`` works with no environment set (the AppImage's ``AppRun``, or a small wrapper, when the binary needs
  ``LD_LIBRARY_PATH``; :func:`katadeploy.engine.katago.build.launcher`). ``--raw`` prints the executable itself.
  Checked with ``katago version`` unless ``--no-check``. With ``--env`` print ``export`` lines instead
  (``eval "$(katadeploy katago path --env)"``): ``LD_LIBRARY_PATH`` for the bundled libraries and
  ``KATADEPLOY_KATAGO``.
* ``katago build --backend eigen|opencl|onnx [--source DIR|GIT-URL] [--ref TAG] [-j N] [--force]
  [--onnxruntime-root DIR | --onnxruntime-headers DIR]`` — compile KataGo with cmake into katadeploy's cache
  (:func:`katadeploy.engine.katago.build.build`; each missing Debian package is named) and print the executable.
* ``katago version [--katago PATH]`` — print ``katago version``'s first line.
* ``katago check [--katago PATH]`` — check OpenCL and the binary; print what was found.
* ``katago tune --model M [--katago PATH]`` — run (or reuse) KataGo's OpenCL tuning for a net in katadeploy's
  cache, working around tuner crashes; print the tune file.
* ``katago config {analysis,gtp} OUT [--set KEY=VALUE ...]`` — write a minimal config.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from katadeploy.engine import katago as kg
from katadeploy.errors import KatadeployError


def _add_katago_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--katago",
        metavar="PATH",
        default=None,
        help=f"KataGo executable to use (default: ${kg.KATAGO_ENV}, else the installed copy)",
    )


def _install(args: argparse.Namespace) -> int:
    binary = kg.install(force=args.force, progress=not args.quiet)
    print(binary.path)
    return 0


def _path(args: argparse.Namespace) -> int:
    binary = kg.locate(args.katago)
    if not args.no_check:
        binary.version()
    if args.env:
        for key, value in binary.extra_env.items():
            print(f"export {key}={shlex.quote(value)}")
        print(f"export {kg.KATAGO_ENV}={shlex.quote(str(binary.path))}")
    elif args.raw:
        print(binary.path)
    else:
        from katadeploy.engine.katago.build import launcher

        print(launcher(binary))
    return 0


def _build(args: argparse.Namespace) -> int:
    from katadeploy.engine.katago.build import build

    b = build(
        args.backend,
        args.source,
        args.ref,
        jobs=args.jobs,
        force=args.force,
        onnxruntime=args.onnxruntime_root,
        onnxruntime_headers=args.onnxruntime_headers,
        progress=not args.quiet,
    )
    print(b.exe)
    return 0


def _version(args: argparse.Namespace) -> int:
    print(kg.locate(args.katago).version())
    return 0


def _check(args: argparse.Namespace) -> int:
    info = kg.check_opencl()
    binary = kg.locate(args.katago)
    print(f"binary:  {binary.path}")
    print(f"version: {binary.version()}")
    print(f"opencl:  {info.summary()}")
    print(f"tuning:  {kg.katago_home() / 'opencltuning'}")
    return 0


def _tune(args: argparse.Namespace) -> int:
    binary = kg.locate(args.katago)
    from katadeploy.model.hub import resolve_model

    path = kg.ensure_tuning(
        resolve_model(args.model), binary=binary, timeout=args.timeout, progress=not args.quiet
    )
    print(path if path is not None else "no OpenCL tuning needed (not an OpenCL build)")
    return 0


def _parse_sets(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise KatadeployError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _config(args: argparse.Namespace) -> int:
    overrides = _parse_sets(args.set)
    writer = kg.write_analysis_config if args.kind == "analysis" else kg.write_gtp_config
    print(writer(args.out, **overrides))
    return 0


def register(subparsers: Any) -> None:
    """Add the ``katago`` command group to the top-level subparsers."""
    group = subparsers.add_parser(
        "katago",
        help="install and locate the real KataGo binary",
        description="Install and locate the real KataGo binary (v1.18.1, OpenCL, from the katrain wheel).",
    )
    sub = group.add_subparsers(dest="katago_command", metavar="SUBCOMMAND")
    group.set_defaults(func=lambda _args: (group.print_help(), 2)[1])

    p = sub.add_parser("install", help="install KataGo v1.18.1 (OpenCL) from the katrain 1.20.0 wheel")
    p.add_argument("--force", action="store_true", help="reinstall even if already installed")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=_install)

    p = sub.add_parser("path", help="print the KataGo binary katadeploy uses (or its environment with --env)")
    _add_katago_arg(p)
    p.add_argument("--env", action="store_true", help="print export lines for the environment to run it with")
    p.add_argument(
        "--raw", action="store_true", help="print the executable itself (it may need --env to run)"
    )
    p.add_argument("--no-check", action="store_true", help="do not run `katago version` to check the binary")
    p.set_defaults(func=_path)

    from katadeploy.engine.katago.build import BUILD_BACKENDS, DEFAULT_REF, ONNXRUNTIME_ENV, SOURCE_ENV

    p = sub.add_parser("build", help="compile KataGo from source (Eigen, OpenCL or ONNX Runtime) with cmake")
    p.add_argument("--backend", choices=BUILD_BACKENDS, default="eigen", help="default %(default)s")
    p.add_argument(
        "--source",
        metavar="DIR|GIT-URL",
        default=None,
        help=f"KataGo checkout or git URL (default: ${SOURCE_ENV}, else github.com/lightvector/KataGo)",
    )
    p.add_argument("--ref", default=None, help=f"tag/branch to clone for a git URL (default {DEFAULT_REF})")
    p.add_argument("-j", "--jobs", type=int, default=None, help="parallel compile jobs (default: CPU count)")
    p.add_argument("--force", action="store_true", help="rebuild even if a finished build is cached")
    p.add_argument(
        "--onnxruntime-root", default=None, help=f"ONNX Runtime C API package (default ${ONNXRUNTIME_ENV})"
    )
    p.add_argument(
        "--onnxruntime-headers",
        metavar="DIR",
        default=None,
        help="ONNX Runtime C API headers (e.g. Debian trixie's libonnxruntime-dev), used with pip onnxruntime's library",
    )
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=_build)

    p = sub.add_parser("version", help="print the KataGo version")
    _add_katago_arg(p)
    p.set_defaults(func=_version)

    p = sub.add_parser("check", help="check OpenCL and the KataGo binary")
    _add_katago_arg(p)
    p.set_defaults(func=_check)

    p = sub.add_parser("tune", help="run (or reuse) KataGo's OpenCL tuning for a net")
    _add_katago_arg(p)
    p.add_argument(
        "--model", required=True, help="model file, URL or known name (see `katadeploy models list`)"
    )
    p.add_argument("--timeout", type=float, default=kg.TUNE_TIMEOUT_S, help="seconds (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=_tune)

    p = sub.add_parser("config", help="write a minimal KataGo config")
    p.add_argument("kind", choices=("analysis", "gtp"))
    p.add_argument("out", help="file to write")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override or add a key (repeatable)")
    p.set_defaults(func=_config)
