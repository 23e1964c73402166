"""Wires the services onto app.state at start-up (after the HTTP client exists) and injects them."""

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins import InitPlugin

from app.config import Settings
from app.plugins.http_client import build_timeout
from app.services import metrics
from app.services.conversations import (
    ConversationStore,
    ConversationTracker,
    MemoryStore,
    RedisStore,
    ResponseLog,
)
from app.services.dify import DifyClient
from app.services.drain import StreamDrain
from app.services.openai.audio import Audio
from app.services.pipeline import Pipeline
from app.services.registry import ModelRegistry
from app.services.uploads import Uploads

logger = logging.getLogger("opendify")


# the services handlers take through Litestar's DI, each under its name in the app's state (the hot POST handlers
# read the pipeline from the state themselves: resolving a dependency builds a State a request)
_PROVIDED = ("model_registry", "response_log", "audio", "conversation_tracker")


def _provider(name: str) -> Callable[[State], Any]:
    def provide(state: State) -> Any:
        return getattr(state, name)

    return provide


class ServicesPlugin(InitPlugin):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self._lifespan)
        for name in _PROVIDED:
            app_config.dependencies[name] = Provide(_provider(name), sync_to_thread=False)
        return app_config

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncGenerator[None]:
        settings = self._settings
        dify = DifyClient(
            app.state.http_transport,
            settings.dify_api_base,
            build_timeout(settings),
            files_url=settings.dify_files_url,
        )
        registry = ModelRegistry(
            dify,
            settings.dify_api_keys,
            ttl=settings.models_cache_ttl,
            retry_after=settings.models_retry_seconds,
            system_prompt_variable=settings.system_prompt_variable,
        )
        app.state.model_registry = registry
        store: ConversationStore = (
            RedisStore(settings.redis_url, ttl=settings.conversation_ttl, timeout=settings.redis_timeout)
            if settings.redis_url
            else MemoryStore(ttl=settings.conversation_ttl, max_entries=settings.conversation_max_entries)
        )
        tracker = ConversationTracker(store, retry_after=settings.redis_retry_seconds)
        app.state.conversation_tracker = tracker
        app.state.audio = Audio(
            dify, registry, raw_user=settings.dify_raw_user, voice=settings.speech_voice == "client"
        )
        app.state.response_log = ResponseLog(store)  # the same store: responses continue across instances too
        uploaded: ConversationStore = (  # content hash -> Dify upload id, shared like the conversations
            RedisStore(settings.redis_url, ttl=settings.upload_cache_ttl, timeout=settings.redis_timeout)
            if settings.redis_url
            else MemoryStore(ttl=settings.upload_cache_ttl, max_entries=10_000)
        )
        uploads = Uploads(dify, uploaded)
        drain = StreamDrain(settings.shutdown_grace)
        app.state.stream_drain = drain  # the server's protocol starts it at shutdown (app.server)
        app.state.pipeline = Pipeline(
            dify,
            registry,
            tracker,
            settings.conversation_mode,
            raw_user=settings.dify_raw_user,
            drain=drain,
            reasoning=settings.reasoning_mode,
            task_model=settings.task_model,
            tool_use=settings.tool_use,
            progress=settings.workflow_progress == "reasoning",
            uploads=uploads,
            max_file_bytes=settings.max_file_bytes,
        )
        warm_up: asyncio.Task[None] | None = None
        if registry.configured:
            # discover in the background: an unreachable Dify must not delay or break start-up
            warm_up = asyncio.create_task(registry.refresh_logged())
        else:
            logger.warning("No Dify apps configured (DIFY_API_KEYS is empty): /v1/models will list nothing")
        try:
            yield
        finally:
            if warm_up is not None and not warm_up.done():
                warm_up.cancel()
                await asyncio.gather(warm_up, return_exceptions=True)
            await registry.close()
            await tracker.close()
            metrics.process_exits()
            await uploads.close()
