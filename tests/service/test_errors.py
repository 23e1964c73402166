"""Errors: Dify's recorded failures, Dify unreachable or slow, and malformed client requests, all in OpenAI's
envelope `{"error": {"message", "type", "param", "code"}}` with the status an OpenAI client expects."""

import json
from typing import Any, Literal

import httpx
import openai
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock

from app import create_app
from app.errors import GatewayError
from app.schemas.dify import ChatMessageRequest
from app.services.dify import BLOCKING_ANSWER, DifyClient
from app.services.dify.errors import error_from_dify, parse_error_body
from tests.service.replay import (
    CHAT_URL,
    CLIENT_HEADERS,
    CLIENT_KEY,
    DIFY_BASE,
    MODEL_IDS,
    add_trace,
    app_key,
    chat_requests,
    cut_before,
    dify_auth,
    make_settings,
    mode_of,
    openai_sdk,
)
from tests.traces import load

pytestmark = pytest.mark.anyio


def chat(model: str, *, stream: bool = False, content: str = "please [fail] now") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream}


def envelope(response: httpx.Response, status: int) -> dict[str, Any]:
    """The OpenAI error envelope of a plain (non-stream) JSON error response."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


# --- Dify's recorded failures, through the gateway -------------------------------------------------------


@pytest.mark.parametrize(
    ("trace_name", "stream", "code"),
    [
        ("chat-err-upstream-blocking", False, "completion_request_error"),
        ("advanced-chat-err-upstream-blocking", False, "invalid_param"),  # "Run failed: ..." is the model's failure
        ("chat-err-upstream-streaming", True, "completion_request_error"),
        ("advanced-chat-err-upstream-streaming", True, "invalid_param"),
        ("agent-chat-err-upstream-streaming", True, "completion_request_error"),
        ("agent-chat-err-upstream-streaming", False, "completion_request_error"),
    ],
)
async def test_model_failure_is_a_502(
    client: AsyncTestClient[Litestar], dify: HTTPXMock, trace_name: str, stream: bool, code: str
) -> None:
    add_trace(dify, trace_name)

    response = await client.post(
        "/v1/chat/completions", headers=CLIENT_HEADERS, json=chat(MODEL_IDS[mode_of(trace_name)], stream=stream)
    )

    # an error Dify reports before any content is a real HTTP error, not a 200 stream
    error = envelope(response, 502)
    assert error["type"] == "api_error"
    assert error["code"] == code
    assert "simulated upstream failure" in error["message"]
    [sent] = chat_requests(dify)
    assert sent["query"] == "please [fail] now"


async def test_stream_that_ends_before_any_content_is_a_502(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    recorded = load("advanced-chat-streaming")
    add_trace(dify, "advanced-chat-streaming", body=cut_before(recorded.body, b'"event": "message"'))

    response = await client.post(
        "/v1/chat/completions", headers=CLIENT_HEADERS, json=chat("realdify-advanced-chat", stream=True)
    )

    error = envelope(response, 502)
    assert error["code"] == "upstream_incomplete"


async def test_failed_workflow_without_an_error_event_is_a_502(
    client: AsyncTestClient[Litestar], dify: HTTPXMock
) -> None:
    recorded = load("advanced-chat-err-upstream-streaming")
    add_trace(dify, "advanced-chat-err-upstream-streaming", body=cut_before(recorded.body, b'"event": "error"'))

    response = await client.post(
        "/v1/chat/completions", headers=CLIENT_HEADERS, json=chat("realdify-advanced-chat", stream=True)
    )

    error = envelope(response, 502)
    assert error["code"] == "workflow_failed"
    assert "simulated upstream failure" in error["message"]


async def test_openai_sdk_sees_a_model_failure_as_an_internal_server_error(
    client: AsyncTestClient[Litestar], dify: HTTPXMock
) -> None:
    add_trace(dify, "chat-err-upstream-blocking")
    sdk = openai_sdk(client)

    with pytest.raises(openai.InternalServerError) as raised:
        await sdk.chat.completions.create(model="realdify-chat", messages=[{"role": "user", "content": "[fail]"}])

    assert raised.value.status_code == 502
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["code"] == "completion_request_error"


async def test_dify_rejecting_the_app_key_is_a_401(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    add_trace(dify, "chat-err-bad-key")

    response = await client.post("/v1/chat/completions", headers=CLIENT_HEADERS, json=chat("realdify-chat"))

    error = envelope(response, 401)
    assert error["code"] == "invalid_api_key"
    assert "Access token is invalid" in error["message"]
    assert app_key("chat") not in error["message"]


@pytest.mark.parametrize(
    ("trace_name", "stream"),
    [
        ("chat-err-unknown-conversation", False),
        ("chat-err-unknown-conversation-streaming", True),
        ("advanced-chat-err-unknown-conversation", False),
        ("advanced-chat-err-unknown-conversation-streaming", True),
        ("agent-chat-err-unknown-conversation", True),
        ("agent-chat-err-unknown-conversation", False),
    ],
)
async def test_dify_404_is_a_404(
    client: AsyncTestClient[Litestar], dify: HTTPXMock, trace_name: str, stream: bool
) -> None:
    add_trace(dify, trace_name)

    response = await client.post(
        "/v1/chat/completions", headers=CLIENT_HEADERS, json=chat(MODEL_IDS[mode_of(trace_name)], stream=stream)
    )

    error = envelope(response, 404)
    assert error["code"] == "conversation_not_found"
    assert "Conversation Not Exists." in error["message"]


# --- Dify unreachable or slow ----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", ["chat", "agent-chat", "advanced-chat"])
async def test_dify_unreachable_is_a_502(
    client: AsyncTestClient[Litestar], dify: HTTPXMock, stream: bool, mode: str
) -> None:
    refused = httpx.ConnectError("refused")
    dify.add_exception(refused, method="POST", url=CHAT_URL, match_headers=dify_auth(mode), is_reusable=True)

    response = await client.post(
        "/v1/chat/completions", headers=CLIENT_HEADERS, json=chat(MODEL_IDS[mode], stream=stream)
    )

    assert len(chat_requests(dify)) == 2  # nothing was sent: tried once more, then given up
    error = envelope(response, 502)
    assert error["type"] == "api_error"
    assert error["code"] == "upstream_unreachable"
    assert DIFY_BASE in error["message"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("mode", ["chat", "agent-chat", "advanced-chat"])
async def test_dify_timeout_is_a_504(
    client: AsyncTestClient[Litestar], dify: HTTPXMock, stream: bool, mode: str
) -> None:
    dify.add_exception(httpx.ReadTimeout("slow"), method="POST", url=CHAT_URL, match_headers=dify_auth(mode))

    response = await client.post(
        "/v1/chat/completions", headers=CLIENT_HEADERS, json=chat(MODEL_IDS[mode], stream=stream)
    )

    error = envelope(response, 504)
    assert error["type"] == "api_error"
    assert error["code"] == "upstream_timeout"


# --- malformed client requests: refused before Dify is asked ---------------------------------------------

JSON_HEADERS = {**CLIENT_HEADERS, "content-type": "application/json"}


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"model": "realdify-chat",', b""],
    ids=["malformed", "truncated", "empty"],
)
async def test_invalid_json_body(client: AsyncTestClient[Litestar], dify: HTTPXMock, body: bytes) -> None:
    response = await client.post("/v1/chat/completions", headers=JSON_HEADERS, content=body)

    error = envelope(response, 400)
    assert error["code"] == "invalid_json"
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(("The request body is not valid JSON", "The request body is empty"))
    assert chat_requests(dify) == []


async def test_missing_model_names_the_field(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    response = await client.post(
        "/v1/chat/completions", headers=CLIENT_HEADERS, json={"messages": [{"role": "user", "content": "hi"}]}
    )

    error = envelope(response, 400)
    assert error["type"] == "invalid_request_error"
    assert "`model`" in error["message"]
    # `param` names a request parameter (OpenAI: "model", or null): never the handler's argument name `data`
    assert error["param"] in ("model", None)
    assert chat_requests(dify) == []


async def test_body_that_is_not_an_object(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    response = await client.post("/v1/chat/completions", headers=JSON_HEADERS, content=b"[]")

    error = envelope(response, 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None  # the whole body is wrong, not a parameter called `data`


async def test_empty_messages(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    response = await client.post(
        "/v1/chat/completions", headers=CLIENT_HEADERS, json={"model": "realdify-chat", "messages": []}
    )

    error = envelope(response, 400)
    assert error["param"] == "messages"
    assert error["type"] == "invalid_request_error"
    assert chat_requests(dify) == []


async def test_no_user_message(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    response = await client.post(
        "/v1/chat/completions",
        headers=CLIENT_HEADERS,
        json={"model": "realdify-chat", "messages": [{"role": "system", "content": "Be brief."}]},
    )

    error = envelope(response, 400)
    assert error["param"] == "messages"
    assert chat_requests(dify) == []


async def test_unknown_role(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    response = await client.post(
        "/v1/chat/completions",
        headers=CLIENT_HEADERS,
        json={"model": "realdify-chat", "messages": [{"role": "robot", "content": "hi"}]},
    )

    error = envelope(response, 400)
    assert error["type"] == "invalid_request_error"
    assert "robot" in error["message"]
    assert error["param"] == "messages[0].role"
    assert chat_requests(dify) == []


async def test_unknown_model(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    response = await client.post(
        "/v1/chat/completions", headers=CLIENT_HEADERS, json={**chat("gpt-4o"), "stream": True}
    )

    error = envelope(response, 404)
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert chat_requests(dify) == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": f"Basic {CLIENT_KEY}"}, {"api-key": "sk-wrong"}],
    ids=["missing", "wrong", "not-bearer", "wrong-api-key"],
)
async def test_client_key_is_required(
    client: AsyncTestClient[Litestar], dify: HTTPXMock, headers: dict[str, str]
) -> None:
    response = await client.post("/v1/chat/completions", headers=headers, json=chat("realdify-chat"))

    error = envelope(response, 401)
    assert error["code"] == "invalid_api_key"
    assert chat_requests(dify) == []


async def test_request_body_over_the_limit_is_a_413(dify: HTTPXMock) -> None:
    body = json.dumps({"model": "realdify-chat", "messages": [{"role": "user", "content": "a" * 4950}]}).encode()
    assert len(body) >= 5000

    add_trace(dify, "chat-blocking")
    fits = json.dumps({"model": "realdify-chat", "messages": [{"role": "user", "content": "a" * 1900}]}).encode()
    assert len(fits) < 2000

    async with AsyncTestClient(app=create_app(make_settings(max_request_body=2000))) as small:
        response = await small.post("/v1/chat/completions", headers=JSON_HEADERS, content=body)
        accepted = await small.post("/v1/chat/completions", headers=JSON_HEADERS, content=fits)

    error = envelope(response, 413)
    assert error["code"] == "request_too_large"
    assert error["type"] == "invalid_request_error"
    assert accepted.status_code == 200
    [sent] = chat_requests(dify)  # only the request that fits reached Dify
    assert sent["query"] == "a" * 1900


# --- DifyClient against every recorded chat-messages error of the three chat app types --------------------

_DIRECT = [
    # (trace, gateway status, gateway code, param)
    ("chat-err-bad-conversation-id", 400, "invalid_param", "conversation_id"),
    ("chat-err-bad-key", 401, "invalid_api_key", None),
    ("chat-err-bad-upload-file-id", 400, "invalid_param", None),
    ("chat-err-invalid-json", 400, "bad_request", None),
    ("chat-err-missing-query", 400, "invalid_param", "query"),
    ("chat-err-missing-user", 400, "invalid_param", None),
    ("chat-err-no-auth", 401, "invalid_api_key", None),
    ("chat-err-unknown-conversation", 404, "conversation_not_found", None),
    ("chat-err-upstream-blocking", 502, "completion_request_error", None),
    ("advanced-chat-err-bad-conversation-id", 400, "invalid_param", "conversation_id"),
    ("advanced-chat-err-bad-key", 401, "invalid_api_key", None),
    ("advanced-chat-err-bad-upload-file-id", 400, "invalid_param", None),
    ("advanced-chat-err-invalid-json", 400, "bad_request", None),
    ("advanced-chat-err-missing-query", 400, "invalid_param", "query"),
    ("advanced-chat-err-missing-user", 400, "invalid_param", None),
    ("advanced-chat-err-no-auth", 401, "invalid_api_key", None),
    ("advanced-chat-err-unknown-conversation", 404, "conversation_not_found", None),
    ("advanced-chat-err-upstream-blocking", 502, "invalid_param", None),
    ("agent-chat-err-blocking", 400, "invalid_param", None),
]


def _request(response_mode: Literal["streaming", "blocking"]) -> ChatMessageRequest:
    return ChatMessageRequest(query="hi", inputs={}, user="trace-user-1", response_mode=response_mode)


@pytest.mark.parametrize(("trace_name", "status", "code", "param"), _DIRECT)
async def test_dify_client_blocking_errors(
    httpx_mock: HTTPXMock, trace_name: str, status: int, code: str, param: str | None
) -> None:
    trace = add_trace(httpx_mock, trace_name)
    recorded = trace.json()

    async with httpx.AsyncHTTPTransport() as transport:
        dify = DifyClient(transport, DIFY_BASE, httpx.Timeout(10))
        with pytest.raises(GatewayError) as raised:
            await dify.run_blocking(
                app_key(mode_of(trace_name)), "/chat-messages", _request("blocking"), BLOCKING_ANSWER
            )

    error = raised.value
    assert error.status_code == status
    assert error.code == code
    assert error.param == param
    assert recorded["message"] in error.message


@pytest.mark.parametrize(
    "trace_name",
    [
        "chat-err-unknown-conversation-streaming",
        "advanced-chat-err-unknown-conversation-streaming",
        "agent-chat-err-unknown-conversation",
    ],
)
async def test_dify_client_stream_refused_with_json(httpx_mock: HTTPXMock, trace_name: str) -> None:
    add_trace(httpx_mock, trace_name)

    async with httpx.AsyncHTTPTransport() as transport:
        dify = DifyClient(transport, DIFY_BASE, httpx.Timeout(10))
        with pytest.raises(GatewayError) as raised:
            await dify.run_stream(app_key(mode_of(trace_name)), "/chat-messages", _request("streaming"))

    assert raised.value.status_code == 404
    assert raised.value.code == "conversation_not_found"


@pytest.mark.parametrize("trace_name", ["chat-err-stop-unknown-task", "advanced-chat-err-stop-unknown-task"])
async def test_dify_client_stop_of_an_unknown_task_is_quiet(httpx_mock: HTTPXMock, trace_name: str) -> None:
    task_id = "00000000-0000-4000-8000-000000000000"
    add_trace(httpx_mock, trace_name, url=f"{DIFY_BASE}/chat-messages/{task_id}/stop")

    async with httpx.AsyncHTTPTransport() as transport:
        await DifyClient(transport, DIFY_BASE, httpx.Timeout(10)).stop(
            app_key(mode_of(trace_name)), f"/chat-messages/{task_id}/stop", task_id, "trace-user-1"
        )

    [sent] = httpx_mock.get_requests()
    assert json.loads(sent.content) == {"user": "trace-user-1"}


@pytest.mark.parametrize(
    ("trace_name", "status"),
    [
        ("chat-err-completion-endpoint", 400),
        ("advanced-chat-err-completion-endpoint", 400),
        ("chat-err-workflow-endpoint", 400),
        ("advanced-chat-err-workflow-endpoint", 400),
    ],
)
def test_wrong_endpoint_errors_are_client_errors(trace_name: str, status: int) -> None:
    trace = load(trace_name)

    error = error_from_dify(trace.status, parse_error_body(trace.body))

    assert error.status_code == status
    assert error.code == trace.json()["code"]


async def test_deeply_nested_json_is_invalid_json_without_a_traceback(
    client: AsyncTestClient[Litestar], dify: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    # nested inside a field the gateway ignores: msgspec still gives up at about 1,000 levels
    body = b'{"model": "realdify-chat", "messages": [{"role": "user", "content": "hi"}], "tools": '
    body += b"[" * 5000 + b"]" * 5000 + b"}"
    with caplog.at_level("DEBUG", logger="opendify"):
        response = await client.post("/v1/chat/completions", headers=JSON_HEADERS, content=body)

    error = envelope(response, 400)
    assert error["code"] == "invalid_json"
    assert not [r for r in caplog.records if r.exc_info or r.levelname in ("ERROR", "CRITICAL")]
    assert chat_requests(dify) == []


async def test_invalid_utf8_is_invalid_json(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    body = b'{"model": "realdify-chat\xff\xfe", "messages": [{"role": "user", "content": "hi"}]}'
    response = await client.post("/v1/chat/completions", headers=JSON_HEADERS, content=body)

    error = envelope(response, 400)
    assert error["code"] == "invalid_json"
    assert error["type"] == "invalid_request_error"
    assert chat_requests(dify) == []


@pytest.mark.parametrize(
    ("url", "why", "code"),
    [
        ("data:image/png;base64,JVBERi0xLjQ=", "must hold an image; its bytes are application/pdf", "invalid_file"),
        ("ftp://example.com/cat.png", "image_url", "invalid_value"),
    ],
)
async def test_an_image_url_that_is_no_image_is_refused_before_dify(
    client: AsyncTestClient[Litestar], dify: HTTPXMock, url: str, why: str, code: str
) -> None:
    content = [{"type": "text", "text": "Read this"}, {"type": "image_url", "image_url": {"url": url}}]
    response = await client.post(
        "/v1/chat/completions",
        headers=CLIENT_HEADERS,
        json={"model": "realdify-chat", "messages": [{"role": "user", "content": content}]},
    )

    error = envelope(response, 400)
    assert error["code"] == code
    assert why in error["message"] or why in (error["param"] or "")
    assert chat_requests(dify) == [] and not [r for r in dify.get_requests() if r.url.path.endswith("/files/upload")]
