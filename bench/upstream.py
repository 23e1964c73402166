"""A fast Dify double for the benchmark: precomputed bytes in the recorded 0.15.3 wire format.

Blocking answers are one JSON body; streams are BENCH_CHUNKS `message` events and a `message_end`, each written
separately, one a millisecond (`unpaced` in the query: back to back). A query containing `slow` streams BENCH_SLOW_CHUNKS events BENCH_SLOW_DELAY seconds apart (case 3).
"""

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CHUNKS = int(os.environ.get("BENCH_CHUNKS", "200"))
SLOW_CHUNKS = int(os.environ.get("BENCH_SLOW_CHUNKS", "10"))
SLOW_DELAY = float(os.environ.get("BENCH_SLOW_DELAY", "1.0"))
# Paced like a (very fast) model: one event a millisecond per stream. A query with `unpaced` sends them back to back.
CHUNK_INTERVAL = float(os.environ.get("BENCH_CHUNK_INTERVAL", "0.001"))

_ENVELOPE = {
    "conversation_id": "dbddfea2-0ddb-4e49-b37f-f2f40826081c",
    "message_id": "ae5a15f3-4633-481f-ace3-1a30668785a4",
    "created_at": 1795462020,
    "task_id": "8d2dce61-5bc3-4d3c-88a8-9665de5c1159",
}
_USAGE = {
    "prompt_tokens": 10, "prompt_unit_price": "0", "prompt_price_unit": "0", "prompt_price": "0E-7",
    "completion_tokens": 6, "completion_unit_price": "0", "completion_price_unit": "0", "completion_price": "0E-7",
    "total_tokens": 16, "total_price": "0E-7", "currency": "USD", "latency": 0.1,
}  # fmt: skip


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _message(text: str) -> bytes:
    return _event(
        {"event": "message", **_ENVELOPE, "id": _ENVELOPE["message_id"], "answer": text, "from_variable_selector": None}
    )


MESSAGE_END = _event(
    {"event": "message_end", **_ENVELOPE, "id": _ENVELOPE["message_id"], "metadata": {"usage": _USAGE}, "files": None}
)
STREAM = [_message(f"tok{i} ") for i in range(CHUNKS)]
BLOCKING = json.dumps(
    {
        "event": "message", "task_id": _ENVELOPE["task_id"], "id": _ENVELOPE["message_id"],
        "message_id": _ENVELOPE["message_id"], "conversation_id": _ENVELOPE["conversation_id"], "mode": "chat",
        "answer": "Echo: Hello from the blocking trace", "metadata": {"usage": _USAGE}, "created_at": 1795462020,
    }
).encode()  # fmt: skip
INFO = b'{"name": "bench", "description": "benchmark app", "tags": []}'
SUCCESS = b'{"result": "success"}'


class _Request(msgspec.Struct):
    query: str = ""
    response_mode: str = "blocking"


_decode = msgspec.json.Decoder(_Request).decode
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream; charset=utf-8")]


async def _send_json(send: Send, body: bytes, status: int = 200) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]
            await send({"type": f"{kind}.complete"})
            if kind == "lifespan.shutdown":
                return
    path = scope["path"]
    if path == "/v1/info":
        await _send_json(send, INFO)
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if path.endswith("/stop"):
        await _send_json(send, SUCCESS)
        return
    request = _decode(body) if body else _Request()
    if request.response_mode != "streaming":
        await _send_json(send, BLOCKING)
        return
    await _stream(request.query, send)


async def _stream(query: str, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": _SSE})
    if "slow" in query:
        for index in range(SLOW_CHUNKS):
            await asyncio.sleep(SLOW_DELAY)
            await send({"type": "http.response.body", "body": _message(f"slow{index} "), "more_body": True})
    elif "unpaced" in query or not CHUNK_INTERVAL:
        for chunk in STREAM:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    else:
        for chunk in STREAM:
            await asyncio.sleep(CHUNK_INTERVAL)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": MESSAGE_END, "more_body": False})
