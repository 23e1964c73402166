"""A Dify event stream relayed as OpenAI SSE, with what must happen when it ends or the client leaves."""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Union, get_args

import anyio
import httpx
import msgspec

from app.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from app.schemas.dify import IGNORED_EVENTS, DifyEvent, _Event
from app.services.chunks import PING_COMMENT, StreamTranslator, error_event
from app.services.sse import PING, iter_sse

logger = logging.getLogger("opendify.stream")

_events: msgspec.json.Decoder[_Event] = msgspec.json.Decoder(Union[(*get_args(DifyEvent), *IGNORED_EVENTS)])

STOP_TIMEOUT = 5.0


def decode_event(raw: bytes) -> _Event | None:
    """One SSE payload -> a Dify event; None for an event this gateway does not know (Dify adds new ones)."""
    try:
        return _events.decode(raw)
    except msgspec.ValidationError:
        return None
    except msgspec.DecodeError as exc:
        raise UpstreamError("Dify sent a malformed stream event", code="upstream_malformed") from exc


async def dify_events(response: httpx.Response) -> AsyncIterator[_Event | None]:
    """Decoded events, None for a keep-alive ping. httpx failures become gateway errors."""
    try:
        async for raw in iter_sse(response.aiter_bytes()):
            if raw == PING:
                yield None
                continue
            event = decode_event(raw)
            if event is not None:
                yield event
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError("Dify stopped sending events (read timeout)") from exc
    except httpx.TransportError as exc:
        raise UpstreamError(f"The connection to Dify failed mid-stream ({type(exc).__name__})") from exc


class ChatStream:
    """Iterate for SSE bytes. `head` was read before the HTTP status was committed (see ChatService)."""

    def __init__(
        self,
        head: bytes,
        translator: StreamTranslator,
        events: AsyncIterator[_Event | None],
        response: httpx.Response,
        stop: Callable[..., Awaitable[None]],
    ) -> None:
        self._head = head
        self._translator = translator
        self._events = events
        self._response = response
        self._stop = stop

    @property
    def conversation_id(self) -> str | None:
        return self._translator.state.conversation_id

    async def __aiter__(self) -> AsyncIterator[bytes]:
        translator = self._translator
        upstream_over = translator.state.ended  # Dify ended its task (terminal event, error event or EOF)
        try:
            yield self._head
            if upstream_over:
                return
            async for event in self._events:
                if event is None:
                    yield PING_COMMENT
                    continue
                try:
                    out = translator.feed(event)
                finally:
                    upstream_over = translator.state.ended
                if out:
                    yield out
                if upstream_over:
                    return
            upstream_over = True
            yield error_event(translator.state.incomplete_error())
        except GatewayError as exc:
            yield error_event(exc)
        finally:
            # Client gone (or server shutting down): Litestar cancels us. Cleanup must survive that cancellation.
            with anyio.CancelScope(shield=True):
                await self._response.aclose()
                task_id = translator.state.task_id
                if not upstream_over and task_id is not None:
                    with anyio.move_on_after(STOP_TIMEOUT):
                        await self._stop(task_id=task_id)
