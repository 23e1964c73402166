"""`response_format` through the official SDK: LobeHub's JSON title, the SDK's own structured-output helper, and a
clear error when the app's answer holds no JSON."""

import json
import uuid
from typing import Any, cast

import openai
import pydantic
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import scoped

LOBEHUB_TITLE_SCHEMA = {
    "name": "topic_title",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    },
}


class Title(pydantic.BaseModel):
    title: str


def _queries(dify: DifyDouble, user: str) -> list[dict[str, Any]]:
    return [r.body for r in dify.requests if isinstance(r.body, dict) and r.body.get("user") == scoped(user)]


def test_lobehubs_json_title_request_gets_json(client: openai.OpenAI, dify: DifyDouble) -> None:
    user = f"lobehub-{uuid.uuid4()}"
    completion = client.chat.completions.create(
        model="realdify-chat",
        user=user,
        messages=[
            {
                "role": "system",
                "content": "You are a professional conversation summarizer. Generate a concise title that captures "
                'the essence of the conversation. Return one JSON object with a single "title" string.',
            },
            {"role": "user", "content": "<task>Name it</task><conversation><user>tides</user></conversation>"},
        ],
        response_format=cast("Any", {"type": "json_schema", "json_schema": LOBEHUB_TITLE_SCHEMA}),
    )
    title = json.loads(completion.choices[0].message.content or "")
    assert list(title) == ["title"] and title["title"].startswith("Echo: ")
    [sent] = _queries(dify, user)
    assert "Answer with a single JSON object" not in sent["query"]  # the prompt asked for JSON already
    assert sent["auto_generate_name"] is False  # housekeeping, as before


@pytest.mark.parametrize("model", ["realdify-chat", "realdify-advanced-chat", "realdify-workflow"])
def test_the_sdks_structured_output_helper_parses_the_apps_answer(
    client: openai.OpenAI, dify: DifyDouble, model: str
) -> None:
    user = f"parse-{uuid.uuid4()}"
    completion = client.chat.completions.parse(
        model=model, user=user, messages=[{"role": "user", "content": "[object] name this chat"}], response_format=Title
    )
    assert completion.choices[0].message.parsed == Title(title="A title from Dify")
    [sent] = _queries(dify, user)
    query = sent.get("query") or sent["inputs"]["query"]
    assert query.startswith("[object] name this chat\n\nAnswer with a single JSON object that matches this JSON Schema")
    assert '"title"' in query


def test_an_answer_with_no_json_is_a_502_naming_the_problem(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(
            model="realdify-chat",
            messages=[{"role": "user", "content": "just talk"}],
            response_format={"type": "json_object"},
        )
    assert caught.value.status_code == 502
    assert isinstance(caught.value.body, dict) and caught.value.body.get("code") == "upstream_not_json"


def test_a_malformed_response_format_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="realdify-chat",
            messages=[{"role": "user", "content": "hi"}],
            response_format=cast("Any", {"type": "yaml"}),
        )
    assert "response_format" in str(caught.value)
