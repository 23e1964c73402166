"""Dify error bodies (recorded and synthetic) -> gateway errors, per dify-service-api.md §12."""

from pathlib import Path

import pytest

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
from app.services.dify.errors import error_from_dify, parse_error_body
from tests.traces import TRACES, load

# every recorded error response (non-200 `*-err-*` trace): (class, HTTP status, OpenAI type, code, param)
RECORDED: dict[str, tuple[type[GatewayError], int, str, str, str | None]] = {
    "chat-err-bad-key": (AuthenticationError, 401, "invalid_request_error", "invalid_api_key", None),
    "chat-err-no-auth": (AuthenticationError, 401, "invalid_request_error", "invalid_api_key", None),
    "advanced-chat-err-bad-key": (AuthenticationError, 401, "invalid_request_error", "invalid_api_key", None),
    "advanced-chat-err-no-auth": (AuthenticationError, 401, "invalid_request_error", "invalid_api_key", None),
    "completion-err-bad-key": (AuthenticationError, 401, "invalid_request_error", "invalid_api_key", None),
    "workflow-err-bad-key": (AuthenticationError, 401, "invalid_request_error", "invalid_api_key", None),
    "chat-err-unknown-conversation": (NotFoundError, 404, "invalid_request_error", "conversation_not_found", None),
    "chat-err-unknown-conversation-streaming": (
        NotFoundError,
        404,
        "invalid_request_error",
        "conversation_not_found",
        None,
    ),
    "advanced-chat-err-unknown-conversation": (
        NotFoundError,
        404,
        "invalid_request_error",
        "conversation_not_found",
        None,
    ),
    "advanced-chat-err-unknown-conversation-streaming": (
        NotFoundError,
        404,
        "invalid_request_error",
        "conversation_not_found",
        None,
    ),
    "agent-chat-err-unknown-conversation": (
        NotFoundError,
        404,
        "invalid_request_error",
        "conversation_not_found",
        None,
    ),
    "chat-err-upstream-blocking": (UpstreamError, 502, "api_error", "completion_request_error", None),
    "completion-err-upstream-blocking": (UpstreamError, 502, "api_error", "completion_request_error", None),
    "advanced-chat-err-upstream-blocking": (UpstreamError, 502, "api_error", "invalid_param", None),
    "chat-err-missing-user": (InvalidRequestError, 400, "invalid_request_error", "invalid_param", None),
    "advanced-chat-err-missing-user": (InvalidRequestError, 400, "invalid_request_error", "invalid_param", None),
    "chat-err-invalid-json": (InvalidRequestError, 400, "invalid_request_error", "bad_request", None),
    "advanced-chat-err-invalid-json": (InvalidRequestError, 400, "invalid_request_error", "bad_request", None),
    "chat-err-missing-query": (InvalidRequestError, 400, "invalid_request_error", "invalid_param", "query"),
    "advanced-chat-err-missing-query": (InvalidRequestError, 400, "invalid_request_error", "invalid_param", "query"),
    "chat-err-bad-conversation-id": (
        InvalidRequestError,
        400,
        "invalid_request_error",
        "invalid_param",
        "conversation_id",
    ),
    "advanced-chat-err-bad-conversation-id": (
        InvalidRequestError,
        400,
        "invalid_request_error",
        "invalid_param",
        "conversation_id",
    ),
    "chat-err-bad-upload-file-id": (InvalidRequestError, 400, "invalid_request_error", "invalid_param", None),
    "advanced-chat-err-bad-upload-file-id": (InvalidRequestError, 400, "invalid_request_error", "invalid_param", None),
    "agent-chat-err-blocking": (InvalidRequestError, 400, "invalid_request_error", "invalid_param", None),
    "chat-err-completion-endpoint": (InvalidRequestError, 400, "invalid_request_error", "app_unavailable", None),
    "advanced-chat-err-completion-endpoint": (
        InvalidRequestError,
        400,
        "invalid_request_error",
        "app_unavailable",
        None,
    ),
    "chat-err-workflow-endpoint": (InvalidRequestError, 400, "invalid_request_error", "not_workflow_app", None),
    "advanced-chat-err-workflow-endpoint": (
        InvalidRequestError,
        400,
        "invalid_request_error",
        "not_workflow_app",
        None,
    ),
    "completion-err-chat-endpoint": (InvalidRequestError, 400, "invalid_request_error", "not_chat_app", None),
    "completion-err-messages-list": (InvalidRequestError, 400, "invalid_request_error", "not_chat_app", None),
    "completion-err-missing-input": (InvalidRequestError, 400, "invalid_request_error", "invalid_param", None),
    "completion-err-missing-inputs-field": (
        InvalidRequestError,
        400,
        "invalid_request_error",
        "invalid_param",
        "inputs",
    ),
    "workflow-err-chat-endpoint": (InvalidRequestError, 400, "invalid_request_error", "not_chat_app", None),
    "workflow-err-input-too-long": (InvalidRequestError, 400, "invalid_request_error", "invalid_param", None),
    "workflow-err-missing-input": (InvalidRequestError, 400, "invalid_request_error", "invalid_param", None),
    "workflow-err-missing-input-streaming": (InvalidRequestError, 400, "invalid_request_error", "invalid_param", None),
    "workflow-err-missing-inputs-field": (
        InvalidRequestError,
        400,
        "invalid_request_error",
        "invalid_param",
        "inputs",
    ),
}


def recorded_error_traces() -> list[str]:
    names = sorted(p.name.removesuffix(".txt") for p in Path(TRACES).glob("*-err-*.txt"))
    return [n for n in names if not n.endswith(".request") and load(n).status != 200]


