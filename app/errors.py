"""The gateway's error types. Each carries what OpenAI's error envelope needs; handlers.py renders them.

* GatewayError
  + InvalidRequestError       400  invalid_request_error
  + AuthenticationError       401  invalid_request_error / invalid_api_key
  + PermissionDeniedError     403  permission_error
  + NotFoundError             404  invalid_request_error (model_not_found, conversation_not_found, ...)
  + RateLimitError            429  rate_limit_exceeded
  + UpstreamError             502  api_error (Dify or its model failed, Dify unreachable)
  + UpstreamTimeoutError      504  api_error (Dify did not answer in time)
  + ServerError               500  server_error
  + ServiceUnavailableError   503  server_error (the gateway is shutting down)
"""

from typing import ClassVar


class GatewayError(Exception):
    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
        self.param = param
        self.headers = headers or {}


class InvalidRequestError(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(GatewayError):
    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status_code = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class NotFoundError(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class PayloadTooLargeError(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class RateLimitError(GatewayError):
    status_code = 429
    error_type = "rate_limit_exceeded"
    default_code = "rate_limit_exceeded"


class ServerError(GatewayError):
    status_code = 500
    error_type = "server_error"


class ServiceUnavailableError(GatewayError):
    status_code = 503
    error_type = "server_error"
    default_code = "service_unavailable"


class UpstreamError(GatewayError):
    status_code = 502
    error_type = "api_error"
    default_code = "upstream_error"


class UpstreamTimeoutError(GatewayError):
    status_code = 504
    error_type = "api_error"
    default_code = "upstream_timeout"


def model_not_found(model: str, undiscovered: int = 0) -> GatewayError:
    if undiscovered:
        # not a plain 404: the model may well exist behind an app Dify did not describe yet
        return UpstreamError(
            f"The model `{model}` is not among the apps discovered so far, and {undiscovered} configured Dify "
            "app(s) could not be reached to learn their names; retry shortly.",
            code="model_discovery_failed",
            param="model",
        )
    return NotFoundError(
        f"The model `{model}` does not exist. GET /v1/models lists the Dify apps this gateway serves.",
        code="model_not_found",
        param="model",
    )
