"""`POST /v1/chat/completions` without streaming, answered from the recorded Dify responses."""

import hashlib
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock

from app import create_app
from app.services.pipeline import client_id_for
from tests.service.replay import (
    CLIENT_HEADERS,
    CLIENT_KEY,
    DIFY_BASE,
    MODEL_IDS,
    add_trace,
    chat_requests,
    cut_before,
    make_settings,
    openai_sdk,
    recorded_answer,
    stop_requests,
)
from tests.traces import load

pytestmark = pytest.mark.anyio


def chat(model: str, content: str = "Hello from the blocking trace", **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **fields}


def assert_completion(body: dict[str, Any], *, model: str, message_id: str, created: int, content: str) -> None:
    assert body["object"] == "chat.completion"
    assert body["id"] == f"chatcmpl-{message_id}"
    assert body["created"] == created
    assert body["model"] == model
    assert len(body["choices"]) == 1
    choice = body["choices"][0]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == content


def assert_sent(sent: dict[str, Any], *, query: str, response_mode: str, user: str | None = None) -> None:
    assert sent["query"] == query
    assert sent["inputs"] == {}
    assert sent["response_mode"] == response_mode
    assert "conversation_id" not in sent  # stateless: every call is a new Dify conversation
    assert isinstance(sent["user"], str)
    assert sent["user"]
    if user is not None:
        assert sent["user"] == user


@pytest.mark.parametrize("trace_name", ["chat-blocking", "advanced-chat-blocking"])
async def test_blocking_answer_becomes_a_chat_completion(
    client: AsyncTestClient[Litestar], dify: HTTPXMock, trace_name: str
) -> None:
    trace = add_trace(dify, trace_name)
    recorded = trace.json()
    model = MODEL_IDS[recorded["mode"]]

    response = await client.post("/v1/chat/completions", headers=CLIENT_HEADERS, json=chat(model, stream=False))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_completion(
        body,
        model=model,
        message_id=recorded["message_id"],
        created=recorded["created_at"],
        content="Echo: Hello from the blocking trace",
    )
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16}
    [sent] = chat_requests(dify)
    assert_sent(sent, query="Hello from the blocking trace", response_mode="blocking")


