"""Message builders and a store that is down, shared by the conversation unit tests."""

from app.schemas.openai import ChatMessage
from app.services.conversations import StoreUnavailableError, scope_of

SCOPE = scope_of("client-1", "helper", "alice")


def system(text: str) -> ChatMessage:
    return ChatMessage(role="system", content=text)


def developer(text: str) -> ChatMessage:
    return ChatMessage(role="developer", content=text)


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def assistant(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)


class FailingStore:
    """A shared store that cannot be reached."""

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    async def get_many(self, keys: list[str]) -> list[str | None]:
        self.calls += 1
        raise StoreUnavailableError("connection refused")

    async def set_many(self, items: dict[str, str]) -> None:
        self.calls += 1
        raise StoreUnavailableError("connection refused")

    async def compare_and_set(self, key: str, expected: str, value: str) -> bool:
        self.calls += 1
        raise StoreUnavailableError("connection refused")

    async def delete_many(self, keys: list[str]) -> None:
        self.calls += 1
        raise StoreUnavailableError("connection refused")

    async def ping(self) -> None:
        self.calls += 1
        raise StoreUnavailableError("connection refused")

    async def close(self) -> None:
        self.closed = True
