"""`POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}` (the Responses API; also without the `/v1` prefix)."""

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody

from app.controllers.answer import JsonAnswer
from app.controllers.openapi import ERROR_RESPONSES, operation_id
from app.controllers.sse import SSE_HEADERS, EventStream
from app.errors import InvalidRequestError, NotFoundError
from app.guards import ClientKeyMiddleware, client_id_of
from app.schemas.openai.responses import ResponseDeleted, ResponseObject, ResponseRequest
from app.services.conversations import ResponseLog
from app.services.conversations.responses import not_found
from app.services.openai.responses import ResponseEvents, response_object, responses_turn
from app.services.pipeline import Pipeline

_encode = msgspec.json.Encoder().encode


class ResponsesController(Controller):
    path = "/"
    middleware = [ClientKeyMiddleware]  # noqa: RUF012  # (not a guard: see ClientKeyMiddleware)
    tags = ["Responses"]  # noqa: RUF012

    @post(
        ["/v1/responses", "/responses"],
        status_code=200,
        operation_id=operation_id("createResponse"),
        responses={200: ResponseSpec(ResponseObject, description="A `response` (non-streaming)"), **ERROR_RESPONSES},
        summary="Create a response with any Dify app (the Responses API)",
        description=(
            "OpenAI-compatible Responses API: `input` (a string or message items), `instructions`, `stream`, "
            "`store`, and `previous_response_id`, which continues the same Dify conversation (only the new input "
            "is sent). Streamed as named events (`response.created` ... `response.completed`)."
        ),
        response_description="A `response` object, or an SSE stream of response events",
    )
    async def create_response(
        self,
        data: JSONBody[ResponseRequest],
        request: Request[Any, Any, Any],
    ) -> Response[Any]:
        state = request.app.state  # (not through DI: it built a State a request)
        pipeline: Pipeline = state.pipeline
        response_log: ResponseLog = state.response_log
        client_id: str = client_id_of(request)
        conversation_id = None
        if data.previous_response_id:
            conversation_id = await response_log.continued(data.previous_response_id, client_id, data.user, data.model)
            if conversation_id is None:
                raise InvalidRequestError(
                    f"The model `{data.model}` keeps no conversations (a workflow or text generator app): "
                    "`previous_response_id` cannot continue it; send the whole input instead.",
                    param="previous_response_id",
                    code="previous_response_unsupported",
                )
        turn = responses_turn(data, conversation_id=conversation_id)
        keep = data.store is not False

        async def kept(response: ResponseObject, conversation: str | None) -> None:
            if keep:
                await response_log.keep(
                    response.id,
                    _encode(response),
                    client_id=client_id,
                    user=data.user,
                    model=data.model,
                    conversation_id=conversation,
                )

        try:
            if turn.stream:
                encoder = ResponseEvents(data)

                async def finished(_: str, conversation: str | None) -> None:
                    if encoder.response is not None:
                        await kept(encoder.response, conversation)

                outcome = await pipeline.complete(turn, client_id, encoder, finished=finished)
                assert outcome.relay is not None  # noqa: S101  # (streamed)
                return EventStream(outcome.relay, headers=SSE_HEADERS)
            outcome = await pipeline.complete(turn, client_id)
        except NotFoundError as exc:
            if data.previous_response_id and exc.code == "conversation_not_found":  # Dify deleted it since
                raise not_found(data.previous_response_id, "previous_response_id") from exc
            raise
        assert outcome.answer is not None  # noqa: S101  # (not streamed: a whole answer)
        response = response_object(outcome.answer, data)
        await kept(response, outcome.conversation_id)
        return JsonAnswer(response)

    @get(
        ["/v1/responses/{response_id:str}", "/responses/{response_id:str}"],
        operation_id=operation_id("getResponse"),
        responses={200: ResponseSpec(ResponseObject, description="A kept `response`"), **ERROR_RESPONSES},
        summary="A response this client created and kept (`store` not false)",
    )
    async def get_response(
        self, response_id: FromPath[str], request: Request[Any, Any, Any], response_log: NamedDependency[ResponseLog]
    ) -> Response[bytes]:
        body = await response_log.get(response_id, client_id_of(request))
        return Response(body, media_type="application/json")

    @delete(
        ["/v1/responses/{response_id:str}", "/responses/{response_id:str}"],
        status_code=200,
        operation_id=operation_id("deleteResponse"),
        responses=ERROR_RESPONSES,
        summary="Forget a kept response: it can no longer be fetched or continued",
    )
    async def delete_response(
        self, response_id: FromPath[str], request: Request[Any, Any, Any], response_log: NamedDependency[ResponseLog]
    ) -> ResponseDeleted:
        await response_log.delete(response_id, client_id_of(request))
        return ResponseDeleted(id=response_id)
