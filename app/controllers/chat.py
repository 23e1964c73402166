"""`POST /v1/chat/completions` (also served without the `/v1` prefix)."""

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.datastructures import ResponseHeader
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody

from app.controllers.answer import JsonAnswer
from app.controllers.openapi import ERROR_RESPONSES, operation_id
from app.controllers.sse import SSE_HEADERS, EventStream
from app.guards import ClientKeyMiddleware, client_id_of
from app.schemas.openai import ChatCompletion, ChatCompletionRequest
from app.services.openai import chat_completion, chat_encoder, chat_turn
from app.services.pipeline import Pipeline

CONVERSATION_HEADER = "X-Dify-Conversation-Id"


class ChatController(Controller):
    path = "/"
    middleware = [ClientKeyMiddleware]  # noqa: RUF012  # (not a guard: see ClientKeyMiddleware)
    tags = ["Chat"]  # noqa: RUF012

    @post(
        ["/v1/chat/completions", "/chat/completions"],
        status_code=200,
        operation_id=operation_id("createChatCompletion"),
        responses={
            200: ResponseSpec(ChatCompletion, description="A `chat.completion` (non-streaming)"),
            **ERROR_RESPONSES,
        },
        response_headers=[
            ResponseHeader(
                name=CONVERSATION_HEADER,
                documentation_only=True,
                description="The Dify conversation this answer belongs to; send it back to continue it explicitly.",
            )
        ],
        summary="Chat with a Dify chat, agent or chatflow app",
        description=(
            "OpenAI-compatible. `model` is a Dify app (see `GET /v1/models`). With `stream: true` the answer is "
            "sent as `chat.completion.chunk` server-sent events ending with `data: [DONE]`."
        ),
        response_description="A `chat.completion` object, or an SSE stream of `chat.completion.chunk` objects",
    )
    async def create_chat_completion(
        self,
        data: JSONBody[ChatCompletionRequest],
        request: Request[Any, Any, Any],
    ) -> Response[Any]:
        # (the app's pipeline, read from its state: resolving it through Litestar's DI built a State a request)
        pipeline: Pipeline = request.app.state.pipeline
        sent = request.headers
        turn = chat_turn(
            data,
            conversation_id=sent.get(CONVERSATION_HEADER) or None,
            forwarded_user=sent.get("x-openwebui-user-id") or sent.get("x-dify-user") or None,
            chat_id=sent.get("x-openwebui-chat-id") or sent.get("x-chat-id") or None,
        )
        encoder = chat_encoder(data) if turn.stream else None
        outcome = await pipeline.complete(turn, client_id_of(request), encoder)
        headers = {CONVERSATION_HEADER: outcome.conversation_id} if outcome.conversation_id else {}
        if outcome.relay is not None:
            return EventStream(outcome.relay, headers=SSE_HEADERS | headers)
        assert outcome.answer is not None  # noqa: S101  # (not streamed: a whole answer)
        return JsonAnswer(chat_completion(outcome.answer, data.model), headers=headers)
