"""Workflow, text generator and New Agent apps, replayed from the recordings of both Dify generations."""

import pytest
from pytest_httpx import HTTPXMock

from tests.service.modes import GENERATIONS, ask, modes_client, reply, sent_bodies, streamed
from tests.traces import Trace, load

pytestmark = pytest.mark.anyio


def _text_chunks(trace: Trace) -> str:
    return "".join(e["data"]["text"] for e in trace.events() if e["event"] == "text_chunk")


# --- workflow -------------------------------------------------------------------------------------------


async def test_a_streamed_workflow_answers_with_its_text_chunks(dify: HTTPXMock, generation: str) -> None:
    prefix = GENERATIONS[generation]
    trace = load(f"{prefix}workflow-streaming")
    reply(dify, trace, "workflow")
    async with modes_client(dify, prefix, ("workflow",)) as client:
        response = await ask(client, "workflow", "Run the streaming workflow", stream=True)
    assert response.status_code == 200
    assert "x-dify-conversation-id" not in response.headers
    text, payloads = streamed(response)
    assert text == _text_chunks(trace) != ""
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop"
    assert response.text.rstrip().endswith("data: [DONE]")
    [sent] = sent_bodies(dify, "workflow")
    assert sent["inputs"] == {"query": "Run the streaming workflow"}
    assert sent["response_mode"] == "streaming"


async def test_a_blocking_workflow_answers_with_its_output(dify: HTTPXMock, generation: str) -> None:
    prefix = GENERATIONS[generation]
    trace = load(f"{prefix}workflow-blocking")
    reply(dify, trace, "workflow")
    async with modes_client(dify, prefix, ("workflow",)) as client:
        response = await ask(client, "workflow", "Run the blocking workflow", stream=False)
    assert response.status_code == 200, response.text
    outputs = trace.json()["data"]["outputs"]
    expected = outputs.get("answer") or outputs.get("result")  # 0.15.3: {answer, query}; 1.15: {result, files}
    assert response.json()["choices"][0]["message"]["content"] == expected
    assert response.json()["usage"]["total_tokens"] == trace.json()["data"]["total_tokens"]


@pytest.mark.parametrize(
    ("name", "stream"),
    [
        ("workflow-err-upstream-streaming", True),
        ("workflow-err-upstream-blocking", False),
        ("dify-1.15/workflow-err-node-failed-streaming", True),
        ("dify-1.15/workflow-err-node-failed-blocking", False),
    ],
)
async def test_a_failed_workflow_is_a_502_naming_the_failure(dify: HTTPXMock, name: str, stream: bool) -> None:
    trace = load(name)
    reply(dify, trace, "workflow")
    prefix = "dify-1.15/" if name.startswith("dify-1.15/") else ""
    async with modes_client(dify, prefix, ("workflow",)) as client:
        response = await ask(client, "workflow", "fail please", stream=stream)
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "workflow_failed"
    assert ("Error" in error["message"]) or ("refused" in error["message"])


@pytest.mark.parametrize("name", ["workflow-streaming-stopped", "dify-1.15/workflow-streaming-stopped"])
async def test_a_stopped_workflow_is_never_a_normal_stop(dify: HTTPXMock, name: str) -> None:
    trace = load(name)
    reply(dify, trace, "workflow")
    async with modes_client(dify, "dify-1.15/" if name.startswith("dify-1.15/") else "", ("workflow",)) as client:
        response = await ask(client, "workflow", "Please stop me", stream=True)
    assert response.status_code == 200  # text went out before the stop: the error is in-band
    text, payloads = streamed(response)
    assert text == _text_chunks(trace) != ""
    assert payloads[-1]["error"]["code"] == "workflow_stopped"
    assert "[DONE]" not in response.text


async def test_a_workflow_input_dify_refuses_in_its_stream_is_a_400(dify: HTTPXMock) -> None:
    """Dify 1.15 validates a workflow's inputs in its worker: HTTP 200, a ping, and a run that never ran a step."""
    reply(dify, load("dify-1.15/workflow-err-missing-input-streaming"), "workflow")
    async with modes_client(dify, "dify-1.15/", ("workflow",)) as client:
        response = await ask(client, "workflow", "hello", stream=True)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_param"
    assert "query is required in input form" in error["message"]


