"""What current Dify (1.12 to 1.16) really sends, replayed from the Dify 1.15.0 recordings."""

import json
import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock

from app.schemas.dify import ErrorBody
from app.services.dify.errors import error_from_dify
from tests.service.modes import ask, modes_client, reply, sent_bodies, streamed
from tests.service.replay import CLIENT_HEADERS, DIFY_BASE, stop_requests
from tests.traces import load

pytestmark = pytest.mark.anyio

UNKNOWN = "00000000-0000-4000-8000-000000000000"
THINK = re.compile(r"<think>.*?</think>\n*", re.S)
FLOW = "advanced-chat"


async def _explicit(client: AsyncTestClient[Litestar], conversation: str, *, stream: bool) -> Any:
    models = (await client.get("/v1/models", headers=CLIENT_HEADERS)).json()["data"]
    body = {"model": models[0]["id"], "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    headers = {**CLIENT_HEADERS, "X-Dify-Conversation-Id": conversation}
    return await client.post("/v1/chat/completions", headers=headers, json=body)


@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "blocking"])
async def test_an_explicit_conversation_dify_silently_replaced_is_a_404(dify: HTTPXMock, stream: bool) -> None:
    """Dify 1.15 answers an unknown chatflow conversation id by starting a new conversation, without error."""
    name = "advanced-chat-err-unknown-conversation" + ("-streaming" if stream else "")
    trace = load(f"dify-1.15/{name}")
    reply(dify, trace, FLOW)
    task_id = trace.events()[0]["task_id"] if stream else trace.json()["task_id"]
    stop_url = f"{DIFY_BASE}/chat-messages/{task_id}/stop"
    dify.add_response(method="POST", url=stop_url, json={"result": "success"}, is_optional=True)
    async with modes_client(dify, "dify-1.15/", (FLOW,)) as client:
        response = await _explicit(client, UNKNOWN, stream=stream)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "conversation_not_found"
    if stream:  # the answer without the history was never shown, and its run was stopped
        assert len(stop_requests(dify)) == 1


async def test_a_remembered_conversation_dify_replaced_is_answered_again_with_the_history(dify: HTTPXMock) -> None:
    first = load("dify-1.15/advanced-chat-streaming")
    reply(dify, first, FLOW)
    replaced = load("dify-1.15/advanced-chat-err-unknown-conversation-streaming")
    reply(dify, replaced, FLOW)
    reply(dify, load("dify-1.15/advanced-chat-streaming"), FLOW)  # the retry: a new conversation, history folded in
    dify.add_response(
        method="POST",
        url=f"{DIFY_BASE}/chat-messages/{replaced.events()[0]['task_id']}/stop",
        json={"result": "success"},
    )
    async with modes_client(dify, "dify-1.15/", (FLOW,)) as client:
        models = (await client.get("/v1/models", headers=CLIENT_HEADERS)).json()["data"]
        messages = [{"role": "user", "content": "Hello from the streaming trace"}]
        body = {"model": models[0]["id"], "stream": True, "messages": messages}
        one = await client.post("/v1/chat/completions", headers=CLIENT_HEADERS, json=body)
        answer, _ = streamed(one)
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "and again"}]
        two = await client.post("/v1/chat/completions", headers=CLIENT_HEADERS, json={**body, "messages": messages})
    assert one.headers["x-dify-conversation-id"] == first.events()[0]["conversation_id"]
    assert two.status_code == 200
    text, _ = streamed(two)
    assert text  # answered
    sent = sent_bodies(dify, FLOW)
    assert [b.get("conversation_id") for b in sent] == [None, first.events()[0]["conversation_id"], None]
    assert sent[2]["query"].startswith("User: Hello from the streaming trace\n\nAssistant: ")  # the history folded in
    assert sent[2]["query"].endswith("User: and again")


async def test_a_new_streaming_chatflow_conversation_always_carries_its_header(dify: HTTPXMock) -> None:
    trace = load("dify-1.15/advanced-chat-streaming")
    assert trace.body.startswith(b"event: ping")  # Dify 1.12+ opens the stream with a keep-alive
    reply(dify, trace, FLOW)
    async with modes_client(dify, "dify-1.15/", (FLOW,)) as client:
        response = await ask(client, FLOW, "Hello from the streaming trace", stream=True)
    assert response.headers["x-dify-conversation-id"] == trace.events()[0]["conversation_id"]


