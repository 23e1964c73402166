"""Client authentication: `Authorization: Bearer <key>` (or Azure-style `api-key`), compared in constant time."""

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from app.config import Settings, is_loopback
from app.errors import AuthenticationError
from app.services.chat import client_id_for


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


async def require_client_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    settings: Settings = connection.app.state.settings
    if not settings.auth_required:
        server = connection.scope.get("server")
        if server and not is_loopback(str(server[0])):
            # start-up refuses this configuration; this guards a socket that was bound some other way
            raise AuthenticationError("This gateway has no VALID_API_KEYS and only serves loopback clients.")
        connection.state.client_id = client_id_for(None)
        return
    key = presented_key(connection)
    if key is None:
        raise AuthenticationError(
            "Missing API key: send `Authorization: Bearer <key>` with one of the gateway's VALID_API_KEYS."
        )
    if not key_is_valid(key, settings.valid_api_keys):
        raise AuthenticationError("Incorrect API key provided.")
    connection.state.client_id = client_id_for(key)
