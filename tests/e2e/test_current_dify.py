"""What differs on current Dify, end to end, against the double of each generation (the `dify` fixture)."""

import uuid
from typing import Any

import openai
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import scoped

FLOW = "realdify-advanced-chat"


def _sent(dify: DifyDouble, user: str) -> list[dict[str, Any]]:
    return [
        r.body
        for r in dify.requests
        if r.path == "/v1/chat-messages" and isinstance(r.body, dict) and r.body.get("user") == scoped(user)
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
def test_a_conversation_deleted_in_dify_between_turns_still_answers_with_the_whole_history(
    client: openai.OpenAI, dify: DifyDouble, stream: bool
) -> None:
    user = f"current-{uuid.uuid4()}"
    messages: list[Any] = [{"role": "user", "content": "My name is Ada."}]
    first = client.chat.completions.with_raw_response.create(model=FLOW, messages=messages, user=user)
    conversation = first.headers["x-dify-conversation-id"]
    answer = first.parse().choices[0].message.content
    del dify.conversations[conversation]  # deleted on the Dify side (0.15.3 then answers 404; 1.15 starts anew)
    messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "What is my name?"}]
    second = client.chat.completions.with_raw_response.create(model=FLOW, messages=messages, user=user, stream=stream)
    parsed = second.parse()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)  # type: ignore[union-attr]
    else:
        text = parsed.choices[0].message.content or ""  # type: ignore[union-attr]
    assert text
    assert second.headers["x-dify-conversation-id"] != conversation
    last = _sent(dify, user)[-1]
    assert "conversation_id" not in last  # a new conversation, with the history folded in
    assert last["query"].startswith("User: My name is Ada.\n\nAssistant: ")


def test_a_new_streaming_chatflow_conversation_carries_its_header(client: openai.OpenAI) -> None:
    stream = client.chat.completions.with_raw_response.create(
        model=FLOW, messages=[{"role": "user", "content": "hello"}], stream=True, user=f"current-{uuid.uuid4()}"
    )
    assert stream.headers["x-dify-conversation-id"]
    assert "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices) == "Echo: hello"


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
def test_a_missing_chatflow_input_is_a_bad_request(client: openai.OpenAI, dify: DifyDouble, stream: bool) -> None:
    # the gateway's own check is bypassed with an empty value the form does not see as missing: Dify refuses it
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="topic-flow",
            messages=[{"role": "user", "content": "hi"}],
            stream=stream,
            extra_body={"inputs": {"topic": " "}},
        )
    assert "topic" in raised.value.message


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
def test_a_run_paused_for_a_human_is_visible_as_such(client: openai.OpenAI, stream: bool) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=FLOW, messages=[{"role": "user", "content": "[pause] approve it"}], stream=stream
    )
    parsed = raw.parse()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)  # type: ignore[union-attr]
    else:
        text = parsed.choices[0].message.content or ""  # type: ignore[union-attr]
    assert text.startswith("[The app is waiting for input")


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
def test_the_concurrency_limit_is_a_rate_limit_error(client: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="realdify-chat", messages=[{"role": "user", "content": "[busy] now"}], stream=stream
        )
