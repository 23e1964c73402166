"""`POST /v1/responses` (the Responses API, text and what maps cleanly): the request, the `response` object and
its output items, and the named stream events (`reference/openai-compat.md` §7.2)."""

from typing import Any, Literal

import msgspec


class ResponseRequest(msgspec.Struct, kw_only=True):
    """`input`: a string (one user message) or a list of items (messages with `input_text`, `input_image` and
    `input_file` parts, earlier outputs, function calls and their outputs; reasoning items are dropped). Sampling
    and tool fields are accepted for compatibility; the Dify app decides them."""

    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool | None = None
    stream: bool | None = None
    text: dict[str, Any] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    reasoning: dict[str, Any] | None = None
    include: list[str] | None = None
    truncation: str | None = None
    inputs: dict[str, Any] | None = None  # OpenDify: the Dify app's input variables (the SDK's extra_body)


class OutputText(msgspec.Struct, kw_only=True, tag="output_text", tag_field="type"):
    text: str
    annotations: list[Any] = msgspec.field(default_factory=list)
    logprobs: list[Any] = msgspec.field(default_factory=list)


class SummaryText(msgspec.Struct, kw_only=True, tag="summary_text", tag_field="type"):
    text: str


class MessageItem(msgspec.Struct, kw_only=True, tag="message", tag_field="type"):
    id: str
    status: str
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class ReasoningItem(msgspec.Struct, kw_only=True, tag="reasoning", tag_field="type"):
    id: str
    summary: list[SummaryText]
    status: str | None = None


class FunctionCallItem(msgspec.Struct, kw_only=True, tag="function_call", tag_field="type"):
    id: str
    call_id: str
    name: str
    arguments: str
    status: str


OutputItem = MessageItem | ReasoningItem | FunctionCallItem


class InputTokensDetails(msgspec.Struct, kw_only=True):
    cached_tokens: int = 0


class OutputTokensDetails(msgspec.Struct, kw_only=True):
    reasoning_tokens: int = 0


class ResponseUsage(msgspec.Struct, kw_only=True):
    input_tokens: int
    input_tokens_details: InputTokensDetails = msgspec.field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = msgspec.field(default_factory=OutputTokensDetails)
    total_tokens: int


class ResponseError(msgspec.Struct, kw_only=True):
    code: str
    message: str


class ResponseObject(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: str
    completed_at: int | None = None
    error: ResponseError | None = None
    incomplete_details: dict[str, Any] | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[OutputItem] = msgspec.field(default_factory=list)
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    reasoning: dict[str, Any] = msgspec.field(default_factory=lambda: {"effort": None, "summary": None})
    store: bool = True
    temperature: float | None = None
    text: dict[str, Any] = msgspec.field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: Any = "auto"
    tools: list[Any] = msgspec.field(default_factory=list)
    top_p: float | None = None
    truncation: str = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class ResponseDeleted(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["response"] = "response"
    deleted: bool = True


# --- stream events: `event: <type>` and the same `type` in the JSON, with a rising `sequence_number` -------------


class ResponseEvent(msgspec.Struct, kw_only=True):
    type: str
    sequence_number: int


class LifecycleEvent(ResponseEvent, kw_only=True):
    response: ResponseObject


class ItemEvent(ResponseEvent, kw_only=True):
    output_index: int
    item: OutputItem


class PartEvent(ResponseEvent, kw_only=True):
    """`response.content_part.added/done` (`content_index`, an `output_text` part) and
    `response.reasoning_summary_part.added/done` (`summary_index`, a `summary_text` part)."""

    item_id: str
    output_index: int
    content_index: int | msgspec.UnsetType = msgspec.UNSET
    summary_index: int | msgspec.UnsetType = msgspec.UNSET
    part: OutputText | SummaryText


class TextEvent(ResponseEvent, kw_only=True):
    """`response.output_text.delta/done` (`content_index`, `logprobs`) and
    `response.reasoning_summary_text.delta/done` (`summary_index`): a `delta`, or the whole `text` when done."""

    item_id: str
    output_index: int
    content_index: int | msgspec.UnsetType = msgspec.UNSET
    summary_index: int | msgspec.UnsetType = msgspec.UNSET
    delta: str | msgspec.UnsetType = msgspec.UNSET
    text: str | msgspec.UnsetType = msgspec.UNSET
    logprobs: list[Any] | msgspec.UnsetType = msgspec.UNSET


class ArgumentsEvent(ResponseEvent, kw_only=True):
    """`response.function_call_arguments.delta` (`delta`) and `.done` (`name`, `arguments`)."""

    item_id: str
    output_index: int
    delta: str | msgspec.UnsetType = msgspec.UNSET
    name: str | msgspec.UnsetType = msgspec.UNSET
    arguments: str | msgspec.UnsetType = msgspec.UNSET
