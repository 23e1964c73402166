"""Remembering Dify conversations by the content of OpenAI-style histories: hashes, scopes, stores, tracker."""

import logging
from collections.abc import Iterator

import anyio
import pytest

from app.schemas.openai import ChatMessage, ContentPart
from app.services.conversations import (
    ConversationTracker,
    MemoryStore,
    StoreUnavailableError,
    history_hash,
    scope_of,
    tracker,
)
from tests.clients import nextchat_render
from tests.unit.messages import SCOPE, FailingStore, assistant, developer, system, user


class FailsOnSecondReadStore(MemoryStore):
    """Reaches the history entry, then loses the connection before reading the conversation's head."""

    def __init__(self) -> None:
        super().__init__(ttl=60, max_entries=100)
        self.reads = 0

    async def get_many(self, keys: list[str]) -> list[str | None]:
        self.reads += 1
        if self.reads > 1:
            raise StoreUnavailableError("timeout")
        return await super().get_many(keys)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def tracker_logs() -> Iterator[ListHandler]:
    """Records of the tracker's logger, whatever logging configuration other tests left behind."""
    logger = logging.getLogger("opendify.conversations")
    handler = ListHandler()
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


# history_hash


def test_history_hash_is_a_stable_sha256_hex_digest() -> None:
    history = [system("Be brief."), user("Hi")]
    first = history_hash(SCOPE, history, "Hello!")
    assert first == history_hash(SCOPE, [system("Be brief."), user("Hi")], "Hello!")
    assert len(first) == 64
    assert int(first, 16) >= 0


def test_history_hash_ignores_surrounding_whitespace_of_the_answer() -> None:
    history = [user("Hi")]
    assert history_hash(SCOPE, history, "  Hello!\n\n") == history_hash(SCOPE, history, "Hello!")


def test_history_hash_ignores_surrounding_whitespace_of_messages() -> None:
    assert history_hash(SCOPE, [user("  Hi \n")]) == history_hash(SCOPE, [user("Hi")])
    assert history_hash(SCOPE, [user("Hi"), assistant("\nHello! ")]) == history_hash(
        SCOPE, [user("Hi"), assistant("Hello!")]
    )


def test_history_hash_keeps_inner_whitespace() -> None:
    assert history_hash(SCOPE, [user("Hi there")]) != history_hash(SCOPE, [user("Hi  there")])


def test_the_remembered_answer_hashes_like_the_assistant_message_the_client_sends_back() -> None:
    """What remember() stores after turn 1 is what find() looks up on turn 2."""
    remembered = history_hash(SCOPE, [system("Be brief."), user("Hi")], "Hello!\n")
    resent = history_hash(SCOPE, [system("Be brief."), user("Hi"), assistant("Hello!")])
    assert remembered == resent


def test_developer_and_system_roles_hash_alike() -> None:
    assert history_hash(SCOPE, [developer("Be brief."), user("Hi")]) == history_hash(
        SCOPE, [system("Be brief."), user("Hi")]
    )


def test_array_content_hashes_like_the_same_string_content() -> None:
    parts = ChatMessage(role="user", content=[ContentPart(type="text", text="Hi")])
    assert history_hash(SCOPE, [parts]) == history_hash(SCOPE, [user("Hi")])


def test_history_hash_differs_for_different_content() -> None:
    assert history_hash(SCOPE, [user("Hi")], "Hello!") != history_hash(SCOPE, [user("Hi")], "Hello?")
    assert history_hash(SCOPE, [user("Hi")], "Hello!") != history_hash(SCOPE, [user("Hey")], "Hello!")
    assert history_hash(SCOPE, [system("Be brief."), user("Hi")]) != history_hash(
        SCOPE, [system("Be verbose."), user("Hi")]
    )


def test_history_hash_differs_for_a_different_order() -> None:
    assert history_hash(SCOPE, [user("one"), user("two")]) != history_hash(SCOPE, [user("two"), user("one")])
    assert history_hash(SCOPE, [user("Hi"), assistant("Hello")]) != history_hash(
        SCOPE, [assistant("Hello"), user("Hi")]
    )


