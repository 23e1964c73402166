"""`POST /v1/chat/completions` with `stream: true`: recorded Dify event streams relayed as OpenAI SSE.

Recorded bodies are fed to the gateway in small arbitrary pieces (lines, `\\n\\n` pairs and JSON split anywhere)."""

import asyncio
import json
from typing import Any

import httpx
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
    SSE,
    add_stream,
    add_trace,
    chat_requests,
    chunk_payloads,
    cut_before,
    data_events,
    make_settings,
    mode_of,
    openai_sdk,
    parse_sse,
    recorded_answer,
    split,
    sse_events,
    stop_requests,
    streamed_content,
)
from tests.traces import Trace, load

pytestmark = pytest.mark.anyio

STREAMS = [
    "chat-streaming",
    "chat-streaming-stopped",
    "chat-streaming-slow-ping",
    "advanced-chat-streaming",
    "advanced-chat-streaming-stopped",
    "agent-chat-streaming",
    "agent-chat-streaming-stopped",
    "agent-chat-streaming-toolcall",
]


def stream_request(model: str, content: str = "Hello", **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "stream": True, **fields}


async def post_stream(client: AsyncTestClient[Litestar], model: str, **fields: Any) -> tuple[httpx.Response, list[SSE]]:
    response = await client.post("/v1/chat/completions", headers=CLIENT_HEADERS, json=stream_request(model, **fields))
    assert response.status_code == 200, response.text
    return response, parse_sse(response.text)


def message_end(trace: Trace) -> dict[str, Any]:
    [end] = [event for event in trace.events() if event["event"] == "message_end"]
    return end


def assert_well_formed(events: list[SSE], trace: Trace, model: str) -> list[dict[str, Any]]:
    """Chunks share one id and `created`; the role comes first, once; the stream ends `stop`, then [DONE]."""
    end = message_end(trace)
    data = data_events(events)
    assert data[-1].data == "[DONE]"
    assert [event.data for event in data].count("[DONE]") == 1
    chunks = chunk_payloads(events)
    assert len(chunks) == len(data) - 1  # no in-band error
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["id"] == f"chatcmpl-{end['message_id']}"
        assert chunk["created"] == end["created_at"]
        assert chunk["model"] == model
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in choice["delta"] for chunk in chunks[1:] for choice in chunk["choices"])
    content_chunks = [chunk for chunk in chunks if chunk["choices"]]
    assert [chunk["choices"][0]["finish_reason"] for chunk in content_chunks[:-1]] == [None] * (len(content_chunks) - 1)
    last = content_chunks[-1]["choices"][0]
    assert last["finish_reason"] == "stop"
    assert last["delta"].get("content") in (None, "")
    return chunks


@pytest.mark.parametrize("trace_name", STREAMS)
@pytest.mark.parametrize("chunk_size", [1, 7, 65536])
async def test_recorded_stream_is_relayed(
    client: AsyncTestClient[Litestar], dify: HTTPXMock, trace_name: str, chunk_size: int
) -> None:
    trace = add_trace(dify, trace_name, chunk_size=chunk_size)
    model = MODEL_IDS[mode_of(trace_name)]

    _, events = await post_stream(client, model)

    chunks = assert_well_formed(events, trace, model)
    assert streamed_content(events) == recorded_answer(trace)
    assert recorded_answer(trace).startswith("Echo: ")
    # one content chunk per non-empty recorded answer piece: workflow and node events show nothing; an agent's
    # finished tool use is one reasoning chunk (TOOL_USE=reasoning)
    pieces = [e["answer"] for e in trace.events() if e["event"] in ("message", "agent_message") and e["answer"]]
    deltas = [c["choices"][0]["delta"] for c in chunks[1:-1]]
    assert [d["content"] for d in deltas if "content" in d] == pieces
    tools = {e["id"] for e in trace.events() if e["event"] == "agent_thought" and e["tool"] and e["observation"]}
    reasoning = [d["reasoning_content"] for d in deltas if "reasoning_content" in d]
    assert len(reasoning) == len(tools)
    assert all(text.startswith("Used `") for text in reasoning)
    assert all(chunk["choices"] for chunk in chunks)  # no usage chunk unless asked for
    assert all("usage" not in chunk or chunk["usage"] is None for chunk in chunks)
    [sent] = chat_requests(dify)
    assert sent["response_mode"] == "streaming"
    assert sent["query"] == "Hello"
    assert sent["inputs"] == {}
    assert "conversation_id" not in sent
    assert stop_requests(dify) == []


