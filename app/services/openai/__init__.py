"""The OpenAI side: each surface's request as a `Turn`, and one encoder per surface, from the answer events."""

from app.services.openai.chat import (
    ChatChunks,
    chat_completion,
    chat_encoder,
    chat_turn,
)
from app.services.openai.common import DONE, PING_COMMENT, REPLACED_NOTICE, error_event

__all__ = [
    "DONE",
    "PING_COMMENT",
    "REPLACED_NOTICE",
    "ChatChunks",
    "chat_completion",
    "chat_encoder",
    "chat_turn",
    "error_event",
]
