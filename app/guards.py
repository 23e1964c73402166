"""Client authentication: `Authorization: Bearer <key>` (or Azure-style `api-key`), compared in constant time."""

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from app.config import Settings, is_loopback
from app.errors import AuthenticationError, PermissionDeniedError
from app.services.pipeline import client_id_for


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    authorization = connection.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return connection.headers.get("api-key")


def key_is_valid(presented: str, valid_keys: tuple[str, ...]) -> bool:
    given = presented.encode()
    matched = False
    for key in valid_keys:  # no early exit: the time taken does not tell which key came close
        matched |= hmac.compare_digest(given, key.encode())
    return matched


async def require_client_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler | None) -> None:
    settings: Settings = connection.app.state.settings
    if not settings.auth_required:
        server = connection.scope.get("server")
        if server and not is_loopback(str(server[0])):
            # start-up refuses this configuration; this guards a socket that was bound some other way
            raise AuthenticationError("This gateway has no VALID_API_KEYS and only serves loopback clients.")
        origin = connection.headers.get("origin")
        if origin is not None and origin not in settings.cors_allow_origins and "*" not in settings.cors_allow_origins:
            # without keys, any page in a local browser could post here (a form post needs no preflight)
            raise PermissionDeniedError(
                "This gateway has no VALID_API_KEYS: requests from web pages are served only for origins in "
                "CORS_ALLOW_ORIGINS.",
                code="origin_not_allowed",
            )
        _set_client(connection, client_id_for(None))
        return
    key = presented_key(connection)
    if key is None:
        raise AuthenticationError(
            "Missing API key: send `Authorization: Bearer <key>` with one of the gateway's VALID_API_KEYS."
        )
    if not key_is_valid(key, settings.valid_api_keys):
        raise AuthenticationError("Incorrect API key provided.")
    _set_client(connection, client_id_for(key))


def _set_client(connection: ASGIConnection[Any, Any, Any, Any], client_id: str) -> None:
    # in the scope's state itself: `connection.state` builds a State (with a lock) at each use
    connection.scope.setdefault("state", {})["client_id"] = client_id


def client_id_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The id of the client key the request was authenticated with (`require_client_key` set it)."""
    client_id: str = connection.scope["state"]["client_id"]
    return client_id


class ClientKeyMiddleware:
    """`require_client_key` for a controller's routes, as a middleware rather than a guard: Litestar runs each guard
    with a copy of the route handler, which cost about 20 µs a request here. Its refusals are the same errors, made
    into the same responses (the route's exception handling wraps its middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            await require_client_key(ASGIConnection(scope, receive), None)
        await self._app(scope, receive, send)