def test_history_hash_differs_by_role() -> None:
    assert history_hash(SCOPE, [user("Hi")]) != history_hash(SCOPE, [assistant("Hi")])
    assert history_hash(SCOPE, [user("Hi")]) != history_hash(SCOPE, [system("Hi")])


def test_history_hash_keeps_message_boundaries() -> None:
    assert history_hash(SCOPE, [user("ab")]) != history_hash(SCOPE, [user("a"), user("b")])
    assert history_hash(SCOPE, [user("Hi")]) != history_hash(SCOPE, [user("Hi"), user("")])


def test_an_empty_answer_still_counts_as_an_answer() -> None:
    assert history_hash(SCOPE, [user("Hi")], "") != history_hash(SCOPE, [user("Hi")])


def test_history_hash_differs_by_scope() -> None:
    history = [user("Hi")]
    other = scope_of("client-2", "helper", "alice")
    assert history_hash(SCOPE, history, "Hello!") != history_hash(other, history, "Hello!")


# scope_of


def test_scope_is_stable() -> None:
    assert scope_of("client-1", "helper", "alice") == SCOPE


def test_scope_separates_client_model_and_user() -> None:
    scopes = {
        scope_of("client-1", "helper", "alice"),
        scope_of("client-2", "helper", "alice"),
        scope_of("client-1", "helper-2", "alice"),
        scope_of("client-1", "helper", "bob"),
    }
    assert len(scopes) == 4


def test_scope_keeps_field_boundaries() -> None:
    assert scope_of("ab", "c", "d") != scope_of("a", "bc", "d")
    assert scope_of("a", "bc", "d") != scope_of("a", "b", "cd")


# MemoryStore


@pytest.mark.anyio
async def test_memory_store_returns_values_in_key_order_and_none_when_missing() -> None:
    store = MemoryStore(ttl=60, max_entries=10)
    assert await store.get_many(["a", "b"]) == [None, None]
    await store.set_many({"a": "1", "b": "2"})
    assert await store.get_many(["b", "missing", "a"]) == ["2", None, "1"]
    assert await store.get_many([]) == []


@pytest.mark.anyio
async def test_memory_store_overwrites() -> None:
    store = MemoryStore(ttl=60, max_entries=10)
    await store.set_many({"c:conv": "1"})
    await store.set_many({"c:conv": "2"})
    assert await store.get_many(["c:conv"]) == ["2"]


@pytest.mark.anyio
async def test_memory_store_entries_expire_after_ttl() -> None:
    store = MemoryStore(ttl=0.02, max_entries=10)
    await store.set_many({"a": "1"})
    assert await store.get_many(["a"]) == ["1"]
    await anyio.sleep(0.05)
    assert await store.get_many(["a"]) == [None]


@pytest.mark.anyio
async def test_memory_store_refreshes_ttl_on_write() -> None:
    store = MemoryStore(ttl=0.3, max_entries=10)
    await store.set_many({"a": "1", "b": "1"})
    await anyio.sleep(0.2)
    await store.set_many({"a": "2"})
    await anyio.sleep(0.15)
    assert await store.get_many(["a", "b"]) == ["2", None]


@pytest.mark.anyio
async def test_memory_store_evicts_the_oldest_past_max_entries() -> None:
    store = MemoryStore(ttl=60, max_entries=2)
    await store.set_many({"a": "1"})
    await store.set_many({"b": "2"})
    await store.set_many({"c": "3"})
    assert await store.get_many(["a", "b", "c"]) == [None, "2", "3"]


