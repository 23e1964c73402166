"""Second turns replayed from the recordings: what goes upstream when a conversation continues."""

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock

from app.services.pipeline import client_id_for, dify_user
from tests.service.replay import (
    CLIENT_HEADERS,
    CLIENT_KEY,
    MODEL_IDS,
    add_trace,
    chat_requests,
    mode_of,
    parse_sse,
    streamed_content,
)
from tests.traces import load

pytestmark = pytest.mark.anyio

# (first turn, second turn) as recorded against one Dify conversation
TURNS = [
    ("chat-blocking", "chat-blocking-turn2"),
    ("chat-streaming", "chat-streaming-turn2"),
    ("advanced-chat-blocking", "advanced-chat-blocking-turn2"),
    ("advanced-chat-streaming", "advanced-chat-streaming-turn2"),
    ("agent-chat-streaming", "agent-chat-streaming-turn2"),
    ("agent-chat-streaming-toolcall", "agent-chat-streaming-toolcall-turn2"),
]


async def _answer(client: AsyncTestClient[Litestar], body: dict[str, Any]) -> tuple[str, str]:
    response = await client.post("/v1/chat/completions", headers=CLIENT_HEADERS, json=body)
    assert response.status_code == 200, response.text
    conversation = response.headers["x-dify-conversation-id"]
    if body.get("stream"):
        return streamed_content(parse_sse(response.text)), conversation
    return response.json()["choices"][0]["message"]["content"], conversation


@pytest.mark.parametrize(("first", "second"), TURNS, ids=[second for _, second in TURNS])
async def test_the_second_turn_sends_only_the_new_message_to_the_same_conversation(
    client: AsyncTestClient[Litestar], dify: HTTPXMock, first: str, second: str
) -> None:
    mode = mode_of(first)
    recorded_first, recorded_second = load(first).request_json(), load(second).request_json()
    stream = recorded_first["response_mode"] == "streaming"
    add_trace(dify, first)
    add_trace(dify, second)
    messages: list[dict[str, Any]] = [{"role": "user", "content": recorded_first["query"]}]
    request = {"model": MODEL_IDS[mode], "user": recorded_first["user"], "stream": stream, "messages": messages}

    answer, conversation = await _answer(client, request)
    messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": recorded_second["query"]}]
    _, second_conversation = await _answer(client, request)

    assert conversation == second_conversation == recorded_second["conversation_id"]
    sent_first, sent_second = chat_requests(dify, mode)
    assert "conversation_id" not in sent_first
    for field in ("query", "conversation_id", "response_mode", "inputs"):
        assert sent_second[field] == recorded_second[field], field
    # the recorded `user`, scoped to the client key
    assert sent_second["user"] == sent_first["user"] == dify_user(recorded_second["user"], client_id_for(CLIENT_KEY))
