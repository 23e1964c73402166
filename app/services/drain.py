"""The streams open in this process, and how they end when the server shuts down.

When the server begins a graceful shutdown (`begin()`, from the connection protocol in app.server), every open stream
gets `grace` seconds to finish; then each is ended: an in-band error event, its Dify task stopped, the connection
closed normally. Streams opened after `begin()` are served the same way (the server accepts no new connections).
"""

import asyncio
import logging
from typing import Protocol

from app.errors import GatewayError, ServiceUnavailableError

logger = logging.getLogger("opendify.drain")


class Endable(Protocol):
    def end(self, error: GatewayError) -> None: ...


def shutting_down() -> GatewayError:
    return ServiceUnavailableError(
        "The gateway is shutting down and ended this stream; retry the request.", code="server_shutting_down"
    )


class StreamDrain:
    def __init__(self, grace: float) -> None:
        self._grace = grace
        self._streams: set[Endable] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._over = False  # the grace period has passed: a stream still registering is ended at once

    def add(self, stream: Endable) -> None:
        self._streams.add(stream)
        if self._over:
            stream.end(shutting_down())

    def discard(self, stream: Endable) -> None:
        self._streams.discard(stream)

    def begin(self) -> None:
        """Start the grace period (idempotent: the server calls it once per open connection)."""
        if self._timer is None and not self._over:
            self._timer = asyncio.get_running_loop().call_later(self._grace, self.end_all)

    def end_all(self) -> None:
        self._over = True
        if self._streams:
            logger.warning("shutdown grace period over: ending open streams", extra={"streams": len(self._streams)})
        for stream in list(self._streams):
            stream.end(shutting_down())
