"""Open WebUI 0.12.4's recorded requests (tests/fixtures/clients), replayed verbatim through the gateway in front of
the Dify double: chats stay in one Dify conversation, tasks continue none, twin chats never cross."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import CLIENT_KEY, own_gateway

RECORDING = Path(__file__).resolve().parents[1] / "fixtures" / "clients" / "open-webui-0.12.4.jsonl"
MODELS = {"Echo Chat": "realdify-chat", "Flow Master": "realdify-advanced-chat", "Agent Smith": "realdify-agent"}


def _steps() -> dict[str, list[dict[str, Any]]]:
    steps: dict[str, list[dict[str, Any]]] = {}
    step = ""
    for line in RECORDING.read_text().splitlines():
        record = json.loads(line)
        if "step" in record:
            step = record["step"]
        elif record["json"]["model"] in MODELS:
            steps.setdefault(step, []).append(record)
    return steps


@pytest.fixture
def gateway(dify: DifyDouble) -> Iterator[httpx.Client]:
    """A gateway of its own: its conversation store holds only the replay's turns."""
    with own_gateway(dify) as url, httpx.Client(base_url=url, timeout=20) as client:
        yield client


def _replay(
    gateway: httpx.Client, dify: DifyDouble, records: list[dict[str, Any]]
) -> list[tuple[bool, dict[str, Any]]]:
    """Send each recorded request as Open WebUI did; (was it a task, what the gateway sent Dify) per request."""
    out = []
    for record in records:
        body = {**record["json"], "model": MODELS[record["json"]["model"]]}
        headers = {k: v for k, v in record["headers"].items() if k.lower().startswith("x-openwebui")}
        before = len(dify.requests)
        response = gateway.post(
            "/v1/chat/completions", json=body, headers={**headers, "Authorization": f"Bearer {CLIENT_KEY}"}
        )
        assert response.status_code == 200, response.text
        [sent] = [r.body for r in dify.requests[before:] if r.path == "/v1/chat-messages"]
        last = body["messages"][-1]["content"]
        out.append((isinstance(last, str) and last.startswith("### Task:"), sent))
    return out


@pytest.mark.parametrize("step", ["step2", "step5 flow"])
def test_a_recorded_chat_stays_in_one_conversation_and_its_tasks_in_none(
    gateway: httpx.Client, dify: DifyDouble, step: str
) -> None:
    records = [r for name, rs in _steps().items() if name.startswith(step) for r in rs]
    sent = _replay(gateway, dify, records)
    turns = [body for task, body in sent if not task]
    tasks = [body for task, body in sent if task]
    assert len(turns) >= 2 and tasks
    first = turns[0]
    assert "conversation_id" not in first
    conversations = {body.get("conversation_id") for body in turns[1:]}
    assert len(conversations) == 1 and None not in conversations  # every later turn continued the first's
    assert all(len(body["query"]) < 200 for body in turns[1:])  # only the new message: Dify keeps the history
    for body in tasks:
        assert "conversation_id" not in body
        assert body["auto_generate_name"] is False


def test_recorded_twin_chats_never_cross(gateway: httpx.Client, dify: DifyDouble) -> None:
    records = _steps()["step8 twin chats"]
    sent = [body for task, body in _replay(gateway, dify, records) if not task]
    open_a, open_b, second_a, second_b = sent[:4]
    assert "conversation_id" not in open_a and "conversation_id" not in open_b
    # without chat ids the two histories are alike: neither continues (either could be the other chat's); each
    # starts a new conversation with its history folded in
    for second in (second_a, second_b):
        assert "conversation_id" not in second
        assert second["query"].startswith("User: Good morning\n\nAssistant: Echo: Good morning")


def test_recorded_forwarded_chat_ids_keep_the_chat_in_its_conversation(gateway: httpx.Client, dify: DifyDouble) -> None:
    records = _steps()["step8 forward headers"]
    sent = [body for task, body in _replay(gateway, dify, records) if not task]
    first, second = sent[:2]
    assert "conversation_id" not in first
    assert second["conversation_id"]
    assert second["query"] == "#first with forwarded headers"
