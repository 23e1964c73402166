"""Dify's answers that are not event streams: app metadata, blocking answers, uploads, errors."""

from typing import Any

import msgspec


class AppInfo(msgspec.Struct, kw_only=True):
    """`GET /info`. Dify 0.15.x sends no `mode`; newer versions do."""

    name: str = ""
    description: str | None = None
    mode: str | None = None


class AppParameters(msgspec.Struct, kw_only=True):
    """`GET /parameters`: the input form, a list of `{<control type>: {"variable": ...}}`, and how the app takes
    files (`file_upload`, in its current or its older chat-only shape; `system_parameters` has the size limits)."""

    user_input_form: list[dict[str, dict[str, Any]]] = msgspec.field(default_factory=list)
    file_upload: dict[str, Any] | None = None
    system_parameters: dict[str, Any] | None = None


class UploadedFile(msgspec.Struct, kw_only=True):
    id: str


class Transcript(msgspec.Struct, kw_only=True):
    """`POST /audio-to-text`."""

    text: str


class ErrorBody(msgspec.Struct, kw_only=True):
    """Dify's error envelope; `status` is missing on some errors (they carry `params` instead)."""

    code: str = "unknown"
    message: str = ""
    status: int | None = None
    params: str | None = None


class DifyUsage(msgspec.Struct, kw_only=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class MessageMetadata(msgspec.Struct, kw_only=True):
    usage: DifyUsage | None = None
    reasoning: dict[str, str] | None = None  # Dify 1.15+: separated reasoning by LLM node


class PauseReason(msgspec.Struct, kw_only=True):
    form_content: str | None = None


class PausedData(msgspec.Struct, kw_only=True):
    """Why a run paused (Dify 1.12+ human input): the forms it waits for."""

    reasons: list[PauseReason] = msgspec.field(default_factory=list)


class BlockingMessage(msgspec.Struct, kw_only=True):
    """The blocking answer of `POST /chat-messages` (`event: workflow_paused` for a chatflow waiting for a human)."""

    event: str = "message"
    data: PausedData | None = None

    id: str = ""
    message_id: str = ""
    conversation_id: str | None = None
    task_id: str | None = None
    answer: str = ""
    metadata: MessageMetadata | None = None
    created_at: int = 0


class WorkflowRunData(msgspec.Struct, kw_only=True):
    """`workflow_finished.data`, and the `data` of a blocking `/workflows/run` answer."""

    status: str = ""
    error: str | None = None
    outputs: dict[str, Any] | None = None
    total_tokens: int = 0
    total_steps: int = 0
    created_at: int = 0
    created_by: dict[str, Any] | None = None
    reasons: list[PauseReason] | None = None  # a paused run (blocking: status "paused")


class WorkflowRunAnswer(msgspec.Struct, kw_only=True):
    """The blocking answer of `POST /workflows/run` (a failed run is still HTTP 200, `data.status: failed`)."""

    task_id: str | None = None
    workflow_run_id: str | None = None
    data: WorkflowRunData = msgspec.field(default_factory=WorkflowRunData)
