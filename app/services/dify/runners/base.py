"""What every runner takes, and the one interface they share."""

from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from app.schemas.dify import DifyFile
from app.services.answer import AnswerStream, Stop
from app.services.dify.client import DifyClient
from app.services.registry import DifyApp


class RunInput(msgspec.Struct, kw_only=True):
    """One Dify run, whatever the app mode: the user's text, the app's inputs, who asks, and where it goes."""

    query: str
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    user: str
    conversation_id: str | None = None
    files: list[DifyFile] | None = None
    auto_generate_name: bool | None = None


class Runner(Protocol):
    async def run(self, app: DifyApp, run: RunInput, *, stream: bool) -> AnswerStream:
        """Start the run; a blocking answer comes back as a one-batch stream. Dify's refusals raise."""
        ...


def stop_with(dify: DifyClient, app: DifyApp, run: RunInput, path: Callable[[str], str]) -> Stop:
    """How to stop this run's Dify task (the same `user` that started it)."""

    async def stop(task_id: str) -> None:
        await dify.stop(app.key, path(task_id), task_id, run.user)

    return stop
