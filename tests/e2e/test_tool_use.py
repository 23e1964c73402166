"""An agent's tool use, visible in each TOOL_USE setting, through the official SDK."""

from collections.abc import Iterator

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.dify_double import DifyDouble
from tests.e2e.conftest import own_client

# the agent calls a tool (the recorded trace)
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(params=["reasoning", "tool_calls", "off"])
def setting(request: pytest.FixtureRequest, dify: DifyDouble) -> Iterator[tuple[str, openai.OpenAI]]:
    with own_client(dify, tool_use=request.param) as sdk:
        yield request.param, sdk


def test_tool_use_in_a_stream(setting: tuple[str, openai.OpenAI]) -> None:
    mode, sdk = setting
    chunks = [c for c in sdk.chat.completions.create(model="realdify-agent", messages=ASK, stream=True) if c.choices]
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks)
    calls = [call for c in chunks for call in c.choices[0].delta.tool_calls or []]
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert content.startswith("Echo: ")
    assert chunks[-1].choices[0].finish_reason == "stop"  # Dify already ran the tool
    if mode == "reasoning":
        assert reasoning.startswith("Used `current_time` with ")
        assert calls == []
    elif mode == "tool_calls":
        assert [(c.function.name if c.function else None) for c in calls] == ["current_time"]
        assert reasoning == ""
    else:
        assert reasoning == "" and calls == []


def test_tool_use_in_a_whole_answer(setting: tuple[str, openai.OpenAI]) -> None:
    mode, sdk = setting
    message = sdk.chat.completions.create(model="realdify-agent", messages=ASK).choices[0].message
    reasoning = getattr(message, "reasoning_content", None) or ""
    if mode == "reasoning":
        assert "current_time" in reasoning
        assert not message.tool_calls
    elif mode == "tool_calls":
        assert message.tool_calls is not None
        assert [call.function.name for call in message.tool_calls] == ["current_time"]  # type: ignore[union-attr]
    else:
        assert not reasoning and not message.tool_calls
