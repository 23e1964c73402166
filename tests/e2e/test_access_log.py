"""Request ids and access lines: `X-Request-Id` taken or made, returned, and sent to Dify; one structured line per
request with what it did, and never a secret."""

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import CLIENT_KEY, own_gateway, scoped


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, request_id: str) -> list[dict[str, Any]]:
        return [r.__dict__ for r in self.records if getattr(r, "request_id", None) == request_id]


@pytest.fixture
def access_lines() -> Iterator[Lines]:
    logger = logging.getLogger("opendify.access")
    handler = Lines()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _chat(url: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {CLIENT_KEY}", **headers}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=20)


def test_a_request_gets_an_id_returned_sent_to_dify_and_one_access_line(dify: DifyDouble, access_lines: Lines) -> None:
    user = f"access-{uuid.uuid4()}"
    with own_gateway(dify) as url:
        response = _chat(url, {"model": "realdify-chat", "user": user, "messages": [{"role": "user", "content": "hi"}]})
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    [run] = [r for r in dify.requests if isinstance(r.body, dict) and r.body.get("user") == scoped(user)]
    assert run.request_id == request_id
    [line] = access_lines.lines(request_id)
    assert line["msg"] == "request" and line["levelname"] == "INFO"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/v1/chat/completions", 200)
    assert (line["model"], line["mode"], line["stream"]) == ("realdify-chat", "chat", False)
    assert line["prompt_tokens"] >= 0 and line["completion_tokens"] >= 0 and line["task_id"]
    assert line["duration_ms"] > 0
    assert line["client"] and line["client"] != CLIENT_KEY
    text = repr(line)
    assert CLIENT_KEY not in text and "app-e2e-chat" not in text and user not in text  # no key, no user


def test_a_clients_request_id_is_kept_and_a_strange_one_replaced(dify: DifyDouble, access_lines: Lines) -> None:
    body = {"model": "realdify-chat", "messages": [{"role": "user", "content": "hi"}]}
    with own_gateway(dify) as url:
        kept = _chat(url, body, **{"X-Request-Id": "trace-abc.123"})
        strange = _chat(url, body, **{"X-Request-Id": "x" * 500})
    assert kept.headers["x-request-id"] == "trace-abc.123"
    assert strange.headers["x-request-id"] != "x" * 500 and len(strange.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("query", "outcome"),
    [("hello", "completed"), ("[truncate] cut", "cut")],
)
def test_a_streams_outcome_is_in_its_line(dify: DifyDouble, access_lines: Lines, query: str, outcome: str) -> None:
    with own_gateway(dify) as url, openai.OpenAI(base_url=f"{url}/v1", api_key=CLIENT_KEY, max_retries=0) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="realdify-chat", messages=[{"role": "user", "content": query}], stream=True
        )
        try:
            for _ in raw.parse():
                pass
        except openai.APIError:  # (the cut stream's in-band error)
            assert outcome == "cut"
    [line] = access_lines.lines(raw.headers["x-request-id"])
    assert line["stream"] is True and line["outcome"] == outcome and line["status"] == 200


def test_access_log_off_writes_no_line_but_keeps_the_id(dify: DifyDouble, access_lines: Lines) -> None:
    with own_gateway(dify, access_log=False) as url:
        response = _chat(url, {"model": "realdify-chat", "messages": [{"role": "user", "content": "hi"}]})
    assert response.headers["x-request-id"]
    assert access_lines.lines(response.headers["x-request-id"]) == []


def test_probes_get_no_line(dify: DifyDouble, access_lines: Lines) -> None:
    with own_gateway(dify) as url:
        response = httpx.get(f"{url}/health")
    assert access_lines.lines(response.headers["x-request-id"]) == []
