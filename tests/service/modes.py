"""Replaying one recorded app per mode, of either Dify generation: its /info and /parameters, then its answers."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock, IteratorStream

from app import create_app
from app.config import DifyAppKey
from tests.service.replay import CLIENT_HEADERS, DIFY_BASE, dify_auth, make_settings, parse_sse, split
from tests.traces import Trace, load

GENERATIONS = {"0.15.3": "", "1.15": "dify-1.15/"}
PATHS = {
    "workflow": "/workflows/run",
    "completion": "/completion-messages",
    "agent": "/chat-messages",
    "advanced-chat": "/chat-messages",
    "chat": "/chat-messages",
    "agent-chat": "/chat-messages",
}


def reply(dify: HTTPXMock, trace: Trace, mode: str, path: str | None = None, **options: Any) -> None:
    url = DIFY_BASE + (path or PATHS[mode])
    if trace.headers.get("content-type", "").startswith("text/event-stream"):
        dify.add_response(
            method="POST",
            url=url,
            match_headers=dify_auth(mode),
            status_code=trace.status,
            headers={"content-type": trace.headers["content-type"]},
            stream=IteratorStream(split(trace.body, 11)),
            **options,
        )
    else:
        dify.add_response(
            method="POST",
            url=url,
            match_headers=dify_auth(mode),
            status_code=trace.status,
            headers={"content-type": trace.headers.get("content-type", "application/json")},
            content=trace.body,
            **options,
        )


@asynccontextmanager
async def modes_client(
    dify: HTTPXMock, prefix: str, modes: tuple[str, ...]
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    for mode in modes:
        for what in ("info", "parameters"):
            trace = load(f"{prefix}{mode}-{what}")
            dify.add_response(
                method="GET",
                url=f"{DIFY_BASE}/{what}",
                match_headers=dify_auth(mode),
                content=trace.body,
                is_optional=True,
                is_reusable=True,
            )
    settings = make_settings(dify_api_keys=tuple(DifyAppKey(f"app-REDACTED-{mode}", mode=mode) for mode in modes))  # type: ignore[arg-type]
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def model_id(client: AsyncTestClient[Litestar], mode: str) -> str:
    models = (await client.get("/v1/models", headers=CLIENT_HEADERS)).json()["data"]
    return str(next(m["id"] for m in models if m["mode"] == mode))


async def ask(client: AsyncTestClient[Litestar], mode: str, text: str, *, stream: bool) -> Any:
    body = {"model": await model_id(client, mode), "stream": stream, "messages": [{"role": "user", "content": text}]}
    return await client.post("/v1/chat/completions", headers=CLIENT_HEADERS, json=body)


def streamed(response: Any) -> tuple[str, list[dict[str, Any]]]:
    data = [event.data for event in parse_sse(response.text) if event.data]
    payloads = [json.loads(d) for d in data if d != "[DONE]"]
    text = "".join(p["choices"][0]["delta"].get("content") or "" for p in payloads if p.get("choices"))
    return text, payloads


def sent_bodies(dify: HTTPXMock, mode: str) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in dify.get_requests(method="POST", url=DIFY_BASE + PATHS[mode])]
