"""A chat UI's housekeeping (Open WebUI's recorded task prompts) never continues, names or disturbs a conversation;
with TASK_MODEL it never reaches the chat's app."""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import own_client, scoped

RECORDING = Path(__file__).resolve().parents[1] / "fixtures" / "clients" / "open-webui-0.12.4.jsonl"


def _recorded_task(kind: str) -> str:
    for line in RECORDING.read_text().splitlines():
        body = json.loads(line).get("json")
        if isinstance(body, dict) and body["messages"][-1]["content"].startswith(f"### Task:\n{kind}"):
            return str(body["messages"][-1]["content"])
    raise AssertionError(kind)


def _chat_bodies(dify: DifyDouble, user: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (r.key, r.body)
        for r in dify.requests
        if r.path == "/v1/chat-messages" and isinstance(r.body, dict) and r.body.get("user") == scoped(user)
    ]


@pytest.fixture
def task_client(dify: DifyDouble) -> Iterator[openai.OpenAI]:
    with own_client(dify, task_model="persona-chat") as sdk:
        yield sdk


def _chat_with_tasks(sdk: openai.OpenAI, user: str) -> tuple[str, str]:
    messages: list[Any] = [{"role": "user", "content": "Tell me about tides"}]
    first = sdk.chat.completions.with_raw_response.create(model="realdify-chat", messages=messages, user=user)
    answer = first.parse().choices[0].message.content
    for kind in ("Generate a concise title", "Generate 1-3 broad tags", "Predict 3-5 useful messages"):
        task = [{"role": "user", "content": _recorded_task(kind)}]
        sdk.chat.completions.create(model="realdify-chat", messages=task, user=user)  # type: ignore[arg-type]
    messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "And the moon?"}]
    second = sdk.chat.completions.with_raw_response.create(model="realdify-chat", messages=messages, user=user)
    return first.headers["x-dify-conversation-id"], second.headers["x-dify-conversation-id"]


def test_housekeeping_neither_continues_nor_names_nor_disturbs_the_conversation(
    client: openai.OpenAI, dify: DifyDouble
) -> None:
    user = f"tasks-{uuid.uuid4()}"
    first, second = _chat_with_tasks(client, user)
    assert first == second  # the chat went on in its conversation
    bodies = [body for _, body in _chat_bodies(dify, user)]
    tasks = bodies[1:4]
    assert all("conversation_id" not in body for body in tasks)
    assert all(body["auto_generate_name"] is False for body in tasks)
    assert bodies[4]["conversation_id"] == first
    assert bodies[4]["query"] == "And the moon?"


def test_with_a_task_model_housekeeping_never_reaches_the_chats_app(
    task_client: openai.OpenAI, dify: DifyDouble
) -> None:
    user = f"tasks-{uuid.uuid4()}"
    first, second = _chat_with_tasks(task_client, user)
    assert first == second
    keys = [key for key, _ in _chat_bodies(dify, user)]
    assert keys == ["app-e2e-chat", "app-e2e-persona", "app-e2e-persona", "app-e2e-persona", "app-e2e-chat"]


def test_housekeeping_under_a_model_name_not_listed_goes_to_the_task_app(
    task_client: openai.OpenAI, dify: DifyDouble
) -> None:
    user = f"tasks-{uuid.uuid4()}"
    title = "Please generate a four to five word title summarizing our conversation without any lead-in."
    task_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": title}], user=user)
    assert [key for key, _ in _chat_bodies(dify, user)] == ["app-e2e-persona"]
