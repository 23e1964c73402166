"""`DIFY_TRANSPORT=httptools`: an httpx transport that speaks HTTP/1.1 itself, on asyncio protocols and the
httptools parser (llhttp, the parser uvicorn serves with), over a keep-alive pool.

The gateway sends a handful of request shapes to one upstream: a body built in memory, answered by a JSON body or
an event stream. aiohttp's client spends most of a request's CPU on what this does not need (its request and
response objects, tracing hooks, cookie and redirect handling); here a request is one write of its head and body,
and a response is the parser's callbacks filling a buffer that the reader takes whole. Errors are httpx's own
exception tree, so the rest of the gateway sees only httpx.

What it does: keep-alive reuse (the most recently used connection first, so idle ones expire), a limit on open
connections with a pool timeout, connect and read timeouts, TLS (httpx's default context: certifi, or
SSL_CERT_FILE), Content-Length, chunked and close-delimited bodies, backpressure (reading pauses while a slow
reader has BUFFER_LIMIT bytes waiting). A connection is reused only after its response was read to the end.
"""

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Final, cast

import httptools
import httpx

BUFFER_LIMIT: Final = 256 * 1024  # bytes read ahead of a slow reader before the socket is paused
_Origin = tuple[bytes, bytes, int]  # scheme, host, port


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one request at a time; the parser's callbacks fill `_chunks`."""

    __slots__ = (
        "_chunks",
        "_complete",
        "_error",
        "_head_only",
        "_headers",
        "_idle",
        "_loop",
        "_lost",
        "_parser",
        "_paused",
        "_pending",
        "_status",
        "_waiter",
        "idle_since",
        "origin",
        "reusable",
        "transport",
    )

    def __init__(self, origin: _Origin) -> None:
        self.origin = origin
        # (made inside create_connection; asked once: get_running_loop() checks the process id, a syscall, each time)
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._headers: list[tuple[bytes, bytes]] = []
        self._status = 0
        self._chunks: list[bytes] = []
        self._pending = 0  # bytes in `_chunks`
        self._complete = False  # the response was read to its end
        self._lost = False
        self._paused = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.reusable = False
        self._head_only = False  # the answer to a HEAD request: headers, and no body whatever they announce
        self._idle = True  # between requests: anything the server sends now is not an answer
        self.idle_since = 0.0

    # --- asyncio.Protocol ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # (a stream socket; uvloop's is not a subclass)

    def data_received(self, data: bytes) -> None:
        if self._idle or self._complete:  # nothing was asked, or more than the answer came: never reused
            self._fail(httpx.RemoteProtocolError("Dify sent data outside an answer"), quiet=self._complete)
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("Dify switched protocols"))
        except httptools.HttpParserError as exc:  # (after a complete answer: the answer stands, the connection goes)
            self._fail(httpx.RemoteProtocolError(f"Dify sent malformed HTTP ({exc})"), quiet=self._complete)

    def eof_received(self) -> bool | None:
        return None  # (the transport closes itself; connection_lost tells what was missing)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.reusable = False
        if self._error is None and not self._complete:
            if exc is not None:  # a reset or a TLS failure: never the end of a body
                self._error = httpx.ReadError(str(exc) or type(exc).__name__)
            elif self._status and not self._framed():
                self._complete = True  # a body delimited by the (clean) end of the connection
            elif self._status:
                self._error = httpx.RemoteProtocolError("peer closed connection without sending complete message body")
            else:
                self._error = httpx.RemoteProtocolError("Server disconnected without sending a response.")
        self._wake()

    def pause_writing(self) -> None:  # (request bodies are written whole; the kernel takes them)
        pass

    def resume_writing(self) -> None:
        pass

    # --- httptools callbacks ------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:  # bytes of another message after the answer: the connection is never reused
            self._fail(httpx.RemoteProtocolError("Dify sent more than one answer"), quiet=True)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._complete:  # a second message in the same read (on_message_begin retired the connection)
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            self._headers = []
            return
        self._status = status
        if self._head_only:  # (llhttp cannot know a body announced to a HEAD request never comes)
            self._complete = True
            self.reusable = False
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._status == 0 or self._complete:
            return  # (an interim answer's body: there is none)
        self._chunks.append(body)
        self._pending += len(body)
        if self._pending >= BUFFER_LIMIT and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        if self._waiter is not None:
            self._wake()

    def on_message_complete(self) -> None:
        if self._status == 0 or self._complete:
            return
        self._complete = True
        self.reusable = self._parser.should_keep_alive()
        self._wake()

    # --- the request ---------------------------------------------------------------------------------------

    def _framed(self) -> bool:
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
                return True
        return False

    def _fail(self, error: Exception, *, quiet: bool = False) -> None:
        """The connection is unusable; `error` is what a reader of the current answer gets (none if `quiet`)."""
        if not quiet:
            self._error = error
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, read_timeout: float | None) -> None:
        loop = self._loop
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(read_timeout, _expire, waiter) if read_timeout is not None else None
        try:
            await waiter
        except TimeoutError:
            raise httpx.ReadTimeout("Dify sent nothing within the read timeout") from None
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def send(self, data: bytes, *, head_only: bool = False) -> None:
        self._head_only = head_only
        self._headers = []
        self._status = 0
        self._chunks = []
        self._pending = 0
        self._complete = False
        self.reusable = False
        self._idle = False
        assert self.transport is not None  # noqa: S101  # (a connection is used once connected)
        self.transport.write(data)

    async def head(self, read_timeout: float | None) -> tuple[int, list[tuple[bytes, bytes]]]:
        while not self._status:
            if self._error is not None:
                raise self._error
            await self._wait(read_timeout)
        return self._status, self._headers

    async def body(self, read_timeout: float | None) -> bytes:
        """What has arrived since the last call (waiting for more when nothing has); b"" at the end."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._complete:
                return b""
            await self._wait(read_timeout)
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._pending = 0
        if self._paused and self.transport is not None and not self._lost:
            self._paused = False
            self.transport.resume_reading()
        return data

    def taken(self) -> None:
        """Out of the pool for a request (send() follows in the same step of the loop)."""
        self._idle = False

    def pooled(self) -> None:
        self._idle = True

    @property
    def done(self) -> bool:
        """The response was read to its end (nothing of it is left buffered)."""
        return self._complete and not self._chunks

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self._lost:
            self.transport.close()

    @property
    def usable(self) -> bool:
        return not self._lost and self._error is None and self.transport is not None and not self.transport.is_closing()


def _loop_time(deadline: float) -> float:
    """A time.monotonic() deadline on the running loop's clock."""
    return asyncio.get_running_loop().time() + deadline - time.monotonic()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Body(httpx.AsyncByteStream):
    """A response's body, read off its connection; the connection goes back to the pool once it is read whole."""

    __slots__ = ("_connection", "_pool", "_timeout")

    def __init__(self, pool: "HttptoolsTransport", connection: _Connection, timeout: float | None) -> None:
        self._pool = pool
        self._connection: _Connection | None = connection
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        while True:
            data = await connection.body(self._timeout)
            if not data:
                return
            yield data

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool.release(connection)


class HttptoolsTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, *, max_connections: int, keepalive_expiry: float = 30.0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl = ssl_context
        self._idle: dict[_Origin, deque[_Connection]] = {}
        self._open = 0  # connections open or being opened
        self._waiting: deque[asyncio.Future[None]] = deque()  # requests waiting for a free connection slot
        self._woken = 0  # waiters woken and not yet run: what freed up is theirs
        self._closed = False

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        url = request.url
        origin: _Origin = (url.raw_scheme, url.raw_host, url.port or (443 if url.raw_scheme == b"https" else 80))
        connection = await self._acquire(origin, timeout.get("pool"), timeout.get("connect"))
        read_timeout = timeout.get("read")
        try:
            connection.send(_serialize(request), head_only=request.method == "HEAD")
            status, headers = await connection.head(read_timeout)
        except BaseException:
            self._discard(connection)
            raise
        return httpx.Response(
            status_code=status,
            headers=headers,
            stream=_Body(self, connection, read_timeout),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def _acquire(self, origin: _Origin, pool_timeout: float | None, connect_timeout: float | None) -> _Connection:
        deadline = None if pool_timeout is None else time.monotonic() + pool_timeout
        queued = False
        while True:
            if queued or not (self._woken or (self._waiting and any(not w.done() for w in self._waiting))):
                connection = self._reuse(origin)
                if connection is not None:
                    return connection
                if self._open < self._max_connections or self._close_an_idle():  # (another origin's idle one)
                    break
            await self._wait_for_slot(deadline, front=queued)  # behind those already waiting; back in front
            queued = True
        self._open += 1
        try:
            return await self._connect(origin, connect_timeout)
        except BaseException:
            self._closed_one()
            raise

    def _reuse(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the others expire
            if connection.usable and now - connection.idle_since < self._keepalive_expiry:
                self._expire_idle(idle, now)
                connection.taken()
                return connection
            self._discard(connection)
        return None

    async def _wait_for_slot(self, deadline: float | None, *, front: bool = False) -> None:
        """Until a connection is closed or goes back to the pool."""
        waiter = asyncio.get_running_loop().create_future()
        if front:
            self._waiting.appendleft(waiter)
        else:
            self._waiting.append(waiter)  # (a waiter given up on stays in line, done, and is skipped)
        try:
            async with asyncio.timeout_at(None if deadline is None else _loop_time(deadline)):
                await waiter
            self._woken -= 1
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._woken -= 1
                self._wake_one()  # woken as it gave up: the next in line gets the wake-up
            waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout("no connection to Dify became free in time") from None
            raise

    async def _connect(self, origin: _Origin, connect_timeout: float | None) -> _Connection:
        if self._closed:
            raise httpx.ConnectError("the transport is closed")
        scheme, host, port = origin
        tls = self._tls() if scheme == b"https" else None
        name = host.decode("ascii")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(origin), name, port, ssl=tls, server_hostname=name if tls else None
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {name}:{port} within the connect timeout") from None
        except OSError as exc:  # refused, unreachable, no such host, a TLS failure
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return connection

    def release(self, connection: _Connection) -> None:
        """A response closed: its connection is kept when read to the end and reusable, else closed."""
        if connection.done and connection.reusable and connection.usable and not self._closed:
            connection.idle_since = time.monotonic()
            connection.pooled()
            self._idle.setdefault(connection.origin, deque()).append(connection)
            self._wake_one()  # (a waiter for another origin may close it to make room)
        else:
            self._discard(connection)

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._closed_one()

    def _closed_one(self) -> None:
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._woken += 1
                return

    def _expire_idle(self, idle: deque[_Connection], now: float) -> None:
        """The oldest idle connections (the left end) that are past the keep-alive expiry, closed."""
        while idle and (now - idle[0].idle_since >= self._keepalive_expiry or not idle[0].usable):
            self._discard(idle.popleft())

    def _close_an_idle(self) -> bool:
        for idle in self._idle.values():
            if idle:
                self._discard(idle.popleft())
                return True
        return False

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                self._discard(idle.popleft())
        self._idle.clear()


def _serialize(request: httpx.Request) -> bytes:
    """The request's head and body in one piece. httpx put Host and Content-Length among its headers; a header
    value carrying a line break (which would start a header of its own) is refused."""
    lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    head = b"".join(lines)
    if head.count(b"\n") != len(request.headers.raw) + 2 or head.count(b"\r") != head.count(b"\n"):
        raise httpx.LocalProtocolError("a request header holds a line break")
    return head + request.content
