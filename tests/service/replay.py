"""Replay recorded Dify 0.15.3 traffic (tests/fixtures/traces) to the gateway through pytest-httpx.

The gateway runs in-process under Litestar's AsyncTestClient (its own transport, not intercepted); only the
gateway's outgoing httpx calls to `http://dify.test/v1` are answered from the recordings.
"""

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import httpx
import openai
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock, IteratorStream

from app import create_app
from app.config import DifyAppKey, Settings
from tests.traces import Trace, load

DIFY_BASE = "http://dify.test/v1"
CHAT_URL = f"{DIFY_BASE}/chat-messages"
INFO_URL = f"{DIFY_BASE}/info"
PARAMETERS_URL = f"{DIFY_BASE}/parameters"
CLIENT_KEY = "sk-test"
CLIENT_HEADERS = {"Authorization": f"Bearer {CLIENT_KEY}"}

MODES = ("chat", "agent-chat", "advanced-chat")
# model ids are the app names recorded in `<mode>-info`
MODEL_IDS = {"chat": "realdify-chat", "agent-chat": "realdify-agent", "advanced-chat": "realdify-advanced-chat"}

# The side-effect-free mode probe the gateway sends at discovery (Dify 0.15.3 /info has no `mode`).
PROBE_BODY: dict[str, Any] = {"user": "opendify-probe", "inputs": {}, "query": "", "response_mode": "blocking"}


def app_key(mode: str) -> str:
    return f"app-REDACTED-{mode}"


def dify_auth(mode: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {app_key(mode)}"}


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "valid_api_keys": (CLIENT_KEY,),
        "dify_api_keys": tuple(DifyAppKey(app_key(mode)) for mode in MODES),
        "dify_api_base": DIFY_BASE,
    }
    if "dify_transport" in Settings.__struct_fields__:
        # Dify is replayed at httpx's transport layer (pytest-httpx patches httpx.AsyncHTTPTransport)
        values["dify_transport"] = "httpx"
    values.update(overrides)
    return Settings(**values)


def openai_sdk(client: AsyncTestClient[Litestar]) -> openai.AsyncOpenAI:
    """The official SDK, talking to the in-process gateway through the test client."""
    return openai.AsyncOpenAI(
        api_key=CLIENT_KEY,
        base_url=f"{client.base_url}v1",
        # openai is typed for httpx2 clients and accepts (legacy) httpx ones at run time
        http_client=cast("Any", client),
        max_retries=0,
    )


def split(body: bytes, size: int) -> list[bytes]:
    """The body in `size`-byte pieces: lines, `\\n\\n` pairs and JSON split at arbitrary points."""
    return [body[i : i + size] for i in range(0, len(body), size)]


def _headers(trace: Trace) -> dict[str, str]:
    return {"content-type": trace.headers["content-type"]}


def mode_of(name: str) -> str:
    for mode in ("advanced-chat", "agent-chat", "chat"):
        if name.startswith(mode + "-"):
            return mode
    raise ValueError(f"no app mode in trace name {name!r}")


def add_trace(
    httpx_mock: HTTPXMock,
    name: str,
    *,
    mode: str | None = None,
    url: str = CHAT_URL,
    method: str = "POST",
    chunk_size: int | None = 7,
    body: bytes | None = None,
    **options: Any,
) -> Trace:
    """Answer the next matching request of the app (by its Dify key) with the recorded response `name`.

    Event streams are delivered in `chunk_size`-byte pieces (None: in one piece); `body` overrides the recorded
    body (to cut or combine recordings)."""
    trace = load(name)
    content = trace.body if body is None else body
    if trace.headers["content-type"].startswith("text/event-stream") and chunk_size is not None:
        httpx_mock.add_response(
            method=method,
            url=url,
            match_headers=dify_auth(mode or mode_of(name)),
            status_code=trace.status,
            headers=_headers(trace),
            stream=IteratorStream(split(content, chunk_size)),
            **options,
        )
    else:
        httpx_mock.add_response(
            method=method,
            url=url,
            match_headers=dify_auth(mode or mode_of(name)),
            status_code=trace.status,
            headers=_headers(trace),
            content=content,
            **options,
        )
    return trace


