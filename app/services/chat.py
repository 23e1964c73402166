"""Chat completions for Dify chat, agent-chat and advanced-chat (chatflow) apps."""

import base64
import binascii
import hashlib
from collections.abc import Awaitable, Callable
from functools import partial

import anyio

from app.errors import InvalidRequestError, NotFoundError, model_not_found
from app.schemas.dify import ChatMessageRequest, DifyFile
from app.schemas.openai import AssistantMessage, ChatCompletion, ChatCompletionRequest, ChatMessage, Choice, Usage
from app.services.chunks import AnswerState, StreamTranslator, usage_from_dify
from app.services.conversations import ConversationTracker, scope_of
from app.services.conversations.planner import ConversationMode, Plan, fold_instead, plan_turn
from app.services.dify import DifyClient
from app.services.dify.stream import dify_event_batches, dify_events
from app.services.drain import StreamDrain
from app.services.inputs.prompt import Prompt, last_user_index
from app.services.registry import CHAT_MODES, DifyApp, ModelRegistry
from app.services.streaming import ChatStream, translate_batch

ANONYMOUS_CLIENT = "anonymous"
STOP_TIMEOUT = 5.0  # seconds a stop request may take; it runs shielded from cancellation


def client_id_for(api_key: str | None) -> str:
    """A stable, non-reversible id for a client key: safe to send to Dify as part of `user`."""
    if not api_key:
        return ANONYMOUS_CLIENT
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def dify_user(user: str | None, client_id: str, *, raw: bool = False) -> str:
    """Dify's `user`, scoped to the client key: Dify checks that a conversation belongs to the `user` continuing it,
    so two keys must never share one. `raw` (DIFY_RAW_USER, single-tenant) sends the client's `user` as it is."""
    if user and raw:
        return user
    scoped = f"opendify-{client_id}"
    return f"{scoped}:{user}" if user else scoped


def _decode_data_url(url: str) -> tuple[str, bytes]:
    header, _, payload = url.partition(",")
    mime_type = header[5:].split(";", 1)[0] or "application/octet-stream"
    if not mime_type.startswith("image/"):
        # an image_url part holds an image; documents are not uploaded under an image's name
        raise InvalidRequestError(
            f"An image_url data: URL must hold an image (image/*), not {mime_type[:100]}",
            param="messages",
            code="invalid_value",
        )
    if ";base64" not in header:
        raise InvalidRequestError("Inline images must be base64 data: URLs", param="messages", code="invalid_value")
    try:
        return mime_type, base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise InvalidRequestError(
            "An inline image is not valid base64", param="messages", code="invalid_value"
        ) from exc


Remember = Callable[[str, str], Awaitable[None]]  # (answer as the client saw it, conversation id)


class ChatOutcome:
    __slots__ = ("body", "conversation_id")

    def __init__(self, body: ChatCompletion | ChatStream, conversation_id: str | None) -> None:
        self.body = body
        self.conversation_id = conversation_id


