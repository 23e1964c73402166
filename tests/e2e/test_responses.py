"""The Responses API through the official SDK: whole responses and their stream (event order, `sequence_number`),
`previous_response_id` continuing one Dify conversation, kept responses fetched and deleted, reasoning and tool use
as their items, and failures as `response.failed` or real HTTP errors."""

import asyncio
import base64
import uuid
from typing import Any

import openai
import pydantic
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import own_client, scoped

ORDER = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def _runs(dify: DifyDouble, user: str) -> list[dict[str, Any]]:
    return [
        r.body
        for r in dify.requests
        if r.method == "POST" and isinstance(r.body, dict) and r.body.get("user") == scoped(user)
    ]


@pytest.mark.parametrize("model", ["realdify-chat", "realdify-agent", "realdify-advanced-chat", "realdify-workflow"])
def test_a_whole_response(client: openai.OpenAI, model: str) -> None:
    response = client.responses.create(model=model, input="Hello there")
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp_") and response.model == model
    assert response.output_text == "Echo: Hello there"
    [message] = response.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert response.usage is not None and response.usage.total_tokens >= 0


@pytest.mark.parametrize("model", ["realdify-chat", "realdify-advanced-chat", "realdify-workflow"])
def test_a_streamed_response_sends_the_events_in_the_order_the_sdk_requires(client: openai.OpenAI, model: str) -> None:
    events = list(client.responses.create(model=model, input="Stream it", stream=True))
    kinds = [event.type for event in events]
    collapsed = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]
    assert collapsed == ORDER
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Echo: Stream it"
    final = events[-1].response  # type: ignore[union-attr]
    assert final.status == "completed" and final.output_text == "Echo: Stream it" and final.usage is not None


def test_the_sdks_stream_helper_gets_the_final_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model="realdify-chat", input="helper") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text == "Echo: helper"


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
@pytest.mark.parametrize("model", ["realdify-chat", "realdify-advanced-chat"])
def test_previous_response_id_continues_one_dify_conversation(
    client: openai.OpenAI, dify: DifyDouble, stream: bool, model: str
) -> None:
    user = f"resp-{uuid.uuid4()}"

    def ask(text: str, previous: str | None) -> str:
        if not stream:
            return client.responses.create(model=model, input=text, user=user, previous_response_id=previous).id
        with client.responses.stream(model=model, input=text, user=user, previous_response_id=previous) as events:
            return events.get_final_response().id

    first = ask("My name is Ada.", None)
    second = ask("What is my name?", first)
    ask("Thanks!", second)
    runs = _runs(dify, user)
    assert [run["query"] for run in runs] == ["My name is Ada.", "What is my name?", "Thanks!"]  # only the new input
    assert "conversation_id" not in runs[0]
    assert runs[1]["conversation_id"] == runs[2]["conversation_id"]


def test_an_unknown_or_foreign_previous_response_is_a_404(client: openai.OpenAI, gateway_url: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="realdify-chat", input="hi", previous_response_id="resp_nope")
    assert caught.value.code == "previous_response_not_found"
    mine = client.responses.create(model="realdify-chat", input="mine", user="alice")
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="sk-other", max_retries=0) as other:
        with pytest.raises(openai.NotFoundError):
            other.responses.create(model="realdify-chat", input="theirs", user="alice", previous_response_id=mine.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):  # another user of the same key
        client.responses.create(model="realdify-chat", input="x", user="bob", previous_response_id=mine.id)
    with pytest.raises(openai.NotFoundError):  # another app
        client.responses.create(model="realdify-advanced-chat", input="x", user="alice", previous_response_id=mine.id)


def test_a_kept_response_is_retrieved_and_deleted(client: openai.OpenAI) -> None:
    created = client.responses.create(model="realdify-chat", input="keep me")
    fetched = client.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == "Echo: keep me"
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="realdify-chat", input="again", previous_response_id=created.id)
    unkept = client.responses.create(model="realdify-chat", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unkept.id)


def test_instructions_are_the_system_prompt(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"resp-{uuid.uuid4()}"
    client.responses.create(model="persona-chat", input="hi", instructions="Be brief.", user=user)
    client.responses.create(model="realdify-chat", input="hi", instructions="Be brief.", user=user)
    persona, plain = _runs(dify, user)
    assert persona["inputs"]["system_prompt"] == "Be brief." and persona["query"] == "hi"
    assert plain["query"] == "System: Be brief.\n\nUser: hi"


def test_input_items_with_images_and_history(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"resp-{uuid.uuid4()}"
    png = base64.b64encode(
        base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
        )
    ).decode()
    items: Any = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "an earlier answer"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "and this?"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{png}"},
            ],
        },
    ]
    response = client.responses.create(model="files-flow", input=items, user=user)
    [run] = _runs(dify, user)
    assert run["query"] == "User: first\n\nAssistant: an earlier answer\n\nUser: and this?"
    assert run["files"][0]["type"] == "image" and run["files"][0]["transfer_method"] == "local_file"
    assert "image:local_file:file-1.png" in response.output_text


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
def test_reasoning_is_a_reasoning_item_with_summary_text(client: openai.OpenAI, stream: bool) -> None:
    response: Any
    if stream:
        with client.responses.stream(model="realdify-advanced-chat", input="[think] hi") as events:
            kinds = [e.type for e in events]
            response = events.get_final_response()
        assert "response.reasoning_summary_text.delta" in kinds
        assert kinds.index("response.reasoning_summary_text.done") < kinds.index("response.output_text.delta")
    else:
        response = client.responses.create(model="realdify-advanced-chat", input="[think] hi")
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "pondering about it"
    assert message.type == "message" and response.output_text == "Echo: [think] hi"


