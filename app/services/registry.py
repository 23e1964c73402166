"""Model discovery: every configured Dify app key becomes one OpenAI model named after the app."""

import asyncio
import contextvars
import logging
import time

import msgspec
from cachetools import TTLCache

from app.config import APP_MODES, AppMode, DifyAppKey
from app.errors import GatewayError, model_not_found
from app.schemas.openai import Model
from app.services import metrics
from app.services.dify import DifyClient
from app.services.inputs.files import UNKNOWN_POLICY, FilePolicy, policy_of
from app.services.inputs.variables import FormInput, file_input, form_of, query_variable

logger = logging.getLogger("opendify.models")

CHAT_MODES: frozenset[str] = frozenset({"chat", "agent-chat", "advanced-chat", "agent"})
STATELESS_MODES: frozenset[str] = frozenset({"workflow", "completion"})  # no Dify conversation: every call stands alone


class DifyApp(msgspec.Struct, frozen=True, kw_only=True):
    """A discovered app. `key` is the Dify app key: never logged, never shown."""

    id: str
    name: str
    description: str | None
    mode: AppMode | None
    system_variable: str | None = None  # the app's input variable that takes the system prompt, if it has one
    form: tuple[FormInput, ...] = ()  # the app's input form (GET /parameters)
    query_variable: str | None = None  # workflow and completion apps: the input that takes the user's text
    output_key: str | None = None  # workflow apps: the output shown when nothing was streamed (configured)
    files: FilePolicy = UNKNOWN_POLICY  # how the app takes files (`file_upload`, GET /parameters)
    file_input: FormInput | None = None  # workflow apps: the file input that takes the request's files
    key: str
    position: int
    created: int

    @property
    def stateless(self) -> bool:
        return self.mode in STATELESS_MODES

    def to_model(self) -> Model:
        return Model(
            id=self.id,
            created=self.created,
            name=self.name,
            description=self.description,
            mode=self.mode,
            query_variable=msgspec.UNSET if self.query_variable is None else self.query_variable,
        )


