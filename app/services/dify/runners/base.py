"""What every runner takes, and the one interface they share."""

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import msgspec

from app.schemas.dify import DifyFile
from app.services.answer import AnswerEvent, AnswerStream, Interpreter
from app.services.dify.client import DifyClient
from app.services.dify.stream import dify_event_batches
from app.services.registry import DifyApp

T = TypeVar("T")
InterpreterT = TypeVar("InterpreterT", bound=Interpreter)


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


class DifyRunner:
    """What the runners share: the client, and how a run starts, blocking (one batch, from the JSON answer) or
    streaming (Dify's response read through the interpreter, stopped by the same `user` unless over)."""

    __slots__ = ("_dify",)

    def __init__(self, dify: DifyClient) -> None:
        self._dify = dify

    async def _start(
        self,
        app: DifyApp,
        run: RunInput,
        interpreter: InterpreterT,
        request: msgspec.Struct,
        *,
        stream: bool,
        path: str,
        answer: msgspec.json.Decoder[T],
        read_blocking: Callable[[InterpreterT, T], list[AnswerEvent]],
        stop_path: Callable[[str], str],
    ) -> AnswerStream:
        dify = self._dify
        if not stream:
            decoded = await dify.run_blocking(app.key, path, request, answer)
            return AnswerStream.complete(interpreter, read_blocking(interpreter, decoded))
        response = await dify.run_stream(app.key, path, request)

        async def stop(task_id: str) -> None:
            await dify.stop(app.key, stop_path(task_id), task_id, run.user)

        return AnswerStream(interpreter, source=dify_event_batches(response), response=response, stop=stop)
