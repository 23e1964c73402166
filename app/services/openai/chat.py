"""Answer events -> OpenAI chat completions: `chat.completion.chunk` SSE bytes, or one `chat.completion`.

The JSON around a content delta is fixed for the life of a stream, so it is encoded once and each chunk costs
one string encode and a concatenation (the `ChatCompletionChunk` Struct documents the same shape).
"""

from typing import Final

import msgspec

from app.schemas.openai import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    FunctionCall,
    ToolCall,
    Usage,
)
from app.services.answer import (
    Answer,
    AnswerEvent,
    Failed,
    FileOut,
    Finished,
    Keepalive,
    ReasoningDelta,
    Replaced,
    Started,
    TextDelta,
    ToolUse,
)
from app.services.openai.common import DONE, PING_COMMENT, InBandErrors, error_event, shown_text
from app.services.turn import Turn

_encode = msgspec.json.Encoder().encode


class ChunkEncoder:
    __slots__ = ("_content_prefix", "_head", "_reasoning_prefix", "role")

    _SUFFIX: Final = b'},"logprobs":null,"finish_reason":null}]}\n\n'
    _TOOL_SUFFIX: Final = b']},"logprobs":null,"finish_reason":null}]}\n\n'

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
        self._reasoning_prefix = self._head + b'{"index":0,"delta":{"reasoning_content":'
        self.role = self._head + b'{"index":0,"delta":{"role":"assistant","content":""' + self._SUFFIX

    def content(self, text: str) -> bytes:
        return self._content_prefix + _encode(text) + self._SUFFIX

    def tool_call(self, index: int, tool: ToolUse) -> bytes:
        call = {
            "index": index,
            "id": tool.id,
            "type": "function",
            "function": {"name": tool.name, "arguments": tool.arguments},
        }
        return self._head + b'{"index":0,"delta":{"tool_calls":[' + _encode(call) + self._TOOL_SUFFIX

    def reasoning(self, text: str) -> bytes:
        """Reasoning is a delta of its own, never beside content (clients read one or the other per chunk)."""
        return self._reasoning_prefix + _encode(text) + self._SUFFIX

    def finish(self, reason: str) -> bytes:
        return self._head + b'{"index":0,"delta":{},"logprobs":null,"finish_reason":' + _encode(reason) + b"}]}\n\n"

    def usage(self, usage: Usage) -> bytes:
        return self._head + b'],"usage":' + _encode(usage) + b"}\n\n"


class ChatChunks(InBandErrors):
    """Per stream: `encode` a batch of answer events into the SSE bytes to write (b"" when they show nothing).
    The role goes out once, in the first chunk; `Finished` becomes the finish chunk, the usage chunk (if asked
    for) and `[DONE]`; `Failed` an in-band error event."""

    __slots__ = ("_created", "_encoder", "_id", "_include_usage", "_model", "_tools", "_visible", "finished")

    def __init__(self, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._encoder: ChunkEncoder | None = None
        self._id = "unknown"
        self._created = 0
        self._visible: list[str] = []
        self._tools = 0
        self.finished = False

    @property
    def visible_text(self) -> str:
        """The answer as the client has received it (a moderation correction included)."""
        return "".join(self._visible)

    def _open(self) -> tuple[ChunkEncoder, bytes]:
        encoder = self._encoder
        if encoder is not None:
            return encoder, b""
        encoder = self._encoder = ChunkEncoder(f"chatcmpl-{self._id}", self._created, self._model)
        return encoder, encoder.role

    def _text(self, text: str) -> bytes:
        self._visible.append(text)
        encoder, head = self._open()
        return head + encoder.content(text) if head else encoder.content(text)

    def encode(self, batch: list[AnswerEvent]) -> bytes:
        parts: list[bytes] = []
        for event in batch:
            if isinstance(event, TextDelta):
                parts.append(self._text(event.text))
            elif isinstance(event, ReasoningDelta):
                encoder, head = self._open()
                parts.append(head + encoder.reasoning(event.text))
            elif isinstance(event, ToolUse):
                encoder, head = self._open()
                parts.append(head + encoder.tool_call(self._tools, event))
                self._tools += 1
            elif isinstance(event, FileOut | Replaced):
                parts.append(self._text(shown_text(event)))
            elif isinstance(event, Keepalive):
                parts.append(PING_COMMENT)
            elif isinstance(event, Started):
                self._id = event.message_id or "unknown"
                self._created = event.created
            elif isinstance(event, Finished):
                self.finished = True
                encoder, head = self._open()
                parts.append(head + encoder.finish(event.reason))
                if self._include_usage:
                    parts.append(encoder.usage(event.usage))
                parts.append(DONE)
            elif isinstance(event, Failed):
                parts.append(error_event(event.error))
        return b"".join(parts)


def chat_completion(answer: Answer, model: str) -> ChatCompletion:
    return ChatCompletion(
        id=f"chatcmpl-{answer.message_id or ''}",
        created=answer.created,
        model=model,
        choices=[
            Choice(
                index=0,
                message=AssistantMessage(
                    content=answer.text,
                    reasoning_content=answer.reasoning or msgspec.UNSET,
                    tool_calls=[
                        ToolCall(id=t.id, function=FunctionCall(name=t.name, arguments=t.arguments))
                        for t in answer.tools
                    ]
                    or msgspec.UNSET,
                ),
                finish_reason=answer.reason,
            )
        ],
        usage=answer.usage,
    )


def chat_turn(
    request: ChatCompletionRequest,
    *,
    conversation_id: str | None = None,
    forwarded_user: str | None = None,
    chat_id: str | None = None,
) -> Turn:
    """A chat completions request as the pipeline's neutral turn (`conversation_id`: the explicit header)."""
    return Turn(
        model=request.model,
        messages=request.messages,
        stream=bool(request.stream),
        user=request.user,
        forwarded_user=forwarded_user,
        chat_id=chat_id,
        conversation_id=conversation_id or request.conversation_id,
        inputs=request.inputs,
        response_format=request.response_format,
    )


def chat_encoder(request: ChatCompletionRequest) -> ChatChunks:
    return ChatChunks(request.model, bool(request.stream_options and request.stream_options.include_usage))
