"""One turn of any surface, for every Dify app mode: resolve the app, check and upload files, plan the
conversation, run, and answer (a whole `Answer`, or a relay of the surface's stream encoder); the remembered turn
and the deleted-conversation retry live here."""

import functools
import hashlib
from collections.abc import Awaitable, Callable

import msgspec

from app.errors import InvalidRequestError, NotFoundError
from app.schemas.dify import DifyFile
from app.schemas.openai import ChatMessage
from app.services import access
from app.services.answer import Answer, collect
from app.services.conversations import (
    ConversationMode,
    ConversationTracker,
    MemoryStore,
    Plan,
    fold_instead,
    plan_turn,
    scope_of,
)
from app.services.dify import DifyClient
from app.services.dify.runners import RunInput, Runners
from app.services.drain import StreamDrain
from app.services.inputs import is_housekeeping, last_user_index, run_inputs
from app.services.inputs.files import FilePolicy, SentFile, check, files_of
from app.services.reasoning import ReasoningMode, ThinkSplitter
from app.services.registry import DifyApp, ModelRegistry
from app.services.relay import Encoder, EventRelay, open_relay
from app.services.structured import JsonFormat, as_json, instruction, json_format
from app.services.tools import ToolUseMode
from app.services.turn import Turn
from app.services.uploads import Uploads, stale_upload

ANONYMOUS_CLIENT = "anonymous"


@functools.lru_cache(maxsize=4096)  # (only keys that passed the check, and None: a request's sha256 saved)
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


Remember = Callable[[str, str | None], Awaitable[None]]  # (answer as the client saw it, conversation id)


def _chained(steps: list[Remember]) -> Remember | None:
    if len(steps) < 2:
        return steps[0] if steps else None

    async def chained(answer: str, conversation_id: str | None) -> None:
        for step in steps:
            await step(answer, conversation_id)

    return chained


class Outcome:
    """A whole answer (non-streaming), or the relay of a stream; and the Dify conversation it belongs to."""

    __slots__ = ("answer", "conversation_id", "relay")

    def __init__(self, conversation_id: str | None, *, answer: Answer | None = None, relay: EventRelay | None = None):
        self.answer = answer
        self.relay = relay
        self.conversation_id = conversation_id