class ChatService:
    def __init__(
        self,
        dify: DifyClient,
        registry: ModelRegistry,
        tracker: ConversationTracker,
        mode: ConversationMode = "auto",
        *,
        raw_user: bool = False,
        drain: StreamDrain | None = None,
    ) -> None:
        self._dify = dify
        self._raw_user = raw_user
        self._drain = drain or StreamDrain(0.0)
        self._registry = registry
        self._tracker = tracker
        self._mode: ConversationMode = mode

    async def complete(
        self, request: ChatCompletionRequest, client_id: str, conversation_id: str | None = None
    ) -> ChatOutcome:
        last_user_index(request.messages)  # a malformed request is a 400 before anything else
        app = await self._registry.resolve(request.model)
        if app is None:
            raise model_not_found(request.model, self._registry.undiscovered)
        if app.mode is not None and app.mode not in CHAT_MODES:
            raise InvalidRequestError(
                f"The model `{app.id}` is a Dify {app.mode} app; chat completions serve chat, agent and chatflow apps.",
                param="model",
                code="unsupported_model",
            )
        user = dify_user(request.user, client_id, raw=self._raw_user)
        explicit = conversation_id or request.conversation_id
        plan = await plan_turn(
            request.messages,
            app,
            mode=self._mode,
            tracker=self._tracker,
            scope=scope_of(client_id, app.id, user),
            explicit_conversation=explicit,
        )
        try:
            return await self._run(app, request, user, plan)
        except NotFoundError as exc:
            if plan.continued:  # the remembered conversation is gone from Dify: start over, history folded in
                return await self._run(app, request, user, fold_instead(request.messages, app, plan))
            if explicit and exc.code == "conversation_not_found":
                raise NotFoundError(
                    f"Dify has no conversation `{explicit}` for this app and user.",
                    code="conversation_not_found",
                    param="conversation_id",
                ) from exc
            raise

    async def _run(self, app: DifyApp, request: ChatCompletionRequest, user: str, plan: Plan) -> ChatOutcome:
        files = await self._files(app, user, plan.prompt)
        streaming = bool(request.stream)
        dify_request = ChatMessageRequest(
            query=plan.prompt.query,
            inputs=plan.inputs,
            user=user,
            response_mode="streaming" if streaming or app.mode == "agent-chat" else "blocking",
            conversation_id=plan.conversation_id,
            files=files or None,
            auto_generate_name=plan.auto_generate_name,
        )
        remember = self._remember(plan, request.messages)
        if streaming:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            stream = await self._open_stream(app, dify_request, request.model, include_usage, remember)
            # a keep-alive can commit the stream before any event named the conversation: fall back to the plan's
            return ChatOutcome(stream, stream.conversation_id or plan.conversation_id)
        if dify_request.response_mode == "streaming":
            completion, conversation_id = await self._aggregate(app, dify_request, request.model)
        else:
            completion, conversation_id = await self._blocking(app, dify_request, request.model)
        if remember is not None and conversation_id:
            await remember(completion.choices[0].message.content or "", conversation_id)
        return ChatOutcome(completion, conversation_id)

    def _remember(self, plan: Plan, messages: list[ChatMessage]) -> Remember | None:
        scope = plan.scope
        if scope is None:
            return None

        async def remember(answer: str, conversation_id: str) -> None:
            await self._tracker.remember(scope, messages, answer, conversation_id, plan.turn)

        return remember

    async def _files(self, app: DifyApp, user: str, prompt: Prompt) -> list[DifyFile]:
        files = list(prompt.files)
        for index, url in enumerate(prompt.data_urls):
            mime_type, data = _decode_data_url(url)
            extension = mime_type.rsplit("/", 1)[-1] or "bin"
            upload_id = await self._dify.upload_file(app.key, user, f"image-{index + 1}.{extension}", mime_type, data)
            files.append(DifyFile(type="image", transfer_method="local_file", upload_file_id=upload_id))
        return files

    async def _blocking(
        self, app: DifyApp, dify_request: ChatMessageRequest, model: str
    ) -> tuple[ChatCompletion, str | None]:
        message = await self._dify.chat_blocking(app.key, dify_request)
        usage = usage_from_dify(message.metadata.usage if message.metadata else None)
        completion = _completion(message.message_id or message.id, message.created_at, model, message.answer, usage)
        return completion, message.conversation_id

    async def _aggregate(
        self, app: DifyApp, dify_request: ChatMessageRequest, model: str
    ) -> tuple[ChatCompletion, str | None]:
        """Agent apps cannot answer in blocking mode: read their stream to the end and answer at once."""
        response = await self._dify.chat_stream(app.key, dify_request)
        state = AnswerState()
        try:
            async for event in dify_events(response):
                if event is not None:
                    state.apply(event)
                    if state.done:
                        break
            else:
                state.ended = True  # Dify closed the stream: its task is over
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()
                await self._stop_unless_over(app, state, user=dify_request.user)
        if not state.done:
            raise state.incomplete_error()
        completion = _completion(state.message_id or "", state.created, model, state.answer, state.usage)
        return completion, state.conversation_id

    async def _stop_unless_over(self, app: DifyApp, state: AnswerState, *, user: str) -> None:
        """A Dify task this gateway stopped listening to would otherwise run (and bill) to its end."""
        if not state.ended and state.task_id is not None:
            with anyio.move_on_after(STOP_TIMEOUT):
                await self._dify.stop_chat(app.key, state.task_id, user)

    async def _open_stream(
        self,
        app: DifyApp,
        dify_request: ChatMessageRequest,
        model: str,
        include_usage: bool,
        remember: Remember | None,
    ) -> ChatStream:
        """Read ahead to the first visible output before committing to a 200: a failure Dify reports at once is
        then a real HTTP error. A keep-alive ping commits early so slow agents still stream promptly."""
        response = await self._dify.chat_stream(app.key, dify_request)
        translator = StreamTranslator(model, include_usage)
        batches = dify_event_batches(response)
        head = b""
        try:
            async for batch in batches:
                head, error = translate_batch(translator, batch)
                if error is not None:
                    raise error  # nothing sent yet: a real HTTP error
                if head:
                    break
            else:
                translator.state.ended = True  # Dify closed the stream: its task is over
                raise translator.state.incomplete_error()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await response.aclose()
                await self._stop_unless_over(app, translator.state, user=dify_request.user)
            raise
        stop = partial(self._stop_unless_over, app, user=dify_request.user)
        return ChatStream(head, translator, batches, response, stop, drain=self._drain, on_complete=remember)


def _completion(message_id: str, created: int, model: str, answer: str, usage: Usage | None) -> ChatCompletion:
    return ChatCompletion(
        id=f"chatcmpl-{message_id}",
        created=created,
        model=model,
        choices=[Choice(index=0, message=AssistantMessage(content=answer), finish_reason="stop")],
        usage=usage or usage_from_dify(None),
    )