@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "blocking"])
async def test_a_chatflow_input_dify_refuses_is_a_400(dify: HTTPXMock, stream: bool) -> None:
    name = "advanced-chat-inputs-err-missing-input" + ("-streaming" if stream else "")
    reply(dify, load(f"dify-1.15/{name}"), FLOW)
    async with modes_client(dify, "dify-1.15/", (FLOW,)) as client:
        response = await ask(client, FLOW, "hello", stream=stream)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_param"
    assert "is required in input form" in response.json()["error"]["message"]


async def test_a_stopped_chatflow_without_its_tail_is_never_a_normal_stop(dify: HTTPXMock) -> None:
    """1.15: a stop is workflow_finished `failed` with "Aborted: User requested stop", and no message_end."""
    trace = load("dify-1.15/advanced-chat-streaming-stopped")
    reply(dify, trace, FLOW)
    async with modes_client(dify, "dify-1.15/", (FLOW,)) as client:
        response = await ask(client, FLOW, "Please stop me", stream=True)
    text, payloads = streamed(response)
    assert text
    assert payloads[-1]["error"]["code"] == "workflow_stopped"
    assert "[DONE]" not in response.text


@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "blocking"])
async def test_a_chatflow_paused_for_a_human_shows_its_form(dify: HTTPXMock, stream: bool) -> None:
    reply(dify, load(f"dify-1.15/advanced-chat-hitl-{'streaming' if stream else 'blocking'}"), FLOW)
    async with modes_client(dify, "dify-1.15/", (FLOW,)) as client:
        response = await ask(client, FLOW, "Please approve", stream=stream)
    assert response.status_code == 200, response.text
    text = streamed(response)[0] if stream else response.json()["choices"][0]["message"]["content"]
    assert text.startswith("[The app is waiting for input")
    assert "Please review the request" in text


@pytest.mark.parametrize(
    ("mode", "name", "stream"),
    [
        ("chat", "chat-err-model-failed-blocking", False),
        ("chat", "chat-err-model-failed-streaming", True),
        (FLOW, "advanced-chat-llm-err-model-failed-blocking", False),
        (FLOW, "advanced-chat-llm-err-model-failed-streaming", True),
        ("agent-chat", "agent-chat-err-model-failed-streaming", True),
    ],
)
async def test_a_model_failure_is_a_502_on_current_dify(dify: HTTPXMock, mode: str, name: str, stream: bool) -> None:
    reply(dify, load(f"dify-1.15/{name}"), mode)
    async with modes_client(dify, "dify-1.15/", (mode,)) as client:
        response = await ask(client, mode, "fail", stream=stream)
    assert response.status_code == 502, response.text
    assert response.json()["error"]["type"] == "api_error"


@pytest.mark.parametrize(
    "name",
    ["chat-streaming", "advanced-chat-streaming", "agent-chat-streaming", "chat-blocking", "advanced-chat-blocking"],
)
async def test_current_dify_answers_replay(dify: HTTPXMock, name: str) -> None:
    trace = load(f"dify-1.15/{name}")
    mode = name.rsplit("-", 1)[0]
    reply(dify, trace, mode)
    stream = name.endswith("streaming")
    async with modes_client(dify, "dify-1.15/", (mode,)) as client:
        response = await ask(client, mode, "Hello", stream=stream)
    assert response.status_code == 200, response.text
    if stream:
        text, _ = streamed(response)
        expected = "".join(e.get("answer", "") for e in trace.events() if e["event"] in ("message", "agent_message"))
        assert response.text.rstrip().endswith("[DONE]")
    else:
        text = response.json()["choices"][0]["message"]["content"]
        expected = trace.json()["answer"]
    assert text == expected != ""


def test_the_concurrency_limit_reported_as_invalid_param_is_a_429() -> None:
    message = "Too many requests. Please try again later. The current maximum concurrent requests allowed for x is 1."
    error = error_from_dify(400, ErrorBody(code="invalid_param", message=message, status=400))
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert json.dumps(error.message)