def from_trace(name: str) -> GatewayError:
    trace = load(name)
    return error_from_dify(trace.status, parse_error_body(trace.body))


def test_every_recorded_error_trace_is_covered() -> None:
    names = recorded_error_traces()
    assert len(names) >= 30
    assert set(names) == set(RECORDED)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_error_mapping(name: str) -> None:
    cls, status, error_type, code, param = RECORDED[name]
    error = from_trace(name)
    assert type(error) is cls
    assert error.status_code == status
    assert error.error_type == error_type
    assert error.code == code
    assert error.param == param
    assert load(name).json()["message"] in error.message


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_error_body_parses(name: str) -> None:
    trace = load(name)
    body = parse_error_body(trace.body)
    raw = trace.json()
    assert body.code == raw["code"]
    assert body.message == raw["message"]
    assert body.status == raw.get("status")
    assert body.params == raw.get("params")


def test_bad_key_is_authentication_error() -> None:
    error = from_trace("chat-err-bad-key")
    assert isinstance(error, AuthenticationError)
    assert error.status_code == 401
    assert "Access token is invalid" in error.message


def test_unknown_conversation_is_not_found() -> None:
    error = from_trace("chat-err-unknown-conversation")
    assert isinstance(error, NotFoundError)
    assert error.status_code == 404
    assert error.code == "conversation_not_found"


def test_run_failed_is_upstream() -> None:
    error = from_trace("advanced-chat-err-upstream-blocking")
    assert isinstance(error, UpstreamError)
    assert error.status_code == 502
    assert "Run failed:" in error.message


def test_other_404_is_plain_not_found() -> None:
    error = error_from_dify(404, ErrorBody(code="not_found", message="Message Not Exists.", status=404))
    assert isinstance(error, NotFoundError)
    assert error.code == "not_found"


# --- synthetic ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["too_many_requests", "rate_limit_error"])
def test_429_is_rate_limit(code: str) -> None:
    body = parse_error_body(
        b'{"code": "' + code.encode() + b'", "message": "Too many requests. Please try again later.", "status": 429}'
    )
    error = error_from_dify(429, body)
    assert isinstance(error, RateLimitError)
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.error_type == "rate_limit_exceeded"
    assert "Too many requests" in error.message


def test_403_is_permission_denied() -> None:
    body = parse_error_body(b'{"code": "forbidden", "message": "You do not have permission.", "status": 403}')
    error = error_from_dify(403, body)
    assert isinstance(error, PermissionDeniedError)
    assert error.status_code == 403
    assert error.error_type == "permission_error"
    assert "You do not have permission." in error.message


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_server_error(status: int) -> None:
    body = parse_error_body(
        b'{"code": "internal_server_error", "message": "Internal Server Error, please contact support.", "status": 500}'
    )
    error = error_from_dify(status, body)
    assert isinstance(error, ServerError)
    assert error.status_code == 500
    assert error.error_type == "server_error"
    assert "Internal Server Error" in error.message


@pytest.mark.parametrize(
    ("status", "code"), [(413, "file_too_large"), (413, "audio_too_large"), (415, "unsupported_file_type")]
)
def test_413_and_415_are_invalid_requests(status: int, code: str) -> None:
    body = parse_error_body(b'{"code": "' + code.encode() + b'", "message": "File size exceeded.", "status": 413}')
    error = error_from_dify(status, body)
    assert isinstance(error, InvalidRequestError)
    assert error.status_code == 400
    assert error.error_type == "invalid_request_error"


@pytest.mark.parametrize("code", ["provider_not_initialize", "provider_quota_exceeded", "model_currently_not_support"])
def test_model_provider_400s_are_upstream(code: str) -> None:
    error = error_from_dify(400, ErrorBody(code=code, message="the provider failed", status=400))
    assert isinstance(error, UpstreamError)
    assert error.status_code == 502
    assert error.code == code


def test_non_json_body_is_still_an_error_with_the_text() -> None:
    html = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
    body = parse_error_body(html)
    assert body.code == "unknown"
    assert body.message == html.decode().strip()
    error = error_from_dify(502, body)
    assert isinstance(error, ServerError)
    assert "502 Bad Gateway" in error.message


def test_non_json_body_on_4xx_keeps_the_text() -> None:
    error = error_from_dify(400, parse_error_body(b"plain text failure"))
    assert isinstance(error, InvalidRequestError)
    assert error.status_code == 400
    assert "plain text failure" in error.message


@pytest.mark.parametrize("raw", [b'"just a string"', b"[1, 2]", b"null", b'{"code": 5}'])
def test_json_that_is_not_an_error_envelope_falls_back_to_text(raw: bytes) -> None:
    body = parse_error_body(raw)
    assert body.code == "unknown"
    assert body.message == raw.decode()


def test_long_non_json_body_is_truncated() -> None:
    body = parse_error_body(b"x" * 5000)
    assert body.message == "x" * 499 + "…"


def test_invalid_utf8_body_does_not_raise() -> None:
    body = parse_error_body(b"\xff\xfe broken")
    assert "broken" in body.message


def test_empty_body_falls_back_to_the_code() -> None:
    body = parse_error_body(b"")
    error = error_from_dify(500, body)
    assert isinstance(error, ServerError)
    assert error.message == "Dify: unknown"


def test_unexpected_status_is_upstream() -> None:
    error = error_from_dify(302, ErrorBody(code="found", message="moved"))
    assert isinstance(error, UpstreamError)
    assert error.status_code == 502
    assert "302" in error.message
