"""Minimal KataGo configs from ``katadeploy/configs/templates``.

Contract: :func:`write_analysis_config` / :func:`write_gtp_config` write a config atomically
(:func:`katadeploy.files.atomic_write_text`; parent directories are created) and return its path. Keyword
overrides replace or add keys (``None`` removes a key); :func:`render_config` does that on any config text and
:func:`format_config_value` prints one value (bools as ``true``/``false``, sequences comma-joined; a newline or
``#`` raises :class:`~katadeploy.errors.KatadeployError`). By default ``homeDataDir`` points at
:func:`~katadeploy.engine.katago.installer.katago_home`, so OpenCL tuning results (minutes per net on a CPU) are
cached under the katadeploy cache and shared by tests, benchmarks and the CLI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from katadeploy.engine.katago.installer import katago_home
from katadeploy.errors import KatadeployError
from katadeploy.files import atomic_write_text


def format_config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return ",".join(format_config_value(v) for v in value)
    text = str(value)
    if "\n" in text or "#" in text:
        raise KatadeployError(f"config value {text!r} may not contain a newline or '#'")
    return text


_KEY_LINE = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=")


def render_config(template: str, overrides: Mapping[str, Any]) -> str:
    """Apply ``overrides`` to KataGo config text: replace existing keys, append new ones, drop ``None`` ones."""
    for key in overrides:
        if not re.fullmatch(r"[A-Za-z0-9_]+", key):
            raise KatadeployError(f"bad KataGo config key {key!r}")
    pending = dict(overrides)
    out: list[str] = []
    for line in template.splitlines():
        m = _KEY_LINE.match(line)
        if m and m.group(1) in overrides:
            key = m.group(1)
            if key in pending:
                value = pending.pop(key)
                if value is not None:
                    out.append(f"{key} = {format_config_value(value)}")
            continue  # a key repeated in the template is replaced once
        out.append(line)
    extra = {k: v for k, v in pending.items() if v is not None}
    if extra:
        out.append("")
        out.append("# katadeploy overrides")
        out.extend(f"{k} = {format_config_value(v)}" for k, v in extra.items())
    return "\n".join(out).rstrip("\n") + "\n"


def _template(name: str) -> str:
    return resources.files("katadeploy.configs").joinpath("templates", name).read_text(encoding="utf-8")


def _write_config(name: str, path: str | os.PathLike[str], overrides: dict[str, Any]) -> Path:
    overrides.setdefault("homeDataDir", katago_home())
    text = render_config(_template(name), overrides)
    return atomic_write_text(path, text)


def write_analysis_config(path: str | os.PathLike[str], **overrides: Any) -> Path:
    """Write a minimal ``katago analysis`` config to ``path``; keyword args override keys (None removes)."""
    return _write_config("analysis.cfg", path, overrides)


def write_gtp_config(path: str | os.PathLike[str], **overrides: Any) -> Path:
    """Write a minimal GTP config for the ``kata-raw-nn`` FP32 oracle (``openclUseFP16 = false``)."""
    return _write_config("gtp.cfg", path, overrides)
