"""DifyClient over a scripted transport: what it sends, and how connection loss is handled."""

import httpx
import pytest

from app.errors import UpstreamError, UpstreamTimeoutError
from app.services.dify import DifyClient
from tests.traces import load

pytestmark = pytest.mark.anyio


class ScriptedTransport(httpx.AsyncBaseTransport):
    """Answers each request with the next scripted outcome: an exception to raise or a response to return."""

    def __init__(self, *outcomes: Exception | httpx.Response) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def _client(transport: httpx.AsyncBaseTransport) -> DifyClient:
    return DifyClient(transport, "http://dify.test/v1", httpx.Timeout(5))


async def test_a_connection_lost_before_any_answer_is_retried_once_on_a_fresh_one() -> None:
    info = load("chat-info")
    transport = ScriptedTransport(
        httpx.RemoteProtocolError("<ConnectionTerminated error_code:0, last_stream_id:999>"),
        httpx.Response(200, content=info.body),
    )
    assert (await _client(transport).info("app-key")).name == "realdify-chat"
    assert len(transport.requests) == 2


async def test_a_second_loss_is_an_upstream_error() -> None:
    transport = ScriptedTransport(httpx.RemoteProtocolError("gone"), httpx.RemoteProtocolError("gone again"))
    with pytest.raises(UpstreamError) as raised:
        await _client(transport).info("app-key")
    assert raised.value.code == "upstream_unreachable"
    assert "app-key" not in raised.value.message


async def test_timeouts_are_not_retried() -> None:
    transport = ScriptedTransport(httpx.ReadTimeout("slow"))
    with pytest.raises(UpstreamTimeoutError):
        await _client(transport).info("app-key")
    assert len(transport.requests) == 1


async def test_requests_carry_the_app_key_the_timeout_and_identity_encoding() -> None:
    transport = ScriptedTransport(httpx.Response(200, content=b'{"result": "success"}'))
    await _client(transport).stop_chat("app-key", "task-1", "user-1")
    [sent] = transport.requests
    assert sent.url == "http://dify.test/v1/chat-messages/task-1/stop"
    assert sent.headers["authorization"] == "Bearer app-key"
    assert sent.headers["accept-encoding"] == "identity"
    assert sent.extensions["timeout"] == httpx.Timeout(5).as_dict()
    assert sent.content == b'{"user":"user-1"}'