@pytest.mark.parametrize("stream", [False, True], ids=["blocking", "streaming"])
def test_agent_tool_use_as_function_call_items(dify: DifyDouble, stream: bool) -> None:
    response: Any
    with own_client(dify, tool_use="tool_calls") as sdk:
        if stream:
            with sdk.responses.stream(model="realdify-agent", input="What is the weather in Paris?") as events:
                kinds = [e.type for e in events]
                response = events.get_final_response()
            assert "response.function_call_arguments.done" in kinds
        else:
            response = sdk.responses.create(model="realdify-agent", input="What is the weather in Paris?")
    calls = [item for item in response.output if item.type == "function_call"]
    assert calls and all(call.status == "completed" and call.name for call in calls)
    assert any(item.type == "message" for item in response.output) and response.output_text  # in the order they ran


def test_a_stream_cut_after_text_is_response_failed(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="realdify-chat", input="[truncate] cut me", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.failed"
    failed: Any = events[-1].response
    assert failed.status == "failed" and failed.error is not None and failed.error.code == "upstream_incomplete"
    assert not any(e.type == "response.completed" for e in events)


def test_a_failure_before_any_output_is_a_real_http_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.responses.create(model="realdify-chat", input="[fail] now", stream=True)
    assert caught.value.status_code == 502


def test_a_workflow_response_cannot_be_continued(client: openai.OpenAI) -> None:
    first = client.responses.create(model="realdify-workflow", input="run")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="realdify-workflow", input="again", previous_response_id=first.id)
    assert caught.value.code == "previous_response_unsupported"


class Title(pydantic.BaseModel):
    title: str


def test_structured_output_through_text_format(client: openai.OpenAI) -> None:
    parsed = client.responses.parse(model="realdify-chat", input="[object] name it", text_format=Title)
    assert parsed.output_parsed == Title(title="A title from Dify")


class _PingFirstDify(DifyDouble):
    """Current Dify: a chatflow's keep-alive comes at once, its worker's events a moment later (separate reads)."""

    async def _stream(self, app: Any, ids: Any, query: str, chunks: Any, send: Any) -> None:
        async def later(message: Any) -> None:
            await send(message)
            if message.get("body") == b"event: ping\n\n":
                await asyncio.sleep(0.05)

        await super()._stream(app, ids, query, chunks, later)


def test_a_turn_run_again_still_opens_with_response_created() -> None:
    """The remembered chatflow conversation is gone from Dify (1.15 silently starts another, the gateway refuses it
    and runs the turn again, folded): the retried stream is whole, from `response.created` on."""
    from app import create_app  # noqa: PLC0415
    from app.config import DifyAppKey, Settings  # noqa: PLC0415
    from tests.dify_double import DifyAppDouble, ServerThread  # noqa: PLC0415

    dify = _PingFirstDify(apps=[DifyAppDouble(key="app-flow", name="flow", mode="advanced-chat")], generation="1.15")
    with ServerThread(dify) as upstream:
        dify.url = upstream.url
        settings = Settings(
            valid_api_keys=("sk-c",), dify_api_keys=(DifyAppKey("app-flow"),), dify_api_base=f"{upstream.url}/v1"
        )
        with (
            ServerThread(create_app(settings)) as gateway,
            openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-c", max_retries=0, timeout=20) as sdk,
        ):
            user = f"resp-{uuid.uuid4()}"
            first = sdk.responses.create(model="flow", input=[{"role": "user", "content": "Hi"}], user=user)
            dify.conversations.clear()  # deleted on the Dify side
            history: Any = [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": first.output_text},
                {"role": "user", "content": "More"},
            ]
            events = list(sdk.responses.create(model="flow", input=history, user=user, stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))


@pytest.mark.parametrize("model", ["realdify-chat", "realdify-advanced-chat"])
def test_a_connection_lost_mid_stream_ends_with_response_failed(client: openai.OpenAI, model: str) -> None:
    events = list(client.responses.create(model=model, input="[drop] going", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.failed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
