"""A small asyncio HTTP/1.1 load driver for streams (wrk cannot time a first chunk or count SSE events)."""

import asyncio
import ssl
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class StreamStats:
    streams: int = 0
    errors: int = 0
    events: int = 0
    first_chunk: list[float] = field(default_factory=list)  # seconds from request sent to first `data:` event
    elapsed: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.elapsed if self.elapsed else 0.0

    def first_chunk_ms(self, quantile: float) -> float:
        if not self.first_chunk:
            return float("nan")
        ordered = sorted(self.first_chunk)
        return 1000 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    @property
    def first_chunk_p50_ms(self) -> float:
        return 1000 * statistics.median(self.first_chunk) if self.first_chunk else float("nan")


def http_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _one_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, stats: StreamStats
) -> bool:
    sent = time.perf_counter()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return False
    chunked = b"transfer-encoding: chunked" in head.lower()
    if not chunked:
        return False
    first = True
    events = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            break
        data = await reader.readexactly(size + 2)
        count = data.count(b"data: ")
        if count and first:
            stats.first_chunk.append(time.perf_counter() - sent)
            first = False
        events += count
    stats.events += events
    return events > 0 and b"close" not in head.lower()


async def run_streams(
    host: str,
    port: int,
    request: bytes,
    *,
    concurrency: int,
    duration: float | None = None,
    total: int | None = None,
    tls: ssl.SSLContext | None = None,
) -> StreamStats:
    """`concurrency` connections, each sending one request after another (keep-alive) until `duration` seconds
    have passed, or until `total` streams were started in all."""
    stats = StreamStats()
    started = time.perf_counter()
    deadline = started + duration if duration else float("inf")
    remaining = [total if total is not None else 1 << 62]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20, ssl=tls)
        try:
            while time.perf_counter() < deadline and remaining[0] > 0:
                remaining[0] -= 1
                try:
                    ok = await _one_stream(reader, writer, request, stats)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    ok = False
                stats.streams += 1
                if not ok:
                    stats.errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20, ssl=tls)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    stats.elapsed = time.perf_counter() - started
    return stats
