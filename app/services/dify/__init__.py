"""Dify's side: the Service API client, its errors, and its event stream."""

from app.services.dify.client import ANSWER_LIMIT, BLOCKING_ANSWER, ERROR_BODY_LIMIT, DifyClient, HttpAnswer, read_body
from app.services.dify.errors import MESSAGE_LIMIT, clip, error_from_dify, parse_error_body
from app.services.dify.stream import decode_event, dify_event_batches

__all__ = [
    "ANSWER_LIMIT",
    "BLOCKING_ANSWER",
    "ERROR_BODY_LIMIT",
    "MESSAGE_LIMIT",
    "DifyClient",
    "HttpAnswer",
    "clip",
    "decode_event",
    "dify_event_batches",
    "error_from_dify",
    "parse_error_body",
    "read_body",
]
