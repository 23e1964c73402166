"""What one request did, for its access line and its metrics: set along the way (the app, the stream's outcome, the
tokens), read once the response is sent. One record per request, reached through a context variable; no bodies,
no keys, no users."""

from contextvars import ContextVar
from typing import Literal

Outcome = Literal["completed", "client_gone", "upstream_error", "cut", "shutdown"]


class Access:
    __slots__ = (
        "app",
        "completion_tokens",
        "first_byte",
        "mode",
        "outcome",
        "prompt_tokens",
        "request_id",
        "started",
        "stream",
        "task_id",
    )

    def __init__(self, request_id: str, started: float = 0.0) -> None:
        self.request_id = request_id
        self.started = started  # time.perf_counter() when the request came in
        self.first_byte: float | None = None  # seconds until a stream's first bytes were ready
        self.app: str | None = None  # the model id of the app that answered
        self.mode: str | None = None
        self.stream = False
        self.outcome: Outcome | None = None  # a stream's end
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.task_id: str | None = None


current: ContextVar[Access | None] = ContextVar("opendify_access", default=None)


def request_id() -> str | None:
    """The request's id (`X-Request-Id`), sent to Dify with each of its calls."""
    access = current.get()
    return access.request_id if access is not None else None
