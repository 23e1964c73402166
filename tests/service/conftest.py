import pytest

pytest.register_assert_rewrite("tests.service.replay")

from tests.service.replay import client, dify  # noqa: E402

__all__ = ["client", "dify"]
