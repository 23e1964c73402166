"""The production recipe: `python -m app` with two workers (WEB_CONCURRENCY=2) and Redis. A chat keeps one Dify
conversation whichever worker answers each turn, and with PROMETHEUS_MULTIPROC_DIR `/metrics` counts every worker's
requests, whichever worker is scraped."""

import re
import uuid
from pathlib import Path

import httpx

from tests.dify_double import DifyDouble
from tests.e2e.conftest import CLIENT_KEY, chat_env, scoped
from tests.e2e.processes import gateway_process, redis_server

TURNS = 6


def test_two_workers_keep_a_chat_in_one_conversation_and_count_together(dify: DifyDouble, tmp_path: Path) -> None:
    user = f"workers-{uuid.uuid4()}"
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    with redis_server() as (redis_url, _):
        env = chat_env(
            dify,
            redis_url,
            WEB_CONCURRENCY="2",
            METRICS="true",
            METRICS_AUTH="open",
            PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        )
        with gateway_process(env, tmp_path, launcher="python -m app") as url:
            messages: list[dict[str, str]] = []
            for turn in range(1, TURNS + 1):
                messages.append({"role": "user", "content": f"turn {turn}"})
                with httpx.Client(timeout=20) as fresh:  # a new connection a turn: either worker may answer it
                    response = fresh.post(
                        f"{url}/v1/chat/completions",
                        headers={"Authorization": f"Bearer {CLIENT_KEY}"},
                        json={"model": "realdify-chat", "user": user, "messages": messages},
                    )
                assert response.status_code == 200, response.text
                messages.append({"role": "assistant", "content": response.json()["choices"][0]["message"]["content"]})
            scrapes = []
            for _ in range(4):
                with httpx.Client(timeout=10) as fresh:
                    scrapes.append(fresh.get(f"{url}/metrics").text)
    runs = [r.body for r in dify.requests if isinstance(r.body, dict) and r.body.get("user") == scoped(user)]
    assert len(runs) == TURNS and "conversation_id" not in runs[0]
    assert len({run.get("conversation_id") for run in runs[1:]}) == 1  # one conversation, whichever worker answered
    assert [run["query"] for run in runs] == [f"turn {turn}" for turn in range(1, TURNS + 1)]
    pattern = re.compile(
        r'opendify_dify_requests_total\{app="realdify-chat",endpoint="/chat-messages",status="200"\} (\S+)'
    )
    for text in scrapes:  # every scrape, whichever worker took it, sees all the turns
        [count] = pattern.findall(text)
        assert float(count) == TURNS
    assert len(list(multiproc.iterdir())) >= 2  # each worker wrote its own file
