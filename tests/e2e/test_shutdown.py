"""SIGTERM with streams open: each gets SHUTDOWN_GRACE seconds, then ends in-band and its Dify task is stopped."""

import asyncio
import json
import signal
import uuid
from pathlib import Path

import httpx
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import CLIENT_KEY, scoped
from tests.e2e.processes import gateway_popen

pytestmark = pytest.mark.anyio


async def _read_stream(client: httpx.AsyncClient, content: str, user: str, started: asyncio.Event) -> list[str]:
    body = {"model": "realdify-chat", "stream": True, "user": user, "messages": [{"role": "user", "content": content}]}
    lines: list[str] = []
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                lines.append(line[6:])
                started.set()
    return lines


@pytest.mark.parametrize("launcher", ["litestar run", "python -m app"])
async def test_sigterm_gives_streams_the_grace_period_then_ends_them_in_band(
    dify: DifyDouble, tmp_path: Path, launcher: str
) -> None:
    env = {
        "VALID_API_KEYS": CLIENT_KEY,
        "DIFY_API_KEYS": "app-e2e-chat:chat",
        "DIFY_API_BASE": f"{dify.url}/v1",
        "SHUTDOWN_GRACE": "1.5",
    }
    short_user, long_user = f"short-{uuid.uuid4()}", f"long-{uuid.uuid4()}"
    with gateway_popen(env, tmp_path, launcher) as (url, process):
        headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            short_started, long_started = asyncio.Event(), asyncio.Event()
            # the double sends a chunk every 0.2 s, about three words a chunk
            short = asyncio.create_task(_read_stream(client, "[slow] a b c d e", short_user, short_started))
            long = asyncio.create_task(_read_stream(client, "[slow] " + "word " * 90, long_user, long_started))
            await asyncio.wait_for(asyncio.gather(short_started.wait(), long_started.wait()), 10)
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):  # a hang guard, not a measurement
                short_lines, long_lines = await asyncio.gather(short, long)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it is done

    # the short answer finished within the grace period: complete, as if nothing happened
    assert short_lines[-1] == "[DONE]"
    # the long one was ended: content up to then, an in-band error, no [DONE]
    assert "[DONE]" not in long_lines
    error = json.loads(long_lines[-1])["error"]
    assert error["code"] == "server_shutting_down"
    contents = [json.loads(line)["choices"][0]["delta"].get("content") for line in long_lines[:-1]]
    assert len([c for c in contents if c]) > 3  # it kept streaming during the grace period
    stops = [r for r in dify.requests if r.path.endswith("/stop") and r.body == {"user": scoped(long_user)}]
    assert len(stops) == 1, "the ended stream's Dify task was not stopped"
