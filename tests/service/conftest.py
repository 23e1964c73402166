import pytest

pytest.register_assert_rewrite("tests.service.replay")

from tests.service.replay import client, dify  # noqa: E402

__all__ = ["client", "dify"]


@pytest.fixture(params=["0.15.3", "1.15"])
def generation(request: pytest.FixtureRequest) -> str:
    """The Dify generation a test replays (see tests/service/modes.py)."""
    return str(request.param)
