"""`POST /v1/responses` over the event model: the request as a `Turn`, the answer as a `response` object or as the
named stream events the SDK requires, in its order (`reference/openai-compat.md` §7.2).

Output items: the reasoning (`ReasoningDelta`, tool use shown as reasoning) as a `reasoning` item with summary
text; tool use with `TOOL_USE=tool_calls` as completed `function_call` items (Dify already ran them); the answer as
a `message` item with one `output_text` part (an app's files as markdown in it). A new item starts whenever the kind
of output changes.
"""

import time
from typing import Any

import msgspec

from app.errors import GatewayError, InvalidRequestError
from app.schemas.openai import ChatMessage
from app.schemas.openai.responses import (
    ArgumentsEvent,
    FunctionCallItem,
    ItemEvent,
    LifecycleEvent,
    MessageItem,
    OutputItem,
    OutputText,
    PartEvent,
    ReasoningItem,
    ResponseError,
    ResponseEvent,
    ResponseObject,
    ResponseRequest,
    ResponseUsage,
    SummaryText,
    TextEvent,
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
from app.services.openai.common import PING_COMMENT, shown_text
from app.services.turn import Turn

_encode = msgspec.json.Encoder().encode
_ROLES = frozenset({"user", "assistant", "system", "developer"})


def _invalid(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code="invalid_value")


def _part(part: Any, where: str) -> dict[str, Any] | None:
    """A Responses content part in the chat shape (`text`, `image_url`, `file`); reasoning-ish parts dropped."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text", "refusal"):
        return {"type": "text", "text": str(part.get("text") or part.get("refusal") or "")}
    if kind == "input_image":
        if not part.get("image_url"):
            raise _invalid("input_image needs `image_url` (file ids are not served by this gateway)", where)
        return {"type": "image_url", "image_url": {"url": part["image_url"]}}
    if kind == "input_file":
        if not part.get("file_data"):
            raise _invalid("input_file needs `file_data` (file ids and URLs are not served by this gateway)", where)
        return {"type": "file", "file": {"file_data": part["file_data"], "filename": part.get("filename")}}
    if kind in ("reasoning_text", "summary_text"):
        return None
    raise _invalid(f"unknown content part type {str(kind)[:40]!r}", where)


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        raise _invalid("a message item needs `role`: user, assistant, system or developer", where)
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise _invalid("a message item's `content` is a string or a list of parts", where)
    converted = (_part(part, f"{where}.content[{i}]") for i, part in enumerate(content))
    parts = [part for part in converted if part is not None]
    return {"role": role, "content": parts}


def input_messages(request: ResponseRequest) -> list[ChatMessage]:
    """`instructions` and `input` as chat messages."""
    items: list[dict[str, Any]] = []
    if request.instructions:
        items.append({"role": "system", "content": request.instructions})
    if isinstance(request.input, str):
        items.append({"role": "user", "content": request.input})
    else:
        for index, item in enumerate(request.input):
            where = f"input[{index}]"
            kind = item.get("type", "message")
            if kind == "message":
                items.append(_message(item, where))
            elif kind == "function_call":
                call = {"name": item.get("name") or "", "arguments": item.get("arguments") or ""}
                tool = {"id": item.get("call_id") or "", "type": "function", "function": call}
                items.append({"role": "assistant", "content": None, "tool_calls": [tool]})
            elif kind == "function_call_output":
                output = item.get("output")
                text = output if isinstance(output, str) else _encode(output).decode()
                items.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": text})
            elif kind != "reasoning":  # reasoning items clients echo back are dropped
                raise _invalid(f"input item type {str(kind)[:40]!r} is not supported", where)
    try:
        return msgspec.convert(items, list[ChatMessage])
    except msgspec.ValidationError as exc:
        raise _invalid(f"`input` is malformed: {exc}", "input") from exc


def _response_format(text: dict[str, Any] | None) -> Any:
    """`text.format` (flattened) in the chat shape of `response_format`."""
    fmt = (text or {}).get("format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_schema":
        spec = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": spec}
    return {"type": fmt.get("type")}


def responses_turn(request: ResponseRequest, *, conversation_id: str | None = None) -> Turn:
    """`conversation_id`: the Dify conversation `previous_response_id` continues (only the new input is sent)."""
    return Turn(
        model=request.model,
        messages=input_messages(request),
        stream=bool(request.stream),
        user=request.user,
        conversation_id=conversation_id,
        inputs=request.inputs,
        response_format=_response_format(request.text),
    )


def _usage(answer_usage: Any) -> ResponseUsage:
    return ResponseUsage(
        input_tokens=answer_usage.prompt_tokens,
        output_tokens=answer_usage.completion_tokens,
        total_tokens=answer_usage.total_tokens,
    )


class ResponseShape:
    """What a `response` object echoes of its request, the same at every stage."""

    def __init__(self, request: ResponseRequest) -> None:
        self.request = request

    def build(
        self, response_id: str, created: int, status: str, output: list[OutputItem], **more: Any
    ) -> ResponseObject:
        request = self.request
        return ResponseObject(
            id=response_id,
            created_at=created,
            status=status,
            instructions=request.instructions,
            max_output_tokens=request.max_output_tokens,
            model=request.model,
            output=output,
            previous_response_id=request.previous_response_id,
            store=request.store is not False,
            temperature=request.temperature,
            top_p=request.top_p,
            text=request.text or {"format": {"type": "text"}},
            tools=request.tools or [],
            tool_choice=request.tool_choice or "auto",
            user=request.user,
            metadata=request.metadata or {},
            **more,
        )


def response_object(answer: Answer, request: ResponseRequest) -> ResponseObject:
    """A whole answer as a completed `response`."""
    base = (answer.message_id or "").replace("-", "") or str(time.time_ns())
    output: list[OutputItem] = []
    if answer.reasoning:
        output.append(ReasoningItem(id=f"rs_{base}", summary=[SummaryText(text=answer.reasoning)], status="completed"))
    output += [
        FunctionCallItem(
            id=f"fc_{tool.id}", call_id=tool.id, name=tool.name, arguments=tool.arguments, status="completed"
        )
        for tool in answer.tools
    ]
    output.append(MessageItem(id=f"msg_{base}", status="completed", content=[OutputText(text=answer.text)]))
    return ResponseShape(request).build(
        f"resp_{base}",
        answer.created,
        "completed",
        output,
        completed_at=int(time.time()),
        usage=_usage(answer.usage),
    )


class ResponseEvents:
    """Per stream: the named events, `sequence_number` rising from 0. `response.created` and `.in_progress` come
    first; each output item is added, filled and done in order; `Finished` is `response.completed` with the whole
    response, `Failed` `response.failed` with its error."""

    __slots__ = (
        "_base",
        "_created",
        "_item",
        "_output",
        "_parts",
        "_sequence",
        "_shape",
        "_started",
        "_visible",
        "finished",
        "response",
    )

    def __init__(self, request: ResponseRequest) -> None:
        self._shape = ResponseShape(request)
        self._sequence = 0
        self._started: Started | None = None
        self._base = ""
        self._created = 0
        self._output: list[OutputItem] = []
        self._item: str | None = None  # the kind of the open item: "message" or "reasoning"
        self._parts: list[str] = []  # the open item's text so far
        self._visible: list[str] = []
        self.finished = False
        self.response: ResponseObject | None = None  # the final response, once complete

    @property
    def visible_text(self) -> str:
        return "".join(self._visible)

    @property
    def response_id(self) -> str:
        return f"resp_{self._base}"

    def _emit(self, cls: type[ResponseEvent], kind: str, /, **fields: Any) -> bytes:
        event = cls(type=kind, sequence_number=self._sequence, **fields)
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + _encode(event) + b"\n\n"

    def _on_item(self, cls: type[ResponseEvent], kind: str, /, **fields: Any) -> bytes:
        """An event of the open item, which is the next in `output`."""
        return self._emit(cls, kind, item_id=self._item_id(), output_index=len(self._output), **fields)

    def _text_place(self) -> dict[str, Any]:
        """Where the open item's text goes: its one content part, or its one summary part."""
        return {"content_index": 0} if self._item == "message" else {"summary_index": 0}

    def _open(self) -> bytes:
        started = self._started
        self._base = ((started.message_id if started else None) or str(time.time_ns())).replace("-", "")
        self._created = (started.created if started else 0) or int(time.time())
        snapshot = self._shape.build(self.response_id, self._created, "in_progress", [])
        return self._emit(LifecycleEvent, "response.created", response=snapshot) + self._emit(
            LifecycleEvent, "response.in_progress", response=snapshot
        )

    def _item_id(self) -> str:
        prefix = "msg" if self._item == "message" else "rs"
        return f"{prefix}_{self._base}_{len(self._output)}"

    def _start_item(self, kind: str) -> bytes:
        out = self._close_item()
        self._item, self._parts = kind, []
        added: OutputItem
        part: OutputText | SummaryText
        if kind == "message":
            added, part, name = (
                MessageItem(id=self._item_id(), status="in_progress", content=[]),
                OutputText(text=""),
                "content",
            )
        else:
            added, part, name = (
                ReasoningItem(id=self._item_id(), summary=[], status="in_progress"),
                SummaryText(text=""),
                "reasoning_summary",
            )
        out += self._emit(ItemEvent, "response.output_item.added", output_index=len(self._output), item=added)
        return out + self._on_item(PartEvent, f"response.{name}_part.added", part=part, **self._text_place())

    def _delta(self, kind: str, text: str) -> bytes:
        out = self._start_item(kind) if self._item != kind else b""
        self._parts.append(text)
        if kind == "message":
            self._visible.append(text)
            return out + self._on_item(
                TextEvent, "response.output_text.delta", delta=text, content_index=0, logprobs=[]
            )
        return out + self._on_item(TextEvent, "response.reasoning_summary_text.delta", delta=text, summary_index=0)

    def _close_item(self) -> bytes:
        if self._item is None:
            return b""
        text = "".join(self._parts)
        item: OutputItem
        if self._item == "message":
            out = self._on_item(TextEvent, "response.output_text.done", text=text, content_index=0, logprobs=[])
            out += self._on_item(PartEvent, "response.content_part.done", part=OutputText(text=text), content_index=0)
            item = MessageItem(id=self._item_id(), status="completed", content=[OutputText(text=text)])
        else:
            out = self._on_item(TextEvent, "response.reasoning_summary_text.done", text=text, summary_index=0)
            summary = SummaryText(text=text)
            out += self._on_item(PartEvent, "response.reasoning_summary_part.done", part=summary, summary_index=0)
            item = ReasoningItem(id=self._item_id(), summary=[summary], status="completed")
        out += self._emit(ItemEvent, "response.output_item.done", output_index=len(self._output), item=item)
        self._output.append(item)
        self._item, self._parts = None, []
        return out

    def _tool(self, tool: ToolUse) -> bytes:
        """A tool the agent ran: a `function_call` item, added, its arguments in one delta, done (completed)."""
        out = self._close_item()
        index, item_id = len(self._output), f"fc_{tool.id}"
        pending = FunctionCallItem(id=item_id, call_id=tool.id, name=tool.name, arguments="", status="in_progress")
        done = FunctionCallItem(
            id=item_id, call_id=tool.id, name=tool.name, arguments=tool.arguments, status="completed"
        )
        where = {"item_id": item_id, "output_index": index}
        out += self._emit(ItemEvent, "response.output_item.added", output_index=index, item=pending)
        out += self._emit(ArgumentsEvent, "response.function_call_arguments.delta", delta=tool.arguments, **where)
        out += self._emit(
            ArgumentsEvent,
            "response.function_call_arguments.done",
            name=tool.name,
            arguments=tool.arguments,
            **where,
        )
        self._output.append(done)
        return out + self._emit(ItemEvent, "response.output_item.done", output_index=index, item=done)

    def _end(self, event: Finished) -> bytes:
        out = self._close_item()
        if not any(isinstance(item, MessageItem) for item in self._output):  # an empty answer is still a message
            out += self._start_item("message") + self._close_item()
        self.finished = True
        self.response = self._shape.build(
            self.response_id,
            self._created,
            "completed",
            list(self._output),
            completed_at=int(time.time()),
            usage=_usage(event.usage),
        )
        return out + self._emit(LifecycleEvent, "response.completed", response=self.response)

    def fail(self, error: GatewayError) -> bytes:
        """The stream ends on a failure (Dify's connection lost, the server shutting down): `response.failed`."""
        return (b"" if self._base else self._open()) + self._fail(error)

    def _fail(self, error: GatewayError) -> bytes:
        out = self._close_item()
        failed = self._shape.build(
            self.response_id,
            self._created,
            "failed",
            list(self._output),
            error=ResponseError(code=error.code or error.error_type, message=error.message),
        )
        return out + self._emit(LifecycleEvent, "response.failed", response=failed)

    def encode(self, batch: list[AnswerEvent]) -> bytes:
        parts: list[bytes] = []
        for event in batch:
            if isinstance(event, Started):
                self._started = self._started or event
                continue
            if not self._base and not isinstance(event, Keepalive):
                # opened at the first output (keep-alives may come first, and a run refused before any output is
                # run again with this encoder: it must not have begun)
                parts.append(self._open())
            if isinstance(event, TextDelta):
                parts.append(self._delta("message", event.text))
            elif isinstance(event, ReasoningDelta):
                parts.append(self._delta("reasoning", event.text))
            elif isinstance(event, FileOut | Replaced):
                parts.append(self._delta("message", shown_text(event)))
            elif isinstance(event, ToolUse):
                parts.append(self._tool(event))
            elif isinstance(event, Keepalive):
                parts.append(PING_COMMENT)
            elif isinstance(event, Finished):
                parts.append(self._end(event))
            elif isinstance(event, Failed):
                parts.append(self.fail(event.error))
        return b"".join(parts)
