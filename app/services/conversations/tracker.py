"""Continuing Dify conversations from OpenAI-style full histories, by content.

After each completed answer the gateway remembers `hash(scope, messages so far + answer) -> (conversation, turn)`
and `conversation -> latest turn`. A request whose history (everything before its last user message) hashes to a
remembered entry continues that Dify conversation only if the conversation is still at that turn: a regenerated
answer or an edited history would otherwise continue a conversation whose memory holds answers the client no
longer has.
"""

import hashlib
import logging
import time
from collections.abc import Callable

from app.schemas.openai import ChatMessage
from app.services.conversations.stores import ConversationStore, StoreUnavailableError
from app.services.inputs.prompt import message_text
from app.services.reasoning import without_reasoning

logger = logging.getLogger("opendify.conversations")

_ROLE = {"developer": "system"}


def _digest(*parts: str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode()
        hasher.update(len(data).to_bytes(8, "big"))  # length-prefixed: no text can pass for a message boundary
        hasher.update(data)
    return hasher.hexdigest()


AMBIGUOUS = "*"  # a history two conversations claim: it continues neither


def scope_of(client_id: str, model: str, user: str, chat: str | None = None) -> str:
    """Client key, model and `user` (and the client's chat id, when it sends one): one user can never continue
    another's conversation, and two chats of one user never share one."""
    return _digest(client_id, model, user) if chat is None else _digest(client_id, model, user, chat)


def history_hash(scope: str, messages: list[ChatMessage], answer: str | None = None) -> str:
    parts = [scope]
    for message in messages:
        text = message_text(message)
        if message.role == "assistant":  # reasoning never counts: clients keep, drop or fold it as they like
            text = without_reasoning(text)
        parts += [_ROLE.get(message.role, message.role), text.strip()]
    if answer is not None:
        parts += ["assistant", without_reasoning(answer).strip()]
    return _digest(*parts)


class Continuation:
    __slots__ = ("conversation_id", "turn")

    def __init__(self, conversation_id: str, turn: int) -> None:
        self.conversation_id = conversation_id
        self.turn = turn


class ConversationTracker:
    """Remembers and finds turns. A store failure opens a small circuit breaker: for `retry_after` seconds the
    store is not asked at all (requests are answered statelessly), then the next request tries it again."""

    def __init__(
        self, store: ConversationStore, *, retry_after: float = 15.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._retry_after = retry_after
        self._clock = clock
        self._warned_at = float("-inf")
        self._skip_until = float("-inf")

    def _degraded(self, exc: Exception) -> None:
        now = self._clock()
        self._skip_until = now + self._retry_after
        if now - self._warned_at > 30:  # one warning per 30 s while the store is down
            self._warned_at = now
            logger.warning("conversation store unavailable; answering statelessly", extra={"error": str(exc)})

    @property
    def _skipping(self) -> bool:
        return self._clock() < self._skip_until

    async def find(self, scope: str, history: list[ChatMessage]) -> Continuation | None:
        """The conversation this history continues, if it is still at the turn the history ends with."""
        if self._skipping:
            return None
        try:
            [entry] = await self._store.get_many(["h:" + history_hash(scope, history)])
            if entry is None or entry == AMBIGUOUS:
                return None
            conversation_id, _, turn = entry.partition(" ")
            [head] = await self._store.get_many(["c:" + conversation_id])
        except StoreUnavailableError as exc:
            self._degraded(exc)
            return None
        if head != turn:
            return None  # the conversation moved on (a regenerated answer, an edited history): do not reuse it
        return Continuation(conversation_id, int(turn))

    async def claim(self, found: Continuation) -> bool:
        """Move the conversation from the found turn to the next, pending until `remember` confirms it. Atomic:
        of two requests continuing the same turn at once, one wins; the other starts a new conversation."""
        if self._skipping:
            return False
        try:
            return await self._store.compare_and_set(
                "c:" + found.conversation_id, str(found.turn), f"{found.turn + 1}~"
            )
        except StoreUnavailableError as exc:
            self._degraded(exc)
            return False

    async def remember(
        self, scope: str, messages: list[ChatMessage], answer: str, conversation_id: str, turn: int
    ) -> None:
        if self._skipping:
            return
        key = "h:" + history_hash(scope, messages, answer)
        try:
            [existing] = await self._store.get_many([key])
            # two chats that began alike (no chat id to tell them apart): neither is continued by this history
            claimed = existing is not None and existing.partition(" ")[0] != conversation_id
            value = AMBIGUOUS if claimed else f"{conversation_id} {turn}"
            await self._store.set_many({key: value, "c:" + conversation_id: str(turn)})
        except StoreUnavailableError as exc:
            self._degraded(exc)

    async def close(self) -> None:
        await self._store.close()
