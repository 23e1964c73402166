"""`POST /v1/chat/completions`: the request, the answer, and the stream's chunks. Unknown request fields are
ignored, never rejected."""

from typing import Annotated, Any, Literal

import msgspec

from app.schemas.openai.common import Usage

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ImageURL(msgspec.Struct, kw_only=True):
    url: Annotated[str, msgspec.Meta(pattern="^(https?://|data:)")]  # a web address or an inline image
    detail: str | None = None


class FileData(msgspec.Struct, kw_only=True):
    """A `file` part's file: base64 bytes (or a `data:` URL) and a name; OpenAI file ids are not served here."""

    file_data: str | None = None
    filename: str | None = None
    file_id: str | None = None


class InputAudio(msgspec.Struct, kw_only=True):
    data: str  # base64
    format: str = "wav"


class ContentPart(msgspec.Struct, kw_only=True):
    """One part of an array `content`: text, `image_url`, `file`, `input_audio`; other kinds are skipped."""

    type: str
    text: str | None = None
    image_url: ImageURL | None = None
    file: FileData | None = None
    input_audio: InputAudio | None = None


class ChatMessage(msgspec.Struct, kw_only=True):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[Any] | None = None


class StreamOptions(msgspec.Struct, kw_only=True):
    include_usage: bool | None = None


class ChatCompletionRequest(msgspec.Struct, kw_only=True):
    """`POST /v1/chat/completions`. Sampling fields are accepted for compatibility; the Dify app decides them."""

    model: str
    messages: Annotated[list[ChatMessage], msgspec.Meta(min_length=1)]  # the schema says so too (minItems)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    user: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    conversation_id: str | None = None  # OpenDify: continue this Dify conversation (the SDK's extra_body)
    inputs: dict[str, Any] | None = None  # OpenDify: the Dify app's input variables (the SDK's extra_body)
    tools: list[Any] | None = None
    tool_choice: Any = None
    response_format: Any = None


class FunctionCall(msgspec.Struct, kw_only=True):
    name: str
    arguments: str  # JSON


class ToolCall(msgspec.Struct, kw_only=True):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class AssistantMessage(msgspec.Struct, kw_only=True):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: None = None
    reasoning_content: str | msgspec.UnsetType = msgspec.UNSET  # the model's reasoning, when it has some
    tool_calls: list[ToolCall] | msgspec.UnsetType = msgspec.UNSET  # TOOL_USE=tool_calls: the tools the agent ran


class Choice(msgspec.Struct, kw_only=True):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class ChunkDelta(msgspec.Struct, kw_only=True, omit_defaults=True):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(msgspec.Struct, kw_only=True):
    index: int
    delta: ChunkDelta
    logprobs: None = None
    finish_reason: str | None = None


class ChatCompletionChunk(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One `data:` event of a stream. The gateway writes these pre-encoded (see services/chunks.py)."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