@pytest.mark.parametrize(
    ("trace_name", "answer", "usage"),
    [
        ("agent-chat-streaming", "Echo: Hello agent", (10, 3)),
        ("agent-chat-streaming-toolcall", "Echo: tool result: 2026-11-23 19:27:06", (34, 10)),
    ],
)
async def test_agent_answer_is_streamed_from_dify_and_aggregated(
    client: AsyncTestClient[Litestar], dify: HTTPXMock, trace_name: str, answer: str, usage: tuple[int, int]
) -> None:
    trace = add_trace(dify, trace_name)
    message_end = trace.events()[-1]
    assert message_end["event"] == "message_end"
    assert message_end["metadata"]["usage"]["total_tokens"] == 0  # as recorded: Dify's agent total is 0

    response = await client.post(
        "/v1/chat/completions", headers=CLIENT_HEADERS, json=chat("realdify-agent", "Hello agent")
    )

    assert response.status_code == 200
    body = response.json()
    assert recorded_answer(trace) == answer
    assert_completion(
        body,
        model="realdify-agent",
        message_id=message_end["message_id"],
        created=message_end["created_at"],
        content=answer,
    )
    prompt, completion = usage
    assert body["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    # agent apps refuse blocking mode (agent-chat-err-blocking): the gateway asks for a stream
    [sent] = chat_requests(dify)
    assert_sent(sent, query="Hello agent", response_mode="streaming")
    assert stop_requests(dify) == []


async def test_agent_stream_that_ends_early_is_a_502(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    recorded = load("agent-chat-streaming-toolcall")
    add_trace(dify, "agent-chat-streaming-toolcall", body=cut_before(recorded.body, b'"event": "message_end"'))
    task_id = recorded.events()[0]["task_id"]
    # whether the gateway also stops the (already finished) Dify task is not specified: allowed, not required
    add_trace(dify, "agent-chat-stop", url=f"{DIFY_BASE}/chat-messages/{task_id}/stop", is_optional=True)

    response = await client.post("/v1/chat/completions", headers=CLIENT_HEADERS, json=chat("realdify-agent"))

    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "api_error"
    assert error["code"] == "upstream_incomplete"


async def test_openai_sdk_reads_the_completion(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    add_trace(dify, "chat-blocking")
    sdk = openai_sdk(client)

    completion = await sdk.chat.completions.create(
        model="realdify-chat", messages=[{"role": "user", "content": "Hello from the blocking trace"}]
    )

    assert completion.choices[0].message.content == "Echo: Hello from the blocking trace"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 16


async def test_client_user_goes_to_dify_scoped_to_the_client_key(
    client: AsyncTestClient[Litestar], dify: HTTPXMock
) -> None:
    add_trace(dify, "chat-blocking")

    response = await client.post(
        "/v1/chat/completions", headers=CLIENT_HEADERS, json=chat("realdify-chat", user="trace-user-1")
    )

    assert response.status_code == 200
    [sent] = chat_requests(dify)
    assert sent["user"] == f"opendify-{client_id_for(CLIENT_KEY)}:trace-user-1"


async def test_two_client_keys_never_share_a_dify_user(dify: HTTPXMock) -> None:
    add_trace(dify, "chat-blocking")
    add_trace(dify, "chat-blocking")
    settings = make_settings(valid_api_keys=(CLIENT_KEY, "sk-second"))
    async with AsyncTestClient(app=create_app(settings)) as client:
        for key in (CLIENT_KEY, "sk-second"):
            body = chat("realdify-chat", user="alice")
            response = await client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body)
            assert response.status_code == 200

    first, second = chat_requests(dify)
    assert first["user"] != second["user"]
    assert first["user"].endswith(":alice") and second["user"].endswith(":alice")


async def test_dify_raw_user_sends_the_client_user_unchanged(dify: HTTPXMock) -> None:
    add_trace(dify, "chat-blocking")
    async with AsyncTestClient(app=create_app(make_settings(dify_raw_user=True))) as client:
        response = await client.post(
            "/v1/chat/completions", headers=CLIENT_HEADERS, json=chat("realdify-chat", user="trace-user-1")
        )

    assert response.status_code == 200
    [sent] = chat_requests(dify)
    assert sent["user"] == "trace-user-1"


async def test_without_user_the_dify_user_is_stable_and_hides_the_client_key(
    client: AsyncTestClient[Litestar], dify: HTTPXMock
) -> None:
    add_trace(dify, "chat-blocking")
    add_trace(dify, "advanced-chat-blocking")

    for model in ("realdify-chat", "realdify-advanced-chat"):
        response = await client.post("/v1/chat/completions", headers=CLIENT_HEADERS, json=chat(model))
        assert response.status_code == 200

    first, second = chat_requests(dify)
    assert first["user"] == second["user"]
    assert first["user"]
    assert CLIENT_KEY not in first["user"]
    assert hashlib.sha256(CLIENT_KEY.encode()).hexdigest() not in first["user"]  # not the bare key hash either


async def test_route_without_v1_prefix(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    add_trace(dify, "chat-blocking")

    response = await client.post("/chat/completions", headers=CLIENT_HEADERS, json=chat("realdify-chat"))

    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Echo: Hello from the blocking trace"


async def test_azure_style_api_key_header_is_accepted(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    add_trace(dify, "chat-blocking")

    response = await client.post("/v1/chat/completions", headers={"api-key": CLIENT_KEY}, json=chat("realdify-chat"))

    assert response.status_code == 200


async def test_fields_real_clients_send_are_accepted(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    add_trace(dify, "chat-blocking")
    tool_call = {"id": "call_1", "type": "function", "function": {"name": "current_time", "arguments": "{}"}}
    request = {
        "model": "realdify-chat",
        "messages": [
            {"role": "developer", "content": "Answer briefly."},
            {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
            {"role": "user", "content": "What time is it?", "name": "alice"},
            {"role": "assistant", "content": None, "tool_calls": [tool_call], "refusal": None},
            {"role": "tool", "tool_call_id": "call_1", "content": "19:27"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Hello from"},
                    {"type": "text", "text": "the blocking trace"},
                    {"type": "refusal", "refusal": "parts of kinds the gateway does not know are skipped"},
                ],
            },
        ],
        "stream": False,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 256,
        "max_tokens": 256,
        "temperature": 0.2,
        "top_p": 1,
        "n": 1,
        "stop": ["\n\n"],
        "seed": 7,
        "logit_bias": {"50256": -100},
        "parallel_tool_calls": False,
        "store": False,
        "metadata": {"trace": "x"},
        "reasoning_effort": "low",
        "tools": [{"type": "function", "function": {"name": "current_time", "parameters": {"type": "object"}}}],
        "tool_choice": "auto",
        "response_format": {"type": "text"},  # JSON formats are honoured (tests/e2e/test_structured_output.py)
        "user": "alice",
    }

    response = await client.post("/v1/chat/completions", headers=CLIENT_HEADERS, json=request)

    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Echo: Hello from the blocking trace"
    [sent] = chat_requests(dify)
    assert_sent(
        sent,
        query=(
            "System: Answer briefly.\n\n"
            "System: Be kind.\n\n"
            "User: What time is it?\n\n"
            "Assistant: [called current_time]\n\n"
            "Tool: 19:27\n\n"
            "User: Hello from\nthe blocking trace"
        ),
        response_mode="blocking",
        user=f"opendify-{client_id_for(CLIENT_KEY)}:alice",
    )


async def test_remote_image_is_sent_as_a_dify_file(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    add_trace(dify, "chat-blocking")
    url = "https://example.com/cat.png"
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]

    response = await client.post(
        "/v1/chat/completions",
        headers=CLIENT_HEADERS,
        json={"model": "realdify-chat", "messages": [{"role": "user", "content": content}]},
    )

    assert response.status_code == 200
    [sent] = chat_requests(dify)
    assert sent["query"] == "What is this?"  # the image is a file, not an `[image]` placeholder
    assert sent["files"] == [{"type": "image", "transfer_method": "remote_url", "url": url}]
