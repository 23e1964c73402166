"""What Dify's Service API sends and receives (shapes checked against the 0.15.3 recordings)."""

from typing import Any, Literal, cast

import msgspec

# --- requests -------------------------------------------------------------------------------------------


class DifyFile(msgspec.Struct, kw_only=True, omit_defaults=True):
    type: str
    transfer_method: Literal["remote_url", "local_file"]
    url: str | None = None
    upload_file_id: str | None = None


class ChatMessageRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`POST /chat-messages`. `inputs` is required by Dify even when empty."""

    query: str
    inputs: dict[str, Any]
    user: str
    response_mode: Literal["streaming", "blocking"]
    conversation_id: str | None = None
    files: list[DifyFile] | None = None
    auto_generate_name: bool | None = None


class StopRequest(msgspec.Struct, kw_only=True):
    user: str


# --- metadata -------------------------------------------------------------------------------------------


class AppInfo(msgspec.Struct, kw_only=True):
    """`GET /info`. Dify 0.15.x sends no `mode`; newer versions do."""

    name: str = ""
    description: str | None = None
    mode: str | None = None


class AppParameters(msgspec.Struct, kw_only=True):
    """`GET /parameters`: only the input form matters here, a list of `{<control type>: {"variable": ...}}`."""

    user_input_form: list[dict[str, dict[str, Any]]] = msgspec.field(default_factory=list)

    def variables(self) -> list[str]:
        return [
            str(spec.get("variable"))
            for item in self.user_input_form
            for spec in item.values()
            if isinstance(spec, dict)
        ]


class UploadedFile(msgspec.Struct, kw_only=True):
    id: str


class ErrorBody(msgspec.Struct, kw_only=True):
    """Dify's error envelope; `status` is missing on some errors (they carry `params` instead)."""

    code: str = "unknown"
    message: str = ""
    status: int | None = None
    params: str | None = None


# --- usage ----------------------------------------------------------------------------------------------


class DifyUsage(msgspec.Struct, kw_only=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class MessageMetadata(msgspec.Struct, kw_only=True):
    usage: DifyUsage | None = None


class BlockingMessage(msgspec.Struct, kw_only=True):
    """The blocking answer of `POST /chat-messages`."""

    id: str = ""
    message_id: str = ""
    conversation_id: str | None = None
    task_id: str | None = None
    answer: str = ""
    metadata: MessageMetadata | None = None
    created_at: int = 0


# --- stream events: one tagged union, decoded in one pass -----------------------------------------------


class _Event(msgspec.Struct, kw_only=True, tag_field="event"):
    conversation_id: str | None = None
    message_id: str | None = None
    created_at: int = 0
    task_id: str | None = None


class MessageEvent(_Event, tag="message"):
    answer: str = ""


class AgentMessageEvent(_Event, tag="agent_message"):
    answer: str = ""


class MessageFileEvent(_Event, tag="message_file"):
    """A file, or (newest builds) a text chunk in disguise: `answer` set and no `url`."""

    answer: str | None = None
    url: str | None = None
    type: str | None = None
    belongs_to: str | None = None


class MessageReplaceEvent(_Event, tag="message_replace"):
    answer: str = ""


class MessageEndEvent(_Event, tag="message_end"):
    metadata: MessageMetadata | None = None


class ErrorEvent(_Event, tag="error"):
    code: str | None = None
    status: int | None = None
    message: str | None = None


class WorkflowFinishedData(msgspec.Struct, kw_only=True):
    status: str = ""
    error: str | None = None


class WorkflowFinishedEvent(_Event, tag="workflow_finished"):
    data: WorkflowFinishedData | None = None


def _ignored(tag: str) -> type[_Event]:
    # Events that carry nothing for the client: decoded as a bare envelope, their payload skipped unread.
    return cast("type[_Event]", msgspec.defstruct(f"Ignored_{tag}", [], bases=(_Event,), tag=tag, kw_only=True))


IGNORED_EVENTS: tuple[type[_Event], ...] = tuple(
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
