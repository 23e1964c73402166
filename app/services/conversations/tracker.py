"""Continuing Dify conversations from OpenAI-style histories, by content.

After each completed answer the gateway remembers, for every tail of the transcript (up to WINDOW messages, and
the whole), `hash(scope, system messages, tail) -> (conversation, turn)`, and `conversation -> latest turn`. A
request whose history (everything before its last user message) hashes to a remembered entry continues that Dify
conversation only if the conversation is still at that turn: a regenerated answer or an edited history would
otherwise continue a conversation whose memory holds answers the client no longer has. Tails are what clients
that send a window of the chat (NextChat's last 4 messages, Cherry Studio's 5, LibreChat's trimmed history) match.
"""

import functools
import hashlib
import logging
import time
from collections.abc import Callable

from app.schemas.openai import ChatMessage
from app.services import metrics
from app.services.conversations.stores import ConversationStore, MemoryStore, StoreUnavailableError
from app.services.inputs.prompt import canonical_text
from app.services.reasoning import without_reasoning

logger = logging.getLogger("opendify.conversations")

_ROLE = {"developer": "system"}
_SYSTEM = frozenset({"system", "developer"})
# NextChat's memory summary, a system message it rewrites as the chat grows: never part of what is matched
_RECAPS = ("This is a summary of the chat history as a recap:", "这是历史聊天总结作为前情提要\uff1a")
WINDOW = 8  # every tail of up to this many messages is remembered: clients that send a window still match