@pytest.mark.anyio
async def test_memory_store_keeps_recently_read_entries_when_evicting() -> None:
    store = MemoryStore(ttl=60, max_entries=2)
    await store.set_many({"a": "1"})
    await store.set_many({"b": "2"})
    assert await store.get_many(["a"]) == ["1"]
    await store.set_many({"c": "3"})
    assert await store.get_many(["a", "b", "c"]) == ["1", None, "3"]


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_memory_store_never_returns_an_expired_entry_whatever_was_read_since() -> None:
    clock = _Clock()
    store = MemoryStore(ttl=10, max_entries=100, clock=clock)
    await store.set_many({"a": "1", "b": "2"})
    clock.now += 6
    assert await store.get_many(["a"]) == ["1"]  # read: now the most recently used, still written at 1000
    await store.set_many({"c": "3"})
    clock.now += 5  # a and b past their ten seconds, c not
    assert await store.get_many(["a", "b", "c"]) == [None, None, "3"]
    assert await store.compare_and_set("a", "1", "x") is False  # (gone: nothing to compare with)


@pytest.mark.anyio
async def test_memory_store_drops_expired_entries_as_it_writes() -> None:
    clock = _Clock()
    store = MemoryStore(ttl=10, max_entries=1000, clock=clock)
    await store.set_many({f"k{i}": "v" for i in range(50)})
    clock.now += 11
    await store.set_many({"fresh": "v"})
    assert len(store) == 1  # the fifty expired ones, never read again, do not stay


@pytest.mark.anyio
async def test_memory_store_close_forgets_everything() -> None:
    store = MemoryStore(ttl=60, max_entries=10)
    await store.set_many({"a": "1"})
    await store.close()
    assert await store.get_many(["a"]) == [None]


# ConversationTracker


@pytest.mark.anyio
async def test_find_returns_none_for_an_unknown_history() -> None:
    tracker = ConversationTracker(MemoryStore(ttl=60, max_entries=100))
    assert await tracker.find(SCOPE, [user("Hi"), assistant("Hello!")]) is None


@pytest.mark.anyio
async def test_find_returns_the_remembered_conversation_and_turn() -> None:
    tracker = ConversationTracker(MemoryStore(ttl=60, max_entries=100))
    await tracker.remember(SCOPE, [system("Be brief."), user("Hi")], "Hello!", "conv-1", 1)

    found = await tracker.find(SCOPE, [system("Be brief."), user("Hi"), assistant("Hello!")])

    assert found is not None
    assert found.conversation_id == "conv-1"
    assert found.turn == 1


@pytest.mark.anyio
async def test_find_tolerates_whitespace_the_client_trimmed_from_the_answer() -> None:
    tracker = ConversationTracker(MemoryStore(ttl=60, max_entries=100))
    await tracker.remember(SCOPE, [user("Hi")], "Hello!\n", "conv-1", 1)

    found = await tracker.find(SCOPE, [user("Hi"), assistant("Hello!")])

    assert found is not None
    assert found.conversation_id == "conv-1"


@pytest.mark.anyio
async def test_find_does_not_cross_scopes() -> None:
    tracker = ConversationTracker(MemoryStore(ttl=60, max_entries=100))
    await tracker.remember(SCOPE, [user("Hi")], "Hello!", "conv-1", 1)
    history = [user("Hi"), assistant("Hello!")]

    assert await tracker.find(scope_of("client-1", "helper", "bob"), history) is None
    assert await tracker.find(scope_of("client-2", "helper", "alice"), history) is None
    assert await tracker.find(scope_of("client-1", "other-model", "alice"), history) is None
    assert await tracker.find(SCOPE, history) is not None


@pytest.mark.anyio
async def test_find_returns_none_for_an_edited_history() -> None:
    tracker = ConversationTracker(MemoryStore(ttl=60, max_entries=100))
    await tracker.remember(SCOPE, [user("Hi")], "Hello!", "conv-1", 1)

    assert await tracker.find(SCOPE, [user("Hi!"), assistant("Hello!")]) is None
    assert await tracker.find(SCOPE, [user("Hi"), assistant("Hello!!")]) is None
    assert await tracker.find(SCOPE, [user("Hi")]) is None


