"""Litestar's Stream lets the handler's media type (JSON, from the return annotation) override its own; an SSE
stream must always be served as `text/event-stream`. It is also relayed by `_RelayResponse`, below."""

from collections.abc import AsyncIterator
from typing import Any

from anyio import CancelScope, create_task_group
from litestar.response import Stream
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import Receive, Send

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy may buffer a stream


class _RelayResponse(ASGIStreamingResponse):
    """Litestar's streaming response, with an end that does not depend on cancellation or garbage collection.

    Litestar stops relaying only by cancelling the relay task on `http.disconnect`, and uvicorn's `send` drops
    writes to a gone client silently. anyio does not deliver a cancellation to a task whose awaited future is
    already done; under load, when Dify's next event is read in the same loop cycle each time, the relay runs on
    to Dify's end and the stream's cleanup finds the task over: no stop. And a cancellation landing in `send`
    leaves the stream's generator at its `yield`, closed whenever it is collected. Here the relay stops at the
    next chunk once the client is gone, and the stream is closed (its cleanup run) before the response returns."""

    __slots__ = ()

    async def send_body(self, send: Send, receive: Receive) -> None:
        stream: AsyncIterator[str | bytes] = aiter(self.iterator)
        gone = False

        async def relay() -> None:
            async for chunk in stream:
                if gone:
                    return
                body = chunk if isinstance(chunk, bytes) else chunk.encode(self.encoding)
                await send({"type": "http.response.body", "body": body, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        try:
            async with create_task_group() as task_group:
                task_group.start_soon(relay)
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone = True
                task_group.cancel_scope.cancel()
        finally:
            with CancelScope(shield=True):
                for closeable in (stream, self.iterator):  # the generator, and the relay (never iterated, perhaps)
                    aclose = getattr(closeable, "aclose", None)
                    if aclose is not None:
                        await aclose()


class EventStream(Stream):
    def __init__(self, content: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["media_type"] = self.media_type
        response = super().to_asgi_response(*args, **kwargs)
        response.__class__ = _RelayResponse  # the same slots: only how the body is sent differs
        return response