def _digest(*parts: str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode()
        hasher.update(len(data).to_bytes(8, "big"))  # length-prefixed: no text can pass for a message boundary
        hasher.update(data)
    return hasher.hexdigest()


AMBIGUOUS = "*"  # a history two conversations claim: it continues neither


@functools.lru_cache(maxsize=4096)  # (a user's requests come with the same four strings: one digest fewer each)
def scope_of(client_id: str, model: str, user: str, chat: str | None = None) -> str:
    """Client key, model and `user` (and the client's chat id, when it sends one): one user can never continue
    another's conversation, and two chats of one user never share one."""
    return _digest(client_id, model, user) if chat is None else _digest(client_id, model, user, chat)


def _unquoted(paragraph: str) -> str:
    """A paragraph up to its first `>` line: a quote runs to the paragraph's end (markdown's lazy lines)."""
    if ">" not in paragraph:
        return paragraph
    kept = []
    for line in paragraph.split("\n"):
        if line.lstrip().startswith(">"):
            break
        kept.append(line)
    return "\n".join(kept)


def answer_text(text: str) -> str:
    """An answer as it is matched: without its reasoning, however the client kept it, and without whitespace
    (clients join the pieces of an answer differently). Think blocks go, and so do quoted blocks: NextChat sends
    reasoning (and the agent's tool use shown as reasoning) back as `> ` quotes, before or between the answer's
    paragraphs. Applied to the remembered answer too, the rule cuts both alike, genuine quotes included."""
    text = without_reasoning(text)
    if ">" in text:
        text = "\n\n".join(_unquoted(paragraph) for paragraph in text.split("\n\n"))
    return "".join(text.split())


_KEPT_TEXT = 2048  # characters: a message's digest is kept (for the next turns, which send it again) up to this


def _computed_digest(role: str, text: str) -> str:
    return _digest(role, answer_text(text) if role == "assistant" else text.strip())


_kept_digest = functools.lru_cache(maxsize=8192)(_computed_digest)


def _message_digest(role: str, text: str) -> str:
    """Every turn of a chat sends its history again, and each is looked up and remembered: the digests of short
    messages are kept rather than computed again (a long one is not kept, nor its text held on to)."""
    return (_computed_digest if len(text) > _KEPT_TEXT else _kept_digest)(role, text)


class _Transcript:
    """A history as the tracker matches it: the digests of its system messages (recaps left out) and of the
    rest, in order. Any tail of the rest, under the same system messages, is a key."""

    __slots__ = ("scope", "system", "turns")

    def __init__(self, scope: str, messages: list[ChatMessage], answer: str | None = None) -> None:
        self.scope = scope
        self.system: list[str] = []
        self.turns: list[str] = []
        for message in messages:
            text = canonical_text(message)
            if message.role in _SYSTEM:
                if not text.startswith(_RECAPS):
                    self.system.append(_message_digest("system", text))
            else:
                self.turns.append(_message_digest(_ROLE.get(message.role, message.role), text))
        if answer is not None:
            self.turns.append(_message_digest("assistant", answer))

    def key(self, size: int) -> str:
        """The key of the last `size` messages (with every system message)."""
        return "h:" + _digest(self.scope, *self.system, "", *self.turns[len(self.turns) - size :])

    def remembered_keys(self) -> list[str]:
        """Every tail up to WINDOW messages, and the whole."""
        total = len(self.turns)
        sizes = list(range(1, min(WINDOW, total) + 1))
        if total > WINDOW:
            sizes.append(total)
        return [self.key(size) for size in sizes]

    def lookup_keys(self) -> list[str]:
        """The whole history first; past WINDOW messages, its last WINDOW too (a client's trimmed window)."""
        total = len(self.turns)
        return [self.key(total)] if total <= WINDOW else [self.key(total), self.key(WINDOW)]


def history_hash(scope: str, messages: list[ChatMessage], answer: str | None = None) -> str:
    """The hash of a whole history (and the answer that ends it) within a scope, as remembered and matched."""
    transcript = _Transcript(scope, messages, answer)
    return transcript.key(len(transcript.turns))[2:]


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

    def _degraded(self, exc: Exception, operation: str) -> None:
        now = self._clock()
        self._skip_until = now + self._retry_after
        metrics.store_failed(operation, breaker=True)
        if now - self._warned_at > 30:  # one warning per 30 s while the store is down
            self._warned_at = now
            logger.warning("conversation store unavailable; answering statelessly", extra={"error": str(exc)})

    @property
    def _skipping(self) -> bool:
        if self._clock() < self._skip_until:
            return True
        if self._skip_until != float("-inf"):  # the pause is over: the store is tried again
            self._skip_until = float("-inf")
            metrics.store_back()
        return False

    async def find(self, scope: str, history: list[ChatMessage]) -> Continuation | None:
        """The conversation this history continues, if it is still at the turn the history ends with. The history
        may be the tail of what was answered (a client that sends the last few messages only)."""
        if self._skipping:
            metrics.lookup("skipped")
            return None
        try:
            entries = await self._store.get_many(_Transcript(scope, history).lookup_keys())
            entry = next((found for found in entries if found is not None), None)
            if entry is None or entry == AMBIGUOUS:
                metrics.lookup("miss" if entry is None else "ambiguous")
                return None
            conversation_id, _, turn = entry.partition(" ")
            [head] = await self._store.get_many(["c:" + conversation_id])
        except StoreUnavailableError as exc:
            self._degraded(exc, "find")
            metrics.lookup("error")
            return None
        if head != turn:
            metrics.lookup("moved_on")
            return None  # the conversation moved on (a regenerated answer, an edited history): do not reuse it
        metrics.lookup("hit")
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
            self._degraded(exc, "claim")
            return False

    async def remember(
        self, scope: str, messages: list[ChatMessage], answer: str, conversation_id: str, turn: int
    ) -> None:
        if self._skipping:
            return
        keys = _Transcript(scope, messages, answer).remembered_keys()
        value = f"{conversation_id} {turn}"
        try:
            existing = await self._store.get_many(keys)
            # a tail another conversation also ends with (two chats that began alike, with no chat id to tell
            # them apart, or a short window two chats share): it continues neither
            items = {
                key: AMBIGUOUS if old is not None and old.partition(" ")[0] != conversation_id else value
                for key, old in zip(keys, existing, strict=True)
            }
            items["c:" + conversation_id] = str(turn)
            await self._store.set_many(items)
        except StoreUnavailableError as exc:
            self._degraded(exc, "remember")

    @property
    def shared(self) -> bool:
        """Whether the store is shared (Redis), not this process's memory."""
        return not isinstance(self._store, MemoryStore)

    async def reachable(self) -> bool:
        """Whether the store answers now (the breaker aside): for readiness."""
        try:
            await self._store.ping()
        except StoreUnavailableError:
            return False
        return True

    async def close(self) -> None:
        await self._store.close()
