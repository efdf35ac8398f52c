"""A net opened once: where it came from, what it is, and its content hash.

Contract: :func:`open_net` resolves a spec (a known name, a URL or a path: :func:`katadeploy.model.hub.resolve_model`),
parses it (:func:`katadeploy.model.format.load_model`) and hashes it (:func:`katadeploy.hashing.sha256_file`), once,
into a :class:`Net`. The pipeline (deploy, export, validate, bench) passes a :class:`Net` down instead of a name,
so no layer resolves, parses or hashes the same file again. Bad specs and corrupt files raise
:class:`~katadeploy.errors.KatadeployError` subclasses naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from katadeploy.hashing import sha256_file
from katadeploy.model.desc import ModelDesc


@dataclass(frozen=True)
class Net:
    path: Path
    model: ModelDesc
    sha256: str

    @property
    def name(self) -> str:
        return self.model.name


def open_net(spec: str | os.PathLike[str] | Net | None, quiet: bool = False) -> Net:
    """The net named by ``spec`` (None: the manifest's default net), resolved, parsed and hashed; a :class:`Net`
    is returned as it is."""
    if isinstance(spec, Net):
        return spec
    from katadeploy.model.format import load_model
    from katadeploy.model.hub import resolve_model

    path = Path(resolve_model(spec, quiet=quiet))
    return Net(path, load_model(path), sha256_file(path))
