"""The official openai SDK against the running gateway: what users actually run."""

import time
import uuid

import httpx
import openai
import pytest

from app import create_app
from app.config import DifyAppKey, Settings
from tests.dify_double import DifyAppDouble, DifyDouble, RecordedRequest, ServerThread
from tests.e2e.conftest import CLIENT_KEY, scoped

CHAT_MODELS = ["realdify-chat", "realdify-agent", "realdify-advanced-chat"]


def _last_chat_request(dify: DifyDouble, user: str) -> dict[str, object]:
    for recorded in reversed(dify.requests):
        if (
            recorded.path == "/v1/chat-messages"
            and isinstance(recorded.body, dict)
            and recorded.body.get("user") == scoped(user)
        ):
            return recorded.body
    raise AssertionError(f"no chat request from {user}")


def test_models_list_every_app_with_distinct_ids(client: openai.OpenAI) -> None:
    models = {model.id: model for model in client.models.list()}
    assert set(models) == {
        "realdify-chat",
        "realdify-agent",
        "realdify-advanced-chat",
        "team/assistant",
        "realdify-chat-2",
        "realdify-workflow",
        "persona-chat",
        "realdify-completion",
        "realdify-new-agent",
        "agent-1.16",
        "topic-flow",
        "files-flow",
        "text-only",
        "doc-workflow",
        "voice-chat",
    }
    assert models["realdify-agent"].model_extra == {"name": "realdify-agent", "description": "", "mode": "agent-chat"}
    assert models["realdify-new-agent"].model_extra == {
        "name": "realdify-new-agent",
        "description": "",
        "mode": "agent",
    }
    for name, mode in (("realdify-workflow", "workflow"), ("realdify-completion", "completion")):
        assert models[name].model_extra == {"name": name, "description": "", "mode": mode, "query_variable": "query"}
    assert models["realdify-chat-2"].owned_by == "dify"
    assert isinstance(models["realdify-chat"].created, int)


def test_retrieve_model_with_slash_in_id(client: openai.OpenAI) -> None:
    model = client.models.retrieve("team/assistant")
    assert model.id == "team/assistant"
    assert model.model_extra is not None and model.model_extra["mode"] == "chat"  # reported by a newer Dify's /info


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("no-such-app")
    assert raised.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="no-such-app", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.code == "model_not_found"


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_chat_non_streaming(client: openai.OpenAI, dify: DifyDouble, model: str) -> None:
    user = f"e2e-{uuid.uuid4()}"
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello from the SDK"}], user=user
    )
    assert completion.object == "chat.completion"
    assert completion.model == model
    assert completion.choices[0].message.content == "Echo: Hello from the SDK"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0
    sent = _last_chat_request(dify, user)
    # agent apps refuse blocking mode: the gateway streams from Dify and aggregates
    assert sent["response_mode"] == ("streaming" if model == "realdify-agent" else "blocking")
    assert sent["query"] == "Hello from the SDK"


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_chat_streaming(client: openai.OpenAI, model: str) -> None:
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Stream me a few words please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(chunk.choices[0].delta.role is None for chunk in chunks[1:] if chunk.choices)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Echo: Stream me a few words please"
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert len({chunk.id for chunk in chunks}) == 1


def test_stream_helper(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="realdify-advanced-chat", messages=[{"role": "user", "content": "use the helper"}]
    ) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == "Echo: use the helper"
    assert final.choices[0].message.content == "Echo: use the helper"
    assert final.choices[0].message.role == "assistant"
    assert final.choices[0].finish_reason == "stop"


def test_agent_tool_call_thoughts_stay_out_of_the_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="realdify-agent", messages=[{"role": "user", "content": "What is the weather in Paris?"}]
    )
    assert completion.choices[0].message.content == "Echo: What is the weather in Paris?"


def test_history_and_system_prompt_are_folded_into_the_query(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"e2e-{uuid.uuid4()}"
    client.chat.completions.create(
        model="realdify-chat",
        user=user,
        messages=[
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": "first"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "user", "content": "second"},
        ],
        max_completion_tokens=50,
        temperature=0.2,
        response_format={"type": "text"},
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        extra_body={"some_vendor_field": True},
    )
    query = _last_chat_request(dify, user)["query"]
    assert query == "System: Be brief.\n\nUser: first\n\nAssistant: [called f]\n\nTool: 42\n\nUser: second"


def test_default_user_is_stable_and_never_the_key(client: openai.OpenAI, dify: DifyDouble) -> None:
    client.chat.completions.create(model="realdify-chat", messages=[{"role": "user", "content": "who am I"}])
    users = [r.body["user"] for r in dify.requests if r.path == "/v1/chat-messages" and isinstance(r.body, dict)]
    defaults = {u for u in users if u.startswith("opendify-") and ":" not in u and u != "opendify-probe"}
    assert len(defaults) == 1
    assert CLIENT_KEY not in next(iter(defaults))


@pytest.mark.anyio
async def test_async_client_streams(async_client: openai.AsyncOpenAI) -> None:
    stream = await async_client.chat.completions.create(
        model="realdify-chat", messages=[{"role": "user", "content": "async hello"}], stream=True
    )
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert text == "Echo: async hello"


# --- errors -------------------------------------------------------------------------------------------------


def test_wrong_or_missing_key(gateway_url: str) -> None:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="sk-wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model="realdify-chat", messages=[{"role": "user", "content": "hi"}])
    response = httpx.get(f"{gateway_url}/v1/models")
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_bad_body(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="realdify-chat", messages=[])
    assert raised.value.param == "messages"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="realdify-chat", messages=[{"role": "robot", "content": "hi"}])  # type: ignore[misc,list-item]


