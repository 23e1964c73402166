"""Legacy `/v1/completions` through the official SDK: every app type, streaming and not, `echo`, usage, and the
fields refused because ignoring them would mislead."""

import uuid
from typing import Any

import openai
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import scoped

APPS = ["realdify-completion", "realdify-chat", "realdify-advanced-chat", "realdify-workflow", "realdify-agent"]


def _runs(dify: DifyDouble, user: str) -> list[dict[str, Any]]:
    return [r.body for r in dify.requests if isinstance(r.body, dict) and r.body.get("user") == scoped(user)]


@pytest.mark.parametrize("model", APPS)
def test_a_prompt_is_completed_by_every_app_type(client: openai.OpenAI, dify: DifyDouble, model: str) -> None:
    user = f"cmpl-{uuid.uuid4()}"
    completion = client.completions.create(model=model, prompt="Say hi", user=user)
    assert completion.object == "text_completion"
    assert completion.model == model
    [choice] = completion.choices
    assert choice.text == "Echo: Say hi" and choice.finish_reason == "stop" and choice.index == 0
    assert choice.logprobs is None
    assert completion.usage is not None and completion.usage.total_tokens >= 0
    assert completion.id.startswith("cmpl-")


@pytest.mark.parametrize("model", APPS)
def test_a_streamed_completion_ends_with_its_finish_reason_usage_and_done(client: openai.OpenAI, model: str) -> None:
    stream = client.completions.create(
        model=model, prompt="Stream please", stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(texts) == "Echo: Stream please"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.object == "text_completion" for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # the usage chunk, last


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
def test_echo_puts_the_prompt_first(client: openai.OpenAI, stream: bool) -> None:
    raw: Any = client.completions.create(model="realdify-completion", prompt="Once upon", echo=True, stream=stream)
    text = "".join(c.choices[0].text for c in raw if c.choices) if stream else raw.choices[0].text
    assert text == "Once uponEcho: Once upon"


def test_completions_never_continue_a_conversation(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"cmpl-{uuid.uuid4()}"
    for _ in range(2):
        client.completions.create(model="realdify-chat", prompt="same prompt", user=user)
    first, second = _runs(dify, user)
    assert "conversation_id" not in first and "conversation_id" not in second
    assert first["query"] == second["query"] == "same prompt"  # the prompt alone: nothing folded in


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": "x", "n": 2}, "n"),
        ({"prompt": "x", "suffix": "end"}, "suffix"),
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": ""}, "prompt"),
    ],
)
def test_what_cannot_be_honoured_without_misleading_is_a_bad_request(
    client: openai.OpenAI, dify: DifyDouble, fields: dict[str, Any], param: str
) -> None:
    before = len(dify.requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="realdify-completion", **fields)
    assert caught.value.param == param
    assert not [r for r in dify.requests[before:] if r.method == "POST"]


def test_fields_it_cannot_honour_but_may_ignore_are_accepted(client: openai.OpenAI) -> None:
    completion = client.completions.create(
        model="realdify-completion",
        prompt=["one prompt in a list"],
        max_tokens=5,
        temperature=0.1,
        logprobs=2,
        best_of=1,
        stop=["\n"],
        seed=1,
    )
    assert completion.choices[0].text == "Echo: one prompt in a list"
    assert completion.choices[0].logprobs is None
