"""The httptools transport (DIFY_TRANSPORT=httptools) against a scripted HTTP/1.1 server on a real socket: framing,
keep-alive reuse, the connection limit, timeouts, backpressure, TLS, and every failure as httpx's own error."""

import asyncio
import socket
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from app.plugins import pool
from app.plugins.pool import HttptoolsTransport

pytestmark = pytest.mark.anyio

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


class Server:
    """Runs `script` for each connection; counts connections and keeps each request's head and body."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        self.requests.append((head, body))
        return head


@asynccontextmanager
async def serving(script: Script, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(script)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


def answer_once(raw: bytes, *, keep_open: float = 0) -> Script:
    """Read a request's head, write `raw`, keep the connection `keep_open` seconds, close it."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if raw:
            writer.write(raw)
            await writer.drain()
        await asyncio.sleep(keep_open)

    return script


def keep_answering(answer: bytes = OK) -> Callable[[Server], Script]:
    def make(server: Server) -> Script:
        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.read_request(reader)
                writer.write(answer)
                await writer.drain()

        return script

    return make


@asynccontextmanager
async def answering(make: Callable[[Server], Script]) -> AsyncIterator[Server]:
    """A server whose script can reach the server (to record requests)."""
    holder: list[Server] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await make(holder[0])(reader, writer)

    async with serving(script) as server:
        holder.append(server)
        yield server


def request(port: int, path: str = "/v1/chat-messages", body: bytes = b'{"q":1}', **timeout: float) -> httpx.Request:
    return httpx.Request(
        "POST",
        f"http://127.0.0.1:{port}{path}",
        content=body,
        headers={"Authorization": "Bearer app-key"},
        extensions={"timeout": httpx.Timeout(5, **timeout).as_dict()},
    )


async def read(response: httpx.Response) -> bytes:
    try:
        return await response.aread()
    finally:
        await response.aclose()


async def test_a_request_goes_out_whole_and_its_answer_comes_back() -> None:
    async with answering(keep_answering()) as server:
        transport = HttptoolsTransport(max_connections=4)
        response = await transport.handle_async_request(request(server.port, body=b'{"query":"hi"}'))
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert await read(response) == b'{"ok":true}'
        head, body = server.requests[0]
        assert head.startswith(b"POST /v1/chat-messages HTTP/1.1\r\n")
        assert b"\r\nAuthorization: Bearer app-key\r\n" in head
        assert f"\r\nHost: 127.0.0.1:{server.port}\r\n".encode() in head
        assert body == b'{"query":"hi"}'
        await transport.aclose()


async def test_a_connection_read_to_the_end_is_reused() -> None:
    async with answering(keep_answering()) as server:
        transport = HttptoolsTransport(max_connections=4)
        for _ in range(5):
            assert await read(await transport.handle_async_request(request(server.port))) == b'{"ok":true}'
        assert server.connections == 1
        assert len(server.requests) == 5
        await transport.aclose()


