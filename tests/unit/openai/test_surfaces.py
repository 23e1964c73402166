"""The other surfaces' pure translation: Responses input items and text formats, legacy completion requests, and the
kept-responses log's scoping."""

from typing import Any

import msgspec
import pytest

from app.errors import InvalidRequestError, NotFoundError, ServiceUnavailableError
from app.schemas.openai import CompletionRequest
from app.schemas.openai.responses import ResponseRequest
from app.services.conversations import MemoryStore, ResponseLog
from app.services.openai.completions import completion_turn
from app.services.openai.responses import input_messages, responses_turn
from tests.unit.messages import FailingStore


def _request(**fields: Any) -> ResponseRequest:
    return msgspec.convert({"model": "m", **fields}, ResponseRequest)


def test_input_items_become_chat_messages() -> None:
    messages = input_messages(
        _request(
            instructions="Be brief.",
            input=[
                {"role": "user", "content": "hi"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]},
                {"type": "function_call", "call_id": "c1", "name": "clock", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "noon"},
                {"type": "reasoning", "id": "rs", "summary": []},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "and this?"},
                        {"type": "input_image", "image_url": "https://x.example/a.png"},
                        {"type": "input_file", "filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBE"},
                    ],
                },
            ],
        )
    )
    assert [m.role for m in messages] == ["system", "user", "assistant", "assistant", "tool", "user"]
    assert messages[2].content is not None and messages[2].content[0].text == "hello"  # type: ignore[union-attr]
    assert messages[3].tool_calls == [
        {"id": "c1", "type": "function", "function": {"name": "clock", "arguments": "{}"}}
    ]
    assert messages[4].content == "noon" and messages[4].tool_call_id == "c1"
    last = messages[5].content
    assert isinstance(last, list)
    assert last[1].image_url is not None and last[1].image_url.url == "https://x.example/a.png"
    assert last[2].file is not None and last[2].file.filename == "r.pdf"


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ({"role": "robot", "content": "x"}, "input[0]"),
        ({"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}, "input[0].content[0]"),
        ({"role": "user", "content": [{"type": "input_file", "file_url": "https://x/r.pdf"}]}, "input[0].content[0]"),
        ({"role": "user", "content": [{"type": "input_video"}]}, "input[0].content[0]"),
        ({"type": "item_reference", "id": "msg_1"}, "input[0]"),
    ],
)
def test_input_items_that_cannot_be_served_are_a_400_naming_them(item: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        input_messages(_request(input=[item]))
    assert caught.value.param == param


def test_text_format_is_the_chat_shape_of_response_format() -> None:
    schema = {"type": "json_schema", "name": "t", "schema": {"type": "object"}, "strict": True}
    turn = responses_turn(_request(input="x", text={"format": schema}))
    assert turn.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "t", "schema": {"type": "object"}, "strict": True},
    }
    assert responses_turn(_request(input="x", text={"format": {"type": "text"}})).response_format is None
    assert responses_turn(_request(input="x", text={"format": {"type": "json_object"}})).response_format == {
        "type": "json_object"
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": "x", "n": 3}, "n"),
        ({"prompt": "x", "suffix": "y"}, "suffix"),
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [[1, 2]]}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({}, "prompt"),
    ],
)
def test_completion_requests_that_would_mislead_are_a_400(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        completion_turn(msgspec.convert({"model": "m", **fields}, CompletionRequest))
    assert caught.value.param == param


def test_a_completion_turn_is_the_prompt_alone_in_a_new_run() -> None:
    turn = completion_turn(msgspec.convert({"model": "m", "prompt": ["only"], "n": 1}, CompletionRequest))
    assert [m.content for m in turn.messages] == ["only"] and turn.mode == "last"


@pytest.mark.anyio
async def test_a_kept_response_is_found_only_by_its_owner_user_and_model() -> None:
    log = ResponseLog(MemoryStore(ttl=60, max_entries=100))
    await log.keep("resp_1", b'{"id":"resp_1"}', client_id="k1", user="alice", model="m", conversation_id="c1")
    assert await log.continued("resp_1", "k1", "alice", "m") == "c1"
    assert await log.get("resp_1", "k1") == b'{"id":"resp_1"}'
    for client, user, model in (("k2", "alice", "m"), ("k1", "bob", "m"), ("k1", "alice", "other")):
        with pytest.raises(NotFoundError) as caught:
            await log.continued("resp_1", client, user, model)
        assert caught.value.code == "previous_response_not_found"
    with pytest.raises(NotFoundError):
        await log.get("resp_1", "k2")
    with pytest.raises(NotFoundError):
        await log.delete("resp_1", "k2")
    await log.delete("resp_1", "k1")
    with pytest.raises(NotFoundError):
        await log.continued("resp_1", "k1", "alice", "m")


@pytest.mark.anyio
async def test_a_response_too_large_to_keep_still_continues() -> None:
    log = ResponseLog(MemoryStore(ttl=60, max_entries=100))
    await log.keep("resp_2", b"x" * (2 * 1024 * 1024), client_id="k", user=None, model="m", conversation_id="c")
    assert await log.continued("resp_2", "k", None, "m") == "c"
    with pytest.raises(NotFoundError):
        await log.get("resp_2", "k")


@pytest.mark.anyio
async def test_a_store_that_is_down_never_fails_the_answer_but_cannot_continue() -> None:
    log = ResponseLog(FailingStore())
    await log.keep("resp_3", b"{}", client_id="k", user=None, model="m", conversation_id="c")  # logged, not raised
    with pytest.raises(ServiceUnavailableError):
        await log.continued("resp_3", "k", None, "m")
