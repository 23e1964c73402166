"""`/metrics` (METRICS): Litestar's request series and the gateway's, after a chat, a stream and a failure; who may
scrape it (METRICS_AUTH)."""

import re
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import CLIENT_KEY, own_gateway

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def _scrape(url: str, **headers: str) -> dict[str, float]:
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    samples: dict[str, float] = {}
    for line in response.text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


@pytest.fixture
def gateway(dify: DifyDouble) -> Iterator[str]:
    with own_gateway(dify, metrics=True, metrics_auth="open") as url:
        yield url


def _delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def test_metrics_count_a_chat_a_stream_and_a_failure(gateway: str) -> None:
    before = _scrape(gateway)
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=CLIENT_KEY, max_retries=0) as sdk:
        sdk.chat.completions.create(model="realdify-chat", messages=[{"role": "user", "content": "hi"}])
        for _ in sdk.chat.completions.create(
            model="realdify-chat", messages=[{"role": "user", "content": "stream"}], stream=True
        ):
            pass
        with pytest.raises(openai.APIStatusError):
            sdk.chat.completions.create(model="realdify-chat", messages=[{"role": "user", "content": "[http500] x"}])
    after = _scrape(gateway)
    chat = 'app="realdify-chat",endpoint="/chat-messages"'
    assert _delta(before, after, f'opendify_dify_requests_total{{{chat},status="200"}}') == 2
    assert _delta(before, after, f'opendify_dify_requests_total{{{chat},status="500"}}') == 1
    assert _delta(before, after, f"opendify_dify_request_seconds_count{{{chat}}}") == 3
    assert _delta(before, after, 'opendify_streams_total{app="realdify-chat",outcome="completed"}') == 1
    assert _delta(before, after, 'opendify_stream_first_byte_seconds_count{app="realdify-chat"}') == 1
    assert _delta(before, after, 'opendify_tokens_total{app="realdify-chat",kind="prompt"}') > 0
    assert _delta(before, after, 'opendify_conversation_lookups_total{result="miss"}') >= 0
    assert after['opendify_apps{state="up"}'] >= 1
    # Litestar's own series, by route and status
    routes = [name for name in after if name.startswith("opendify_requests_total") and "/v1/chat/completions" in name]
    assert any('status_code="200"' in name for name in routes) and any('status_code="500"' in name for name in routes)
    assert not any("sk-" in name or "user" in name for name in after)  # bounded labels: no keys, no users


def test_metrics_need_a_key_by_default_or_the_token(dify: DifyDouble) -> None:
    with own_gateway(dify, metrics=True) as url:
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert _scrape(url, Authorization=f"Bearer {CLIENT_KEY}")
    with own_gateway(dify, metrics=True, metrics_auth="token", metrics_token="scrape-me") as url:
        assert httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {CLIENT_KEY}"}).status_code == 401
        assert _scrape(url, Authorization="Bearer scrape-me")
    with own_gateway(dify) as url:  # METRICS off: no endpoint
        assert httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {CLIENT_KEY}"}).status_code == 404
