"""Dify events -> the neutral answer events (app.services.answer). Pure and per run; no I/O.

`ChatInterpreter` reads the message-shaped streams (`/chat-messages` of chat, agent-chat, advanced-chat and agent
apps, and `/completion-messages`); `WorkflowInterpreter` reads `/workflows/run`.
"""

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
from app.schemas.openai import Usage
from app.services.answer import (
    KEEPALIVE,
    AnswerEvent,
    Failed,
    Finished,
    Replaced,
    Started,
    TextDelta,
)
from app.services.dify.errors import error_from_dify


def usage_from_dify(usage: DifyUsage | None) -> Usage:
    if usage is None:
        return Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    # Dify's agent stream reports total_tokens: 0; an inconsistent total is recomputed
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def incomplete() -> GatewayError:
    return UpstreamError("Dify closed the stream before the answer was complete", code="upstream_incomplete")


class ChatInterpreter:
    """Message-shaped runs: `message`/`agent_message` deltas, `message_replace`, `message_file`, and `message_end` or
    `error` at the end. After `agent_message` deltas (the New Agent of Dify 1.16) a closing `message` repeats the
    whole answer: only what it adds is shown."""

    __slots__ = (
        "_agent_text",
        "_named",
        "conversation_id",
        "over",
        "task_id",
        "workflow_error",
    )

    def __init__(self) -> None:
        self.over = False
        self.task_id: str | None = None
        self.conversation_id: str | None = None
        self._named = False
        self._agent_text: list[str] | None = None  # the agent_message text so far, once one was seen
        self.workflow_error: str | None = None  # a chatflow's failed workflow, reported if no error event follows

    def feed(self, events: list[BaseEvent | None]) -> list[AnswerEvent]:
        out: list[AnswerEvent] = []
        for event in events:
            if event is None:
                out.append(KEEPALIVE)
                continue
            if event.task_id is not None:
                self.task_id = event.task_id
            if not self._named and event.message_id:
                self._named = True
                self.conversation_id = event.conversation_id
                out.append(
                    Started(
                        conversation_id=event.conversation_id, message_id=event.message_id, created=event.created_at
                    )
                )
            self._apply(event, out)
            if self.over:
                break
        return out

    def _apply(self, event: BaseEvent, out: list[AnswerEvent]) -> None:
        if isinstance(event, AgentMessageEvent):
            if event.answer:
                if self._agent_text is None:
                    self._agent_text = []
                self._agent_text.append(event.answer)
                out.append(TextDelta(event.answer))
        elif isinstance(event, MessageEvent):
            self._message(event.answer, out)
        elif isinstance(event, MessageFileEvent):
            self._file(event, out)
        elif isinstance(event, MessageReplaceEvent):
            out.append(Replaced(event.answer))
        elif isinstance(event, MessageEndEvent):
            self.over = True
            out.append(Finished(usage=usage_from_dify(event.metadata.usage if event.metadata else None)))
        elif isinstance(event, ErrorEvent):
            self.over = True
            body = ErrorBody(code=event.code or "unknown", message=event.message or "")
            out.append(Failed(error_from_dify(event.status or 500, body)))
        elif isinstance(event, WorkflowFinishedEvent) and event.data is not None and event.data.status == "failed":
            self.workflow_error = event.data.error or "the workflow failed"

    def _message(self, answer: str, out: list[AnswerEvent]) -> None:
        if not answer:
            return
        streamed = self._agent_text
        if streamed is None:
            out.append(TextDelta(answer))
            return
        # the closing message of an agent run: the whole answer, already streamed as agent_message deltas
        so_far = "".join(streamed)
        if answer.startswith(so_far) and len(answer) > len(so_far):
            rest = answer[len(so_far) :]
            streamed.append(rest)
            out.append(TextDelta(rest))

    def _file(self, event: MessageFileEvent, out: list[AnswerEvent]) -> None:
        if event.url is None:
            self._message(event.answer or "", out)  # newest Dify sends text chunks as message_file after a file
        elif event.belongs_to == "assistant" and event.type == "image":
            out.append(TextDelta(f"\n![image]({event.url})\n"))

    def close(self) -> list[AnswerEvent]:
        if self.over:
            return []
        if self.workflow_error is not None:
            error = UpstreamError(f"Dify: the workflow failed: {self.workflow_error}", code="workflow_failed")
            return [Failed(error)]
        return [Failed(incomplete())]
