"""`GET /health`: liveness (no key, says nothing about configuration). `GET /ready`: readiness for load balancers and
orchestrators: 200 when apps are discovered and at least one answers (and the shared store, when Redis is
configured), else 503, with a JSON body saying what is wrong (app positions in DIFY_API_KEYS, never keys)."""

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency

from app.services.conversations import ConversationTracker
from app.services.registry import ModelRegistry


@get("/health", operation_id="health", tags=["Health"], sync_to_thread=False, summary="Liveness check")
def health() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/ready",
    operation_id="ready",
    tags=["Health"],
    summary="Readiness check",
    description="200 when the gateway can answer: Dify apps discovered, at least one reachable now, and Redis "
    "reachable when configured. 503 otherwise; the body says what is wrong.",
)
async def ready(
    model_registry: NamedDependency[ModelRegistry], conversation_tracker: NamedDependency[ConversationTracker]
) -> Response[dict[str, Any]]:
    problems: list[str] = []
    configured = model_registry.configured
    up = await model_registry.reachable() if configured else []
    if not configured:
        problems.append("no Dify apps are configured (DIFY_API_KEYS is empty)")
    elif not up:
        problems.append("no configured Dify app answers (Dify is unreachable, or every key is refused)")
    elif not model_registry.discovered:
        problems.append("no Dify app has been discovered yet")
    store = "memory"
    if conversation_tracker.shared:
        store = "ok" if await conversation_tracker.reachable() else "unreachable"
        if store == "unreachable":
            problems.append("Redis (REDIS_URL) is unreachable")
    body: dict[str, Any] = {
        "status": "unready" if problems else "ready",
        "apps": {
            "configured": configured,
            "discovered": model_registry.discovered,
            "reachable": len(up),
            "unreachable": [i + 1 for i in range(configured) if i not in up],  # positions in DIFY_API_KEYS
        },
        "store": store,
        "problems": problems,
    }
    return Response(body, status_code=503 if problems else 200)
