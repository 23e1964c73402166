"""What every runner takes, and the one interface they share."""

from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from app.schemas.dify import DifyFile
from app.services.answer import AnswerStream, Interpreter
from app.services.dify.client import DifyClient
from app.services.dify.stream import dify_event_batches
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


async def open_run(
    dify: DifyClient,
    app: DifyApp,
    run: RunInput,
    interpreter: Interpreter,
    *,
    path: str,
    request: msgspec.Struct,
    stop_path: Callable[[str], str],
) -> AnswerStream:
    """A streaming run: Dify's response, read through `interpreter`, stopped (by the same `user`) unless over."""
    response = await dify.run_stream(app.key, path, request)

    async def stop(task_id: str) -> None:
        await dify.stop(app.key, stop_path(task_id), task_id, run.user)

    return AnswerStream(interpreter, source=dify_event_batches(response), response=response, stop=stop)
