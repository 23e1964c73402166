"""What every runner takes, and the one interface they share."""

from typing import Any, Protocol

import msgspec

from app.schemas.dify import DifyFile
from app.services.answer import AnswerStream
from app.services.registry import DifyApp


class RunInput(msgspec.Struct, kw_only=True):
    """One Dify run, whatever the app mode: the user's text, the app's inputs, who asks, and where it goes."""

    query: str
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    user: str
    conversation_id: str | None = None
    files: list[DifyFile] | None = None
    auto_generate_name: bool | None = None


class Runner(Protocol):
    async def run(self, app: DifyApp, run: RunInput, *, stream: bool) -> AnswerStream:
        """Start the run; a blocking answer comes back as a one-batch stream. Dify's refusals raise."""
        ...
