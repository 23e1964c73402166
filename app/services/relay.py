"""One relay for every streaming surface: read ahead to the first output before the 200 (an early failure is
then a real HTTP error), one write per batch, the `remember` tap before the last bytes, shielded close."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from app.errors import GatewayError
from app.services import access
from app.services.access import Outcome
from app.services.answer import AnswerEvent, AnswerStream, Failed, Finished, Keepalive, Progress, Started
from app.services.drain import StreamDrain

OnFinished = Callable[[str, str | None], Awaitable[None]]  # (the answer as the client saw it, conversation id)


class Encoder(Protocol):
    """A surface's stream encoder: bytes for a batch of events; `finished` once the answer is complete."""

    finished: bool

    @property
    def visible_text(self) -> str: ...

    def encode(self, batch: list[AnswerEvent]) -> bytes: ...

    def fail(self, error: GatewayError) -> bytes:
        """The surface's way of ending a stream on `error` (the connection to Dify lost, a shutdown)."""
        ...


class EventRelay:
    """Iterate for the SSE bytes of one answer. `head` was read before the HTTP status was committed."""

    __slots__ = (
        "_batches",
        "_drain",
        "_encoder",
        "_ending",
        "_head",
        "_on_finished",
        "_outcome",
        "_reading",
        "_remembered",
        "_stream",
        "_task",
    )

    def __init__(
        self,
        stream: AnswerStream,
        batches: AsyncIterator[list[AnswerEvent]],
        encoder: Encoder,
        head: bytes,
        *,
        drain: StreamDrain,
        on_finished: OnFinished | None,
    ) -> None:
        self._stream = stream
        self._batches = batches
        self._encoder = encoder
        self._head = head
        self._drain = drain
        self._on_finished = on_finished
        self._remembered = False
        self._reading = False
        self._task: asyncio.Task[object] | None = None
        self._ending: GatewayError | None = None
        self._outcome: Outcome | None = None  # how the stream ended, when not completed

    @property
    def conversation_id(self) -> str | None:
        return self._stream.conversation_id

    def end(self, error: GatewayError) -> None:
        """End the stream early (the server is shutting down): `error` goes out in-band, the Dify task is stopped.
        Interrupts the read of Dify's next events; a stream blocked writing to its client is simply closed."""
        if self._ending is None:
            self._ending = error
            if self._reading and self._task is not None:
                self._task.cancel()  # waiting for Dify: interrupt the read (caught, and undone, below)

    async def aclose(self) -> None:
        """Close the answer (and stop its Dify task unless over): also when the stream was never iterated."""
        self._drain.discard(self)
        await self._stream.aclose()

    async def _finished(self) -> None:
        """Before the last bytes go out: a client may send its next turn the moment it reads `[DONE]`."""
        self._remembered = True
        if self._on_finished is not None:
            await self._on_finished(self._encoder.visible_text, self._stream.conversation_id)

    async def _encoded(self, batch: list[AnswerEvent]) -> bytes:
        out = self._encoder.encode(batch)
        if self._encoder.finished and not self._remembered:
            _note_finished(batch)
            await self._finished()
        elif self._outcome is None:
            self._outcome = _failure_in(batch)
        return out

    async def __aiter__(self) -> AsyncIterator[bytes]:
        encoder = self._encoder
        self._drain.add(self)
        try:
            if encoder.finished:
                await self._finished()
            yield self._head
            batches = self._batches
            self._task = asyncio.current_task()
            while self._ending is None:
                self._reading = True  # end() interrupts only this read, never a write or the cleanup
                try:
                    batch = await anext(batches)
                except StopAsyncIteration:
                    return
                finally:
                    self._reading = False
                out = await self._encoded(batch)
                if out:
                    yield out
                if encoder.finished:
                    return
            self._outcome = "shutdown"
            yield encoder.fail(self._ending)  # ended (server shutdown) between two reads
        except GatewayError as exc:  # the connection to Dify failed mid-stream
            self._outcome = "upstream_error"
            yield encoder.fail(exc)
        except asyncio.CancelledError:
            if self._ending is None or self._task is None:
                raise  # the client left: Litestar cancels the stream
            self._task.uncancel()  # our own cancellation (end()): the stream ends normally, the error in-band
            self._outcome = "shutdown"
            yield encoder.fail(self._ending)
        finally:
            noted = access.current.get()
            if noted is not None:
                noted.outcome = "completed" if encoder.finished else self._outcome or "client_gone"
                noted.task_id = self._stream.task_id
            await self.aclose()  # shielded inside: client gone or server shutting down


def _note_finished(batch: list[AnswerEvent]) -> None:
    noted = access.current.get()
    finished = next((e for e in reversed(batch) if isinstance(e, Finished)), None)  # (at the end, if there)
    if noted is not None and finished is not None:
        noted.prompt_tokens, noted.completion_tokens = finished.usage.prompt_tokens, finished.usage.completion_tokens


def _failure_in(batch: list[AnswerEvent]) -> Outcome | None:
    """An in-band failure: the stream cut short by Dify, or Dify's error."""
    failed = next((e for e in batch if isinstance(e, Failed)), None)
    if failed is None:
        return None
    return "cut" if failed.error.code == "upstream_incomplete" else "upstream_error"


_SILENT = (Keepalive, Started, Progress)  # events that show the client nothing (progress: unless a tap shows it)
PING_COMMITS_AFTER = 5.0  # seconds: a keep-alive commits the response only once a stream has shown nothing this long


async def open_relay(
    stream: AnswerStream, encoder: Encoder, *, drain: StreamDrain, on_finished: OnFinished | None = None
) -> EventRelay:
    """Read ahead to the first visible output. A keep-alive does not count at first (Dify 1.12+ opens chatflow and
    workflow streams with one, before the run has even validated its inputs), but does after PING_COMMITS_AFTER
    seconds, so slow agents still stream promptly and the client sees the connection is alive."""
    batches = aiter(stream)
    head = b""
    started = time.monotonic()
    try:
        async for batch in batches:
            for event in batch:
                if isinstance(event, Failed):
                    raise event.error  # nothing sent yet: a real HTTP error
            head += encoder.encode(batch)
            if encoder.finished:
                _note_finished(batch)  # (the whole answer in the first reads)
            if any(not isinstance(e, _SILENT) for e in batch):
                break  # output, or the end
            if head and time.monotonic() - started >= PING_COMMITS_AFTER:
                break
    except BaseException:
        await stream.aclose()
        raise
    noted = access.current.get()
    if noted is not None:
        noted.first_byte = time.perf_counter() - noted.started
    return EventRelay(stream, batches, encoder, head, drain=drain, on_finished=on_finished)
