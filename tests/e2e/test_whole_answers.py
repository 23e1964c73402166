"""A whole (non-streaming) answer's HTTP head, as clients read it: the hot routes build it themselves
(app/controllers/answer.py), so what Litestar's Response gave is checked here: type, length, the conversation
header, the request id, CORS."""

import json

import httpx
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import CLIENT_KEY, own_gateway

ORIGIN = "https://chat.example"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "realdify-chat", "messages": [{"role": "user", "content": "head?"}]}),
        ("/v1/completions", {"model": "realdify-completion", "prompt": "head?"}),
        ("/v1/responses", {"model": "realdify-chat", "input": "head?"}),
    ],
)
def test_a_whole_answer_has_the_head_clients_read(dify: DifyDouble, path: str, body: dict[str, object]) -> None:
    with own_gateway(dify, cors_allow_origins=(ORIGIN,)) as url:
        response = httpx.post(
            f"{url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {CLIENT_KEY}", "Origin": ORIGIN, "X-Request-Id": "req-head-1"},
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    assert json.loads(response.content)["object"] in ("chat.completion", "text_completion", "response")
    assert response.headers["x-request-id"] == "req-head-1"
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in response.headers.get("access-control-expose-headers", "").lower()
    # the Dify conversation a chat answer belongs to; a completion belongs to none
    assert ("x-dify-conversation-id" in response.headers) is (path == "/v1/chat/completions")
    if path == "/v1/chat/completions":
        assert response.headers["x-dify-conversation-id"] in dify.conversations
