"""The one event model between Dify runs and OpenAI surfaces.

A runner turns a Dify run into an `AnswerStream`: per network read, a list of neutral events. Encoders (one per
OpenAI surface) turn the same events into chunks, or `collect()` gathers them into one `Answer`. In-band failures
are events (`Failed`); only transport failures raise.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import anyio
import httpx
import msgspec

from app.errors import GatewayError
from app.schemas.dify import BaseEvent
from app.schemas.openai import Usage

STOP_TIMEOUT = 5.0  # seconds a stop request may take; it runs shielded from cancellation


class Started(msgspec.Struct, frozen=True, kw_only=True):
    """The run is named: what ids and timestamps its answer carries."""

    conversation_id: str | None
    message_id: str | None
    created: int


class TextDelta(msgspec.Struct, frozen=True):
    text: str


class ReasoningDelta(msgspec.Struct, frozen=True):
    """The model's reasoning, shown apart from the answer (`reasoning_content`)."""

    text: str


class ToolUse(msgspec.Struct, frozen=True, kw_only=True):
    """A tool the Dify agent ran (Dify already ran it: nothing for the client to do)."""

    id: str
    name: str
    arguments: str  # JSON, as the agent called the tool
    result: str


class FileOut(msgspec.Struct, frozen=True, kw_only=True):
    """A file the app produced (`message_file`): an image, a document. `url` as Dify signed it, made absolute."""

    url: str
    kind: str | None = None  # Dify's file type: image, document, audio, video, custom
    name: str | None = None


def file_markdown(url: str, kind: str | None, name: str | None = None) -> str:
    """A file as chat UIs render it: an image inline, anything else as a link."""
    label = name or kind or "file"
    return f"![{label}]({url})" if kind == "image" else f"[{label}]({url})"


def file_text(file: FileOut) -> str:
    """A file among an answer's text: on a line of its own."""
    return f"\n{file_markdown(file.url, file.kind, file.name)}\n"


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """A chatflow's or workflow's node started, or failed (shown only with WORKFLOW_PROGRESS)."""

    step: str  # the node's title
    error: str | None = None  # set when the node failed


class Replaced(msgspec.Struct, frozen=True):
    """The app's moderation replaced the whole answer with `text`."""

    text: str


class Keepalive(msgspec.Struct, frozen=True):
    pass


class Finished(msgspec.Struct, frozen=True, kw_only=True):
    usage: Usage
    reason: str = "stop"


class Failed(msgspec.Struct, frozen=True):
    error: GatewayError


AnswerEvent = (
    Started | TextDelta | ReasoningDelta | ToolUse | FileOut | Progress | Replaced | Keepalive | Finished | Failed
)
Tap = Callable[[list[AnswerEvent]], list[AnswerEvent]]  # a step between the run and the encoder (reasoning.py)
KEEPALIVE = Keepalive()


class Interpreter(Protocol):
    """Reads one run's Dify events (the `feed`/`close` shape of the SSE parser). `over` is set once a terminal
    event was seen; `close()` is called when Dify's stream ended and returns `Failed` if it ended too soon."""

    over: bool
    abandoned: bool  # over for the client, though Dify's task still runs (it is stopped)
    task_id: str | None
    conversation_id: str | None

    def feed(self, events: list[BaseEvent | None]) -> list[AnswerEvent]: ...
    def close(self) -> list[AnswerEvent]: ...


Stop = Callable[[str], Awaitable[None]]  # stop the Dify task with this id


