"""Dify's stream events: one tagged union, decoded in one pass."""

from typing import Any, cast

import msgspec

from app.schemas.dify.responses import MessageMetadata, PausedData, WorkflowRunData


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


class WorkflowFinishedEvent(BaseEvent, tag="workflow_finished"):
    workflow_run_id: str | None = None
    data: WorkflowRunData | None = None


class WorkflowStartedData(msgspec.Struct, kw_only=True):
    created_at: int = 0


class WorkflowStartedEvent(BaseEvent, tag="workflow_started"):
    workflow_run_id: str | None = None
    data: WorkflowStartedData | None = None


class TextData(msgspec.Struct, kw_only=True):
    text: str = ""


class TextChunkEvent(BaseEvent, tag="text_chunk"):
    """A workflow's streamed output text."""

    data: TextData | None = None


class TextReplaceEvent(BaseEvent, tag="text_replace"):
    """A workflow's moderation replaced the whole output text."""

    data: TextData | None = None


class WorkflowPausedEvent(BaseEvent, tag="workflow_paused"):
    """Dify 1.12+: the run waits for a human (a form); the stream ends here."""

    data: PausedData | None = None


class AgentThoughtEvent(BaseEvent, tag="agent_thought"):
    """An agent's step, re-sent as it fills in (the same `id`): the tool(s) it called, their input and result."""

    id: str = ""
    tool: str = ""
    tool_input: str = ""
    observation: str = ""


class ReasoningData(msgspec.Struct, kw_only=True):
    reasoning: str = ""


class ReasoningChunkEvent(BaseEvent, tag="reasoning_chunk"):
    """Dify 1.15+: an LLM node's separated reasoning (`reasoning_format: separated`)."""

    data: ReasoningData | None = None


class HumanInputData(msgspec.Struct, kw_only=True):
    form_content: str = ""


class HumanInputRequiredEvent(BaseEvent, tag="human_input_required"):
    """The form a paused run waits for (just before `workflow_paused`)."""

    data: HumanInputData | None = None


class IgnoredEvent(BaseEvent):
    """An event that carries nothing for the client: a bare envelope, its payload skipped unread, its fields taken
    as they come (a type Dify changes in an event nobody reads must not break the stream)."""

    conversation_id: Any = None
    message_id: Any = None
    created_at: Any = 0
    task_id: Any = None


class NodeData(msgspec.Struct, kw_only=True):
    """What a node's progress shows; typed loosely: nothing else reads these events, and none may break a stream."""

    title: Any = None  # (the envelope is loose too: an IgnoredEvent's)
    node_type: Any = None
    status: Any = None
    error: Any = None
    iteration_id: Any = None  # a node inside an iteration or a loop: one of many runs of the same step
    loop_id: Any = None


class NodeStartedEvent(IgnoredEvent, tag="node_started"):
    data: NodeData | None = None


class NodeFinishedEvent(IgnoredEvent, tag="node_finished"):
    data: NodeData | None = None


def _ignored(tag: str) -> type[BaseEvent]:
    return cast(
        "type[BaseEvent]", msgspec.defstruct(f"Ignored_{tag}", [], bases=(IgnoredEvent,), tag=tag, kw_only=True)
    )


IGNORED_EVENTS: tuple[type[BaseEvent], ...] = tuple(
    _ignored(tag)
    for tag in (
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
        "tts_message",
        "tts_message_end",
        "human_input_form_filled",
        "human_input_form_timeout",
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
    | WorkflowStartedEvent
    | TextChunkEvent
    | TextReplaceEvent
    | WorkflowPausedEvent
    | HumanInputRequiredEvent
    | ReasoningChunkEvent
    | AgentThoughtEvent
    | NodeStartedEvent
    | NodeFinishedEvent
)
