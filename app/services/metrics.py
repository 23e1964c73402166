"""Gateway metrics (Prometheus), recorded at a few seams and never per chunk: each Dify request (DifyClient), each
client request once it is sent (the access record: tokens, a stream's first byte, duration and outcome), model
discovery (the registry), the conversation store (the tracker). Labels are bounded: app ids (model ids), Dify
endpoints, statuses, outcomes; never users or keys.

The series exist once per process (prometheus_client's registry); `enabled` decides whether anything is recorded
(METRICS), so a gateway without metrics pays one attribute read at each seam.
"""

import os
from typing import Any, Final

from prometheus_client import Counter, Gauge, Histogram, multiprocess

from app.services.access import Access

PREFIX: Final = "opendify"
_LATENCY: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_LONG: Final = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class _State:
    enabled = False


state = _State()

dify_requests = Counter(
    f"{PREFIX}_dify_requests", "Requests to Dify, by app, endpoint and HTTP status", ["app", "endpoint", "status"]
)
dify_seconds = Histogram(
    f"{PREFIX}_dify_request_seconds",
    "Time until Dify's response headers, by app and endpoint",
    ["app", "endpoint"],
    buckets=_LATENCY,
)
stream_first_byte = Histogram(
    f"{PREFIX}_stream_first_byte_seconds",
    "Time from the request to a stream's first bytes (its status committed), by app",
    ["app"],
    buckets=_LATENCY,
)
stream_seconds = Histogram(
    f"{PREFIX}_stream_seconds", "Streams' whole duration, by app and outcome", ["app", "outcome"], buckets=_LONG
)
streams = Counter(
    f"{PREFIX}_streams",
    "Streams by app and outcome (completed, client_gone, upstream_error, cut, shutdown)",
    ["app", "outcome"],
)
tokens = Counter(f"{PREFIX}_tokens", "Tokens Dify reported, by app and kind (prompt, completion)", ["app", "kind"])
apps = Gauge(
    f"{PREFIX}_apps",
    "Configured Dify apps by discovery state (up, failing)",
    ["state"],
    multiprocess_mode="livemostrecent",
)
store_lookups = Counter(
    f"{PREFIX}_conversation_lookups",
    "Conversation store lookups by result (hit, miss, moved_on, ambiguous, skipped, error)",
    ["result"],
)
store_errors = Counter(f"{PREFIX}_conversation_store_errors", "Conversation store calls that failed", ["operation"])
breaker_open = Gauge(
    f"{PREFIX}_conversation_store_breaker_open",
    "1 while the conversation store is left alone after a failure (answering statelessly)",
    multiprocess_mode="livemostrecent",
)


_children: dict[tuple[Any, ...], Any] = {}  # (series, label values) -> its child: labels are bounded, so is this


def _child(series: Any, *values: str) -> Any:
    """A series' child for these label values, looked up once (prometheus_client's labels() validates the values
    and takes a lock each time)."""
    key = (series, *values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = series.labels(*values)
    return child


def endpoint_of(path: str) -> str:
    """A Dify path as a bounded label: task ids and other ids replaced."""
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[-1] == "stop":
        return f"/{parts[0]}/{{task_id}}/stop"
    return "/" + "/".join(parts[:2])


def dify_request(app: str, path: str, status: int | str, seconds: float) -> None:
    if state.enabled:
        endpoint = endpoint_of(path)
        _child(dify_requests, app, endpoint, str(status)).inc()
        _child(dify_seconds, app, endpoint).observe(seconds)


def request_done(access: Access, seconds: float) -> None:
    """A client request, once its response is sent."""
    if not state.enabled or access.app is None:
        return
    if access.prompt_tokens:
        _child(tokens, access.app, "prompt").inc(access.prompt_tokens)
    if access.completion_tokens:
        _child(tokens, access.app, "completion").inc(access.completion_tokens)
    if access.stream and access.outcome is not None:
        _child(streams, access.app, access.outcome).inc()
        _child(stream_seconds, access.app, access.outcome).observe(seconds)
        if access.first_byte is not None:
            _child(stream_first_byte, access.app).observe(access.first_byte)


def discovery(up: int, failing: int) -> None:
    if state.enabled:
        _child(apps, "up").set(up)
        _child(apps, "failing").set(failing)


def lookup(result: str) -> None:
    if state.enabled:
        _child(store_lookups, result).inc()


def store_failed(operation: str, *, breaker: bool) -> None:
    if state.enabled:
        _child(store_errors, operation).inc()
        breaker_open.set(1 if breaker else 0)


def process_exits() -> None:
    """A worker stops: its live gauges leave the multiprocess aggregate (PROMETHEUS_MULTIPROC_DIR)."""
    if state.enabled and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def store_back() -> None:
    if state.enabled:
        breaker_open.set(0)
