"""Clients that send a window of the chat, not all of it (`ui-requests.md`): NextChat's last 4 messages with its
reasoning quoted back and a memory recap, Cherry Studio's last 5 starting at a user message, LibreChat's history
trimmed from the front. Each chat keeps one Dify conversation, and only the new user text goes upstream."""

import uuid
from typing import Any

import openai
import pytest

from tests.clients import nextchat_render
from tests.dify_double import DifyDouble
from tests.e2e.conftest import scoped

TURNS = 6


def _queries(dify: DifyDouble, user: str) -> list[tuple[str, str | None]]:
    return [
        (r.body["query"], r.body.get("conversation_id"))
        for r in dify.requests
        if r.path == "/v1/chat-messages" and isinstance(r.body, dict) and r.body.get("user") == scoped(user)
    ]


def _nextchat_turn(client: openai.OpenAI, messages: list[Any], user: str) -> tuple[str, str]:
    raw = client.chat.completions.with_raw_response.create(
        model="realdify-advanced-chat", messages=messages, user=user, stream=True, temperature=0.5
    )
    deltas: list[tuple[bool, str]] = []
    chunks: Any = raw.parse()
    for chunk in chunks:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        reasoning = getattr(delta, "reasoning_content", None)
        if reasoning:
            deltas.append((True, reasoning))
        if delta.content:
            deltas.append((False, delta.content))
    return nextchat_render(deltas), raw.headers["x-dify-conversation-id"]


def test_nextchat_keeps_one_conversation_with_its_4_message_window_quoted_reasoning_and_recap(
    client: openai.OpenAI, dify: DifyDouble
) -> None:
    user = f"nextchat-{uuid.uuid4()}"
    chat: list[dict[str, Any]] = []  # everything NextChat shows
    conversations = []
    for turn in range(1, TURNS + 1):
        chat.append({"role": "user", "content": f"[think] question {turn} of {user}"})
        window = chat[-4:]
        if turn >= 4:  # once its memory summary exists, NextChat sends it first, rewritten as the chat grows
            window = [
                {"role": "system", "content": f"This is a summary of the chat history as a recap: {turn} turns"},
                *window,
            ]
        answer, conversation = _nextchat_turn(client, window, user)
        assert answer.startswith("> pondering about it\n\nEcho: ")  # the reasoning, quoted into the answer
        chat.append({"role": "assistant", "content": answer})
        conversations.append(conversation)
    assert len(set(conversations)) == 1
    queries = _queries(dify, user)
    assert [query for query, _ in queries] == [f"[think] question {turn} of {user}" for turn in range(1, TURNS + 1)]
    assert all(sent == conversations[0] for _, sent in queries[1:])


@pytest.mark.parametrize("model", ["realdify-chat", "realdify-agent"])
def test_cherry_studio_keeps_one_conversation_with_its_5_message_window(
    client: openai.OpenAI, dify: DifyDouble, model: str
) -> None:
    user = f"cherry-{uuid.uuid4()}"
    system = {"role": "system", "content": "You are a helpful assistant."}
    chat: list[dict[str, Any]] = []
    conversations = []
    for turn in range(1, TURNS + 1):
        chat.append({"role": "user", "content": f"message {turn} from {user}"})
        window = chat[-5:]
        while window[0]["role"] != "user":  # Cherry's window starts at a user message
            window = window[1:]
        raw = client.chat.completions.with_raw_response.create(
            model=model,
            messages=[system, *window],  # type: ignore[list-item]
            user=user,
            stream_options=None,
        )
        conversations.append(raw.headers["x-dify-conversation-id"])
        chat.append({"role": "assistant", "content": raw.parse().choices[0].message.content})
    assert len(set(conversations)) == 1
    assert [query for query, _ in _queries(dify, user)][1:] == [
        f"message {turn} from {user}" for turn in range(2, TURNS + 1)
    ]


def test_librechat_history_trimmed_from_the_front_keeps_its_conversation(
    client: openai.OpenAI, dify: DifyDouble
) -> None:
    user = f"librechat-{uuid.uuid4()}"
    chat: list[dict[str, Any]] = []
    conversations = []
    for turn in range(1, 10):
        chat.append({"role": "user", "content": f"step {turn} for {user}"})
        window = chat if turn < 7 else chat[-9:]  # the context window fills up: the oldest messages go
        raw = client.chat.completions.with_raw_response.create(
            model="realdify-chat",
            messages=window,  # type: ignore[arg-type]
            user=user,
        )
        conversations.append(raw.headers["x-dify-conversation-id"])
        chat.append({"role": "assistant", "content": raw.parse().choices[0].message.content})
    assert len(set(conversations)) == 1
    assert [query for query, _ in _queries(dify, user)][-1] == f"step 9 for {user}"


def test_two_chats_whose_windows_coincide_continue_neither(client: openai.OpenAI, dify: DifyDouble) -> None:
    """Same user, no chat id, two chats that reach the same last exchange: the shared window continues neither
    (its history is folded into a new conversation), and neither chat's conversation is taken over."""
    user = f"twins-{uuid.uuid4()}"
    conversations = []
    for opening in ("first chat", "second chat"):
        messages: list[dict[str, Any]] = [{"role": "user", "content": f"{opening} {user}"}]
        first = client.chat.completions.create(model="realdify-chat", messages=messages, user=user)  # type: ignore[arg-type]
        messages += [
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": "same question"},
        ]
        raw = client.chat.completions.with_raw_response.create(
            model="realdify-chat",
            messages=messages,  # type: ignore[arg-type]
            user=user,
        )
        conversations.append(raw.headers["x-dify-conversation-id"])
    # both chats now end with ("same question", "Echo: same question"); a window of just that exchange:
    window = [
        {"role": "user", "content": "same question"},
        {"role": "assistant", "content": "Echo: same question"},
        {"role": "user", "content": "which chat?"},
    ]
    raw = client.chat.completions.with_raw_response.create(
        model="realdify-chat",
        messages=window,  # type: ignore[arg-type]
        user=user,
    )
    assert raw.headers["x-dify-conversation-id"] not in conversations
    query, sent_to = _queries(dify, user)[-1]
    assert sent_to is None and query.startswith("User: same question")