def add_stream(httpx_mock: HTTPXMock, mode: str, chunks: Iterable[bytes], *, status: int = 200) -> None:
    """A hand-assembled event stream (pieces of recordings), delivered chunk by chunk."""
    httpx_mock.add_response(
        method="POST",
        url=CHAT_URL,
        match_headers=dify_auth(mode),
        status_code=status,
        headers={"content-type": "text/event-stream; charset=utf-8"},
        stream=IteratorStream(chunks),
    )


def register_apps(httpx_mock: HTTPXMock) -> None:
    """`GET /info` and the mode probe for the three apps; how often they are asked depends on timing."""
    for mode in MODES:
        add_trace(httpx_mock, f"{mode}-info", url=INFO_URL, method="GET", is_optional=True, is_reusable=True)
        add_trace(
            httpx_mock, f"{mode}-parameters", url=PARAMETERS_URL, method="GET", is_optional=True, is_reusable=True
        )
        add_trace(
            httpx_mock,
            f"{mode}-probe-chat-messages",
            match_json=PROBE_BODY,
            is_optional=True,
            is_reusable=True,
        )


def chat_requests(httpx_mock: HTTPXMock, mode: str | None = None) -> list[dict[str, Any]]:
    """JSON bodies of the chat-messages requests the gateway sent to Dify (the discovery probe left out)."""
    sent: list[dict[str, Any]] = []
    for request in httpx_mock.get_requests(method="POST", url=CHAT_URL):
        if mode is not None and request.headers.get("authorization") != f"Bearer {app_key(mode)}":
            continue
        body = json.loads(request.content)
        if body != PROBE_BODY:
            sent.append(body)
    return sent


def stop_requests(httpx_mock: HTTPXMock) -> list[httpx.Request]:
    return [r for r in httpx_mock.get_requests(method="POST") if r.url.path.endswith("/stop")]


@dataclass(frozen=True)
class SSE:
    """One server-sent event as the client sees it."""

    comment: str | None = None
    data: str | None = None

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


def parse_sse(text: str) -> list[SSE]:
    events: list[SSE] = []
    assert text.endswith("\n\n"), "an SSE body ends with a blank line"
    for block in text.split("\n\n")[:-1]:
        lines = block.split("\n")
        comments = [line[1:].strip() for line in lines if line.startswith(":")]
        data = [line[6:] if line.startswith("data: ") else line[5:] for line in lines if line.startswith("data:")]
        assert len(comments) + len(data) == len(lines), f"unexpected SSE lines: {block!r}"
        events.append(SSE(comment=comments[0] if comments else None, data="\n".join(data) if data else None))
    return events


def data_events(events: list[SSE]) -> list[SSE]:
    return [event for event in events if event.data is not None]


def chunk_payloads(events: list[SSE]) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects of a stream (not [DONE], not in-band errors)."""
    payloads = []
    for event in data_events(events):
        if event.data == "[DONE]":
            continue
        payload = event.json()
        if "error" not in payload:
            payloads.append(payload)
    return payloads


def streamed_content(events: list[SSE]) -> str:
    return "".join(
        choice["delta"].get("content") or "" for chunk in chunk_payloads(events) for choice in chunk["choices"]
    )


def recorded_answer(trace: Trace) -> str:
    return "".join(
        event.get("answer") or "" for event in trace.events() if event["event"] in ("message", "agent_message")
    )


def cut_before(body: bytes, marker: bytes) -> bytes:
    """The recorded body up to (not including) the event that contains `marker`."""
    index = body.index(marker)
    start = body.rindex(b"\n\n", 0, index) + 2
    return body[:start]


def sse_events(trace: Trace) -> Iterator[bytes]:
    """The recorded stream's events, each with its blank line."""
    for block in trace.body.split(b"\n\n"):
        if block.strip():
            yield block + b"\n\n"


@pytest.fixture
def dify(httpx_mock: HTTPXMock) -> HTTPXMock:
    """httpx_mock with the three recorded apps discoverable."""
    register_apps(httpx_mock)
    return httpx_mock


@pytest.fixture
async def client(dify: HTTPXMock) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(make_settings())) as test_client:
        yield test_client
