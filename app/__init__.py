"""OpenDify: every Dify app as an OpenAI model. `create_app()` is what `litestar run` discovers."""

import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.plugins.prometheus import PrometheusConfig
from litestar.static_files import create_static_files_router

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
from app.plugins.metrics import LeanPrometheusMiddleware
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
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["X-Dify-Conversation-Id", "X-Request-Id"],
    )


DOCS_ASSETS = "/docs/assets"


def _docs_assets() -> Path:
    """Swagger UI's own files, as the `swagger-ui-py` package ships them (found, not imported: nothing of it runs)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise _fail("the swagger-ui-py package is missing: reinstall the gateway (pip install .)")
    return Path(spec.origin).parent / "static"


def _docs_ui() -> SwaggerRenderPlugin:
    """Swagger UI at `/docs` and `/docs/swagger`, its scripts, styles and icon served by the gateway itself (the
    `swagger-ui-py` package ships them): the docs render on a network without internet access."""
    return SwaggerRenderPlugin(
        js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{DOCS_ASSETS}/favicon-32x32.png'>",
        path=["/", "/swagger"],
    )


def _metrics_middleware(settings: Settings) -> list[Any]:
    """Litestar's own request series (counts and latencies by route and status), with METRICS."""
    if not settings.metrics:
        return []
    config = PrometheusConfig(
        app_name="opendify",
        prefix="opendify",
        group_path=True,
        exclude=["/metrics", "/health", "/ready"],
        middleware_class=LeanPrometheusMiddleware,
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
            create_static_files_router(path=DOCS_ASSETS, directories=[_docs_assets()], include_in_schema=False),
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
            render_plugins=[_docs_ui()],
        ),
    )