@pytest.mark.anyio
async def test_find_returns_none_once_the_conversation_moved_to_a_later_turn() -> None:
    """A regenerated answer: the client resends turn 2's history while Dify's conversation already holds turn 2."""
    tracker = ConversationTracker(MemoryStore(ttl=60, max_entries=100))
    turn_one = [user("Hi")]
    turn_two = [user("Hi"), assistant("Hello!"), user("What is 2+2?")]
    await tracker.remember(SCOPE, turn_one, "Hello!", "conv-1", 1)
    await tracker.remember(SCOPE, turn_two, "4", "conv-1", 2)

    assert await tracker.find(SCOPE, [user("Hi"), assistant("Hello!")]) is None

    latest = await tracker.find(SCOPE, [*turn_two, assistant("4")])
    assert latest is not None
    assert latest.conversation_id == "conv-1"
    assert latest.turn == 2


@pytest.mark.anyio
async def test_a_new_conversation_for_the_same_history_does_not_disturb_the_old_one() -> None:
    """After a regenerate the history is answered in a new conversation; both are found by their own answers."""
    tracker = ConversationTracker(MemoryStore(ttl=60, max_entries=100))
    turn_two = [user("Hi"), assistant("Hello!"), user("Tell me a joke")]
    await tracker.remember(SCOPE, [user("Hi")], "Hello!", "conv-1", 1)
    await tracker.remember(SCOPE, turn_two, "joke one", "conv-1", 2)
    await tracker.remember(SCOPE, turn_two, "joke two", "conv-2", 1)

    first = await tracker.find(SCOPE, [*turn_two, assistant("joke one")])
    second = await tracker.find(SCOPE, [*turn_two, assistant("joke two")])

    assert first is not None
    assert (first.conversation_id, first.turn) == ("conv-1", 2)
    assert second is not None
    assert (second.conversation_id, second.turn) == ("conv-2", 1)


@pytest.mark.anyio
async def test_find_returns_none_when_the_head_was_evicted() -> None:
    store = MemoryStore(ttl=60, max_entries=100)
    tracker = ConversationTracker(store)
    await tracker.remember(SCOPE, [user("Hi")], "Hello!", "conv-1", 1)
    await store.close()  # loses both entries
    await store.set_many({"h:" + history_hash(SCOPE, [user("Hi")], "Hello!"): "conv-1 1"})  # the head is gone

    assert await tracker.find(SCOPE, [user("Hi"), assistant("Hello!")]) is None


@pytest.mark.anyio
async def test_find_degrades_to_none_with_one_warning_when_the_store_is_down(tracker_logs: ListHandler) -> None:
    store = FailingStore()
    clock = Clock()
    tracker = ConversationTracker(store, retry_after=15, clock=clock)
    history = [user("Hi"), assistant("Hello!")]

    assert await tracker.find(SCOPE, history) is None
    clock.now += 16  # the breaker lets the next request try again
    assert await tracker.find(SCOPE, history) is None

    assert store.calls == 2
    warnings = [r for r in tracker_logs.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].getMessage() == "conversation store unavailable; answering statelessly"
    assert getattr(warnings[0], "error", None) == "connection refused"


@pytest.mark.anyio
async def test_find_degrades_when_the_store_fails_between_reads(tracker_logs: ListHandler) -> None:
    store = FailsOnSecondReadStore()
    tracker = ConversationTracker(store)
    await tracker.remember(SCOPE, [user("Hi")], "Hello!", "conv-1", 1)

    assert await tracker.find(SCOPE, [user("Hi"), assistant("Hello!")]) is None
    assert store.reads == 2
    assert len([r for r in tracker_logs.records if r.levelno == logging.WARNING]) == 1


@pytest.mark.anyio
async def test_remember_swallows_an_unavailable_store(tracker_logs: ListHandler) -> None:
    store = FailingStore()
    clock = Clock()
    tracker = ConversationTracker(store, retry_after=5, clock=clock)

    await tracker.remember(SCOPE, [user("Hi")], "Hello!", "conv-1", 1)
    clock.now += 6
    await tracker.remember(SCOPE, [user("Hi")], "Hello!", "conv-1", 1)
    clock.now += 6
    assert await tracker.find(SCOPE, [user("Hi"), assistant("Hello!")]) is None

    assert store.calls == 3
    assert len([r for r in tracker_logs.records if r.levelno == logging.WARNING]) == 1


