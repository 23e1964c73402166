"""Dify's event stream read off the wire: SSE batches decoded into events, transport failures into gateway errors."""

from collections.abc import AsyncIterator
from typing import Union, get_args

import httpx
import msgspec

from app.errors import UpstreamError, UpstreamTimeoutError
from app.schemas.dify import IGNORED_EVENTS, BaseEvent, DifyEvent
from app.services.dify.sse import PING, EventTooLargeError, iter_sse_batches

_KNOWN = (*get_args(DifyEvent), *IGNORED_EVENTS)
_events: msgspec.json.Decoder[BaseEvent] = msgspec.json.Decoder(Union[(*get_args(DifyEvent), *IGNORED_EVENTS)])
_TAGS = frozenset(cls.__struct_config__.tag for cls in _KNOWN)


class _Envelope(msgspec.Struct):
    event: object = None


_envelope = msgspec.json.Decoder(_Envelope)


def decode_event(raw: bytes) -> BaseEvent | None:
    """One SSE payload -> a Dify event; None for an event this gateway does not know (Dify adds new ones). A known
    event with a field of the wrong type is an upstream error that says so, never silently dropped."""
    try:
        return _events.decode(raw)
    except msgspec.ValidationError as exc:
        try:
            tag = _envelope.decode(raw).event
        except msgspec.ValidationError:  # not even an object
            return None
        if isinstance(tag, str) and tag in _TAGS:
            raise UpstreamError(f"Dify sent a malformed `{tag}` event: {exc}", code="upstream_malformed") from exc
        return None
    except msgspec.DecodeError as exc:
        raise UpstreamError("Dify sent a malformed stream event", code="upstream_malformed") from exc


def _decode_batch(payloads: list[bytes]) -> list[BaseEvent | None]:
    batch: list[BaseEvent | None] = []
    for raw in payloads:
        if raw == PING:
            batch.append(None)
        else:
            event = decode_event(raw)
            if event is not None:
                batch.append(event)
    return batch


async def dify_event_batches(response: httpx.Response) -> AsyncIterator[list[BaseEvent | None]]:
    """The events of each network read (None for a keep-alive ping): what arrived together is relayed together,
    in one write to the client. httpx failures become gateway errors."""
    try:
        # read off the transport's stream as it delivers (requests ask for identity encoding; httpx's raw-reading
        # layers cost a few µs a read)
        stream = response.stream
        source = stream if isinstance(stream, httpx.AsyncByteStream) else response.aiter_raw()
        async for payloads in iter_sse_batches(source):
            batch = _decode_batch(payloads)
            if batch:
                yield batch
    except EventTooLargeError as exc:
        raise UpstreamError(f"Dify sent an unreadable stream: {exc}", code="upstream_too_large") from exc
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError("Dify stopped sending events (read timeout)") from exc
    except httpx.TransportError as exc:
        raise UpstreamError(f"The connection to Dify failed mid-stream ({type(exc).__name__})") from exc
