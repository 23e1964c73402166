"""What Dify's Service API sends and receives (shapes checked against the recordings)."""

from app.schemas.dify.events import (
    IGNORED_EVENTS,
    AgentMessageEvent,
    BaseEvent,
    DifyEvent,
    ErrorEvent,
    MessageEndEvent,
    MessageEvent,
    MessageFileEvent,
    MessageReplaceEvent,
    WorkflowFinishedData,
    WorkflowFinishedEvent,
)
from app.schemas.dify.requests import ChatMessageRequest, DifyFile, StopRequest
from app.schemas.dify.responses import (
    AppInfo,
    AppParameters,
    BlockingMessage,
    DifyUsage,
    ErrorBody,
    MessageMetadata,
    UploadedFile,
)

__all__ = [
    "IGNORED_EVENTS",
    "AgentMessageEvent",
    "AppInfo",
    "AppParameters",
    "BaseEvent",
    "BlockingMessage",
    "ChatMessageRequest",
    "DifyEvent",
    "DifyFile",
    "DifyUsage",
    "ErrorBody",
    "ErrorEvent",
    "MessageEndEvent",
    "MessageEvent",
    "MessageFileEvent",
    "MessageMetadata",
    "MessageReplaceEvent",
    "StopRequest",
    "UploadedFile",
    "WorkflowFinishedData",
    "WorkflowFinishedEvent",
]