@pytest.mark.anyio
async def test_other_store_errors_are_not_swallowed() -> None:
    class BrokenStore(FailingStore):
        async def get_many(self, keys: list[str]) -> list[str | None]:
            raise RuntimeError("bug")

    tracker = ConversationTracker(BrokenStore())
    with pytest.raises(RuntimeError, match="bug"):
        await tracker.find(SCOPE, [user("Hi")])


@pytest.mark.anyio
async def test_tracker_close_closes_the_store() -> None:
    store = FailingStore()
    await ConversationTracker(store).close()
    assert store.closed


def test_text_cannot_pass_for_a_message_boundary() -> None:
    assert history_hash(SCOPE, [user("a\x00assistant\x00b")]) != history_hash(SCOPE, [user("a"), assistant("b")])


@pytest.mark.anyio
async def test_the_first_outage_is_logged_even_right_after_boot(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("app.services.conversations.tracker.time.monotonic", lambda: 12.0)  # a machine up for 12 s
    logger = logging.getLogger("opendify.conversations")
    monkeypatch.setattr(logger, "propagate", True)
    with caplog.at_level(logging.WARNING, logger="opendify.conversations"):
        assert await ConversationTracker(FailingStore()).find(SCOPE, [user("hi"), assistant("yo")]) is None
    assert [r.getMessage() for r in caplog.records] == ["conversation store unavailable; answering statelessly"]


@pytest.mark.anyio
async def test_after_a_failure_the_store_is_not_asked_until_retry_after_has_passed() -> None:
    store = FailingStore()
    clock = Clock()
    tracker = ConversationTracker(store, retry_after=15, clock=clock)
    history = [user("Hi"), assistant("Hello!")]

    assert await tracker.find(SCOPE, history) is None
    assert store.calls == 1
    for _ in range(5):  # the breaker is open: answered statelessly at once, the store left alone
        clock.now += 2
        assert await tracker.find(SCOPE, history) is None
        await tracker.remember(SCOPE, [user("Hi")], "Hello!", "conv-1", 1)
    assert store.calls == 1

    clock.now += 6  # 16 s after the failure: half-open, one request tries again
    assert await tracker.find(SCOPE, history) is None
    assert store.calls == 2


@pytest.mark.anyio
async def test_a_store_that_recovers_is_used_again_after_retry_after() -> None:
    class FlakyStore(MemoryStore):
        def __init__(self) -> None:
            super().__init__(ttl=60, max_entries=100)
            self.down = True

        async def get_many(self, keys: list[str]) -> list[str | None]:
            if self.down:
                raise StoreUnavailableError("timeout")
            return await super().get_many(keys)

    store = FlakyStore()
    clock = Clock()
    tracker = ConversationTracker(store, retry_after=15, clock=clock)
    history = [user("Hi"), assistant("Hello!")]
    assert await tracker.find(SCOPE, history) is None
    store.down = False
    await store.set_many({"h:" + history_hash(SCOPE, history): "conv-1 1", "c:conv-1": "1"})
    assert await tracker.find(SCOPE, history) is None  # still skipping
    clock.now += 16
    found = await tracker.find(SCOPE, history)
    assert found is not None and found.conversation_id == "conv-1"


def test_reasoning_never_counts_in_a_history() -> None:
    kept = history_hash(SCOPE, [user("Hi"), assistant("<think>hmm</think>Hello!")])
    dropped = history_hash(SCOPE, [user("Hi"), assistant("Hello!")])
    remembered = history_hash(SCOPE, [user("Hi")], "<think>other</think>Hello!")
    assert kept == dropped == remembered


# windows: clients that send the last few messages (ui-requests.md)


def _chat(turns: int) -> list[ChatMessage]:
    """A chat of `turns` answered turns: user i, assistant "answer i"."""
    messages: list[ChatMessage] = []
    for turn in range(1, turns + 1):
        messages += [user(f"question {turn}"), assistant(f"answer {turn}")]
    return messages


async def _remembered_chat(tracker: ConversationTracker, turns: int, conversation: str = "conv-1") -> None:
    chat = _chat(turns)
    for turn in range(1, turns + 1):
        await tracker.remember(SCOPE, chat[: 2 * turn - 1], f"answer {turn}", conversation, turn)


@pytest.mark.anyio
@pytest.mark.parametrize("size", range(1, 9))
async def test_any_tail_of_what_was_answered_finds_the_conversation(size: int) -> None:
    tracker = ConversationTracker(MemoryStore(ttl=60, max_entries=1000))
    await _remembered_chat(tracker, 6)
    found = await tracker.find(SCOPE, _chat(6)[-size:])
    assert found is not None
    assert (found.conversation_id, found.turn) == ("conv-1", 6)


@pytest.mark.anyio
async def test_a_tail_of_an_earlier_turn_does_not_continue_a_conversation_that_moved_on() -> None:
    tracker = ConversationTracker(MemoryStore(ttl=60, max_entries=1000))
    await _remembered_chat(tracker, 6)
    assert await tracker.find(SCOPE, _chat(5)[-3:]) is None  # a NextChat retry of turn 6 with a fresh window


@pytest.mark.anyio
async def test_a_window_with_an_edited_message_finds_nothing() -> None:
    tracker = ConversationTracker(MemoryStore(ttl=60, max_entries=1000))
    await _remembered_chat(tracker, 6)
    window = _chat(6)[-4:]
    window[1] = assistant("answer 5, edited")
    assert await tracker.find(SCOPE, window) is None


@pytest.mark.anyio
async def test_a_history_longer_than_the_window_trimmed_from_the_front_matches_on_its_last_messages() -> None:
    tracker = ConversationTracker(MemoryStore(ttl=60, max_entries=1000))
    await _remembered_chat(tracker, 8)
    trimmed = _chat(8)[-11:]  # LibreChat: the oldest messages dropped to fit the context window
    found = await tracker.find(SCOPE, trimmed)
    assert found is not None and found.turn == 8
    whole = await tracker.find(SCOPE, _chat(8))
    assert whole is not None and whole.turn == 8


@pytest.mark.anyio
async def test_a_turn_remembers_every_tail_up_to_the_window_and_the_whole() -> None:
    store = MemoryStore(ttl=60, max_entries=1000)
    tracker = ConversationTracker(store)
    await tracker.remember(SCOPE, _chat(9)[:-1], "answer 9", "conv-1", 9)  # 18 messages
    assert len(store) == 8 + 1 + 1  # tails of 1..8, the whole, the head


@pytest.mark.anyio
async def test_system_messages_count_but_nextchats_recap_does_not() -> None:
    tracker = ConversationTracker(MemoryStore(ttl=60, max_entries=1000))
    await tracker.remember(SCOPE, [system("Be brief."), user("Hi")], "Hello!", "conv-1", 1)
    recap = system("This is a summary of the chat history as a recap: the user greeted")
    assert await tracker.find(SCOPE, [system("Be brief."), recap, user("Hi"), assistant("Hello!")]) is not None
    assert await tracker.find(SCOPE, [system("Be verbose."), user("Hi"), assistant("Hello!")]) is None
    assert await tracker.find(SCOPE, [user("Hi"), assistant("Hello!")]) is None


@pytest.mark.anyio
async def test_a_short_tail_two_conversations_end_with_continues_neither() -> None:
    tracker = ConversationTracker(MemoryStore(ttl=60, max_entries=1000))
    await tracker.remember(SCOPE, [user("one"), assistant("A"), user("ok?")], "Sure.", "conv-1", 2)
    await tracker.remember(SCOPE, [user("two"), assistant("B"), user("ok?")], "Sure.", "conv-2", 2)
    assert await tracker.find(SCOPE, [user("ok?"), assistant("Sure.")]) is None
    first = await tracker.find(SCOPE, [user("one"), assistant("A"), user("ok?"), assistant("Sure.")])
    assert first is not None and first.conversation_id == "conv-1"


# NextChat sends reasoning back quoted before the answer


@pytest.mark.parametrize(
    "sent",
    [
        "> pondering\n\nThe answer.",
        "> first thought\n\n> second thought\n\nThe answer.",
        "> first thought\nstill thinking\n\n> second\n\nThe answer.",
        "<think>pondering</think>The answer.",
        "The answer.",
    ],
)
def test_quoted_reasoning_is_not_part_of_the_answer(sent: str) -> None:
    assert history_hash(SCOPE, [user("Q"), assistant(sent)]) == history_hash(SCOPE, [user("Q")], "The answer.")


def test_an_answer_with_its_own_quote_still_matches_when_reasoning_is_quoted_before_it() -> None:
    answer = "As they say:\n\n> a quote\n\nThe end."
    remembered = history_hash(SCOPE, [user("Q")], answer)
    assert history_hash(SCOPE, [user("Q"), assistant(answer)]) == remembered
    assert history_hash(SCOPE, [user("Q"), assistant("> thinking\n\n" + answer)]) == remembered
    assert history_hash(SCOPE, [user("Q")], "Other words:\n\n> a quote\n\nThe end.") != remembered


def test_answers_differing_after_the_quote_differ() -> None:
    assert history_hash(SCOPE, [user("Q"), assistant("> t\n\nYes.")]) != history_hash(
        SCOPE, [user("Q"), assistant("> t\n\nNo.")]
    )


@pytest.mark.parametrize(
    ("deltas", "answer"),
    [
        # reasoning first, in several chunks, one of them with a blank line
        ([(True, "Let me think."), (True, "\n\nStill thinking"), (False, "The answer.")], "The answer."),
        # an agent's tool use as reasoning between two pieces of text (the quote glued to the text before it)
        (
            [(False, "Let me check."), (True, "Used `clock` with {}: 19:27\n"), (False, "It is 19:27.")],
            "Let me check.It is 19:27.",
        ),
        # a tool result that had a blank line, closed up by the narrative
        ([(True, "Used `tides` with {}: overview\nThe moon pulls\n"), (False, "High tide at 6.")], "High tide at 6."),
        # multi-line reasoning (NextChat quotes only its first line: the rest are lazy lines of the quote)
        ([(True, "1. first\n2. second"), (False, "Done.")], "Done."),
    ],
)
def test_an_answer_nextchat_sends_back_matches_what_was_answered(deltas: list[tuple[bool, str]], answer: str) -> None:
    sent = nextchat_render(deltas)
    assert history_hash(SCOPE, [user("Q"), assistant(sent)]) == history_hash(SCOPE, [user("Q")], answer)


def test_a_tools_narrative_is_one_paragraph() -> None:
    from app.services.answer import ToolUse  # noqa: PLC0415
    from app.services.tools import narrative  # noqa: PLC0415

    line = narrative(ToolUse(id="t", name="tides", arguments="{}", result="overview\n\n\nThe moon pulls"))
    assert line == "Used `tides` with {}: overview\nThe moon pulls\n"


def test_message_digests_are_kept_for_short_texts_only_and_equal_either_way() -> None:
    short, long = "a short question", "x" * (tracker._KEPT_TEXT + 1)
    kept = tracker._kept_digest.cache_info().currsize
    assert tracker._message_digest("user", long) == tracker._computed_digest("user", long)
    assert tracker._kept_digest.cache_info().currsize == kept  # a long text is not held on to
    assert tracker._message_digest("user", short) == tracker._computed_digest("user", short)
    assert tracker._message_digest("assistant", "> thinking\n\nthe answer") == tracker._computed_digest(
        "assistant", "> thinking\n\nthe answer"
    )
    assert tracker._kept_digest.cache_info().currsize > kept
