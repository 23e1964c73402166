"""Dify's stream events: one tagged union, decoded in one pass."""

from typing import cast

import msgspec

from app.schemas.dify.responses import MessageMetadata


class BaseEvent(msgspec.Struct, kw_only=True, tag_field="event"):
    conversation_id: str | None = None
    message_id: str | None = None
    created_at: int = 0
    task_id: str | None = None


class MessageEvent(BaseEvent, tag="message"):
    answer: str = ""


class AgentMessageEvent(BaseEvent, tag="agent_message"):
    answer: str = ""


class MessageFileEvent(BaseEvent, tag="message_file"):
    """A file, or (newest builds) a text chunk in disguise: `answer` set and no `url`."""

    answer: str | None = None
    url: str | None = None
    type: str | None = None
    belongs_to: str | None = None


class MessageReplaceEvent(BaseEvent, tag="message_replace"):
    answer: str = ""


class MessageEndEvent(BaseEvent, tag="message_end"):
    metadata: MessageMetadata | None = None


class ErrorEvent(BaseEvent, tag="error"):
    code: str | None = None
    status: int | None = None
    message: str | None = None


class WorkflowFinishedData(msgspec.Struct, kw_only=True):
    status: str = ""
    error: str | None = None


class WorkflowFinishedEvent(BaseEvent, tag="workflow_finished"):
    data: WorkflowFinishedData | None = None


def _ignored(tag: str) -> type[BaseEvent]:
    # Events that carry nothing for the client: decoded as a bare envelope, their payload skipped unread.
    return cast("type[BaseEvent]", msgspec.defstruct(f"Ignored_{tag}", [], bases=(BaseEvent,), tag=tag, kw_only=True))


IGNORED_EVENTS: tuple[type[BaseEvent], ...] = tuple(
    _ignored(tag)
    for tag in (
        "agent_thought",
        "workflow_started",
        "node_started",
        "node_finished",
        "node_retry",
        "iteration_started",
        "iteration_next",
        "iteration_completed",
        "loop_started",
        "loop_next",
        "loop_completed",
        "parallel_branch_started",
        "parallel_branch_finished",
        "agent_log",
        "reasoning_chunk",
        "tts_message",
        "tts_message_end",
        "text_chunk",
        "text_replace",
        "human_input_required",
        "human_input_form_filled",
        "human_input_form_timeout",
        "workflow_paused",
    )
)

DifyEvent = (
    MessageEvent
    | AgentMessageEvent
    | MessageFileEvent
    | MessageReplaceEvent
    | MessageEndEvent
    | ErrorEvent
    | WorkflowFinishedEvent
)
