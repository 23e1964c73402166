"""Serving the gateway: uvicorn (httptools, uvloop) with the bounds a public HTTP server needs.

uvicorn's httptools protocol reads a request's head without limit and waits for a slow client for ever; the
subclass here bounds the head (request line, header bytes, header count), times out a client that does not finish
its head or body, and starts the stream drain at shutdown. `serve()` is the one way to start it: `litestar run`
(through `ServerCLIPlugin`) and `python -m app` both call it.
"""

import asyncio
import gc
import logging
from typing import Any

import httptools
import msgspec
import uvicorn
from litestar import Litestar
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings

logger = logging.getLogger("opendify.server")

SHUTDOWN_MARGIN = 10.0  # seconds after the grace period for ended streams to stop their Dify tasks and close


class ClientLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_header_bytes: int
    max_header_count: int
    max_url_bytes: int
    header_timeout: float
    body_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "ClientLimits":
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            max_url_bytes=settings.max_url_bytes,
            header_timeout=settings.client_header_timeout,
            body_timeout=settings.client_body_timeout,
        )


DEFAULT_LIMITS = ClientLimits.from_settings(Settings())


GC_THRESHOLD = (10_000, 10, 10)  # gen0 collections after 10,000 allocations, not 700


class ServerConfig(uvicorn.Config):
    """uvicorn's Config, carrying the client limits to every connection (and to worker processes)."""

    def __init__(self, *args: Any, limits: ClientLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits

    def load(self) -> None:
        """Each serving process loads the app here: then the garbage collector is told what stays. The app's own
        objects (routes, schemas, settings) are frozen out of every collection, and young collections run less
        often: they were about 7% of a request's CPU (py-spy --native), for a request allocates hundreds of
        short-lived objects that reference counting frees anyway."""
        super().load()
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLD)


class _RefusedError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_PHRASES = {408: b"Request Timeout", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """A request's head may take at most `max_url_bytes` + `max_header_bytes` bytes, `max_header_count` headers
    and `header_timeout` seconds from its first byte (from the connection's opening for a new one); its body at most
    `body_timeout` seconds. Past a bound the client gets 414, 431 or 408 and the connection is closed."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: ClientLimits = getattr(config, "limits", DEFAULT_LIMITS)
        self._head_limit = self.limits.max_url_bytes + self.limits.max_header_bytes
        self._head_bytes = 0
        self._in_head = True
        self._timer: asyncio.TimerHandle | None = None

    # --- timers -----------------------------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        what = "headers" if self._in_head else "body"
        self._refuse(408, f"The request {what} did not arrive in time.")

    # --- connection -------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout)  # a new connection that sends nothing is a slow client too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self._feed(data)
        except _RefusedError as refused:
            self._refuse(refused.status, refused.reason)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _RefusedError):
                self._refuse(exc.__context__.status, exc.__context__.reason)
            else:
                self._invalid()
        except httptools.HttpParserError:
            self._invalid()
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def _feed(self, data: bytes) -> None:
        if not self._in_head:
            self.parser.feed_data(data)
            return
        if self._timer is None:
            self._arm(self.limits.header_timeout)  # the first byte of a request on a kept-alive connection
        room = self._head_limit - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            self.parser.feed_data(data)
            return
        # more than the head may still hold: parse what fits, and the rest only if the head ended in it
        self._head_bytes += room
        self.parser.feed_data(data[:room])
        if self._head_pending() and self._head_bytes >= self._head_limit:  # (the parser's callbacks move it on)
            raise _RefusedError(431, "The request headers are too large.")
        if not self.transport.is_closing():
            self._feed(data[room:])  # a pipelined next request's head is bounded too

    def _head_pending(self) -> bool:
        return self._in_head

    def _invalid(self) -> None:
        logger.debug("invalid HTTP request received")
        self.send_400_response("Invalid HTTP request received.")

    def _refuse(self, status: int, reason: str) -> None:
        """Answer and close, whatever state the request is in; the app (if it runs) sees a disconnect."""
        self._disarm()
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._in_head:  # waiting for a request: answer unless an earlier response is still being sent
            answer = cycle is None or cycle.response_complete
        else:  # reading a body: answer unless the app already has
            answer = cycle is not None and not cycle.response_started
        if answer:
            body = reason.encode()
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s" % (status, _PHRASES[status], len(body), body)
            )
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    # --- parser callbacks -------------------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        # checked once the head is whole (its size bounds what was buffered): no work per header on the hot path
        if len(self.url) > self.limits.max_url_bytes:
            raise _RefusedError(414, "The request URL is too long.")
        if len(self.headers) > self.limits.max_header_count:
            raise _RefusedError(431, "The request has too many headers.")
        self._in_head = False
        self._arm(self.limits.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()

    # --- shutdown ---------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """The server begins its graceful shutdown: open streams get the gateway's grace period, then end."""
        gateway = _gateway(self.app)
        if gateway is not None and self.cycle is not None and not self.cycle.response_complete:
            drain = gateway.state.get("stream_drain")
            if drain is not None:
                drain.begin()
        super().shutdown()


def _gateway(asgi_app: Any) -> Litestar | None:
    """The Litestar app under uvicorn's middleware wrappers (each keeps the wrapped app as `.app`)."""
    for _ in range(8):
        if isinstance(asgi_app, Litestar):
            return asgi_app
        asgi_app = getattr(asgi_app, "app", None)
    return None


def serve(settings: Settings, *, host: str, port: int, workers: int = 1, reload: bool = False) -> None:
    """Start the gateway the way the README says: uvicorn with the bounded protocol and the connection cap."""
    config = ServerConfig(
        "app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        http=BoundedHttpToolsProtocol,
        limits=ClientLimits.from_settings(settings),
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=settings.shutdown_grace + SHUTDOWN_MARGIN,
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    if config.should_reload:
        from uvicorn.supervisors import ChangeReload  # noqa: PLC0415

        ChangeReload(config, target=server.run, sockets=[config.bind_socket()]).run()
    elif config.workers > 1:
        from uvicorn.supervisors import Multiprocess  # noqa: PLC0415

        Multiprocess(config, sockets=[config.bind_socket()]).run()  # each worker runs a Server of its own
    else:
        server.run()
