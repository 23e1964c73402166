"""Litestar's Stream lets the handler's media type (JSON, from the return annotation) override its own; an SSE
stream must always be served as `text/event-stream`."""

from typing import Any

from litestar.response import Stream


class EventStream(Stream):
    def __init__(self, content: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["media_type"] = self.media_type
        return super().to_asgi_response(*args, **kwargs)