class Pipeline:
    def __init__(
        self,
        dify: DifyClient,
        registry: ModelRegistry,
        tracker: ConversationTracker,
        mode: ConversationMode = "auto",
        *,
        raw_user: bool = False,
        drain: StreamDrain | None = None,
        reasoning: ReasoningMode = "separate",
        task_model: str | None = None,
        tool_use: ToolUseMode = "reasoning",
        progress: bool = False,
        uploads: Uploads | None = None,
        max_file_bytes: int = 15 * 1024 * 1024,
    ) -> None:
        self._runners = Runners(dify)
        self._reasoning: ReasoningMode = reasoning
        self._task_model = task_model
        self._tool_use: ToolUseMode = tool_use
        self._progress = progress
        self._uploads = uploads or Uploads(dify, MemoryStore(ttl=3600, max_entries=10_000))
        self._max_file_bytes = max_file_bytes
        self._raw_user = raw_user
        self._drain = drain or StreamDrain(0.0)
        self._registry = registry
        self._tracker = tracker
        self._mode: ConversationMode = mode

    async def complete(
        self, turn: Turn, client_id: str, encoder: Encoder | None = None, *, finished: Remember | None = None
    ) -> Outcome:
        """`encoder`: the surface's stream encoder, for a streaming turn. `finished`: the surface's own step once a
        stream's answer is complete, before its last bytes go out (a whole answer is simply returned)."""
        last = last_user_index(turn.messages)  # a malformed request is a 400 before anything else
        wanted = json_format(turn.response_format, turn.messages)
        housekeeping = is_housekeeping(turn.messages)
        # decoded and sniffed (a bad part is a 400); a UI's housekeeping is answered from the text alone
        sent = [] if housekeeping else files_of(turn.messages[last], last)
        app = await self._app_for(turn.model, housekeeping)
        noted = access.current.get()
        if noted is not None:
            noted.app, noted.mode, noted.stream = app.id, app.mode, bool(turn.stream and encoder is not None)
        user = dify_user(turn.user or turn.forwarded_user, client_id, raw=self._raw_user)
        files = await self._files(app, user, sent)  # checked, then uploaded: before a conversation is claimed
        # a UI's housekeeping, and workflow and text generator apps (no Dify conversation): every call stands alone
        stateless = housekeeping or app.stateless
        explicit = None if stateless else turn.conversation_id
        mode: ConversationMode = "stateless" if stateless else turn.mode or self._mode
        # (the scope's hash is only needed where a turn may be found or remembered by its history)
        scope = scope_of(client_id, app.id, user, turn.chat_id) if mode == "auto" and not explicit else ""
        plan = await plan_turn(
            turn.messages, app, mode=mode, tracker=self._tracker, scope=scope, explicit_conversation=explicit
        )
        run = functools.partial(self._run, app, turn, user, wanted=wanted, encoder=encoder, finished=finished)
        try:
            try:
                return await run(plan, files)
            except InvalidRequestError as exc:
                if not (files and stale_upload(exc) and self._uploads.reused(files)):
                    raise
                # Dify no longer knows an upload this gateway reused: upload afresh, and run the same turn again
                files = await self._files(app, user, sent, fresh=True)
                return await run(plan, files)
        except NotFoundError as exc:
            if plan.continued:  # the remembered conversation is gone from Dify: start over, history folded in
                return await run(fold_instead(turn.messages, app, plan), files)
            if explicit and exc.code == "conversation_not_found":
                raise NotFoundError(
                    f"Dify has no conversation `{explicit}` for this app and user.",
                    code="conversation_not_found",
                    param="conversation_id",
                ) from exc
            raise

    async def _app_for(self, model: str, housekeeping: bool) -> DifyApp:
        """The app that answers: the task app for housekeeping when TASK_MODEL is set, else the requested one."""
        if housekeeping and self._task_model is not None:
            task_app = await self._registry.resolve(self._task_model)
            if task_app is not None:
                return task_app
        return await self._registry.require(model)

    async def _run(
        self,
        app: DifyApp,
        turn: Turn,
        user: str,
        plan: Plan,
        files: list[DifyFile],
        *,
        wanted: JsonFormat | None,
        encoder: Encoder | None,
        finished: Remember | None,
    ) -> Outcome:
        query = plan.prompt.query if wanted is None else instruction(wanted, plan.prompt.query)
        gateway = dict(plan.inputs)
        if app.query_variable is not None:
            gateway[app.query_variable] = query
        if app.file_input is not None and files:  # a workflow's file input takes the files, not `sys.files`
            mappings = [msgspec.to_builtins(file) for file in files]
            gateway[app.file_input.variable] = mappings[0] if app.file_input.kind == "file" else mappings
            files = []
        if plan.conversation_id is None:
            inputs = run_inputs(app.form, turn.inputs, gateway)
        else:  # Dify keeps a conversation's inputs from its first turn
            inputs = {**gateway, **(turn.inputs or {})}
        run = RunInput(
            query=query,
            inputs=inputs,
            user=user,
            conversation_id=plan.conversation_id,
            files=files or None,
            auto_generate_name=plan.auto_generate_name,
        )
        remember = self._remember(plan, turn.messages)
        streaming = turn.stream and encoder is not None
        stream = await self._runners.for_mode(app.mode).run(app, run, stream=streaming)
        stream.tap(ThinkSplitter(self._reasoning, self._tool_use, progress=self._progress).feed)
        if encoder is not None and streaming:
            steps = [step for step in (remember, finished) if step is not None]
            relay = await open_relay(stream, encoder, drain=self._drain, on_finished=_chained(steps))
            # a keep-alive can commit the stream before any event named the conversation: fall back to the plan's
            return Outcome(relay.conversation_id or plan.conversation_id, relay=relay)
        answer = await collect(stream)
        noted = access.current.get()
        if noted is not None:
            noted.prompt_tokens, noted.completion_tokens = answer.usage.prompt_tokens, answer.usage.completion_tokens
            noted.task_id = stream.task_id
        if wanted is not None:  # JSON mode: the whole answer is the JSON it holds (streams relay the text as written)
            answer.text = as_json(answer.text, wanted)
        if remember is not None and answer.conversation_id:
            await remember(answer.text, answer.conversation_id)
        return Outcome(answer.conversation_id, answer=answer)

    def _remember(self, plan: Plan, messages: list[ChatMessage]) -> Remember | None:
        scope = plan.scope
        if scope is None:
            return None

        async def remember(answer: str, conversation_id: str | None) -> None:
            if conversation_id:
                await self._tracker.remember(scope, messages, answer, conversation_id, plan.turn)

        return remember

    async def _files(self, app: DifyApp, user: str, sent: list[SentFile], *, fresh: bool = False) -> list[DifyFile]:
        """The last user message's files, checked against what the app (or its workflow file input) accepts, then
        referenced as Dify files (uploads deduplicated)."""
        if not sent:
            return []
        policy = app.files
        if app.file_input is not None and app.file_input.accepts is not None:
            policy = FilePolicy(known=True, rule=app.file_input.accepts, sizes=app.files.sizes)
        types = check(sent, policy, max_bytes=self._max_file_bytes, app=app.id)
        return await self._uploads.dify_files(app, user, sent, types, fresh=fresh)
