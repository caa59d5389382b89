"""The relying-party matrix's world, served once for the package (tests/support/rp_world.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.rp_world import World, make_world


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with make_world(tmp_path_factory.mktemp("rp-matrix")) as served:
        yield served
