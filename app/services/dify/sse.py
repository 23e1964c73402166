"""Incremental server-sent-events parsing at the byte level.

Network chunks may split a line, a `\\r\\n` pair or a multi-byte UTF-8 character anywhere; nothing is decoded
until a whole event has arrived, so none of that matters here.
"""

from collections.abc import AsyncIterable, AsyncIterator
from typing import Final

PING: Final = b""  # yielded for a data-less event (Dify's `event: ping` keep-alive)
MAX_EVENT_BYTES: Final = 16 * 1024 * 1024  # one event, still incomplete, may hold this much


class EventTooLargeError(ValueError):
    """An event grew past MAX_EVENT_BYTES without ending: the upstream is not sending server-sent events."""


class SSEParser:
    """Feed it bytes; get back the `data` payload of every complete event (PING for data-less events)."""

    __slots__ = ("_buffer", "_data", "_has_field", "_pending")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._has_field = False
        self._pending = 0  # bytes in `_data`

    def feed(self, chunk: bytes) -> list[bytes]:
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[bytes]
        if not self._has_field:
            events_only = _data_events(buffer)
            if events_only is not None:  # the usual read: nothing but one-line `data:` events (and a tail)
                events, self._buffer = events_only
                if len(self._buffer) > MAX_EVENT_BYTES:
                    raise EventTooLargeError(f"an event grew past {MAX_EVENT_BYTES} bytes without ending")
                return events
        if self._has_field or b"\r" in buffer:
            lines = buffer.split(b"\n")
            self._buffer = lines.pop()
            events = self._lines(lines)
        else:
            # Fast path for the usual shape, `data: <one line>\n\n`: split at blank lines, not at every line.
            blocks = buffer.split(b"\n\n")
            self._buffer = blocks.pop()
            events = []
            for block in blocks:
                if block.startswith(b"data: ") and b"\n" not in block:
                    events.append(block[6:])
                else:
                    events.extend(self._lines([*block.split(b"\n"), b""]))
        if len(self._buffer) + self._pending > MAX_EVENT_BYTES:
            raise EventTooLargeError(f"an event grew past {MAX_EVENT_BYTES} bytes without ending")
        return events

    def _lines(self, lines: list[bytes]) -> list[bytes]:
        events: list[bytes] = []
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if line:
                self._field(line)
            elif self._has_field:
                events.append(b"\n".join(self._data) if self._data else PING)
                self._data = []
                self._pending = 0
                self._has_field = False
        return events

    def close(self) -> list[bytes]:
        """End of input: an event still missing its blank line is delivered if it has data."""
        events = self._lines(self._buffer.split(b"\n")) if self._buffer else []
        if self._data:
            events.append(b"\n".join(self._data))
        self._buffer = b""
        self._data = []
        self._pending = 0
        self._has_field = False
        return events

    def _field(self, line: bytes) -> None:
        if line.startswith(b"data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(b" ") else value)
            self._pending += len(value)
            self._has_field = True
        elif not line.startswith(b":"):
            self._has_field = True  # `event:`, `id:`, `retry:`: an event without data is a keep-alive


def _data_events(buffer: bytes) -> tuple[list[bytes], bytes] | None:
    """The payloads of `buffer`'s complete events, and its tail, when every complete event is one `data: ` line
    (what Dify sends but for its pings); None for anything else, which the line parser reads. Split at each blank
    line followed by `data: `, the read is made of such events only if it starts with `data: ` and no piece holds
    another newline."""
    if b"\r" in buffer:
        return None  # CRLF or CR anywhere, the tail included: the line parser reads the whole read
    end = buffer.rfind(b"\n\n")
    if end < 0:
        return None if buffer.startswith(b"\n") else ([], buffer)
    if not buffer.startswith(b"data: "):
        return None
    payloads = buffer[6:end].split(b"\n\ndata: ")
    if b"\n" in b"".join(payloads):  # (joined, one scan: bytes.count is several times slower)
        return None  # a multi-line event, a ping or a comment among them
    return payloads, buffer[end + 2 :]


async def iter_sse_batches(chunks: AsyncIterable[bytes]) -> AsyncIterator[list[bytes]]:
    """The complete events of each network chunk, as one list (chunks that complete no event yield nothing)."""
    parser = SSEParser()
    async for chunk in chunks:
        events = parser.feed(chunk)
        if events:
            yield events
    tail = parser.close()
    if tail:
        yield tail