async def test_a_chunked_stream_is_delivered_as_it_arrives() -> None:
    step = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"d\r\ndata: first\n\n\r\n")
        await writer.drain()
        await step.wait()
        writer.write(b"e\r\ndata: second\n\n\r\n0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with serving(script) as server:
        transport = HttptoolsTransport(max_connections=4)
        response = await transport.handle_async_request(request(server.port))
        chunks = aiter(response.stream)  # type: ignore[arg-type]
        assert await anext(chunks) == b"data: first\n\n"  # before the rest was even sent
        step.set()
        assert await anext(chunks) == b"data: second\n\n"
        with pytest.raises(StopAsyncIteration):
            await anext(chunks)
        await response.aclose()
        await transport.aclose()


async def test_a_body_delimited_by_the_end_of_the_connection_is_complete_and_the_connection_not_kept() -> None:
    async with serving(answer_once(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")) as server:
        await _answered_twice_on_two_connections(server, b"all of it")


async def test_connection_close_after_a_framed_answer_is_honoured() -> None:
    async with answering(keep_answering(OK.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))) as server:
        await _answered_twice_on_two_connections(server, b'{"ok":true}')


async def _answered_twice_on_two_connections(server: Server, body: bytes) -> None:
    transport = HttptoolsTransport(max_connections=4)
    for _ in range(2):
        assert await read(await transport.handle_async_request(request(server.port))) == body
    assert server.connections == 2
    await transport.aclose()


async def test_an_idle_connection_the_server_closed_is_not_used_again() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(7)
        writer.write(OK)  # keep-alive by HTTP/1.1's default, then closed while idle (a keep-alive timeout)
        await writer.drain()

    async with serving(script) as server:
        transport = HttptoolsTransport(max_connections=4)
        assert await read(await transport.handle_async_request(request(server.port))) == b'{"ok":true}'
        await asyncio.sleep(0.05)  # the server's FIN arrives
        assert await read(await transport.handle_async_request(request(server.port))) == b'{"ok":true}'
        assert server.connections == 2
        await transport.aclose()


async def test_idle_connections_expire_after_the_keepalive() -> None:
    async with answering(keep_answering()) as server:
        transport = HttptoolsTransport(max_connections=4, keepalive_expiry=0.05)
        await read(await transport.handle_async_request(request(server.port)))
        await asyncio.sleep(0.1)
        await read(await transport.handle_async_request(request(server.port)))
        assert server.connections == 2
        await transport.aclose()


async def test_a_server_that_hangs_up_without_answering_is_a_remote_protocol_error() -> None:
    async with serving(answer_once(b"")) as server:
        transport = HttptoolsTransport(max_connections=4)
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await transport.handle_async_request(request(server.port))
        assert transport._open == 0
        await transport.aclose()


async def test_a_body_cut_short_is_a_remote_protocol_error_never_a_short_answer() -> None:
    async with serving(answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")) as server:
        transport = HttptoolsTransport(max_connections=4)
        response = await transport.handle_async_request(request(server.port))
        with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
            await read(response)
        assert transport._open == 0
        await transport.aclose()


async def test_malformed_http_is_a_remote_protocol_error() -> None:
    async with serving(answer_once(b"SMTP ready\r\n\r\n", keep_open=1)) as server:
        transport = HttptoolsTransport(max_connections=4)
        with pytest.raises(httpx.RemoteProtocolError, match="malformed HTTP"):
            await transport.handle_async_request(request(server.port))
        await transport.aclose()


async def test_nobody_listening_is_a_connect_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    transport = HttptoolsTransport(max_connections=4)
    with pytest.raises(httpx.ConnectError):
        await transport.handle_async_request(request(port))
    assert transport._open == 0
    await transport.aclose()


async def test_silence_past_the_read_timeout_is_a_read_timeout() -> None:
    async with serving(answer_once(b"", keep_open=5)) as server:
        transport = HttptoolsTransport(max_connections=4)
        with pytest.raises(httpx.ReadTimeout):
            await transport.handle_async_request(request(server.port, read=0.1))
        assert transport._open == 0
        await transport.aclose()


async def test_a_stream_that_stops_past_the_read_timeout_is_a_read_timeout() -> None:
    async with serving(
        answer_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", keep_open=5)
    ) as server:
        transport = HttptoolsTransport(max_connections=4)
        response = await transport.handle_async_request(request(server.port, read=0.1))
        chunks = aiter(response.stream)  # type: ignore[arg-type]
        assert await anext(chunks) == b"hello"
        with pytest.raises(httpx.ReadTimeout):
            await anext(chunks)
        await response.aclose()
        assert transport._open == 0
        await transport.aclose()


async def test_the_connection_limit_queues_requests_and_the_pool_timeout_ends_the_wait() -> None:
    release = asyncio.Event()

    def make(server: Server) -> Script:
        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.read_request(reader)
                await release.wait()
                writer.write(OK)
                await writer.drain()

        return script

    async with answering(make) as server:
        transport = HttptoolsTransport(max_connections=1)
        first = asyncio.create_task(transport.handle_async_request(request(server.port)))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await transport.handle_async_request(request(server.port, pool=0.1))
        queued = asyncio.create_task(transport.handle_async_request(request(server.port)))
        await asyncio.sleep(0.05)
        assert not queued.done()
        release.set()
        assert await read(await first) == b'{"ok":true}'
        assert await read(await queued) == b'{"ok":true}'
        assert server.connections == 1  # the queued request took the connection the first one gave back
        await transport.aclose()


async def test_an_answer_left_unread_closes_its_connection_and_frees_its_slot() -> None:
    async with answering(
        keep_answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    ) as server:
        transport = HttptoolsTransport(max_connections=1)
        for _ in range(2):
            response = await transport.handle_async_request(request(server.port, pool=1))
            await response.aclose()  # mid-body: this connection cannot carry another request
        assert server.connections == 2
        assert transport._open == 0
        await transport.aclose()


async def test_a_cancelled_request_frees_its_slot() -> None:
    async with serving(answer_once(b"", keep_open=5)) as server:
        transport = HttptoolsTransport(max_connections=1)
        task = asyncio.create_task(transport.handle_async_request(request(server.port)))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert transport._open == 0
        await transport.aclose()


async def test_a_slow_reader_pauses_the_socket_and_gets_every_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "BUFFER_LIMIT", 64 * 1024)
    payload = bytes(range(256)) * 8192  # 2 MiB

    async with serving(
        answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload, keep_open=1)
    ) as server:
        transport = HttptoolsTransport(max_connections=1)
        response = await transport.handle_async_request(request(server.port))
        body = response.stream
        assert isinstance(body, pool._Body)
        socket_transport = body._connection.transport  # type: ignore[union-attr]
        assert socket_transport is not None
        pause = socket_transport.pause_reading
        pauses: list[int] = []

        def counted() -> None:
            pauses.append(1)
            pause()

        socket_transport.pause_reading = counted  # type: ignore[method-assign]
        received = b""
        async for chunk in response.stream:  # type: ignore[union-attr]
            assert len(chunk) <= pool.BUFFER_LIMIT + 256 * 1024  # the limit, and at most one read (asyncio: 256 KiB)
            received += chunk
            await asyncio.sleep(0.001)
        await response.aclose()
        assert received == payload
        assert pauses  # the reader was behind, and the socket waited for it
        await transport.aclose()


async def test_an_interim_100_continue_is_skipped() -> None:
    async with serving(answer_once(b"HTTP/1.1 100 Continue\r\n\r\n" + OK, keep_open=1)) as server:
        transport = HttptoolsTransport(max_connections=1)
        response = await transport.handle_async_request(request(server.port))
        assert response.status_code == 200
        assert await read(response) == b'{"ok":true}'
        await transport.aclose()


async def test_an_answer_with_bytes_after_it_is_read_but_its_connection_not_reused() -> None:
    async with answering(keep_answering(OK + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) as server:
        transport = HttptoolsTransport(max_connections=4)
        for _ in range(2):
            assert await read(await transport.handle_async_request(request(server.port))) == b'{"ok":true}'
        assert server.connections == 2
        await transport.aclose()


async def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async with answering(keep_answering()) as server:
        transport = HttptoolsTransport(max_connections=1)
        bad = request(server.port)
        bad.headers["X-Request-Id"] = "abc"
        bad.headers._list[-1] = (b"X-Request-Id", b"x-request-id", b"abc\r\nX-Injected: 1")
        with pytest.raises(httpx.LocalProtocolError):
            await transport.handle_async_request(bad)
        assert server.requests == []
        assert transport._open == 0
        await transport.aclose()


async def test_a_close_delimited_body_cut_by_a_reset_is_an_error_not_a_short_answer() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nfirst half")
        await writer.drain()
        await asyncio.sleep(0.1)  # the client has read the first half
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST: the connection broke, the body did not end

    async with serving(script) as server:
        transport = HttptoolsTransport(max_connections=1)
        response = await transport.handle_async_request(request(server.port))
        with pytest.raises(httpx.ReadError):
            await read(response)
        await transport.aclose()


async def test_a_waiter_is_not_overtaken_forever_by_later_requests() -> None:
    async with answering(keep_answering()) as server:
        transport = HttptoolsTransport(max_connections=1)
        served = 0

        async def busy() -> None:  # one caller sending request after request on the only connection
            nonlocal served
            while True:
                await read(await transport.handle_async_request(request(server.port)))
                served += 1

        hog = asyncio.create_task(busy())
        await asyncio.sleep(0.05)
        try:
            response = await transport.handle_async_request(request(server.port, pool=1))
            assert await read(response) == b'{"ok":true}'
            assert served > 0  # the other caller was being served all along
        finally:
            hog.cancel()
            await asyncio.gather(hog, return_exceptions=True)
            await transport.aclose()


async def test_bytes_after_an_answer_in_the_same_read_never_reach_the_next_request() -> None:
    answers = iter([OK + b"HTTP/1.1 503 Service Unavailable\r\nX-Stale: ", OK])

    def make(server: Server) -> Script:
        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.read_request(reader)
                writer.write(next(answers))
                await writer.drain()

        return script

    async with answering(make) as server:
        transport = HttptoolsTransport(max_connections=4)
        assert await read(await transport.handle_async_request(request(server.port))) == b'{"ok":true}'
        response = await transport.handle_async_request(request(server.port))
        assert response.status_code == 200  # fails: 503, the stale bytes' status, over the next answer's body
        assert await read(response) == b'{"ok":true}'
        await transport.aclose()


async def test_junk_after_a_complete_answer_in_the_same_read_does_not_fail_the_answer() -> None:
    async with answering(keep_answering(OK + b"junk")) as server:
        transport = HttptoolsTransport(max_connections=4)
        assert await read(await transport.handle_async_request(request(server.port))) == b'{"ok":true}'
        assert transport._open == 0
        await transport.aclose()


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_is_verified_against_the_trusted_certificates(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    holder: list[Server] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await keep_answering()(holder[0])(reader, writer)

    async with serving(script, tls=server_tls) as server:
        holder.append(server)
        url = f"https://127.0.0.1:{server.port}/v1/info"
        trusting = HttptoolsTransport(max_connections=1, ssl_context=ssl.create_default_context(cafile=str(cert)))
        response = await trusting.handle_async_request(httpx.Request("GET", url))
        assert await read(response) == b'{"ok":true}'
        await trusting.aclose()
        untrusting = HttptoolsTransport(max_connections=1)  # certifi's roots: the throwaway certificate is refused
        with pytest.raises(httpx.ConnectError):
            await untrusting.handle_async_request(httpx.Request("GET", url))
        await untrusting.aclose()


async def test_the_httpx_client_api_works_over_it() -> None:
    async with answering(keep_answering()) as server:
        async with httpx.AsyncClient(transport=HttptoolsTransport(max_connections=2)) as client:
            response = await client.post(f"http://127.0.0.1:{server.port}/v1/x", json={"a": 1})
            assert response.json() == {"ok": True}
        assert server.requests[0][1] == b'{"a":1}'


async def test_the_answer_to_a_head_request_ends_with_its_headers() -> None:
    async with answering(keep_answering(OK.removesuffix(b'{"ok":true}'))) as server:
        transport = HttptoolsTransport(max_connections=1)
        url = f"http://127.0.0.1:{server.port}/v1/info"
        response = await transport.handle_async_request(
            httpx.Request("HEAD", url, extensions={"timeout": httpx.Timeout(5).as_dict()})
        )
        assert response.headers["content-length"] == "11"
        assert await read(response) == b""
        assert transport._open == 0  # (not kept: the parser still waits for the announced body)
        await transport.aclose()
