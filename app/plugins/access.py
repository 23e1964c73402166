"""Each request's id and its access line: `X-Request-Id` taken from the client when it is a sane one, else made;
returned on the response and sent to Dify with every call the request makes; and, with ACCESS_LOG (the default),
one structured line at INFO once the response is sent (streams included): method, path, status, duration, the app
and its mode, streamed or not, the stream's outcome, tokens, the client key's id, the Dify task id. Never a body,
a key or a user. Probes (`/health`, `/ready`, `/metrics`) get an id but no line."""

import logging
import os
import re
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.services import metrics
from app.services.access import Access, current

logger = logging.getLogger("opendify.access")

_GIVEN = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")  # a client's id is kept only if it is short and plain
_QUIET = frozenset({"/health", "/ready", "/metrics"})


def _given_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _GIVEN.fullmatch(text) else None
    return None


class _RandomIds:
    """128-bit random ids (uuid4's randomness, without the UUID object), from the OS's generator in blocks of 256:
    one getrandom() a request was about 2% of its CPU. A forked process starts a block of its own."""

    __slots__ = ("_block", "_next")

    def __init__(self) -> None:
        self._block = b""
        self._next = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._block, self._next = b"", 0

    def new(self) -> str:
        start = self._next
        if start + 16 > len(self._block):
            self._block, start = os.urandom(4096), 0
        self._next = start + 16
        return self._block[start : start + 16].hex()


_ids = _RandomIds()


class AccessMiddleware:
    def __init__(self, app: ASGIApp, *, log: bool = True) -> None:
        self._app = app
        self._log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        request_id = _given_id(scope) or _ids.new()
        started = time.perf_counter()
        access = Access(request_id, started)
        token = current.set(access)
        status = 500  # (a response that never started)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            current.reset(token)
            if self._log or metrics.state.enabled:
                seconds = time.perf_counter() - started
                metrics.request_done(access, seconds)
                if self._log and scope["path"] not in _QUIET and logger.isEnabledFor(logging.INFO):
                    self._line(scope, status, seconds, access)

    @staticmethod
    def _line(scope: Any, status: int, seconds: float, access: Access) -> None:
        state: Any = scope.get("state") or {}
        fields: dict[str, object] = {
            "request_id": access.request_id,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "client": state.get("client_id"),
        }
        if access.app is not None:
            fields |= {"model": access.app, "mode": access.mode, "stream": access.stream}
        for name in ("outcome", "prompt_tokens", "completion_tokens", "task_id"):
            value = getattr(access, name)
            if value is not None:
                fields[name] = value
        logger.info("request", extra=fields)
