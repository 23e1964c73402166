"""What every OpenAI streaming surface writes the same way: errors in-band, keep-alives, the end marker."""

from typing import Final

import msgspec

from app.errors import GatewayError
from app.schemas.openai import ErrorDetail, ErrorResponse
from app.services.answer import FileOut, Replaced, file_text

DONE: Final = b"data: [DONE]\n\n"
REPLACED_NOTICE: Final = "\n\n[The app's moderation replaced this answer:]\n"
PING_COMMENT: Final = b": ping\n\n"

_encode = msgspec.json.Encoder().encode


def shown_text(event: FileOut | Replaced) -> str:
    """What a file or a moderation's replacement shows among an answer's text, on every surface."""
    return file_text(event) if isinstance(event, FileOut) else REPLACED_NOTICE + event.text


def error_event(error: GatewayError) -> bytes:
    detail = ErrorDetail(message=error.message, type=error.error_type, param=error.param, code=error.code)
    return b"data: " + _encode(ErrorResponse(error=detail)) + b"\n\n"


class InBandErrors:
    """How the chat and completions streams end on a failure: an in-band error event, and no `[DONE]`."""

    __slots__ = ()

    def fail(self, error: GatewayError) -> bytes:
        return error_event(error)
