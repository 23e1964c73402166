"""Dify error -> gateway error, by the table in reference/dify-service-api.md §12. Pure; used for HTTP errors
and for `error` stream events alike."""

import msgspec

from app.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UpstreamError,
)
from app.schemas.dify import ErrorBody

# 400s that are the model's or provider's failure, not the client's
_UPSTREAM_CODES = frozenset(
    {
        "completion_request_error",
        "provider_not_initialize",
        "provider_quota_exceeded",
        "model_currently_not_support",
        "internal_server_error",
    }
)

_error_body = msgspec.json.Decoder(ErrorBody)

MESSAGE_LIMIT = 1000  # characters of Dify's message relayed to the client
CODE_LIMIT = 100


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_error_body(content: bytes) -> ErrorBody:
    try:
        return _error_body.decode(content)
    except msgspec.DecodeError:
        text = content.decode("utf-8", "replace").strip()
        return ErrorBody(code="unknown", message=clip(text, 500))


def error_from_dify(status: int, body: ErrorBody) -> GatewayError:
    """Dify's message and code are relayed, cut to MESSAGE_LIMIT and CODE_LIMIT characters."""
    code = clip(body.code or "unknown", CODE_LIMIT)
    detail = clip(body.message, MESSAGE_LIMIT) or code
    message = f"Dify: {detail}"
    if status == 401:
        return AuthenticationError(f"Dify rejected the app key configured for this model: {detail}")
    if status == 403:
        return PermissionDeniedError(message, code=code)
    if status == 404:
        found = "conversation_not_found" if "conversation" in detail.lower() else "not_found"
        return NotFoundError(message, code=found)
    if status == 429 or (status == 400 and detail.lower().startswith("too many requests")):
        # Dify's per-app concurrency limit is a ValueError: a 400 invalid_param "Too many requests..." on some builds
        return RateLimitError(message, code="rate_limit_exceeded")
    if status >= 500:
        return ServerError(message, code=code)
    if code in _UPSTREAM_CODES or detail.startswith("Run failed:") or "InvokeError" in detail:
        # (Dify 1.x reports a model that failed behind a plugin as invalid_param, "req_id: ... PluginInvokeError")
        # HTTP 400 from Dify, but the model behind the app failed: a gateway-class error the client may retry
        return UpstreamError(message, code=code)
    if 400 <= status < 500:
        return InvalidRequestError(message, code=code, param=body.params and clip(body.params, CODE_LIMIT))
    return UpstreamError(f"Dify answered with unexpected status {status}: {detail}", code=code)
