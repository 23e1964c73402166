"""What every OpenAI streaming surface writes the same way: errors in-band, keep-alives, the end marker."""

from typing import Final

import msgspec

from app.errors import GatewayError
from app.schemas.openai import ErrorDetail, ErrorResponse

DONE: Final = b"data: [DONE]\n\n"
PING_COMMENT: Final = b": ping\n\n"

_encode = msgspec.json.Encoder().encode


def error_event(error: GatewayError) -> bytes:
    detail = ErrorDetail(message=error.message, type=error.error_type, param=error.param, code=error.code)
    return b"data: " + _encode(ErrorResponse(error=detail)) + b"\n\n"
