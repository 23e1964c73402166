"""DifyClient over a scripted transport: what it sends, and how connection loss is handled."""

import asyncio

import aiohttp
import httpx
import pytest

from app.config import DifyAppKey
from app.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from app.plugins.transports import AiohttpTransport
from app.schemas.dify import ChatMessageRequest
from app.services.dify import BLOCKING_ANSWER, ERROR_BODY_LIMIT, DifyClient
from app.services.dify.errors import MESSAGE_LIMIT
from app.services.registry import ModelRegistry
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
    await _client(transport).stop("app-key", "/chat-messages/task-1/stop", "task-1", "user-1")
    [sent] = transport.requests
    assert sent.url == "http://dify.test/v1/chat-messages/task-1/stop"
    assert sent.headers["authorization"] == "Bearer app-key"
    assert sent.headers["accept-encoding"] == "identity"
    assert sent.extensions["timeout"] == httpx.Timeout(5).as_dict()
    assert sent.content == b'{"user":"user-1"}'


async def test_an_unreadable_upload_answer_is_an_upstream_error() -> None:
    transport = ScriptedTransport(httpx.Response(201, content=b"<html>proxy page</html>"))
    with pytest.raises(UpstreamError):
        await _client(transport).upload_file("app-key", "u", "a.png", "image/png", b"\x89PNG")


async def test_concurrent_lookups_while_dify_is_down_ask_it_once() -> None:
    transport = ScriptedTransport(*[httpx.ConnectError("refused") for _ in range(20)])
    registry = ModelRegistry(_client(transport), (DifyAppKey("app-key", mode="chat"),), ttl=60, retry_after=60)
    results = await asyncio.gather(*(registry.resolve("some-app") for _ in range(10)))
    assert results == [None] * 10
    assert (
        len(transport.requests) == 2
    )  # one lookup (its refused connection tried once more), then none until MODELS_RETRY_SECONDS
    assert registry.undiscovered == 1


class _Endless(httpx.AsyncByteStream):
    """A runaway error body: 1 MB chunks for as long as anyone reads (50 MB in all)."""

    def __init__(self) -> None:
        self.sent = 0
        self.closed = False

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        prefix = b'{"code": "invalid_param", "message": "'
        yield prefix
        self.sent += len(prefix)
        for _ in range(50):
            self.sent += 1 << 20
            yield b"x" * (1 << 20)

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.parametrize("path", ["info", "stream"])
async def test_a_huge_error_body_is_read_only_up_to_the_limit_and_relayed_cut(path: str) -> None:
    body = _Endless()
    transport = ScriptedTransport(
        httpx.Response(400, headers={"content-type": "application/json"}, stream=body),
    )
    client = _client(transport)
    with pytest.raises(GatewayError) as raised:
        if path == "info":
            await client.info("app-key")
        else:
            request = ChatMessageRequest(query="hi", inputs={}, user="u", response_mode="streaming")
            await client.run_stream("app-key", "/chat-messages", request)
    assert body.sent <= ERROR_BODY_LIMIT + (1 << 20)  # stopped after the chunk that crossed the limit
    assert body.closed
    assert len(raised.value.message) <= MESSAGE_LIMIT + len("Dify: ")


async def test_an_unexpected_fault_in_discovery_is_one_json_line_and_retried_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = ScriptedTransport(httpx.InvalidURL("Invalid header value b'Bearer app-secret-key'"))
    registry = ModelRegistry(_client(transport), (DifyAppKey("app-secret-key", mode="chat"),), ttl=60, retry_after=60)
    with caplog.at_level("WARNING", logger="opendify"):
        await registry.refresh_logged()
        assert await registry.resolve("anything") is None
    assert registry.undiscovered == 1
    assert len(transport.requests) == 1  # marked failed: asked again only after MODELS_RETRY_SECONDS
    [record] = [r for r in caplog.records if r.name == "opendify.models"]
    assert record.exc_info is None
    assert "app-secret-key" not in record.getMessage() + str(record.__dict__)


