"""Each route is served with and without `/v1`; OpenAPI needs a distinct operation id for each path."""

from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.types import Method
from litestar.types.callable_types import OperationIDCreator
from litestar.types.internal_types import PathParameterDefinition

from app.schemas.openai import ErrorResponse


def operation_id(name: str) -> OperationIDCreator:
    def create(_: HTTPRouteHandler, __: Method, path: list[str | PathParameterDefinition]) -> str:
        return name if path and path[0] == "v1" else f"{name}WithoutV1"

    return create


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorResponse, description=description)


ERROR_RESPONSES: dict[int, ResponseSpec] = {
    400: _error("Invalid request: bad JSON, wrong schema, empty messages, unknown role, or rejected by Dify"),
    401: _error("Missing or wrong API key"),
    404: _error("Unknown model (`model_not_found`) or Dify conversation"),
    413: _error("Request body over MAX_REQUEST_BODY"),
    429: _error("Dify is rate limiting; back off and retry"),
    502: _error("Dify or the model behind the app failed, or Dify is unreachable"),
    504: _error("Dify did not answer within TIMEOUT"),
}