@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "blocking"])
async def test_a_workflow_paused_for_a_human_shows_its_form_never_an_empty_answer(
    dify: HTTPXMock, stream: bool
) -> None:
    reply(dify, load(f"dify-1.15/workflow-hitl-{'streaming' if stream else 'blocking'}"), "workflow")
    async with modes_client(dify, "dify-1.15/", ("workflow",)) as client:
        response = await ask(client, "workflow", "Please approve the refund", stream=stream)
    assert response.status_code == 200, response.text
    text = streamed(response)[0] if stream else response.json()["choices"][0]["message"]["content"]
    assert text.startswith("[The app is waiting for input")
    assert "Please review the request" in text
    assert "{{#" not in text  # the form's fields are shown by name


# --- completion (text generator) ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "blocking"])
async def test_a_text_generator_answers_with_the_text_in_its_query_variable(
    dify: HTTPXMock, generation: str, stream: bool
) -> None:
    prefix = GENERATIONS[generation]
    trace = load(f"{prefix}completion-{'streaming' if stream else 'blocking'}")
    reply(dify, trace, "completion")
    async with modes_client(dify, prefix, ("completion",)) as client:
        response = await ask(client, "completion", "Hello", stream=stream)
    assert response.status_code == 200, response.text
    if stream:
        text, _ = streamed(response)
        expected = "".join(e.get("answer", "") for e in trace.events() if e["event"] == "message")
    else:
        text = response.json()["choices"][0]["message"]["content"]
        expected = trace.json()["answer"]
    assert text == expected != ""
    assert "x-dify-conversation-id" not in response.headers
    [sent] = sent_bodies(dify, "completion")
    assert sent["inputs"] == {"query": "Hello"}
    assert "query" not in sent


@pytest.mark.parametrize(
    ("name", "stream", "status", "code"),
    [
        ("completion-err-upstream-streaming", True, 502, "completion_request_error"),
        ("completion-err-upstream-blocking", False, 502, "completion_request_error"),
        ("dify-1.15/completion-err-model-failed-streaming", True, 502, "invalid_param"),
        ("dify-1.15/completion-err-model-failed-blocking", False, 502, "invalid_param"),
        ("completion-err-missing-input", False, 400, "invalid_param"),
    ],
)
async def test_text_generator_failures(dify: HTTPXMock, name: str, stream: bool, status: int, code: str) -> None:
    reply(dify, load(name), "completion")
    async with modes_client(dify, "dify-1.15/" if name.startswith("dify-1.15/") else "", ("completion",)) as client:
        response = await ask(client, "completion", "Hello", stream=stream)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


# --- the New Agent (Dify 1.15) --------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "collected"])
async def test_the_new_agent_streams_and_is_collected_for_whole_answers(dify: HTTPXMock, stream: bool) -> None:
    trace = load("dify-1.15/agent-streaming")
    reply(dify, trace, "agent")
    async with modes_client(dify, "dify-1.15/", ("agent",)) as client:
        response = await ask(client, "agent", "Hello agent", stream=stream)
    assert response.status_code == 200, response.text
    expected = "".join(e["answer"] for e in trace.events() if e["event"] == "message")
    text = streamed(response)[0] if stream else response.json()["choices"][0]["message"]["content"]
    assert text == expected != ""
    assert response.headers["x-dify-conversation-id"] == trace.events()[0]["conversation_id"]
    [sent] = sent_bodies(dify, "agent")
    assert sent["response_mode"] == "streaming"  # Dify refuses blocking for the New Agent
    assert sent["query"] == "Hello agent"


async def test_a_failed_new_agent_run_is_a_server_error(dify: HTTPXMock) -> None:
    reply(dify, load("dify-1.15/agent-err-model-failed-streaming"), "agent")
    async with modes_client(dify, "dify-1.15/", ("agent",)) as client:
        response = await ask(client, "agent", "fail", stream=False)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_server_error"
