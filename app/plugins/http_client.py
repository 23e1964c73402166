"""The pooled httpx client and its transport: created at start-up, closed at shutdown, injected as `http_client`."""

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins import InitPlugin

from app.config import Settings
from app.plugins.pool import HttptoolsTransport
from app.plugins.transports import AiohttpTransport


def build_timeout(settings: Settings) -> httpx.Timeout:
    return httpx.Timeout(settings.timeout, connect=settings.connect_timeout)


def build_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    """DIFY_TRANSPORT picks the connection pool; HTTP/2 needs httpx's own (the others speak HTTP/1.1 only)."""
    if settings.dify_transport == "httptools" and not settings.dify_http2:
        return HttptoolsTransport(
            max_connections=settings.dify_max_connections, keepalive_expiry=settings.dify_keepalive
        )
    if settings.dify_transport == "aiohttp" and not settings.dify_http2:
        return AiohttpTransport(max_connections=settings.dify_max_connections, keepalive_expiry=settings.dify_keepalive)
    limits = httpx.Limits(
        max_connections=settings.dify_max_connections,
        max_keepalive_connections=settings.dify_max_connections,
        keepalive_expiry=settings.dify_keepalive,
    )
    return httpx.AsyncHTTPTransport(http2=settings.dify_http2, limits=limits, retries=1)


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
        transport = build_transport(self._settings)
        # one pool: the client (for anything that wants the full httpx API) and DifyClient share the transport
        client = httpx.AsyncClient(transport=transport, timeout=build_timeout(self._settings))
        app.state.http_transport = transport
        app.state.http_client = client
        try:
            yield
        finally:
            await client.aclose()
