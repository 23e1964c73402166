"""The stream relay: ending a stream for shutdown interrupts a read of Dify, never a write or the cleanup."""

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from app.schemas.dify import BaseEvent
from app.services.answer import AnswerStream
from app.services.dify.interpret import ChatInterpreter
from app.services.dify.stream import decode_event
from app.services.drain import StreamDrain, shutting_down
from app.services.openai import ChatChunks
from app.services.relay import open_relay

pytestmark = pytest.mark.anyio

ENVELOPE = {"conversation_id": "c", "message_id": "m", "created_at": 1, "task_id": "task-1"}


def _event(payload: dict[str, object]) -> BaseEvent:
    event = decode_event(json.dumps(payload).encode())
    assert event is not None
    return event


class Upstream:
    """Dify's side: batches handed out on demand, and a record of what the stream's cleanup did."""

    def __init__(self, batches: list[list[BaseEvent | None]], *, then_wait: bool) -> None:
        self.batches = batches
        self.then_wait = then_wait
        self.stops: list[str] = []
        self.reading = asyncio.Event()

    async def source(self) -> AsyncIterator[list[BaseEvent | None]]:
        for batch in self.batches:
            yield batch
        if self.then_wait:
            self.reading.set()
            await asyncio.Event().wait()  # Dify silent: the relay waits here

    async def stop(self, task_id: str) -> None:
        self.stops.append(task_id)


async def _relay(upstream: Upstream) -> tuple[object, AsyncIterator[bytes]]:
    stream = AnswerStream(ChatInterpreter(), source=upstream.source(), stop=upstream.stop)
    relay = await open_relay(stream, ChatChunks("m", include_usage=False), drain=StreamDrain(0.0))
    return relay, aiter(relay)


async def test_ending_while_waiting_for_dify_sends_the_error_in_band_and_stops_the_task() -> None:
    upstream = Upstream([[_event({"event": "message", **ENVELOPE, "answer": "partial"})]], then_wait=True)
    relay, chunks = await _relay(upstream)
    assert b"partial" in await anext(chunks)
    reader = asyncio.ensure_future(anext(chunks))
    await upstream.reading.wait()
    relay.end(shutting_down())  # type: ignore[attr-defined]
    last = await asyncio.wait_for(reader, 5)  # a hang guard, not a measurement
    assert json.loads(last[6:])["error"]["code"] == "server_shutting_down"
    with pytest.raises(StopAsyncIteration):
        await anext(chunks)
    assert upstream.stops == ["task-1"]
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_ending_between_two_reads_does_not_cancel_anything() -> None:
    message = _event({"event": "message", **ENVELOPE, "answer": "one"})
    upstream = Upstream([[message], [message]], then_wait=True)
    relay, chunks = await _relay(upstream)
    await anext(chunks)
    relay.end(shutting_down())  # type: ignore[attr-defined]  # parked at a yield: no read to interrupt
    last = await anext(chunks)
    assert json.loads(last[6:])["error"]["code"] == "server_shutting_down"
    with pytest.raises(StopAsyncIteration):
        await anext(chunks)
    assert upstream.stops == ["task-1"]
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_ending_after_the_answer_is_complete_leaves_its_cleanup_alone() -> None:
    message = _event({"event": "message", **ENVELOPE, "answer": "whole"})
    end = _event({"event": "message_end", **ENVELOPE, "metadata": {}})
    upstream = Upstream([[message], [end]], then_wait=False)
    relay, chunks = await _relay(upstream)
    await anext(chunks)
    assert (await anext(chunks)).endswith(b"data: [DONE]\n\n")
    relay.end(shutting_down())  # type: ignore[attr-defined]
    with pytest.raises(StopAsyncIteration):  # before the fix, the cancellation landed in the cleanup
        await anext(chunks)
    assert upstream.stops == []  # the run is over: nothing to stop
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


@pytest.mark.anyio
@pytest.mark.parametrize("split", [False, True], ids=["one-read", "two-reads"])
async def test_a_streams_tokens_and_outcome_are_noted_for_its_access_line(split: bool) -> None:
    """Also when the whole answer is in the first read (read ahead before the status is committed)."""
    from app.services import access  # noqa: PLC0415

    usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    message = _event({"event": "message", **ENVELOPE, "answer": "hi"})
    end = _event({"event": "message_end", **ENVELOPE, "metadata": {"usage": usage}})
    record = access.Access("rid", 0.0)
    token = access.current.set(record)
    try:
        upstream = Upstream([[message], [end]] if split else [[message, end]], then_wait=False)
        stream = AnswerStream(ChatInterpreter(), source=upstream.source(), stop=upstream.stop)
        relay = await open_relay(stream, ChatChunks("m", include_usage=True), drain=StreamDrain(0.0))
        body = b"".join([chunk async for chunk in relay])
    finally:
        access.current.reset(token)
    assert b'"prompt_tokens":7' in body
    assert record.outcome == "completed"
    assert (record.prompt_tokens, record.completion_tokens) == (7, 3)
    assert record.first_byte is not None
