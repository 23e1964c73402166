"""Two gateway processes sharing a real Redis server: a conversation continues across instances."""

import asyncio
import signal
import uuid
from pathlib import Path

import anyio
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from app.schemas.openai import ChatMessage
from app.services.conversations import Continuation, ConversationTracker, RedisStore, StoreUnavailableError
from tests.dify_double import DifyDouble
from tests.e2e.conftest import CLIENT_KEY, chat_env, scoped
from tests.e2e.processes import gateway_process, redis_server


def test_turns_through_two_instances_continue_one_conversation(dify: DifyDouble, tmp_path: Path) -> None:
    user = f"shared-{uuid.uuid4()}"
    with redis_server() as (redis_url, redis):
        env = chat_env(dify, redis_url)
        with gateway_process(env, tmp_path) as first_url, gateway_process(env, tmp_path) as second_url:
            a = openai.OpenAI(base_url=f"{first_url}/v1", api_key=CLIENT_KEY, max_retries=0)
            b = openai.OpenAI(base_url=f"{second_url}/v1", api_key=CLIENT_KEY, max_retries=0)
            with a, b:
                messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "turn one via A"}]
                one = a.chat.completions.with_raw_response.create(model="realdify-chat", messages=messages, user=user)
                answer = one.parse().choices[0].message.content or ""
                messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "turn two via B"}]
                stream = b.chat.completions.with_raw_response.create(
                    model="realdify-chat",
                    messages=messages,
                    user=user,
                    stream=True,
                )
                assert stream.headers["x-dify-conversation-id"] == one.headers["x-dify-conversation-id"]
                text = "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
                assert text == "Echo: turn two via B"

                # Redis goes away: answers continue statelessly (history folded), never a 500
                redis.terminate()
                redis.wait(timeout=10)
                messages += [{"role": "assistant", "content": text}, {"role": "user", "content": "turn three"}]
                three = a.chat.completions.create(model="realdify-chat", messages=messages, user=user)
                assert three.choices[0].message.content is not None
    sent = [r.body for r in dify.requests if isinstance(r.body, dict) and r.body.get("user") == scoped(user)]
    assert "conversation_id" not in sent[0]
    assert sent[1]["conversation_id"] == one.headers["x-dify-conversation-id"]
    assert sent[1]["query"] == "turn two via B"
    assert "conversation_id" not in sent[2]  # degraded: a new conversation with the history folded into the query
    assert sent[2]["query"].startswith("User: turn one via A")


@pytest.mark.anyio
async def test_the_turn_claim_is_atomic_in_redis() -> None:
    with redis_server() as (redis_url, _):
        store = RedisStore(redis_url, ttl=60)
        try:
            await store.set_many({"c:conv": "1"})
            wins = await asyncio.gather(*(store.compare_and_set("c:conv", "1", "2~") for _ in range(20)))
            assert sum(wins) == 1
            assert await store.get_many(["c:conv"]) == ["2~"]
            assert not await store.compare_and_set("c:missing", "1", "2~")
        finally:
            await store.close()


class CountingRedisStore(RedisStore):
    def __init__(self, url: str) -> None:
        super().__init__(url, ttl=60, timeout=0.3)
        self.calls = 0

    async def get_many(self, keys: list[str]) -> list[str | None]:
        self.calls += 1
        return await super().get_many(keys)


@pytest.mark.anyio
async def test_a_frozen_redis_costs_one_bounded_call_then_is_left_alone() -> None:
    """SIGSTOP: Redis still accepts connections but never answers (the worst case: no error, only silence)."""
    with redis_server() as (redis_url, redis):
        store = CountingRedisStore(redis_url)
        tracker = ConversationTracker(store, retry_after=60)
        history = [ChatMessage(role="user", content="hi"), ChatMessage(role="assistant", content="hello")]
        try:
            await store.set_many({"c:conv": "1"})  # connected and answering
            redis.send_signal(signal.SIGSTOP)
            with anyio.fail_after(10):  # a hang guard, not a measurement
                with pytest.raises(StoreUnavailableError):
                    await store.get_many(["c:conv"])
                assert await tracker.find("scope", history) is None  # fails within the timeout: breaker open
                for _ in range(20):
                    assert await tracker.find("scope", history) is None
                    assert not await tracker.claim(Continuation("conv", 1))
            assert store.calls == 2  # the direct call and the one that opened the breaker
        finally:
            redis.send_signal(signal.SIGCONT)
            await store.close()


def test_an_image_sent_through_two_instances_is_uploaded_once(dify: DifyDouble, tmp_path: Path) -> None:
    """The upload cache is shared through Redis like the conversations."""
    user = f"shared-{uuid.uuid4()}"
    image = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    with redis_server() as (redis_url, _):
        env = chat_env(dify, redis_url)
        with gateway_process(env, tmp_path) as first_url, gateway_process(env, tmp_path) as second_url:
            for url in (first_url, second_url):
                with openai.OpenAI(base_url=f"{url}/v1", api_key=CLIENT_KEY, max_retries=0) as sdk:
                    sdk.chat.completions.create(
                        model="realdify-chat",
                        user=user,
                        messages=[
                            {
                                "role": "user",
                                "content": [
                                    {"type": "text", "text": "what is it?"},
                                    {"type": "image_url", "image_url": {"url": image}},
                                ],
                            }
                        ],
                    )
    assert len([u for u in dify.uploads.values() if u.user == scoped(user)]) == 1
    runs = [r.body for r in dify.requests if isinstance(r.body, dict) and r.body.get("user") == scoped(user)]
    assert runs[0]["files"] == runs[1]["files"]