async def test_a_blocking_answer_over_the_limit_is_an_upstream_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.services.dify.client.ANSWER_LIMIT", 1 << 20)
    body = _Endless()
    transport = ScriptedTransport(httpx.Response(200, headers={"content-type": "application/json"}, stream=body))
    request = ChatMessageRequest(query="hi", inputs={}, user="u", response_mode="blocking")
    with pytest.raises(UpstreamError) as raised:
        await _client(transport).run_blocking("app-key", "/chat-messages", request, BLOCKING_ANSWER)
    assert raised.value.code == "upstream_too_large"
    assert body.sent <= 2 << 20
    assert body.closed


async def test_a_run_whose_connection_died_under_it_is_not_sent_twice() -> None:
    """Dify may have read the POST (and started the run) before the connection dropped."""
    transport = ScriptedTransport(httpx.RemoteProtocolError("server disconnected"), httpx.Response(200, content=b"{}"))
    request = ChatMessageRequest(query="hi", inputs={}, user="u", response_mode="blocking")
    with pytest.raises(UpstreamError) as raised:
        await _client(transport).run_blocking("app-key", "/chat-messages", request, BLOCKING_ANSWER)
    assert raised.value.code == "upstream_unreachable"
    assert len(transport.requests) == 1


@pytest.mark.parametrize("error", [httpx.ReadError("reset"), httpx.RemoteProtocolError("gone")])
async def test_a_get_is_asked_again_after_a_lost_connection(error: Exception) -> None:
    transport = ScriptedTransport(error, httpx.Response(200, content=load("chat-info").body))
    assert (await _client(transport).info("app-key")).name == "realdify-chat"
    assert len(transport.requests) == 2


async def test_a_run_that_could_not_connect_is_sent_once_more() -> None:
    transport = ScriptedTransport(
        httpx.ConnectError("refused"), httpx.Response(200, content=load("chat-blocking").body)
    )
    request = ChatMessageRequest(query="hi", inputs={}, user="u", response_mode="blocking")
    assert (await _client(transport).run_blocking("app-key", "/chat-messages", request, BLOCKING_ANSWER)).answer
    assert len(transport.requests) == 2


class _FailingSession:
    """Stands in for aiohttp's session: every request raises the given aiohttp error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def request(self, *args: object, **kwargs: object) -> object:
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), httpx.ReadError),
        (aiohttp.ConnectionTimeoutError(), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError(), httpx.ReadTimeout),
        (aiohttp.ClientPayloadError("bad chunk"), httpx.RemoteProtocolError),
    ],
)
async def test_aiohttp_errors_map_to_the_most_specific_httpx_class(error: Exception, expected: type[Exception]) -> None:
    transport = AiohttpTransport(max_connections=1)
    transport._session = _FailingSession(error)  # type: ignore[assignment]
    with pytest.raises(expected):
        await transport.handle_async_request(httpx.Request("POST", "http://dify.test/v1/chat-messages", content=b"{}"))


async def test_difys_version_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    info = load("dify-1.15/chat-info")
    transport = ScriptedTransport(
        *(httpx.Response(200, headers={"X-Version": "1.15.0"}, content=info.body) for _ in range(3))
    )
    client = _client(transport)
    with caplog.at_level("INFO", logger="opendify.dify"):
        for _ in range(3):
            await client.info("app-key")
    assert client.version == "1.15.0"
    assert [r.__dict__.get("dify_version") for r in caplog.records if r.name == "opendify.dify"] == ["1.15.0"]


def test_files_are_served_at_difys_origin_unless_told_otherwise() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    assert DifyClient(transport, "http://dify.internal:5001/v1", httpx.Timeout(5)).files_origin == (
        "http://dify.internal:5001"
    )
    told = DifyClient(transport, "http://dify.internal:5001/v1", httpx.Timeout(5), files_url="https://dify.example/")
    assert told.files_origin == "https://dify.example"


def test_a_dify_behind_a_path_prefix_serves_its_files_under_it() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    assert DifyClient(transport, "https://host/dify/v1", httpx.Timeout(5)).files_origin == "https://host/dify"
