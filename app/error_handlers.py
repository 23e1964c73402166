"""The one place where errors become OpenAI's envelope: {"error": {"message", "type", "param", "code"}}."""

import logging
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


def _validation_message(exc: ValidationException) -> tuple[str, str | None]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict) and item.get("message"):
            key = item.get("key")
            where = f" (at `{key}`)" if key else ""
            return f"Invalid request body: {item['message']}{where}", str(key) if key else None
    return f"Invalid request body: {exc.detail}", None


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorResponse]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        message, param = _validation_message(exc)
        return error_response(400, message, "invalid_request_error", code="invalid_value", param=param)
    if status == 400 and "JSON is malformed" in exc.detail:
        return error_response(400, "The request body is not valid JSON.", "invalid_request_error", code="invalid_json")
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
