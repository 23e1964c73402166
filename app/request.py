"""The request class: a body that cannot be decoded is the client's `invalid_json`, whatever the reason."""

from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException

from app.errors import InvalidRequestError


class GatewayRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except SerializationException as exc:  # malformed, truncated, invalid UTF-8
            raise InvalidRequestError(f"The request body is not valid JSON: {exc}", code="invalid_json") from None
        except RecursionError:
            # msgspec gives up at about 1,000 levels, even inside fields the gateway ignores: a client error,
            # answered without a traceback (a cheap way to flood the logs otherwise)
            raise InvalidRequestError("The request body is nested too deeply.", code="invalid_json") from None