@pytest.mark.parametrize("model", CHAT_MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_model_failure_is_a_server_error(client: openai.OpenAI, model: str, stream: bool) -> None:
    # known before the first byte: a real HTTP status, streaming or not
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "[fail] now"}], stream=stream)
    assert raised.value.status_code == 502


def test_dify_500_and_429(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="realdify-chat", messages=[{"role": "user", "content": "[http500]"}])
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="realdify-chat", messages=[{"role": "user", "content": "[http429]"}], stream=True
        )


@pytest.mark.parametrize("trigger", ["[truncate]", "[drop]"])
def test_broken_stream_raises_instead_of_truncating(client: openai.OpenAI, trigger: str) -> None:
    stream = client.chat.completions.create(
        model="realdify-chat", messages=[{"role": "user", "content": f"{trigger} a b c d e f"}], stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
            assert chunk.choices[0].finish_reason is None
    assert "".join(received).startswith("Echo:")


def test_dify_unreachable_is_502_and_slow_dify_is_504() -> None:
    double = DifyDouble(apps=[DifyAppDouble(key="app-gone", name="soon-gone", mode="advanced-chat")], slow_delay=1.0)
    upstream = ServerThread(double).__enter__()
    settings = Settings(
        valid_api_keys=(CLIENT_KEY,),
        dify_api_keys=(DifyAppKey("app-gone"),),
        dify_api_base=f"{upstream.url}/v1",
        timeout=0.3,
    )
    with (
        ServerThread(create_app(settings)) as server,
        openai.OpenAI(base_url=f"{server.url}/v1", api_key=CLIENT_KEY, max_retries=0) as sdk,
    ):
        assert [model.id for model in sdk.models.list()] == ["soon-gone"]
        with pytest.raises(openai.APIStatusError) as raised:
            sdk.chat.completions.create(
                model="soon-gone", messages=[{"role": "user", "content": "[slow] hi"}], stream=True
            )
        assert raised.value.status_code == 504
        assert double.stopped, "the Dify task left behind by the timeout was not stopped"
        upstream.__exit__()
        with pytest.raises(openai.InternalServerError) as raised:
            sdk.chat.completions.create(model="soon-gone", messages=[{"role": "user", "content": "hi"}])
        assert raised.value.status_code == 502
        assert raised.value.code == "upstream_unreachable"


def test_client_disconnect_stops_the_dify_task(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"e2e-{uuid.uuid4()}"
    stream = client.chat.completions.create(
        model="realdify-chat",
        messages=[{"role": "user", "content": "[slow] " + "word " * 40}],
        stream=True,
        user=user,
    )
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    stream.close()
    stops: list[RecordedRequest] = []
    deadline = time.monotonic() + 5
    while not stops and time.monotonic() < deadline:
        stops = [
            r
            for r in dify.requests
            if r.path.endswith("/stop") and isinstance(r.body, dict) and r.body["user"] == scoped(user)
        ]
        time.sleep(0.05)
    assert stops, "the gateway did not stop the Dify task"
    task_id = stops[0].path.split("/")[3]
    assert task_id in dify.stopped


def test_unknown_model_while_dify_is_unreachable_is_a_gateway_error() -> None:
    settings = Settings(
        valid_api_keys=(CLIENT_KEY,), dify_api_keys=(DifyAppKey("app-x"),), dify_api_base="http://127.0.0.1:9/v1"
    )
    with (
        ServerThread(create_app(settings)) as server,
        openai.OpenAI(base_url=f"{server.url}/v1", api_key=CLIENT_KEY, max_retries=0) as sdk,
    ):
        assert list(sdk.models.list()) == []  # discovery failed: logged, not fatal
        with pytest.raises(openai.InternalServerError) as raised:
            sdk.chat.completions.create(model="my-app", messages=[{"role": "user", "content": "hi"}])
        assert raised.value.status_code == 502
        assert raised.value.code == "model_discovery_failed"
