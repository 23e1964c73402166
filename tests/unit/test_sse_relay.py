"""The SSE relay (`_RelayResponse.send_body`) driven directly: a client leaving, a shutdown, a failing receive; the Dify task is stopped whatever ends the stream."""

import asyncio
import gc
from typing import Any

import pytest

from app.controllers.sse import _RelayResponse
from app.services.answer import AnswerStream
from app.services.dify.interpret import ChatInterpreter
from app.services.drain import StreamDrain, shutting_down
from app.services.openai import ChatChunks
from app.services.relay import open_relay
from tests.unit.test_relay import ENVELOPE, Upstream, _event

pytestmark = pytest.mark.anyio


class SlowStop(Upstream):
    async def stop(self, task_id: str) -> None:
        await asyncio.sleep(0.05)  # Dify's stop request takes a moment
        self.stops.append(task_id)


async def _response(upstream: Upstream) -> tuple[Any, _RelayResponse]:
    stream = AnswerStream(ChatInterpreter(), source=upstream.source(), stop=upstream.stop)
    relay = await open_relay(stream, ChatChunks("m", include_usage=False), drain=StreamDrain(0.0))
    return relay, _RelayResponse(iterator=relay)


async def test_shutdown_end_then_client_leaves_still_stops_the_dify_task() -> None:
    """Shutdown ends the stream in-band; the client hangs up on the error event while the relay's shielded
    cleanup is stopping the Dify task. The stop must complete."""
    upstream = SlowStop([[_event({"event": "message", **ENVELOPE, "answer": "partial"})]], then_wait=True)
    relay, response = await _response(upstream)
    error_sent = asyncio.Event()

    async def send(message: Any) -> None:
        if b"server_shutting_down" in message.get("body", b""):
            error_sent.set()

    async def receive() -> Any:
        await error_sent.wait()
        return {"type": "http.disconnect"}

    async def shutdown() -> None:
        await upstream.reading.wait()
        relay.end(shutting_down())

    ender = asyncio.ensure_future(shutdown())
    await asyncio.wait_for(response.send_body(send, receive), 5)
    await ender
    assert upstream.stops == ["task-1"]


async def test_outer_cancel_during_cleanup_still_stops_the_dify_task() -> None:
    """The client left (the relay is in its shielded cleanup, stopping the Dify task) when uvicorn cancels the
    ASGI task (timeout_graceful_shutdown): the stop must still complete."""
    upstream = SlowStop([[_event({"event": "message", **ENVELOPE, "answer": "partial"})]], then_wait=True)
    _, response = await _response(upstream)

    async def send(message: Any) -> None:
        pass

    async def receive() -> Any:
        await upstream.reading.wait()
        return {"type": "http.disconnect"}

    task = asyncio.ensure_future(response.send_body(send, receive))
    await upstream.reading.wait()
    for _ in range(5):
        await asyncio.sleep(0)  # the relay is in its cleanup now, stopping the task
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert upstream.stops == ["task-1"]


async def test_receive_failure_propagates() -> None:
    upstream = Upstream([[_event({"event": "message", **ENVELOPE, "answer": "partial"})]], then_wait=True)
    _, response = await _response(upstream)
    unretrieved: list[Any] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: unretrieved.append(context))

    async def send(message: Any) -> None:
        pass

    async def receive() -> Any:
        await upstream.reading.wait()
        raise OSError("receive failed")

    try:
        with pytest.raises((OSError, ExceptionGroup)):
            await asyncio.wait_for(response.send_body(send, receive), 5)
    finally:
        gc.collect()
        await asyncio.sleep(0)
        asyncio.get_running_loop().set_exception_handler(None)
        assert unretrieved == []
