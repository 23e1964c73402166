"""`GET /health`: liveness for load balancers; no key needed, says nothing about configuration."""

from litestar import get


@get("/health", operation_id="health", tags=["Health"], sync_to_thread=False, summary="Liveness check")
def health() -> dict[str, str]:
    return {"status": "ok"}
