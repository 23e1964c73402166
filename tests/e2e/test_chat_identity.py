"""Two chats that begin alike are never cross-wired; a client that forwards its chat and user ids keeps each chat
in its own conversation (Open WebUI's `X-OpenWebUI-Chat-Id`, `X-OpenWebUI-User-Id`)."""

import uuid
from typing import Any

import openai

from tests.dify_double import DifyDouble
from tests.e2e.conftest import scoped


def _turn(
    client: openai.OpenAI, messages: list[Any], user: str | None, headers: dict[str, str] | None = None
) -> tuple[str, str]:
    raw = client.chat.completions.with_raw_response.create(
        model="realdify-chat",
        messages=messages,
        extra_headers=headers,
        extra_body={"user": user} if user else None,
    )
    return raw.parse().choices[0].message.content or "", raw.headers["x-dify-conversation-id"]


def test_two_chats_that_begin_alike_are_never_cross_wired(client: openai.OpenAI) -> None:
    user = f"alike-{uuid.uuid4()}"
    opening = [{"role": "user", "content": "Hello there"}]
    answer_a, chat_a = _turn(client, opening, user)
    _, chat_b = _turn(client, opening, user)  # a second chat, the same first message
    assert chat_a != chat_b
    _, next_a = _turn(
        client, [*opening, {"role": "assistant", "content": answer_a}, {"role": "user", "content": "A?"}], user
    )
    assert next_a != chat_b  # never into the other chat's conversation (the history is ambiguous: a new one)


def test_forwarded_chat_ids_keep_each_chat_in_its_own_conversation(client: openai.OpenAI, dify: DifyDouble) -> None:
    person = f"owui-{uuid.uuid4()}"
    opening = [{"role": "user", "content": "Hello there"}]
    chats = {}
    for chat in ("chat-a", "chat-b"):
        headers = {"X-OpenWebUI-User-Id": person, "X-OpenWebUI-Chat-Id": chat}
        answer, conversation = _turn(client, opening, None, headers)
        chats[chat] = (answer, conversation, headers)
    for chat, (answer, conversation, headers) in chats.items():
        history = [*opening, {"role": "assistant", "content": answer}, {"role": "user", "content": f"More, {chat}"}]
        _, again = _turn(client, history, None, headers)
        assert again == conversation  # each chat continued its own conversation
    users = {
        r.body["user"]
        for r in dify.requests
        if isinstance(r.body, dict) and r.body.get("query", "").startswith("More, chat-")
    }
    assert users == {scoped(person)}  # the forwarded user is the Dify user, scoped to the key
