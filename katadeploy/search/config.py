"""KataGo ``.cfg`` files: parsing, overrides and typed reads that report every key they do not use.

Contract: :func:`read_config` parses KataGo's config syntax (``key = value`` lines, ``#`` comments, optional
quotes, ``@include`` of another file relative to this one) into a :class:`Config`. :func:`parse_overrides` reads
``-override-config k=v,k2=v2``. :class:`Config` reads are typed and range-checked the way KataGo's
``ConfigParser`` reads them (``get_bool`` accepts ``true``/``false``/``1``/``0`` in any case); a bad value raises
:class:`ConfigError` naming the key. Every read marks the key used, so :meth:`Config.unused_keys` lists what nothing
consumed - the caller reports those instead of silently ignoring them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from katadeploy.errors import KatadeployError


class ConfigError(KatadeployError):
    """A config file or override is malformed, or a value is out of range."""


def _strip_value(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _parse_lines(text: str, origin: str, base: Path | None, out: dict[str, str], depth: int) -> None:
    if depth > 10:
        raise ConfigError(f"{origin}: @include nested too deeply")
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("@include"):
            target = _strip_value(line[len("@include") :])
            path = (base / target) if base is not None else Path(target)
            _parse_lines(path.read_text(encoding="utf-8"), str(path), path.parent, out, depth + 1)
            continue
        if "=" not in line:
            raise ConfigError(f"{origin} line {lineno}: expected 'key = value', got {raw.strip()!r}")
        key, value = line.split("=", 1)
        key = key.strip()
        if not key or any(c.isspace() for c in key):
            raise ConfigError(f"{origin} line {lineno}: bad key {key!r}")
        if key in out:
            raise ConfigError(f"{origin} line {lineno}: key {key!r} is specified more than once")
        out[key] = _strip_value(value)


def parse_overrides(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` (KataGo's ``-override-config``) as a dict."""
    out: dict[str, str] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ConfigError(f"-override-config: expected key=value, got {part!r}")
        key, value = part.split("=", 1)
        out[key.strip()] = _strip_value(value)
    return out


class Config:
    """String key/values with typed, range-checked reads that record which keys were used."""

    def __init__(self, values: Mapping[str, str] | None = None, origin: str = "config"):
        self.values: dict[str, str] = dict(values or {})
        self.origin = origin
        self.used: set[str] = set()

    def copy(self) -> Config:
        c = Config(self.values, self.origin)
        c.used = set(self.used)
        return c

    def override(self, overrides: Mapping[str, str]) -> Config:
        """A copy with ``overrides`` applied; only the override keys start out unused."""
        c = Config({**self.values, **overrides}, self.origin)
        c.used = set(self.values) - set(overrides)
        return c

    def apply_alias(self, alias: str, canonical: str) -> None:
        """KataGo's ``applyAlias``: ``alias`` is read as ``canonical``; both given is an error."""
        if alias in self.values:
            if canonical in self.values:
                raise ConfigError(
                    f"{self.origin}: {alias} and {canonical} are the same key; specify only one"
                )
            self.values[canonical] = self.values.pop(alias)

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def mark_used(self, keys: Iterable[str]) -> None:
        self.used.update(k for k in keys if k in self.values)

    def unused_keys(self) -> list[str]:
        return sorted(k for k in self.values if k not in self.used)

    def get_string(self, key: str) -> str:
        if key not in self.values:
            raise ConfigError(f"{self.origin}: could not find key {key!r}")
        self.used.add(key)
        return self.values[key]

    def _bad(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"{self.origin}: key {key!r} must be {what}, got {self.values[key]!r}")

    def get_bool(self, key: str) -> bool:
        v = self.get_string(key).strip().lower()
        if v in ("true", "1"):
            return True
        if v in ("false", "0"):
            return False
        raise self._bad(key, "true or false")

    def get_int(self, key: str, lo: int, hi: int) -> int:
        v = self.get_string(key).strip()
        try:
            x = int(v)
        except ValueError:
            raise self._bad(key, f"an integer from {lo} to {hi}") from None
        if not lo <= x <= hi:
            raise self._bad(key, f"an integer from {lo} to {hi}")
        return x

    def get_float(self, key: str, lo: float, hi: float) -> float:
        v = self.get_string(key).strip()
        try:
            x = float(v)
        except ValueError:
            raise self._bad(key, f"a number from {lo} to {hi}") from None
        if not math.isfinite(x) or not lo <= x <= hi:
            raise self._bad(key, f"a number from {lo} to {hi}")
        return x

    def get_enabled(self, key: str) -> bool | None:
        """KataGo's ``enabled_t``: ``true``/``false``/``auto`` (None)."""
        v = self.get_string(key).strip().lower()
        if v == "auto":
            return None
        if v in ("true", "1"):
            return True
        if v in ("false", "0"):
            return False
        raise self._bad(key, "true, false or auto")


def read_config(path: str | Path, overrides: Mapping[str, str] | None = None) -> Config:
    """Parse a KataGo ``.cfg`` file (plus ``overrides``) into a :class:`Config`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {str(p)!r}: {exc.strerror}") from None
    values: dict[str, str] = {}
    _parse_lines(text, str(p), p.parent, values, 0)
    values.update(overrides or {})
    return Config(values, str(p))
