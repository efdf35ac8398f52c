"""The exporter option registry (katadeploy.export.options) against the exporters' own source: a key an exporter
reads must be registered (or ``--option`` would refuse it), and a registered key must be read somewhere (or the
check would let a dead option through silently)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import katadeploy.export as export_pkg
from katadeploy.errors import KatadeployError
from katadeploy.export.options import OPTION_KEYS, check_options
from katadeploy.export.request import export_artifact
from tests.export.artifacts import RESNET, net_path

READ = re.compile(r"""options(?:\.get\(|\[|\.setdefault\()\s*["']([a-z0-9_]+)["']""")


def test_every_option_an_exporter_reads_is_registered_and_no_other():
    read = {k for f in Path(export_pkg.__file__).parent.glob("*.py") for k in READ.findall(f.read_text("utf-8"))}
    assert len(read) > 30  # the pattern still finds the exporters' reads
    assert read - OPTION_KEYS == set(), "read but not registered"
    assert OPTION_KEYS - read == set(), "registered but read nowhere"


def test_a_misspelt_option_is_refused_with_the_nearest_key(tmp_path):
    check_options({"int8_group_scopes": "auto", "calib_positions": 64})
    with pytest.raises(KatadeployError, match="unknown exporter option 'int8_group_scope'; did you mean int8_group_scopes"):
        export_artifact(net_path(RESNET), "onnx-fp32", tmp_path, progress=False, options={"int8_group_scope": "auto"})
    with pytest.raises(KatadeployError, match="unknown exporter option 'zzz'"):
        check_options({"zzz": 1})
    assert not list(tmp_path.iterdir())  # refused before anything was written
