"""Dify stream events -> OpenAI `chat.completion.chunk` SSE bytes. Pure and per-stream; no I/O.

The JSON around a content delta is fixed for the life of a stream, so it is encoded once and each chunk costs
one string encode and a concatenation (the `ChatCompletionChunk` Struct documents the same shape).
"""

from typing import Final

import msgspec

from app.errors import GatewayError, UpstreamError
from app.schemas.dify import (
    AgentMessageEvent,
    BaseEvent,
    DifyUsage,
    ErrorBody,
    ErrorEvent,
    MessageEndEvent,
    MessageEvent,
    MessageFileEvent,
    MessageReplaceEvent,
    WorkflowFinishedEvent,
)
from app.schemas.openai import ErrorDetail, ErrorResponse, Usage
from app.services.dify.errors import error_from_dify

DONE: Final = b"data: [DONE]\n\n"
PING_COMMENT: Final = b": ping\n\n"
REPLACED_NOTICE: Final = "\n\n[The app's moderation replaced this answer:]\n"

_encode = msgspec.json.Encoder().encode


def usage_from_dify(usage: DifyUsage | None) -> Usage:
    if usage is None:
        return Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    # Dify's agent stream reports total_tokens: 0; an inconsistent total is recomputed
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def error_event(error: GatewayError) -> bytes:
    detail = ErrorDetail(message=error.message, type=error.error_type, param=error.param, code=error.code)
    return b"data: " + _encode(ErrorResponse(error=detail)) + b"\n\n"


class ChunkEncoder:
    __slots__ = ("_content_prefix", "_head", "role")

    _SUFFIX: Final = b'},"logprobs":null,"finish_reason":null}]}\n\n'

    def __init__(self, completion_id: str, created: int, model: str) -> None:
        self._head = (
            b'data: {"id":'
            + _encode(completion_id)
            + b',"object":"chat.completion.chunk","created":'
            + str(created).encode()
            + b',"model":'
            + _encode(model)
            + b',"choices":['
        )
        self._content_prefix = self._head + b'{"index":0,"delta":{"content":'
        self.role = self._head + b'{"index":0,"delta":{"role":"assistant","content":""' + self._SUFFIX

    def content(self, text: str) -> bytes:
        return self._content_prefix + _encode(text) + self._SUFFIX

    def finish(self, reason: str) -> bytes:
        return self._head + b'{"index":0,"delta":{},"logprobs":null,"finish_reason":' + _encode(reason) + b"}]}\n\n"

    def usage(self, usage: Usage) -> bytes:
        return self._head + b'],"usage":' + _encode(usage) + b"}\n\n"


class AnswerState:
    """What a Dify event stream has said so far; `apply` returns the text a client should see next."""

    __slots__ = (
        "conversation_id",
        "created",
        "done",
        "ended",
        "message_id",
        "parts",
        "task_id",
        "usage",
        "workflow_error",
    )

    def __init__(self) -> None:
        self.message_id: str | None = None
        self.conversation_id: str | None = None
        self.task_id: str | None = None
        self.created = 0
        self.parts: list[str] = []  # the answer as Dify stores it (a replacement resets it)
        self.usage: Usage | None = None
        self.done = False  # the answer is complete (message_end)
        self.ended = False  # Dify's task is over: complete, or failed with an error event
        self.workflow_error: str | None = None

    @property
    def answer(self) -> str:
        return "".join(self.parts)

    def apply(self, event: BaseEvent) -> str | None:
        if self.message_id is None and event.message_id:
            self.message_id = event.message_id
            self.conversation_id = event.conversation_id
            self.created = event.created_at
        if event.task_id is not None:
            self.task_id = event.task_id
        if isinstance(event, MessageEvent | AgentMessageEvent):
            if event.answer:
                self.parts.append(event.answer)
                return event.answer
            return None
        if isinstance(event, MessageFileEvent):
            return self._file(event)
        if isinstance(event, MessageReplaceEvent):
            self.parts = [event.answer]
            return REPLACED_NOTICE + event.answer
        if isinstance(event, MessageEndEvent):
            self.usage = usage_from_dify(event.metadata.usage if event.metadata else None)
            self.done = self.ended = True
            return None
        if isinstance(event, ErrorEvent):
            self.ended = True
            raise error_from_dify(
                event.status or 500, ErrorBody(code=event.code or "unknown", message=event.message or "")
            )
        if isinstance(event, WorkflowFinishedEvent) and event.data is not None and event.data.status == "failed":
            self.workflow_error = event.data.error or "the workflow failed"
        return None

    def _file(self, event: MessageFileEvent) -> str | None:
        if event.url is None:
            text = event.answer or ""  # newest Dify sends text chunks as message_file after a file
        elif event.belongs_to == "assistant" and event.type == "image":
            text = f"\n![image]({event.url})\n"
        else:
            return None
        if text:
            self.parts.append(text)
        return text or None

    def incomplete_error(self) -> GatewayError:
        """The stream ended without its terminal event."""
        if self.workflow_error is not None:
            return UpstreamError(f"Dify: the workflow failed: {self.workflow_error}", code="workflow_failed")
        return UpstreamError("Dify closed the stream before the answer was complete", code="upstream_incomplete")


class StreamTranslator:
    """Per stream: feed Dify events, get the SSE bytes to write (b"" when an event shows nothing)."""

    __slots__ = ("_encoder", "_include_usage", "_model", "_visible", "state")

    def __init__(self, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._encoder: ChunkEncoder | None = None
        self._visible: list[str] = []
        self.state = AnswerState()

    @property
    def visible_text(self) -> str:
        """The answer as the client has received it (a moderation correction included)."""
        return "".join(self._visible)

    def _open(self) -> tuple[ChunkEncoder, bytes]:
        encoder = self._encoder
        if encoder is not None:
            return encoder, b""
        state = self.state
        encoder = ChunkEncoder(f"chatcmpl-{state.message_id or 'unknown'}", state.created, self._model)
        self._encoder = encoder
        return encoder, encoder.role  # the role goes out once, in the first chunk

    def feed(self, event: BaseEvent) -> bytes:
        text = self.state.apply(event)
        if text:
            self._visible.append(text)
            encoder, head = self._open()
            return head + encoder.content(text) if head else encoder.content(text)
        if self.state.done:
            encoder, head = self._open()
            out = head + encoder.finish("stop")
            if self._include_usage and self.state.usage is not None:
                out += encoder.usage(self.state.usage)
            return out + DONE
        return b""
