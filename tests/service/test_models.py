"""`GET /v1/models` (and without `/v1`): the three recorded apps, discovered from `/info` and the mode probe."""

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pytest_httpx import HTTPXMock

from tests.service.replay import CLIENT_HEADERS, CLIENT_KEY, INFO_URL, MODEL_IDS, MODES, PROBE_BODY, app_key
from tests.traces import load

pytestmark = pytest.mark.anyio


def assert_model(model: dict[str, Any], mode: str) -> None:
    info = load(f"{mode}-info").json()
    assert model["id"] == MODEL_IDS[mode] == info["name"]
    assert model["object"] == "model"
    assert isinstance(model["created"], int)
    assert model["created"] > 0
    assert isinstance(model["owned_by"], str)
    assert model["owned_by"]
    assert model["description"] == info["description"]


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
async def test_lists_every_configured_app_by_its_recorded_name(client: AsyncTestClient[Litestar], path: str) -> None:
    response = await client.get(path, headers=CLIENT_HEADERS)

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [model["id"] for model in body["data"]] == ["realdify-chat", "realdify-agent", "realdify-advanced-chat"]
    for model, mode in zip(body["data"], MODES, strict=True):
        assert_model(model, mode)


async def test_discovery_reads_info_and_probes_the_mode_once_per_app(
    client: AsyncTestClient[Litestar], dify: HTTPXMock
) -> None:
    first = (await client.get("/v1/models", headers=CLIENT_HEADERS)).json()
    second = (await client.get("/v1/models", headers=CLIENT_HEADERS)).json()

    assert first == second  # cached: `created` does not change between calls
    for mode in MODES:
        auth = {"Authorization": f"Bearer {app_key(mode)}"}
        assert len(dify.get_requests(method="GET", url=INFO_URL, match_headers=auth)) == 1
        assert len(dify.get_requests(method="POST", match_headers=auth, match_json=PROBE_BODY)) == 1
    # Dify 0.15.3 /info has no mode: the probe tells the agent app apart (it must be streamed)
    modes = {model["id"]: model["mode"] for model in first["data"]}
    assert modes["realdify-agent"] == "agent-chat"
    assert modes["realdify-chat"] == "chat"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prefix", ["/v1", ""])
async def test_retrieves_one_model(client: AsyncTestClient[Litestar], mode: str, prefix: str) -> None:
    response = await client.get(f"{prefix}/models/{MODEL_IDS[mode]}", headers=CLIENT_HEADERS)

    assert response.status_code == 200
    assert_model(response.json(), mode)


@pytest.mark.parametrize("path", ["/v1/models/gpt-4o", "/models/gpt-4o", "/v1/models/realdify-chat-2"])
async def test_unknown_model_is_a_404_in_the_openai_envelope(client: AsyncTestClient[Litestar], path: str) -> None:
    response = await client.get(path, headers=CLIENT_HEADERS)

    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == "model_not_found"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "model"
    assert path.rsplit("/", 1)[1] in body["error"]["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sk-wrong"},
        {"Authorization": f"Bearer {CLIENT_KEY}x"},
        {"Authorization": "Bearer "},
        {"api-key": "sk-wrong"},
    ],
    ids=["missing", "wrong", "longer", "empty", "wrong-api-key-header"],
)
@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/realdify-chat", "/models"])
async def test_models_need_a_valid_client_key(
    client: AsyncTestClient[Litestar], headers: dict[str, str], path: str
) -> None:
    response = await client.get(path, headers=headers)

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert error["type"] == "invalid_request_error"
    assert CLIENT_KEY not in error["message"]


async def test_azure_style_api_key_header_is_accepted(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/v1/models", headers={"api-key": CLIENT_KEY})

    assert response.status_code == 200
    assert len(response.json()["data"]) == 3


async def test_openapi_document_describes_chat_and_models(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/docs/openapi.json")

    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    for path in ("/v1/chat/completions", "/chat/completions"):
        assert "post" in paths[path]
    for path in ("/v1/models", "/models", "/v1/models/{model}"):
        assert "get" in paths[path]
    schemas = document["components"]["schemas"]
    assert "ChatCompletionRequest" in schemas
    assert {"model", "messages"} <= set(schemas["ChatCompletionRequest"]["required"])
    request_body = paths["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert request_body["$ref"].endswith("/ChatCompletionRequest")


async def test_openapi_constraints_are_the_ones_the_gateway_enforces(client: AsyncTestClient[Litestar]) -> None:
    """Schema-valid requests are accepted: every constraint validation applies is in the schema too."""
    schemas = (await client.get("/docs/openapi.json")).json()["components"]["schemas"]
    assert schemas["ChatCompletionRequest"]["properties"]["messages"]["minItems"] == 1
    assert schemas["ImageURL"]["properties"]["url"]["pattern"] == "^(https?://|data:)"


def test_a_configured_model_id_replaces_the_apps_name() -> None:
    """LobeChat routes ids like `o1` or `gpt-5*` to its Responses API and hides `*embedding*`: an app's id can be set."""
    from app.services.registry import DiscoveredApp, assign_ids  # noqa: PLC0415

    found = {
        i: DiscoveredApp(name=name, description=None, mode="chat", created=0)
        for i, name in enumerate(["o1 helper", "Docs", "Docs"])
    }
    assert assign_ids(found, {0: "helper"}) == {"helper": 0, "Docs": 1, "Docs-2": 2}


async def test_openapi_document_lists_every_surface_with_its_schemas(client: AsyncTestClient[Litestar]) -> None:
    document = (await client.get("/docs/openapi.json")).json()
    paths, schemas = document["paths"], document["components"]["schemas"]
    expected = {
        "/v1/completions": ("post", "CompletionRequest", "TextCompletion"),
        "/v1/responses": ("post", "ResponseRequest", "ResponseObject"),
        "/v1/audio/speech": ("post", "SpeechRequest", None),
        "/v1/audio/transcriptions": ("post", "TranscriptionForm", "Transcription"),
    }
    for path, (method, request, answer) in expected.items():
        operation = paths[path][method]
        content = operation["requestBody"]["content"]
        [schema] = [c["schema"] for c in content.values()]
        assert schema["$ref"].endswith("/" + request), path
        assert request in schemas
        if answer is not None:
            assert answer in schemas
            [shown] = operation["responses"]["200"]["content"].values()
            assert shown["schema"]["$ref"].endswith("/" + answer)
    for path in ("/v1/responses/{response_id}",):
        assert {"get", "delete"} <= set(paths[path])
    assert paths["/completions"] and paths["/responses"] and paths["/audio/speech"]