async def test_stream_is_served_as_server_sent_events(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    add_trace(dify, "chat-streaming")

    response, _ = await post_stream(client, "realdify-chat")

    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("trace_name", "usage"),
    [
        ("chat-streaming", (10, 6)),
        ("advanced-chat-streaming", (10, 6)),
        ("agent-chat-streaming-toolcall", (34, 10)),  # Dify's agent stream says total_tokens 0
    ],
)
async def test_include_usage_adds_a_usage_chunk_before_done(
    client: AsyncTestClient[Litestar], dify: HTTPXMock, trace_name: str, usage: tuple[int, int]
) -> None:
    trace = add_trace(dify, trace_name)
    model = MODEL_IDS[mode_of(trace_name)]

    _, events = await post_stream(client, model, stream_options={"include_usage": True})

    data = data_events(events)
    assert data[-1].data == "[DONE]"
    usage_chunk = data[-2].json()
    assert usage_chunk["choices"] == []
    prompt, completion = usage
    assert usage_chunk["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    assert usage_chunk["id"] == f"chatcmpl-{message_end(trace)['message_id']}"
    assert data[-3].json()["choices"][0]["finish_reason"] == "stop"
    assert streamed_content(events) == recorded_answer(trace)


async def test_include_usage_false_sends_no_usage_chunk(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    trace = add_trace(dify, "chat-streaming")

    _, events = await post_stream(client, "realdify-chat", stream_options={"include_usage": False})

    chunks = assert_well_formed(events, trace, "realdify-chat")
    assert all(chunk["choices"] for chunk in chunks)


async def test_dify_ping_is_relayed_as_an_sse_comment(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    trace = add_trace(dify, "chat-streaming-slow-ping", chunk_size=5)
    assert b"event: ping" in trace.body

    response, events = await post_stream(client, "realdify-chat")

    assert "\n\n: ping\n\n" in response.text
    assert [event.comment for event in events if event.comment is not None] == ["ping"]
    ping_at = next(i for i, event in enumerate(events) if event.comment == "ping")
    assert 0 < ping_at < len(events) - 2  # where Dify sent it: between content chunks
    assert streamed_content(events) == recorded_answer(trace)
    assert_well_formed(events, trace, "realdify-chat")


async def test_ping_before_any_content_commits_the_stream(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    trace = load("chat-streaming")
    add_stream(dify, "chat", split(b"event: ping\n\n" + trace.body, 9))

    _, events = await post_stream(client, "realdify-chat")

    assert events[0].comment == "ping"
    assert streamed_content(events) == recorded_answer(trace)
    assert_well_formed(events, trace, "realdify-chat")


async def test_stream_without_message_end_ends_with_an_in_band_error(
    client: AsyncTestClient[Litestar], dify: HTTPXMock
) -> None:
    trace = load("chat-streaming")
    add_trace(dify, "chat-streaming", body=cut_before(trace.body, b'"event": "message_end"'))

    response, events = await post_stream(client, "realdify-chat")

    assert response.status_code == 200  # content was already committed
    assert streamed_content(events) == "Echo: Hello from the streaming trace"
    data = data_events(events)
    assert "[DONE]" not in [event.data for event in data]
    error = data[-1].json()
    assert set(error) == {"error"}
    assert set(error["error"]) == {"message", "type", "param", "code"}
    assert error["error"]["type"] == "api_error"
    assert error["error"]["code"] == "upstream_incomplete"
    finish_reasons = [choice["finish_reason"] for chunk in chunk_payloads(events) for choice in chunk["choices"]]
    assert "stop" not in finish_reasons


async def test_dify_error_after_content_ends_with_an_in_band_error(
    client: AsyncTestClient[Litestar], dify: HTTPXMock
) -> None:
    content = [e for e in sse_events(load("chat-streaming")) if b'"event": "message"' in e]
    [error_event] = list(sse_events(load("chat-err-upstream-streaming")))
    add_stream(dify, "chat", split(b"".join([*content, error_event]), 7))

    _, events = await post_stream(client, "realdify-chat")

    assert streamed_content(events) == "Echo: Hello from the streaming trace"
    data = data_events(events)
    assert "[DONE]" not in [event.data for event in data]
    error = data[-1].json()["error"]
    assert error["code"] == "completion_request_error"
    assert error["type"] == "api_error"
    assert "simulated upstream failure" in error["message"]
    assert stop_requests(dify) == []  # Dify ended the task itself


async def test_read_timeout_mid_stream_ends_in_band_and_stops_the_dify_task(
    client: AsyncTestClient[Litestar], dify: HTTPXMock
) -> None:
    trace = load("chat-streaming-stopped")
    head = cut_before(trace.body, b'"answer": "word5 word6 word7 "')
    task_id = trace.events()[0]["task_id"]

    def pieces() -> Any:
        yield from split(head, 7)
        raise httpx.ReadTimeout("no event for a while")

    add_stream(dify, "chat", pieces())
    add_trace(dify, "chat-stop", url=f"{DIFY_BASE}/chat-messages/{task_id}/stop")

    _, events = await post_stream(client, "realdify-chat", user="trace-user-1")

    assert streamed_content(events) == "Echo: word0 word1 word2 word3 word4 "
    data = data_events(events)
    assert "[DONE]" not in [event.data for event in data]
    assert data[-1].json()["error"]["code"] == "upstream_timeout"
    [stop] = stop_requests(dify)
    assert stop.url.path == f"/v1/chat-messages/{task_id}/stop"
    assert stop.headers["authorization"] == "Bearer app-REDACTED-chat"
    assert stop.read() == b'{"user":"opendify-%s:trace-user-1"}' % client_id_for(CLIENT_KEY).encode()


async def test_openai_sdk_reads_the_stream(client: AsyncTestClient[Litestar], dify: HTTPXMock) -> None:
    trace = add_trace(dify, "agent-chat-streaming-toolcall")
    sdk = openai_sdk(client)

    stream = await sdk.chat.completions.create(
        model="realdify-agent",
        messages=[{"role": "user", "content": "What is the weather in Paris right now?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    parts: list[str] = []
    usage = None
    async for chunk in stream:
        parts.extend(choice.delta.content or "" for choice in chunk.choices)
        usage = chunk.usage or usage

    assert "".join(parts) == recorded_answer(trace) == "Echo: tool result: 2026-11-23 19:27:06"
    assert usage is not None
    assert usage.total_tokens == 44


class _HeldStream(httpx.AsyncByteStream):
    """Dify's stream: `first` at once, then nothing until `gate` is resolved, then `rest` all at once (as it
    is when its events were already buffered)."""

    def __init__(self, first: list[bytes], gate: "asyncio.Future[None]", rest: list[bytes]) -> None:
        self._first, self._gate, self._rest = first, gate, rest

    async def __aiter__(self) -> Any:
        for piece in self._first:
            yield piece
        await self._gate
        for piece in self._rest:
            yield piece

    async def aclose(self) -> None:
        pass


async def test_client_gone_while_dify_keeps_sending_stops_the_dify_task(dify: HTTPXMock) -> None:
    """The client leaves in the loop cycle in which Dify's next event arrives: the relay task's awaited future
    is then already done, and anyio does not cancel such a task. Cancellation alone would let the gateway relay
    Dify's events, already buffered, to their end and find the task over (no stop): it must stop relaying when
    the client is gone, and stop the task. Driven as uvicorn does: `send` after the disconnect is a no-op."""
    trace = load("chat-streaming-stopped")
    task_id = trace.events()[0]["task_id"]
    events = list(sse_events(trace))
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    dify.add_response(
        method="POST",
        url=f"{DIFY_BASE}/chat-messages",
        headers={"content-type": "text/event-stream; charset=utf-8"},
        stream=_HeldStream(events[:1], gate, events[1:]),
    )
    add_trace(dify, "chat-stop", url=f"{DIFY_BASE}/chat-messages/{task_id}/stop", is_optional=True)

    body = json.dumps(stream_request("realdify-chat", user="trace-user-1")).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", CLIENT_HEADERS["Authorization"].encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    first_chunk = asyncio.Event()
    gone = False
    sent_after_leaving: list[bytes] = []
    requests = iter([{"type": "http.request", "body": body, "more_body": False}])

    async def receive() -> Any:
        nonlocal gone
        message = next(requests, None)
        if message is not None:
            return message
        await first_chunk.wait()
        gate.set_result(None)  # Dify's next events arrive in the very cycle in which the client leaves
        gone = True
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        if gone:
            sent_after_leaving.append(message.get("body", b""))
            return  # uvicorn: a write to a closed connection is dropped silently
        if message["type"] == "http.response.body" and message.get("body"):
            first_chunk.set()

    app = create_app(make_settings())
    async with app.lifespan():  # in this test's event loop (the test client would run it in a thread of its own)
        await app(scope, receive, send)  # type: ignore[arg-type]

    assert gone
    assert [stop.url.path for stop in stop_requests(dify)] == [f"/v1/chat-messages/{task_id}/stop"]
    assert stop_requests(dify)[0].read() == b'{"user":"opendify-%s:trace-user-1"}' % client_id_for(CLIENT_KEY).encode()
    assert b"".join(sent_after_leaving) == b""  # nothing of Dify's later events was relayed to no one
