"""A Dify event stream relayed as OpenAI SSE, with what must happen when it ends or the client leaves."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import httpx

from app.errors import GatewayError
from app.schemas.dify import BaseEvent
from app.services.chunks import PING_COMMENT, AnswerState, StreamTranslator, error_event
from app.services.drain import StreamDrain

logger = logging.getLogger("opendify.stream")


def translate_batch(translator: StreamTranslator, batch: list[BaseEvent | None]) -> tuple[bytes, GatewayError | None]:
    """SSE bytes for a batch of events, up to Dify's terminal event, and the error Dify reported, if any (the
    text that arrived before it is kept)."""
    parts: list[bytes] = []
    try:
        for event in batch:
            if event is None:
                parts.append(PING_COMMENT)
                continue
            parts.append(translator.feed(event))
            if translator.state.ended:
                break
    except GatewayError as exc:
        return b"".join(parts), exc
    return b"".join(parts), None


class ChatStream:
    """Iterate for SSE bytes. `head` was read before the HTTP status was committed (see ChatService)."""

    def __init__(
        self,
        head: bytes,
        translator: StreamTranslator,
        batches: AsyncIterator[list[BaseEvent | None]],
        response: httpx.Response,
        stop_unless_over: Callable[[AnswerState], Awaitable[None]],
        *,
        drain: StreamDrain,
        on_complete: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self._head = head
        self._translator = translator
        self._batches = batches
        self._response = response
        self._stop_unless_over = stop_unless_over
        self._on_complete = on_complete
        self._drain = drain
        self._task: asyncio.Task[object] | None = None
        self._ending: GatewayError | None = None

    def end(self, error: GatewayError) -> None:
        """End the stream early (the server is shutting down): `error` goes out in-band, the Dify task is stopped.
        Interrupts the read of Dify's next events; a stream blocked writing to its client is simply closed."""
        if self._ending is None and self._task is not None:
            self._ending = error
            self._task.cancel()

    async def _completed(self) -> None:
        """Before the last bytes go out: a client may send its next turn the moment it reads `[DONE]`."""
        state = self._translator.state
        if self._on_complete is not None and state.conversation_id:
            await self._on_complete(self._translator.visible_text, state.conversation_id)

    @property
    def conversation_id(self) -> str | None:
        return self._translator.state.conversation_id

    async def __aiter__(self) -> AsyncIterator[bytes]:
        translator = self._translator
        state = translator.state
        self._task = asyncio.current_task()
        self._drain.add(self)
        try:
            if state.done:
                await self._completed()
            yield self._head
            if state.ended:
                return
            async for batch in self._batches:
                out, error = translate_batch(translator, batch)
                if state.done:
                    await self._completed()
                if error is not None:
                    yield out + error_event(error)
                    return
                if out:
                    yield out
                if translator.state.ended:  # (read through the translator: `feed` moved it on)
                    return
            state.ended = True  # Dify closed the stream: its task is over
            yield error_event(state.incomplete_error())
        except GatewayError as exc:
            yield error_event(exc)
        except asyncio.CancelledError:
            if self._ending is None or self._task is None:
                raise  # the client left: Litestar cancels the stream
            self._task.uncancel()  # our own cancellation (end()): the stream ends normally, the error in-band
            yield error_event(self._ending)
        finally:
            self._drain.discard(self)
            # Client gone (or server shutting down): Litestar cancels us. Cleanup must survive that cancellation.
            with anyio.CancelScope(shield=True):
                await self._response.aclose()
                await self._stop_unless_over(state)
