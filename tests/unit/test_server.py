"""How a serving process is set up: the garbage collector told what stays once the app is loaded."""

import gc
from collections.abc import Iterator

import pytest

from app.server import DEFAULT_LIMITS, GC_THRESHOLD, ServerConfig


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_loading_the_app_freezes_what_exists_and_spaces_out_young_collections() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    config = ServerConfig("app:create_app", factory=True, limits=DEFAULT_LIMITS)
    config.load()
    assert config.loaded
    assert gc.get_threshold() == GC_THRESHOLD
    assert gc.get_freeze_count() > 10_000  # the app's routes, schemas and modules, out of every collection
