"""Hostile clients over real sockets, against the gateway started the ways the README starts it."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.processes import gateway_process

LIMITS = {
    "VALID_API_KEYS": "sk-limits",
    "MAX_HEADER_BYTES": "4096",
    "MAX_HEADER_COUNT": "20",
    "MAX_URL_BYTES": "1024",
    "CLIENT_HEADER_TIMEOUT": "1",
    "CLIENT_BODY_TIMEOUT": "1",
    "MAX_CONNECTIONS": "8",
}


@pytest.fixture(scope="module", params=["litestar run", "python -m app"])
def address(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    workdir: Path = tmp_path_factory.mktemp("limits")
    with gateway_process(LIMITS, workdir, launcher=request.param) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def _exchange(address: tuple[str, int], data: bytes, *, then_wait: float = 10) -> bytes:
    """Send `data`, then read until the server closes (`then_wait` is a hang guard, not a measurement)."""
    with socket.create_connection(address, timeout=then_wait) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pytest.fail(f"the gateway kept the connection open; it sent {received[:200]!r}")
        except ConnectionResetError:
            pass
        return received


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_an_oversized_header_is_refused_without_waiting_for_the_rest(address: tuple[str, int]) -> None:
    # more than the head may hold, and unfinished: the gateway must not keep reading (or buffering) it
    response = _exchange(address, b"GET /health HTTP/1.1\r\nX: " + b"a" * 6000)
    assert _status(response) == 431


def test_too_many_headers_are_refused(address: tuple[str, int]) -> None:
    headers = b"".join(b"X-%d: 1\r\n" % i for i in range(25))
    response = _exchange(address, b"GET /health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert _status(response) == 431


def test_an_overlong_url_is_refused(address: tuple[str, int]) -> None:
    response = _exchange(address, b"GET /health?" + b"q" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status(response) == 414


def test_a_client_that_never_finishes_its_headers_is_timed_out(address: tuple[str, int]) -> None:
    response = _exchange(address, b"GET /health HTTP/1.1\r\nX-Slow: a")
    assert _status(response) == 408


def test_a_connection_that_sends_nothing_is_closed(address: tuple[str, int]) -> None:
    response = _exchange(address, b"")
    assert response == b"" or _status(response) == 408


def test_a_body_that_trickles_is_timed_out(address: tuple[str, int]) -> None:
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-limits\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    response = _exchange(address, head + b'{"model": ')
    assert _status(response) == 408


def test_a_large_body_arriving_with_its_headers_is_not_mistaken_for_a_large_head(address: tuple[str, int]) -> None:
    body = b'{"model": "none", "messages": [{"role": "user", "content": "' + b"a" * 50_000 + b'"}]}'
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-limits\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    response = _exchange(address, head + body)
    assert _status(response) == 404  # read whole and answered: no such model
    assert b"model_not_found" in response


def test_requests_on_a_kept_alive_connection_still_work(address: tuple[str, int]) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(address, timeout=10) as sock:
        for _ in range(3):
            sock.sendall(request)
            response = b""
            while not response.endswith(b'{"status":"ok"}'):
                response += sock.recv(65536)
            assert response.startswith(b"HTTP/1.1 200")


def test_connections_past_the_cap_are_answered_503(address: tuple[str, int]) -> None:
    held = [socket.create_connection(address, timeout=10) for _ in range(8)]
    try:
        time.sleep(0.2)  # let the server register them
        response = _exchange(address, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _status(response) == 503
    finally:
        for sock in held:
            sock.close()


def test_a_request_filling_the_head_limit_pipelined_with_the_next_is_answered(address: tuple[str, int]) -> None:
    """Head and body of the first request fill most of the head limit (5 KiB here) in one read with a second."""
    body = b'{"model": "none", "messages": [{"role": "user", "content": "' + b"a" * 4900 + b'"}]}'
    first = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-limits\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    ) + body
    second = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert len(first) < 5120 < len(first + second)
    response = _exchange(address, first + second)
    assert response.count(b"HTTP/1.1 ") == 2
    assert b"model_not_found" in response
    assert response.endswith(b'{"status":"ok"}')
