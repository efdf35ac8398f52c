"""Fixtures for the match tests: the small g170 net and one local Ray cluster (2 CPUs) shared by the module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray cluster with 2 CPUs for the tests of one module; ``run_match`` reuses it."""
    pytest.importorskip("ray")
    from katadeploy.match.cluster import connect

    cluster = connect(None, num_cpus=2)
    yield cluster
    cluster.close()
