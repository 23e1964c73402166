"""The pooled httpx client: created at start-up, closed at shutdown, injected as `http_client`."""

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins import InitPlugin

from app.config import Settings


def build_http_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        http2=settings.dify_http2,
        timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
        limits=httpx.Limits(
            max_connections=settings.dify_max_connections,
            max_keepalive_connections=settings.dify_max_connections,
        ),
    )


def provide_http_client(state: State) -> httpx.AsyncClient:
    client: httpx.AsyncClient = state.http_client
    return client


class HTTPClientPlugin(InitPlugin):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.lifespan.append(self._lifespan)
        app_config.dependencies["http_client"] = Provide(provide_http_client, sync_to_thread=False)
        return app_config

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncGenerator[None]:
        client = build_http_client(self._settings)
        app.state.http_client = client
        try:
            yield
        finally:
            await client.aclose()
