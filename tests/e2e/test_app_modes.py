"""Every Dify app mode through `POST /v1/chat/completions`, with the official SDK, streaming and not."""

import uuid
from typing import Any

import openai
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import scoped

STATELESS = ["realdify-workflow", "realdify-completion"]
AGENTS = ["realdify-new-agent", "agent-1.16"]


def _sent(dify: DifyDouble, user: str, path: str) -> list[dict[str, Any]]:
    return [
        r.body
        for r in dify.requests
        if r.path == path and isinstance(r.body, dict) and r.body.get("user") == scoped(user)
    ]


def _ask(
    client: openai.OpenAI, model: str, messages: list[dict[str, Any]], user: str, *, stream: bool, **extra: Any
) -> tuple[str, Any]:
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=messages,  # type: ignore[arg-type]
        user=user,
        stream=stream,
        **extra,
    )
    parsed = raw.parse()
    if stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in parsed if chunk.choices)  # type: ignore[union-attr]
    else:
        text = parsed.choices[0].message.content or ""  # type: ignore[union-attr]
    return text, raw.headers


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
@pytest.mark.parametrize("model", STATELESS)
def test_workflow_and_text_generator_apps_answer_with_the_text_in_their_query_variable(
    client: openai.OpenAI, dify: DifyDouble, model: str, stream: bool
) -> None:
    user = f"modes-{uuid.uuid4()}"
    text, headers = _ask(client, model, [{"role": "user", "content": "Hello there"}], user, stream=stream)
    assert text == "Echo: Hello there"
    assert "x-dify-conversation-id" not in headers  # no Dify conversation behind these apps
    path = "/v1/workflows/run" if model == "realdify-workflow" else "/v1/completion-messages"
    [sent] = _sent(dify, user, path)
    assert sent["inputs"] == {"query": "Hello there"}
    assert sent["response_mode"] == ("streaming" if stream else "blocking")
    assert "query" not in sent and "conversation_id" not in sent


@pytest.mark.parametrize("model", STATELESS)
def test_a_second_turn_to_a_stateless_app_folds_the_history_into_the_query_variable(
    client: openai.OpenAI, dify: DifyDouble, model: str
) -> None:
    user = f"modes-{uuid.uuid4()}"
    messages: list[dict[str, Any]] = [{"role": "user", "content": "first"}]
    answer, _ = _ask(client, model, messages, user, stream=False)
    messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "second"}]
    _ask(client, model, messages, user, stream=True)
    path = "/v1/workflows/run" if model == "realdify-workflow" else "/v1/completion-messages"
    _, second = _sent(dify, user, path)
    assert second["inputs"]["query"] == "User: first\n\nAssistant: Echo: first\n\nUser: second"


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
@pytest.mark.parametrize("model", STATELESS)
def test_a_failed_run_is_an_error_not_an_empty_answer(client: openai.OpenAI, model: str, stream: bool) -> None:
    with pytest.raises(openai.APIStatusError) as raised:
        _ask(client, model, [{"role": "user", "content": "[fail] please"}], f"modes-{uuid.uuid4()}", stream=stream)
    assert raised.value.status_code == 502
    assert raised.value.code in ("workflow_failed", "completion_request_error")


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
@pytest.mark.parametrize("model", AGENTS)
def test_the_new_agent_streams_and_answers_whole_without_repeating_itself(
    client: openai.OpenAI, dify: DifyDouble, model: str, stream: bool
) -> None:
    user = f"modes-{uuid.uuid4()}"
    text, headers = _ask(client, model, [{"role": "user", "content": "Hello agent"}], user, stream=stream)
    assert text == "Echo: Hello agent"
    assert headers["x-dify-conversation-id"]
    [sent] = _sent(dify, user, "/v1/chat-messages")
    assert sent["response_mode"] == "streaming"  # Dify refuses blocking for agents: streamed and collected


def test_the_new_agent_continues_its_conversation(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"modes-{uuid.uuid4()}"
    messages: list[dict[str, Any]] = [{"role": "user", "content": "one"}]
    answer, first = _ask(client, "realdify-new-agent", messages, user, stream=False)
    messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "two"}]
    _, second = _ask(client, "realdify-new-agent", messages, user, stream=True)
    assert first["x-dify-conversation-id"] == second["x-dify-conversation-id"]
    assert _sent(dify, user, "/v1/chat-messages")[1]["query"] == "two"


def test_inputs_pass_through_to_dify(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"modes-{uuid.uuid4()}"
    _ask(
        client,
        "topic-flow",
        [{"role": "user", "content": "hi"}],
        user,
        stream=False,
        extra_body={"inputs": {"topic": "tides", "extra": 3}},
    )
    [sent] = _sent(dify, user, "/v1/chat-messages")
    assert sent["inputs"] == {"topic": "tides", "extra": 3}


def test_a_required_input_missing_is_a_400_before_dify_is_called(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"modes-{uuid.uuid4()}"
    with pytest.raises(openai.BadRequestError) as raised:
        _ask(client, "topic-flow", [{"role": "user", "content": "hi"}], user, stream=True)
    assert raised.value.code == "missing_input"
    assert raised.value.param == "inputs.topic"
    assert "topic" in raised.value.message
    assert _sent(dify, user, "/v1/chat-messages") == []