class AnswerStream:
    """One Dify run's answer. Consume it or close it: `aclose()` closes Dify's response and, unless the run is over
    (a terminal event was seen, or Dify ended the stream), stops the Dify task, so it does not run (and bill) on."""

    __slots__ = ("_batch", "_closed", "_exhausted", "_interpreter", "_response", "_source", "_stop", "_tap")

    def __init__(
        self,
        interpreter: Interpreter,
        *,
        source: AsyncIterator[list[BaseEvent | None]] | None = None,
        response: httpx.Response | None = None,
        stop: Stop | None = None,
        batch: list[AnswerEvent] | None = None,
    ) -> None:
        self._interpreter = interpreter
        self._source = source
        self._response = response
        self._stop = stop
        self._batch = batch  # a blocking answer: one batch, already complete
        self._exhausted = False
        self._closed = False
        self._tap: Tap | None = None

    def tap(self, step: Tap) -> None:
        """Pass every batch through `step` before it reaches the consumer."""
        self._tap = step

    @classmethod
    def complete(cls, interpreter: Interpreter, batch: list[AnswerEvent]) -> "AnswerStream":
        """A blocking answer as a one-batch stream, so there is one way to consume a run."""
        return cls(interpreter, batch=batch)

    @property
    def conversation_id(self) -> str | None:
        return self._interpreter.conversation_id

    @property
    def task_id(self) -> str | None:
        return self._interpreter.task_id

    @property
    def over(self) -> bool:
        interpreter = self._interpreter
        return (interpreter.over and not interpreter.abandoned) or self._exhausted

    async def __aiter__(self) -> AsyncIterator[list[AnswerEvent]]:
        tap = self._tap
        if self._batch is not None:
            batch, self._batch = self._batch, []
            if tap is not None:
                batch = tap(batch)
            if batch:
                yield batch
            return
        if self._source is None:
            return
        interpreter = self._interpreter
        async for raw in self._source:
            events = interpreter.feed(raw)
            if tap is not None and events:
                events = tap(events)
            if events:
                yield events
            if interpreter.over:
                return
        self._exhausted = True  # Dify closed the stream: its task is over
        tail = interpreter.close()
        if tap is not None and tail:
            tail = tap(tail)
        if tail:
            yield tail

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._response is None and self._stop is None:
            return  # a blocking answer: nothing to close, nothing to stop
        with anyio.CancelScope(shield=True):  # a client gone (cancellation) must not stop the cleanup
            if self._response is not None:
                await self._response.aclose()
            task_id = self._interpreter.task_id
            if not self.over and task_id is not None and self._stop is not None:
                with anyio.move_on_after(STOP_TIMEOUT):
                    await self._stop(task_id)


class Answer(msgspec.Struct, kw_only=True):
    """A whole answer: what non-streaming surfaces are built from."""

    text: str
    reasoning: str = ""
    tools: list[ToolUse] = msgspec.field(default_factory=list)
    usage: Usage
    conversation_id: str | None
    message_id: str | None
    created: int
    reason: str = "stop"


async def collect(stream: AnswerStream) -> Answer:
    """Read a run to its end; a failure Dify reported is raised (a real HTTP error, nothing was sent)."""
    parts: list[str] = []
    reasoning: list[str] = []
    tools: list[ToolUse] = []
    started: Started | None = None
    finished: Finished | None = None
    try:
        async for batch in stream:
            for event in batch:
                match event:
                    case TextDelta(text=text):
                        parts.append(text)
                    case ReasoningDelta(text=text):
                        reasoning.append(text)
                    case ToolUse():
                        tools.append(event)
                    case FileOut():
                        parts.append(file_text(event))
                    case Replaced(text=text):
                        parts = [text]
                    case Started():
                        started = started or event
                    case Finished():
                        finished = event
                    case Failed(error=error):
                        raise error
    finally:
        await stream.aclose()
    if finished is None:  # (an interpreter always ends with Finished or Failed; this guards a broken one)
        raise RuntimeError("a run ended without Finished or Failed")
    return Answer(
        text="".join(parts),
        reasoning="".join(reasoning),
        tools=tools,
        usage=finished.usage,
        conversation_id=started.conversation_id if started else stream.conversation_id,
        message_id=started.message_id if started else None,
        created=started.created if started else 0,
        reason=finished.reason,
    )