class DiscoveredApp(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str | None
    mode: AppMode | None
    created: int
    form: tuple[FormInput, ...] = ()
    files: FilePolicy = UNKNOWN_POLICY


def assign_ids(found: dict[int, DiscoveredApp], configured: dict[int, str] | None = None) -> dict[str, int]:
    """Model id -> key position. An id set in configuration (`:id=`) is used as it is; otherwise the first app
    (in configuration order) keeps its name, and later ones with the same name get `-2`, `-3`, ... so ids are
    distinct and do not depend on discovery timing."""
    ids: dict[str, int] = {}
    configured = configured or {}
    for position in sorted(found):
        base = configured.get(position) or found[position].name.strip() or f"dify-app-{position + 1}"
        candidate, suffix = base, 2
        while candidate in ids:
            candidate = f"{base}-{suffix}"
            suffix += 1
        ids[candidate] = position
    return ids


class ModelRegistry:
    """Caches `/info` per key with a TTL; stale entries are refreshed in the background, failures retried later."""

    def __init__(
        self,
        dify: DifyClient,
        keys: tuple[DifyAppKey, ...],
        *,
        ttl: float,
        retry_after: float,
        system_prompt_variable: str = "system_prompt",
    ) -> None:
        self._dify = dify
        self._system_variable = system_prompt_variable
        self._keys = keys
        size = max(len(keys), 1)
        self._fresh: TTLCache[int, bool] = TTLCache(maxsize=size, ttl=ttl)
        self._failed: TTLCache[int, bool] = TTLCache(maxsize=size, ttl=retry_after)
        self._found: dict[int, DiscoveredApp] = {}
        self._apps: dict[str, DifyApp] = {}
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None
        self._next_check = 0.0
        self._probe: tuple[float, list[int]] | None = None  # (when, the positions that answered)
        self._probing = asyncio.Lock()

    @property
    def configured(self) -> int:
        return len(self._keys)

    @property
    def discovered(self) -> int:
        return len(self._apps)

    async def reachable(self, fresh_for: float = 1.0) -> list[int]:
        """The positions of the configured apps that answer `/info` now (asked at most every `fresh_for` seconds,
        concurrently; a probe under way is shared): for readiness. An app that answers but was never discovered is
        discovered on the way."""
        async with self._probing:
            now = time.monotonic()
            if self._probe is not None and now - self._probe[0] < fresh_for:
                return self._probe[1]
            answers = await asyncio.gather(*(self._dify.info(key.key) for key in self._keys), return_exceptions=True)
            up = [i for i, answer in enumerate(answers) if not isinstance(answer, BaseException)]
            self._probe = (now, up)
            metrics.discovery(len(up), len(self._keys) - len(up))
        if any(i not in self._found for i in up):
            for i in up:
                self._failed.pop(i, None)  # it answers now: no need to wait out the retry pause
            await self.refresh([i for i in up if i not in self._found])
        return up

    @property
    def undiscovered(self) -> int:
        """Configured apps whose name is still unknown (Dify unreachable, or the key rejected)."""
        return len(self._keys) - len(self._found)

    def _due(self) -> list[int]:
        return [i for i in range(len(self._keys)) if i not in self._fresh and i not in self._failed]

    async def refresh(self, positions: list[int] | None = None) -> None:
        async with self._lock:
            due = (
                self._due()
                if positions is None
                else [i for i in positions if i not in self._fresh and i not in self._failed]
            )
            if not due:
                return
            results = await asyncio.gather(*(self._discover(i) for i in due))
            for position, result in zip(due, results, strict=True):
                if result is None:
                    self._failed[position] = True
                else:
                    self._found[position] = result
                    self._fresh[position] = True
            self._rebuild()

    async def _discover(self, position: int) -> DiscoveredApp | None:
        app_key = self._keys[position]
        try:
            info = await self._dify.info(app_key.key)
            known = self._found.get(position)
            mode: AppMode | None = app_key.mode or _mode(info.mode) or (known.mode if known else None)
            if mode is None:
                mode = await self._dify.probe_mode(app_key.key)
        except GatewayError as exc:
            # the key stays out of logs: entries are named by their position in DIFY_API_KEYS
            logger.warning(
                "Dify app discovery failed; will retry",
                extra={"dify_key_position": position + 1, "status": exc.status_code, "error": exc.message},
            )
            return None
        except Exception as exc:  # noqa: BLE001  # a background task: a fault must be logged, never lost
            # not a Dify answer: a bug or a transport fault outside httpx's tree. Named by type only, since such a
            # message may quote a request header (the key)
            logger.error(
                "Dify app discovery failed unexpectedly; will retry",
                extra={"dify_key_position": position + 1, "error": type(exc).__name__},
            )
            return None
        created = known.created if known else int(time.time())
        form, files = await self._read_parameters(app_key.key, known)
        return DiscoveredApp(
            name=info.name, description=info.description, mode=mode, created=created, form=form, files=files
        )

    async def _read_parameters(self, key: str, known: DiscoveredApp | None) -> tuple[tuple[FormInput, ...], FilePolicy]:
        try:
            parameters = await self._dify.parameters(key)
        except GatewayError:
            # not fatal: the prompt is folded into the query, inputs and files unchecked (Dify decides)
            return (known.form, known.files) if known else ((), UNKNOWN_POLICY)
        return form_of(parameters), policy_of(parameters.file_upload, parameters.system_parameters)

    def _app(self, model_id: str, position: int) -> DifyApp:
        found, configured = self._found[position], self._keys[position]
        variables = {field.variable for field in found.form}
        stateless = found.mode in STATELESS_MODES
        return DifyApp(
            id=model_id,
            name=found.name,
            description=found.description,
            mode=found.mode,
            system_variable=self._system_variable if self._system_variable in variables else None,
            form=found.form,
            query_variable=query_variable(found.form, configured.input_variable) if stateless else None,
            output_key=configured.output_key,
            # the New Agent takes files whatever its (chat-only, default) file settings say: Dify appends them to its
            # prompt (dify-current.md §6.12), so Dify decides
            files=UNKNOWN_POLICY if found.mode == "agent" else found.files,
            file_input=file_input(found.form, configured.file_variable) if found.mode == "workflow" else None,
            key=configured.key,
            position=position,
            created=found.created,
        )

    def _rebuild(self) -> None:
        configured = {i: key.model_id for i, key in enumerate(self._keys) if key.model_id}
        ids = assign_ids(self._found, configured)
        self._apps = {model_id: self._app(model_id, position) for model_id, position in ids.items()}
        self._dify.app_names = {app.key: app.id for app in self._apps.values()}
        metrics.discovery(len(self._found), sum(1 for i in range(len(self._keys)) if i in self._failed))

    async def refresh_logged(self) -> None:
        """`refresh` for a background task: nothing it raises is left to asyncio's plain-text traceback."""
        try:
            await self.refresh()
        except Exception as exc:  # noqa: BLE001  # a background task: a fault must be logged, never lost
            logger.error("Dify app discovery failed unexpectedly", extra={"error": type(exc).__name__})

    def _refresh_soon(self) -> None:
        """On the request path: at most one cheap check a second, the refresh itself in the background."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + 1.0
        if (self._background is None or self._background.done()) and self._due():
            # in a context of its own: the request that happened to trigger it lends it no request id
            self._background = asyncio.create_task(self.refresh_logged(), context=contextvars.Context())

    async def all_apps(self) -> list[DifyApp]:
        if any(i not in self._found for i in self._due()):
            await self.refresh()
        else:
            self._refresh_soon()
        return sorted(self._apps.values(), key=lambda app: app.position)

    async def require(self, model_id: str) -> DifyApp:
        """The app serving `model_id`, or the right error: 404 `model_not_found`, or 502 while apps are undiscovered."""
        app = await self.resolve(model_id)
        if app is None:
            raise model_not_found(model_id, self.undiscovered)
        return app

    async def resolve(self, model_id: str) -> DifyApp | None:
        app = self._apps.get(model_id)
        if app is not None:
            self._refresh_soon()
            return app
        never_seen = [i for i in self._due() if i not in self._found]
        if never_seen:
            await self.refresh(never_seen)
        return self._apps.get(model_id)

    async def close(self) -> None:
        if self._background is not None and not self._background.done():
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)


def _mode(value: str | None) -> AppMode | None:
    if value in APP_MODES:
        return value
    return None
