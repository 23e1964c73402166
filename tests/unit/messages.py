"""Message builders shared by the conversation unit tests."""

from app.schemas.openai import ChatMessage
from app.services.conversations import scope_of

SCOPE = scope_of("client-1", "helper", "alice")


def system(text: str) -> ChatMessage:
    return ChatMessage(role="system", content=text)


def developer(text: str) -> ChatMessage:
    return ChatMessage(role="developer", content=text)


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def assistant(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)
