"""What the gateway sends to Dify's Service API."""

from typing import Any, Literal

import msgspec


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


class CompletionMessageRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`POST /completion-messages` (text generator apps): the text goes in an input variable."""

    inputs: dict[str, Any]
    user: str
    response_mode: Literal["streaming", "blocking"]
    files: list[DifyFile] | None = None


class WorkflowRunRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`POST /workflows/run`: the text goes in an input variable; there is no `query`."""

    inputs: dict[str, Any]
    user: str
    response_mode: Literal["streaming", "blocking"]
    files: list[DifyFile] | None = None


class StopRequest(msgspec.Struct, kw_only=True):
    user: str


class TextToAudioRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`POST /text-to-audio` (`voice` None: the app's own)."""

    text: str
    user: str
    voice: str | None = None
