"""The stream drain: the grace period starts once, then every open stream (and any opened later) is ended."""

import asyncio

import pytest

from app.errors import GatewayError
from app.services.drain import StreamDrain

pytestmark = pytest.mark.anyio


class Stream:
    def __init__(self) -> None:
        self.ended: list[GatewayError] = []

    def end(self, error: GatewayError) -> None:
        self.ended.append(error)


async def test_streams_are_ended_once_the_grace_period_is_over() -> None:
    drain = StreamDrain(0.05)
    open_stream, finished = Stream(), Stream()
    drain.add(open_stream)
    drain.add(finished)
    drain.discard(finished)
    drain.begin()
    drain.begin()  # once per connection: the grace period is not restarted
    assert open_stream.ended == []
    await asyncio.sleep(0.2)
    assert [error.code for error in open_stream.ended] == ["server_shutting_down"]
    assert finished.ended == []


async def test_a_stream_registering_after_the_grace_period_is_ended_at_once() -> None:
    drain = StreamDrain(0.0)
    drain.begin()
    await asyncio.sleep(0.05)
    late = Stream()
    drain.add(late)
    assert [error.status_code for error in late.ended] == [503]


async def test_without_begin_nothing_ends() -> None:
    drain = StreamDrain(0.0)
    stream = Stream()
    drain.add(stream)
    await asyncio.sleep(0.05)
    assert stream.ended == []
