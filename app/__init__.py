"""OpenDify: every Dify app as an OpenAI model. `create_app()` is what `litestar run` discovers."""

import logging
import os
import sys
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.plugins.prometheus import PrometheusConfig

from app.config import ConfigError, Settings, is_loopback, load_settings
from app.controllers.audio import AudioController
from app.controllers.chat import ChatController
from app.controllers.completions import CompletionsController
from app.controllers.health import health, ready
from app.controllers.metrics import MetricsController
from app.controllers.models import ModelsController
from app.controllers.responses import ResponsesController
from app.error_handlers import EXCEPTION_HANDLERS
from app.log import configure_logging
from app.plugins.access import AccessMiddleware
from app.plugins.cli import ServerCLIPlugin
from app.plugins.http_client import HTTPClientPlugin
from app.plugins.services import ServicesPlugin
from app.request import GatewayRequest
from app.services import metrics

__version__ = "0.1.0"

logger = logging.getLogger("opendify")


def _cli_host(argv: list[str]) -> str | None:
    """The `--host/-H` given to `litestar run`, which the CLI does not pass on to the app."""
    for index, arg in enumerate(argv):
        if arg in ("--host", "-H") and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--host="):
            return arg.split("=", 1)[1]
        if arg.startswith("-H") and len(arg) > 2:  # click's attached short form, `-H0.0.0.0`
            return arg[2:].removeprefix("=")
    return None


def bind_host(settings: Settings) -> str:
    return _cli_host(sys.argv) or os.environ.get("LITESTAR_HOST") or settings.server_host


def _fail(message: str) -> SystemExit:
    sys.stderr.write(f"opendify: configuration error: {message}\n")
    return SystemExit(2)


def _cors(settings: Settings) -> CORSConfig | None:
    """Browser clients (NextChat, LobeChat client mode) need preflights answered; off unless origins are set."""
    if not settings.cors_allow_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_allow_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["X-Dify-Conversation-Id"],
    )


def _metrics_middleware(settings: Settings) -> list[Any]:
    """Litestar's own request series (counts and latencies by route and status), with METRICS."""
    if not settings.metrics:
        return []
    config = PrometheusConfig(
        app_name="opendify", prefix="opendify", group_path=True, exclude=["/metrics", "/health", "/ready"]
    )
    return [config.middleware]


def create_app(settings: Settings | None = None) -> Litestar:
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            raise _fail(str(exc)) from None
        host = bind_host(settings)
        if not settings.auth_required and not is_loopback(host):
            raise _fail(
                f"VALID_API_KEYS is empty and the gateway would listen on {host}: set VALID_API_KEYS, "
                "or bind to a loopback address (127.0.0.1)"
            )
    configure_logging(settings.log_level)
    metrics.state.enabled = settings.metrics
    if not settings.auth_required:
        logger.warning("VALID_API_KEYS is empty: any local client may call the gateway (loopback only)")
    return Litestar(
        route_handlers=[
            ChatController,
            CompletionsController,
            ResponsesController,
            AudioController,
            ModelsController,
            health,
            ready,
            *([MetricsController] if settings.metrics else []),
        ],
        plugins=[HTTPClientPlugin(settings), ServicesPlugin(settings), ServerCLIPlugin(settings)],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_request_body,
        middleware=[DefineMiddleware(AccessMiddleware, log=settings.access_log), *_metrics_middleware(settings)],
        request_class=GatewayRequest,
        cors_config=_cors(settings),
        state=State({"settings": settings}),
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title="OpenDify",
            version=__version__,
            description="OpenAI-compatible gateway in front of Dify apps.",
            path="/docs",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
    )
