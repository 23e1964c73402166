"""`POST /v1/completions` (legacy text completions; also served without the `/v1` prefix)."""

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody

from app.controllers.answer import JsonAnswer
from app.controllers.openapi import ERROR_RESPONSES, operation_id
from app.controllers.sse import SSE_HEADERS, EventStream
from app.guards import ClientKeyMiddleware, client_id_of
from app.schemas.openai import CompletionRequest, TextCompletion
from app.services.openai.completions import completion_encoder, completion_turn, text_completion
from app.services.pipeline import Pipeline


class CompletionsController(Controller):
    path = "/"
    middleware = [ClientKeyMiddleware]  # noqa: RUF012  # (not a guard: see ClientKeyMiddleware)
    tags = ["Completions"]  # noqa: RUF012

    @post(
        ["/v1/completions", "/completions"],
        status_code=200,
        operation_id=operation_id("createCompletion"),
        responses={
            200: ResponseSpec(TextCompletion, description="A `text_completion` (non-streaming)"),
            **ERROR_RESPONSES,
        },
        summary="Complete a prompt with any Dify app (legacy completions)",
        description=(
            "OpenAI-compatible legacy completions. The prompt is the app's query, in a new run each time (no "
            "conversation). With `stream: true` the answer is sent as `text_completion` server-sent events ending "
            "with `data: [DONE]`."
        ),
        response_description="A `text_completion` object, or an SSE stream of them",
    )
    async def create_completion(
        self,
        data: JSONBody[CompletionRequest],
        request: Request[Any, Any, Any],
    ) -> Response[Any]:
        pipeline: Pipeline = request.app.state.pipeline  # (not through DI: it built a State a request)
        turn = completion_turn(data)
        encoder = completion_encoder(data) if turn.stream else None
        outcome = await pipeline.complete(turn, client_id_of(request), encoder)
        if outcome.relay is not None:
            return EventStream(outcome.relay, headers=SSE_HEADERS)
        assert outcome.answer is not None  # noqa: S101  # (not streamed: a whole answer)
        return JsonAnswer(text_completion(outcome.answer, data))
