"""One neutral request in: each OpenAI surface (chat completions, completions, responses) turns its request into a
`Turn`, and nothing downstream knows which endpoint was called."""

from typing import Any

import msgspec

from app.schemas.openai import ChatMessage
from app.services.conversations import ConversationMode


class Turn(msgspec.Struct, kw_only=True):
    """The model, the messages (in the chat message shape: role, text, file parts; other surfaces convert theirs),
    how to continue, the Dify `inputs`, and who asks."""

    model: str
    messages: list[ChatMessage]
    stream: bool = False
    user: str | None = None  # the request's own `user`
    forwarded_user: str | None = None  # who the client says the user is (X-OpenWebUI-User-Id, X-Dify-User)
    chat_id: str | None = None  # which chat this is, as the client forwards it (X-OpenWebUI-Chat-Id, X-Chat-Id)
    conversation_id: str | None = None  # an explicit continuation: a Dify conversation id
    inputs: dict[str, Any] | None = None  # the app's input variables
    response_format: Any = None  # the chat shape of `response_format`: JSON answers
    mode: ConversationMode | None = None  # the surface's own conversation mode (completions: `last`), else the setting
