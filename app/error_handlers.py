"""The one place where errors become OpenAI's envelope: {"error": {"message", "type", "param", "code"}}."""

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from app.errors import GatewayError
from app.schemas.openai import ErrorDetail, ErrorResponse

logger = logging.getLogger("opendify.errors")

_HTTP_TYPES = {401: "invalid_request_error", 403: "permission_error", 429: "rate_limit_exceeded"}
_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int,
    message: str,
    error_type: str,
    *,
    code: str | None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ErrorResponse]:
    body = ErrorResponse(error=ErrorDetail(message=message, type=error_type, param=param, code=code))
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def gateway_error_handler(_: Request[Any, Any, Any], exc: GatewayError) -> Response[ErrorResponse]:
    if exc.status_code >= 500:
        logger.warning("upstream failure", extra={"status": exc.status_code, "code": exc.code, "error": exc.message})
    return error_response(
        exc.status_code, exc.message, exc.error_type, code=exc.code, param=exc.param, headers=exc.headers
    )


_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


def _validation_message(exc: ValidationException) -> tuple[str, str | None]:
    """Litestar names the handler argument (`data`) for errors about the whole body: never shown as `param`."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict) or not item.get("message"):
            continue
        message, key = str(item["message"]), str(item.get("key") or "")
        if key == "data":
            missing = _MISSING_FIELD.search(message)
            if missing:
                return f"Invalid request body: missing required field `{missing.group(1)}`", missing.group(1)
            if message == "'data'":
                return "The request body is empty: send a JSON object.", None
            return f"Invalid request body: {message}", None
        where = f" (at `{key}`)" if key else ""
        return f"Invalid request body: {message}{where}", key or None
    return f"Invalid request body: {exc.detail}", None


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorResponse]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        message, param = _validation_message(exc)
        code = "invalid_json" if message.startswith("The request body is empty") else "invalid_value"
        return error_response(400, message, "invalid_request_error", code=code, param=param)
    if status == 404:
        message = f"Unknown path {request.method} {request.url.path}"
    elif status == 413:
        message = "The request body is too large (see MAX_REQUEST_BODY)."
    else:
        message = exc.detail
    error_type = _HTTP_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return error_response(status, message, error_type, code=_HTTP_CODES.get(status), headers=exc.headers)


def unexpected_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorResponse]:
    logger.exception("unhandled error", extra={"path": request.url.path}, exc_info=exc)
    return error_response(500, "The gateway had an internal error.", "server_error", code=None)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    GatewayError: gateway_error_handler,
    HTTPException: http_exception_handler,
    Exception: unexpected_error_handler,
}
