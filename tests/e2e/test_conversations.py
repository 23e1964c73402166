"""Conversations that continue: one Dify conversation per OpenAI-style chat, found again by content."""

import uuid
from typing import Any

import openai
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import scoped

CONVERSATION_HEADER = "x-dify-conversation-id"


def _sent(dify: DifyDouble, user: str) -> list[dict[str, Any]]:
    """The chat-messages bodies the gateway sent for this user, in order."""
    return [
        r.body
        for r in dify.requests
        if r.path == "/v1/chat-messages" and isinstance(r.body, dict) and r.body.get("user") == scoped(user)
    ]


def _turn(
    client: openai.OpenAI,
    messages: list[dict[str, Any]],
    user: str,
    *,
    stream: bool = False,
    model: str = "realdify-chat",
) -> tuple[str, str]:
    """One chat turn through the SDK; returns (answer, X-Dify-Conversation-Id)."""
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=messages,  # type: ignore[arg-type]
        user=user,
        stream=stream,
    )
    conversation = raw.headers[CONVERSATION_HEADER]
    parsed = raw.parse()
    if stream:
        answer = "".join(chunk.choices[0].delta.content or "" for chunk in parsed if chunk.choices)  # type: ignore[union-attr]
    else:
        answer = parsed.choices[0].message.content or ""  # type: ignore[union-attr]
    return answer, conversation


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
@pytest.mark.parametrize("model", ["realdify-chat", "realdify-agent", "realdify-advanced-chat"])
def test_a_multi_turn_chat_continues_one_dify_conversation(
    client: openai.OpenAI, dify: DifyDouble, stream: bool, model: str
) -> None:
    user = f"conv-{uuid.uuid4()}"
    messages: list[dict[str, Any]] = [{"role": "user", "content": "My name is Ada."}]
    answer, first = _turn(client, messages, user, stream=stream, model=model)
    for text in ("What is my name?", "Thanks!"):
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": text}]
        answer, conversation = _turn(client, messages, user, stream=stream, model=model)
        assert conversation == first
        assert answer == f"Echo: {text}"
    sent = _sent(dify, user)
    assert "conversation_id" not in sent[0]
    assert [body.get("conversation_id") for body in sent[1:]] == [first, first]
    # only the new user turn goes upstream: Dify keeps the history itself
    assert [body["query"] for body in sent] == ["My name is Ada.", "What is my name?", "Thanks!"]


def test_an_edited_history_starts_a_new_conversation(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"conv-{uuid.uuid4()}"
    answer, first = _turn(client, [{"role": "user", "content": "hello"}], user)
    edited = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": answer + " (edited by the user)"},
        {"role": "user", "content": "and now?"},
    ]
    _, second = _turn(client, edited, user)
    assert second != first
    last = _sent(dify, user)[-1]
    assert "conversation_id" not in last
    assert last["query"].startswith("User: hello\n\nAssistant: ") and last["query"].endswith("User: and now?")


def test_a_regenerated_answer_never_reuses_the_conversation(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"conv-{uuid.uuid4()}"
    answer, first = _turn(client, [{"role": "user", "content": "one"}], user)
    second_turn = [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "two"},
    ]
    _, conversation = _turn(client, second_turn, user)
    assert conversation == first
    # "regenerate": the same request again; Dify's memory of `first` already holds the answer being replaced
    _, regenerated = _turn(client, second_turn, user)
    assert regenerated != first
    assert "conversation_id" not in _sent(dify, user)[-1]


def test_two_users_with_identical_histories_never_share_a_conversation(client: openai.OpenAI) -> None:
    conversations = {}
    for user in (f"alice-{uuid.uuid4()}", f"bob-{uuid.uuid4()}"):
        answer, first = _turn(client, [{"role": "user", "content": "same words"}], user)
        history = [
            {"role": "user", "content": "same words"},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "same follow-up"},
        ]
        _, second = _turn(client, history, user)
        assert second == first
        conversations[user] = first
    assert len(set(conversations.values())) == 2


def test_the_explicit_header_or_body_field_names_the_conversation(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"conv-{uuid.uuid4()}"
    _, conversation = _turn(client, [{"role": "user", "content": "start"}], user)
    client.chat.completions.create(
        model="realdify-chat",
        messages=[{"role": "user", "content": "by header"}],
        user=user,
        extra_headers={"X-Dify-Conversation-Id": conversation},
    )
    client.chat.completions.create(
        model="realdify-chat",
        messages=[{"role": "user", "content": "by body"}],
        user=user,
        extra_body={"conversation_id": conversation},
    )
    sent = _sent(dify, user)
    assert [(body.get("conversation_id"), body["query"]) for body in sent[1:]] == [
        (conversation, "by header"),
        (conversation, "by body"),
    ]


def test_an_unknown_explicit_conversation_is_a_clear_404(client: openai.OpenAI) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(
            model="realdify-chat",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"X-Dify-Conversation-Id": unknown},
        )
    assert raised.value.code == "conversation_not_found"
    assert unknown in raised.value.message


def test_another_client_keys_conversation_is_not_found_even_for_the_same_user(
    client: openai.OpenAI, gateway_url: str
) -> None:
    user = f"alice-{uuid.uuid4()}"
    _, conversation = _turn(client, [{"role": "user", "content": "my secret plan"}], user)
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="sk-other", max_retries=0, timeout=20) as other:
        for by_header in (True, False):
            with pytest.raises(openai.NotFoundError) as raised:
                other.chat.completions.create(
                    model="realdify-chat",
                    messages=[{"role": "user", "content": "what was the plan?"}],
                    user=user,
                    extra_headers={"X-Dify-Conversation-Id": conversation} if by_header else None,
                    extra_body=None if by_header else {"conversation_id": conversation},
                )
            assert raised.value.code == "conversation_not_found"


def test_the_system_prompt_goes_into_the_apps_input_variable(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"conv-{uuid.uuid4()}"
    messages = [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Ahoy"}]
    _turn(client, messages, user, model="persona-chat")
    _turn(client, messages, user, model="realdify-chat")  # an app without that variable: folded into the query
    with_variable, without = _sent(dify, user)
    assert with_variable["inputs"] == {"system_prompt": "You are a pirate."}
    assert with_variable["query"] == "Ahoy"
    assert without["inputs"] == {}
    assert without["query"] == "System: You are a pirate.\n\nUser: Ahoy"
