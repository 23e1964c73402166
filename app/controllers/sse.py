"""Litestar's Stream lets the handler's media type (JSON, from the return annotation) override its own; an SSE
stream must always be served as `text/event-stream`. It is also relayed by `_RelayResponse`, below."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from anyio import CancelScope
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
    next chunk once the client is gone, and the stream is closed (its cleanup run) before the response returns.
    The relay and the watch for the disconnect are two asyncio tasks, not an anyio task group (a third less CPU a
    stream); the relay is cancelled through a cancel scope of its own, which, unlike `Task.cancel`, leaves a
    shielded cleanup (the Dify task's stop, `AnswerStream.aclose`) to run to its end."""

    __slots__ = ()

    async def send_body(self, send: Send, receive: Receive) -> None:
        stream: AsyncIterator[str | bytes] = aiter(self.iterator)
        gone = False

        scope = CancelScope()  # cancelled, not the task: a shielded cleanup (the Dify stop) runs to its end

        async def relay() -> None:
            with scope:
                async for chunk in stream:
                    if gone:
                        return
                    body = chunk if isinstance(chunk, bytes) else chunk.encode(self.encoding)
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def disconnected() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True  # at once: the relay may run on in this very loop cycle (Dify's next events already read)

        relaying = asyncio.ensure_future(relay())
        watching = asyncio.ensure_future(disconnected())
        try:
            await asyncio.wait((relaying, watching), return_when=asyncio.FIRST_COMPLETED)
            if not relaying.done():  # the client is gone
                scope.cancel()
            await asyncio.wait((relaying,))
            for task in (relaying, watching):  # the relay's own failure, or receive()'s, raised here
                if task.done() and not task.cancelled():
                    task.result()
        finally:
            watching.cancel()
            if not relaying.done():  # this task cancelled (a shutdown): the relay goes with it
                gone = True
                scope.cancel()
            await self._close(stream, relaying, watching)

    async def _close(self, stream: AsyncIterator[str | bytes], *tasks: "asyncio.Future[None]") -> None:
        with CancelScope(shield=True):
            await asyncio.wait(tasks)  # (the relay out of the generator before it is closed)
            for task in tasks:
                if not task.cancelled():
                    task.exception()  # (retrieved: raised above, or superseded by this task's cancellation)
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
