"""`GET /metrics` (Prometheus), with METRICS: Litestar's own request series and the gateway's (services/metrics.py).
Who may scrape it is METRICS_AUTH: `keys` (the API's keys), `token` (METRICS_TOKEN), or `open`."""

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusController

from app.config import Settings
from app.errors import AuthenticationError
from app.guards import presented_key, require_client_key


async def require_metrics_access(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    settings: Settings = connection.app.state.settings
    if settings.metrics_auth == "open":
        return
    if settings.metrics_auth == "keys":
        await require_client_key(connection, handler)
        return
    presented = presented_key(connection) or ""
    if not hmac.compare_digest(presented.encode(), (settings.metrics_token or "").encode()):
        raise AuthenticationError("Missing or incorrect metrics token: send `Authorization: Bearer <METRICS_TOKEN>`.")


class MetricsController(PrometheusController):
    path = "/metrics"
    guards = [require_metrics_access]  # noqa: RUF012
    include_in_schema = False
