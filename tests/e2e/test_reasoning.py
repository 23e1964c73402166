"""Reasoning with the official SDK: `reasoning_content` in streams and messages, and conversations that keep going
whether the client sends the think block back or not."""

import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import own_client, scoped


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
def test_a_think_block_is_reasoning_content_never_content(client: openai.OpenAI, stream: bool) -> None:
    raw = client.chat.completions.create(
        model="realdify-advanced-chat", messages=[{"role": "user", "content": "[think] hello"}], stream=stream
    )
    if stream:
        deltas = [chunk.choices[0].delta for chunk in raw if chunk.choices]  # type: ignore[union-attr]
        reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
        content = "".join(d.content or "" for d in deltas)
    else:
        message = raw.choices[0].message  # type: ignore[union-attr]
        reasoning, content = getattr(message, "reasoning_content", ""), message.content or ""
    assert reasoning == "pondering about it"
    assert content == "Echo: [think] hello"


@pytest.mark.parametrize("keep_think", [True, False], ids=["think-kept", "think-dropped"])
def test_a_reasoning_chat_stays_in_one_conversation(client: openai.OpenAI, dify: DifyDouble, keep_think: bool) -> None:
    user = f"think-{uuid.uuid4()}"
    messages: list[Any] = []
    conversations = set()
    for turn in ("[think] one", "[think] two", "[think] three"):
        messages.append({"role": "user", "content": turn})
        raw = client.chat.completions.with_raw_response.create(
            model="realdify-advanced-chat", messages=messages, user=user
        )
        conversations.add(raw.headers["x-dify-conversation-id"])
        message = raw.parse().choices[0].message
        reasoning = getattr(message, "reasoning_content", "")
        content = f"<think>{reasoning}</think>{message.content}" if keep_think else message.content
        messages.append({"role": "assistant", "content": content})
    assert len(conversations) == 1
    sent = [r.body for r in dify.requests if isinstance(r.body, dict) and r.body.get("user") == scoped(user)]
    assert [b["query"] for b in sent] == ["[think] one", "[think] two", "[think] three"]


@pytest.fixture
def progress_client(dify: DifyDouble) -> Iterator[openai.OpenAI]:
    with own_client(dify, workflow_progress="reasoning") as sdk:
        yield sdk


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
def test_workflow_progress_shows_a_chatflows_nodes_as_reasoning(progress_client: openai.OpenAI, stream: bool) -> None:
    raw: Any = progress_client.chat.completions.create(
        model="realdify-advanced-chat", messages=[{"role": "user", "content": "hello"}], stream=stream
    )
    if stream:
        deltas = [chunk.choices[0].delta for chunk in raw if chunk.choices]
        reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
        content = "".join(d.content or "" for d in deltas)
        assert reasoning == "Running LLM...\n"
    else:  # Dify's blocking chatflow answer reports no nodes: nothing to show
        assert getattr(raw.choices[0].message, "reasoning_content", None) is None
        content = raw.choices[0].message.content
    assert content == "Echo: hello"
