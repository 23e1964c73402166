"""`response_format` JSON answers from apps that write text: LobeHub's titles (`json_schema` `topic_title`), Open
WebUI's `{ "tags": ... }`, LangChain's `with_structured_output()`.

A Dify app never sees the request's `response_format`; what it writes is text. So the gateway tells the app what is
wanted (when the prompt does not already ask for JSON) and makes the whole answer the JSON it holds: the answer
itself, a fenced block, or the object between its first `{` and last `}`. A schema with a single string field (a
title) takes a plain-text answer as that field; a single list-of-strings field (tags, follow-ups) takes its lines.
An answer that gives no JSON is a 502 rather than text the client would fail to parse."""

import re
from typing import Any

import msgspec

from app.errors import InvalidRequestError, UpstreamError
from app.schemas.openai import ChatMessage
from app.services.inputs.prompt import message_text
from app.services.reasoning import without_reasoning

_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n\s*```", re.DOTALL | re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*")
_MAX_SCHEMA = 4000  # characters of schema put into the app's query


class JsonFormat(msgspec.Struct, frozen=True, kw_only=True):
    schema: dict[str, Any] | None  # json_schema's `schema`; None for json_object
    asked: bool  # the messages already ask for JSON (the UIs' own prompts do): nothing is added to the query


def json_format(response_format: Any, messages: list[ChatMessage]) -> JsonFormat | None:
    """The JSON the client asks for, or None for text. A malformed `response_format` is a 400."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    # the prompt asks for JSON (the UIs' own task prompts do); earlier answers that merely mention it do not count
    asked = any("json" in message_text(message).lower() for message in messages if message.role != "assistant")
    if kind == "json_object":
        return JsonFormat(schema=None, asked=asked)
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InvalidRequestError(
                "response_format.json_schema must be an object with a `name`",
                param="response_format",
                code="invalid_value",
            )
        schema = spec.get("schema")
        return JsonFormat(schema=schema if isinstance(schema, dict) else {}, asked=asked)
    raise InvalidRequestError(
        "response_format.type must be one of text, json_object, json_schema",
        param="response_format",
        code="invalid_value",
    )


def instruction(fmt: JsonFormat, query: str) -> str:
    """The query, told what to answer with unless the messages already ask for JSON."""
    if fmt.asked:
        return query
    if not fmt.schema:
        return f"{query}\n\nAnswer with a single JSON object and nothing else."
    schema = msgspec.json.encode(fmt.schema).decode()[:_MAX_SCHEMA]
    return f"{query}\n\nAnswer with a single JSON object that matches this JSON Schema, and nothing else:\n{schema}"


def _decoded(text: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return msgspec.UNSET


def _found(text: str) -> Any:
    """The JSON value an answer holds, if any."""
    stripped = text.strip()
    candidates = [stripped, *(match.group(1) for match in _FENCE.finditer(text))]
    for opening, closing in ("{}", "[]"):
        start, end = stripped.find(opening), stripped.rfind(closing)
        if 0 <= start < end:
            candidates.append(stripped[start : end + 1])
    for candidate in candidates:
        value = _decoded(candidate)
        if isinstance(value, dict | list):
            return value
    return msgspec.UNSET


def _single_field(schema: dict[str, Any]) -> tuple[str, str] | None:
    """(name, "string" | "list") of a schema that is an object with one string or list-of-strings property."""
    properties = schema.get("properties")
    if schema.get("type", "object") != "object" or not isinstance(properties, dict) or len(properties) != 1:
        return None
    [(name, field)] = properties.items()
    if not isinstance(field, dict):
        return None
    if field.get("type") == "string":
        return name, "string"
    items = field.get("items")
    if field.get("type") == "array" and isinstance(items, dict) and items.get("type") == "string":
        return name, "list"
    return None


def as_json(text: str, fmt: JsonFormat) -> str:
    """The answer as the JSON the client asked for."""
    text = without_reasoning(text)  # (REASONING_MODE=inline leaves think blocks in the text)
    value = _found(text)
    if isinstance(value, dict) or (isinstance(value, list) and fmt.schema and fmt.schema.get("type") == "array"):
        return msgspec.json.encode(value).decode()
    field = _single_field(fmt.schema) if fmt.schema else None
    plain = text.strip()
    if field is not None and plain:
        name, kind = field
        if kind == "string":
            quoted = len(plain) > 1 and plain[0] == plain[-1] and plain[0] in "\"'"
            return msgspec.json.encode({name: plain[1:-1] if quoted else plain}).decode()
        lines = [_BULLET.sub("", line).strip() for line in plain.splitlines()]
        return msgspec.json.encode({name: [line for line in lines if line]}).decode()
    raise UpstreamError(
        "The app's answer holds no JSON object, and response_format asks for one.", code="upstream_not_json"
    )