def _recorded_answers() -> list[str]:
    """Every successful 1.15 answer of the modes the gateway serves (moderation, files, pauses: their own tests)."""
    from tests.traces import TRACES  # noqa: PLC0415

    names = []
    for path in sorted((TRACES / "dify-1.15").glob("*.txt")):
        name = path.name.removesuffix(".txt")
        kind = name.split("-err-")[0]
        if name.endswith(".request") or "-err-" in name or not name.endswith(("streaming", "blocking", "think")):
            continue
        if any(word in name for word in ("moderation", "file", "hitl", "stopped", "inputs")):
            continue
        if load(f"dify-1.15/{name}").status == 200 and kind.split("-")[0] in (
            "chat",
            "advanced",
            "agent",
            "completion",
        ):
            names.append(name)
    return names


def _mode_of(name: str) -> str:
    for mode in ("advanced-chat", "agent-chat", "completion", "chat", "agent"):
        if name.startswith(mode + "-"):
            return mode
    raise ValueError(name)


def test_the_recorded_answers_are_found() -> None:
    assert len(_recorded_answers()) >= 15


@pytest.mark.parametrize("name", _recorded_answers())
async def test_every_recorded_current_answer_replays(dify: HTTPXMock, name: str) -> None:
    trace = load(f"dify-1.15/{name}")
    mode = _mode_of(name)
    stream = trace.headers["content-type"].startswith("text/event-stream")
    reply(dify, trace, mode)
    async with modes_client(dify, "dify-1.15/", (mode,)) as client:
        response = await ask(client, mode, "Hello", stream=stream)
    assert response.status_code == 200, response.text
    if stream:
        text, payloads = streamed(response)
        assert payloads[-1]["choices"][0]["finish_reason"] == "stop"
        assert response.text.rstrip().endswith("[DONE]")
        expected = "".join(e.get("answer") or "" for e in trace.events() if e["event"] in ("message", "agent_message"))
    else:
        text = response.json()["choices"][0]["message"]["content"]
        expected = trace.json()["answer"]
    expected = THINK.sub("", expected)  # reasoning is delivered apart (REASONING_MODE=separate)
    assert text == expected != ""  # what the app answered reached the client, whole and once


@pytest.mark.parametrize("name", ["chat-moderation-output-streaming", "advanced-chat-moderation-output-streaming"])
async def test_output_moderation_on_current_dify_shows_the_replacement(dify: HTTPXMock, name: str) -> None:
    trace = load(f"dify-1.15/{name}")
    replacement = next(e["answer"] for e in trace.events() if e["event"] == "message_replace")
    mode = _mode_of(name)
    reply(dify, trace, mode)
    async with modes_client(dify, "dify-1.15/", (mode,)) as client:
        response = await ask(client, mode, "Hello", stream=True)
    text, _ = streamed(response)
    assert text.endswith("[The app's moderation replaced this answer:]\n" + replacement)


@pytest.mark.parametrize("name", ["chat-moderation-output-blocking", "advanced-chat-moderation-input-blocking"])
async def test_moderation_on_current_dify_in_blocking_answers(dify: HTTPXMock, name: str) -> None:
    trace = load(f"dify-1.15/{name}")
    mode = _mode_of(name)
    reply(dify, trace, mode)
    async with modes_client(dify, "dify-1.15/", (mode,)) as client:
        response = await ask(client, mode, "Hello", stream=False)
    assert response.json()["choices"][0]["message"]["content"] == trace.json()["answer"]


@pytest.mark.parametrize(
    "name",
    [
        "advanced-chat-llm-tagged-streaming-think",
        "advanced-chat-llm-tagged-blocking-think",
        "advanced-chat-llm-separated-streaming-think",
        "advanced-chat-llm-separated-blocking-think",
    ],
)
async def test_reasoning_tagged_or_separated_is_reasoning_content(dify: HTTPXMock, name: str) -> None:
    trace = load(f"dify-1.15/{name}")
    stream = name.endswith("streaming-think")
    reply(dify, trace, FLOW)
    async with modes_client(dify, "dify-1.15/", (FLOW,)) as client:
        response = await ask(client, FLOW, "Please think before you answer", stream=stream)
    if stream:
        _, payloads = streamed(response)
        deltas = [p["choices"][0]["delta"] for p in payloads if p.get("choices")]
        reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
        content = "".join(d.get("content") or "" for d in deltas)
        assert not [d for d in deltas if d.get("reasoning_content") and d.get("content")]  # never both in one delta
    else:
        message = response.json()["choices"][0]["message"]
        reasoning, content = message["reasoning_content"], message["content"]
    assert reasoning == "pondering"
    assert content == "Echo: Please think before you answer"
