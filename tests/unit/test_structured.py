"""response_format JSON from apps that write text: what is asked of the app, and what the client gets."""

import json
from typing import Any

import pytest

from app.errors import InvalidRequestError, UpstreamError
from app.schemas.openai import ChatMessage
from app.services.structured import JsonFormat, as_json, instruction, json_format

TITLE = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
TAGS = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}}
PLAIN = [ChatMessage(role="user", content="Name this chat")]


def _schema(schema: dict[str, Any]) -> JsonFormat:
    fmt = json_format({"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}, PLAIN)
    assert fmt is not None
    return fmt


def test_text_and_no_format_ask_for_nothing() -> None:
    assert json_format(None, PLAIN) is None
    assert json_format({"type": "text"}, PLAIN) is None


@pytest.mark.parametrize(
    "bad",
    [{"type": "xml"}, "json", {"type": "json_schema"}, {"type": "json_schema", "json_schema": {"schema": {}}}],
)
def test_a_malformed_response_format_is_a_400(bad: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        json_format(bad, PLAIN)
    assert caught.value.param == "response_format"


def test_the_app_is_told_the_schema_unless_the_messages_already_ask_for_json() -> None:
    told = instruction(_schema(TITLE), "Name this chat")
    assert told.startswith("Name this chat\n\nAnswer with a single JSON object that matches this JSON Schema")
    assert json.loads(told.rsplit("\n", 1)[1]) == TITLE
    obj = json_format({"type": "json_object"}, PLAIN)
    assert obj is not None and instruction(obj, "q") == "q\n\nAnswer with a single JSON object and nothing else."
    asking = [ChatMessage(role="system", content='Return one JSON object with a single "title" string'), *PLAIN]
    fmt = json_format({"type": "json_object"}, asking)
    assert fmt is not None and instruction(fmt, "q") == "q"


@pytest.mark.parametrize(
    "answer",
    [
        '{"title": "Tides"}',
        '  {"title": "Tides"}\n',
        'Sure:\n```json\n{"title": "Tides"}\n```',
        'Here is the JSON you asked for: {"title": "Tides"} Hope it helps.',
        '<<{"title": "Tides"}>>',
    ],
)
def test_the_json_an_answer_holds_is_the_whole_answer(answer: str) -> None:
    assert json.loads(as_json(answer, _schema(TITLE))) == {"title": "Tides"}
    obj = json_format({"type": "json_object"}, PLAIN)
    assert obj is not None and json.loads(as_json(answer, obj)) == {"title": "Tides"}


def test_a_plain_title_fills_a_single_string_field() -> None:
    assert json.loads(as_json('  "Tides and the Moon"\n', _schema(TITLE))) == {"title": "Tides and the Moon"}


def test_lines_fill_a_single_list_of_strings_field() -> None:
    answer = "- science\n2. astronomy\n\n* oceans"
    assert json.loads(as_json(answer, _schema(TAGS))) == {"tags": ["science", "astronomy", "oceans"]}


def test_an_array_answer_is_kept_when_the_schema_is_an_array() -> None:
    assert json.loads(as_json('["a", "b"]', _schema({"type": "array", "items": {"type": "string"}}))) == ["a", "b"]


@pytest.mark.parametrize(
    ("answer", "schema"),
    [
        ("no json here", None),
        ("no json here", {"type": "object", "properties": {"a": {"type": "integer"}}}),
        ("no json", {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}),
        ("", TITLE),
        ("{broken: json}", None),
        ('["a list"]', None),
    ],
)
def test_an_answer_with_no_json_is_a_502(answer: str, schema: dict[str, Any] | None) -> None:
    fmt = json_format({"type": "json_object"}, PLAIN) if schema is None else _schema(schema)
    assert fmt is not None
    with pytest.raises(UpstreamError) as caught:
        as_json(answer, fmt)
    assert caught.value.code == "upstream_not_json"


def test_only_the_prompt_asking_for_json_counts_not_an_earlier_answer() -> None:
    messages = [
        ChatMessage(role="user", content="What is JSON?"),
        ChatMessage(role="assistant", content="JSON is a format."),
        ChatMessage(role="user", content="Name this chat"),
    ]
    fmt = json_format({"type": "json_object"}, messages[1:])
    assert fmt is not None and not fmt.asked
    fmt = json_format({"type": "json_object"}, messages)
    assert fmt is not None and fmt.asked  # the user asked about JSON: the prompt mentions it


def test_quotes_around_a_plain_title_go_but_inner_ones_stay() -> None:
    assert json.loads(as_json('"Tides"', _schema(TITLE))) == {"title": "Tides"}
    assert json.loads(as_json('Title: "Foo"', _schema(TITLE))) == {"title": 'Title: "Foo"'}


def test_inline_reasoning_with_braces_does_not_hide_the_json() -> None:
    answer = '<think>maybe {"x": 1}? no</think>{"title": "Tides"}'
    assert json.loads(as_json(answer, _schema(TITLE))) == {"title": "Tides"}
