"""Which Dify conversation a request goes to, and its query and inputs (CONVERSATION_MODE)."""

import asyncio

import pytest

from app.errors import InvalidRequestError
from app.schemas.openai import ChatMessage
from app.services.conversations import ConversationTracker, MemoryStore, scope_of
from app.services.conversations.planner import ConversationMode, Plan, fold_instead, plan_turn
from app.services.inputs.prompt import Prompt
from app.services.registry import DifyApp
from tests.unit.messages import SCOPE, FailingStore, assistant, developer, system, user


def make_app(system_variable: str | None = None) -> DifyApp:
    return DifyApp(
        id="helper",
        name="helper",
        description=None,
        mode="chat",
        system_variable=system_variable,
        key="app-x",
        position=0,
        created=0,
    )


class CountingStore(MemoryStore):
    """A memory store that counts lookups, to tell whether the tracker was consulted."""

    def __init__(self) -> None:
        super().__init__(ttl=60, max_entries=100)
        self.reads = 0

    async def get_many(self, keys: list[str]) -> list[str | None]:
        self.reads += 1
        return await super().get_many(keys)


def new_tracker() -> ConversationTracker:
    return ConversationTracker(MemoryStore(ttl=60, max_entries=100))


async def plan(
    messages: list[ChatMessage],
    tracker: ConversationTracker,
    *,
    app: DifyApp | None = None,
    mode: ConversationMode = "auto",
    explicit: str | None = None,
) -> Plan:
    return await plan_turn(
        messages,
        app or make_app(),
        mode=mode,
        tracker=tracker,
        scope=SCOPE,
        explicit_conversation=explicit,
    )


TURN_ONE = [system("Be brief."), user("Hi")]
ANSWER_ONE = "Hello! How can I help?"
TURN_TWO = [*TURN_ONE, assistant(ANSWER_ONE), user("What is 2+2?")]
TURN_TWO_TRANSCRIPT = "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello! How can I help?\n\nUser: What is 2+2?"


# the client names the conversation


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "stateless", "last"])
async def test_explicit_conversation_sends_only_the_last_user_turn(mode: ConversationMode) -> None:
    store = CountingStore()
    result = await plan(TURN_TWO, ConversationTracker(store), mode=mode, explicit="conv-explicit")

    assert result.prompt.query == "What is 2+2?"
    assert result.conversation_id == "conv-explicit"
    assert result.scope is None  # nothing to remember: the client tracks the conversation itself
    assert result.continued is False
    assert result.inputs == {}
    assert result.auto_generate_name is None
    assert store.reads == 0


@pytest.mark.anyio
async def test_explicit_conversation_ignores_messages_after_the_last_user_turn() -> None:
    messages = [*TURN_TWO, assistant("prefill")]
    result = await plan(messages, new_tracker(), explicit="conv-explicit")
    assert result.prompt.query == "What is 2+2?"
    assert result.conversation_id == "conv-explicit"


@pytest.mark.anyio
async def test_an_empty_explicit_conversation_is_no_explicit_conversation() -> None:
    result = await plan(TURN_ONE, new_tracker(), explicit="")
    assert result.conversation_id is None
    assert result.scope == SCOPE


# CONVERSATION_MODE=last and stateless


@pytest.mark.anyio
async def test_mode_last_sends_only_the_last_user_turn_in_a_new_conversation() -> None:
    tracker = new_tracker()
    await tracker.remember(SCOPE, TURN_ONE, ANSWER_ONE, "conv-1", 1)

    result = await plan(TURN_TWO, tracker, mode="last")

    assert result.prompt.query == "What is 2+2?"
    assert result.conversation_id is None
    assert result.scope is None
    assert result.continued is False
    assert result.inputs == {}
    assert result.auto_generate_name is False


@pytest.mark.anyio
async def test_mode_stateless_folds_the_whole_history_into_the_query() -> None:
    tracker = new_tracker()
    await tracker.remember(SCOPE, TURN_ONE, ANSWER_ONE, "conv-1", 1)

    result = await plan(TURN_TWO, tracker, mode="stateless")

    assert result.prompt.query == TURN_TWO_TRANSCRIPT
    assert result.conversation_id is None
    assert result.scope is None
    assert result.continued is False
    assert result.auto_generate_name is False


@pytest.mark.anyio
async def test_mode_stateless_with_a_single_message_sends_it_as_is() -> None:
    result = await plan([user("Hi")], new_tracker(), mode="stateless")
    assert result.prompt.query == "Hi"


# auto: first turn


@pytest.mark.anyio
async def test_auto_first_turn_folds_the_system_prompt_into_the_query() -> None:
    store = CountingStore()
    result = await plan(TURN_ONE, ConversationTracker(store))

    assert result.prompt.query.startswith("System: ")
    assert result.prompt.query == "System: Be brief.\n\nUser: Hi"
    assert result.inputs == {}
    assert result.conversation_id is None
    assert result.scope == SCOPE  # remembered for the next turn
    assert result.turn == 1
    assert result.continued is False
    assert result.auto_generate_name is None  # a conversation that lives on gets Dify's name
    assert store.reads == 0  # only a system prompt before the user turn: nothing to look up


@pytest.mark.anyio
async def test_auto_first_turn_puts_the_system_prompt_into_the_app_variable() -> None:
    result = await plan(TURN_ONE, new_tracker(), app=make_app("system_prompt"))

    assert result.inputs == {"system_prompt": "Be brief."}
    assert result.prompt.query == "Hi"
    assert result.conversation_id is None
    assert result.scope == SCOPE
    assert result.turn == 1


@pytest.mark.anyio
async def test_auto_first_turn_joins_system_and_developer_messages_into_the_variable() -> None:
    messages = [system("Be brief."), developer("Answer in English."), user("Hi")]
    result = await plan(messages, new_tracker(), app=make_app("instructions"))

    assert result.inputs == {"instructions": "Be brief.\n\nAnswer in English."}
    assert result.prompt.query == "Hi"


@pytest.mark.anyio
async def test_auto_first_turn_without_a_system_prompt_sets_no_inputs() -> None:
    result = await plan([user("Hi")], new_tracker(), app=make_app("system_prompt"))

    assert result.inputs == {}
    assert result.prompt.query == "Hi"
    assert result.scope == SCOPE


# auto: continuing a remembered conversation


@pytest.mark.anyio
async def test_auto_continues_the_remembered_conversation_with_only_the_new_user_turn() -> None:
    tracker = new_tracker()
    await tracker.remember(SCOPE, TURN_ONE, ANSWER_ONE, "conv-1", 1)

    result = await plan(TURN_TWO, tracker)

    assert result.conversation_id == "conv-1"
    assert result.continued is True
    assert result.turn == 2
    assert result.prompt.query == "What is 2+2?"
    assert result.scope == SCOPE
    assert result.inputs == {}  # Dify keeps the conversation's inputs
    assert result.auto_generate_name is None


@pytest.mark.anyio
async def test_auto_continues_turn_after_turn() -> None:
    tracker = new_tracker()
    await tracker.remember(SCOPE, TURN_ONE, ANSWER_ONE, "conv-1", 1)
    second = await plan(TURN_TWO, tracker)
    assert second.turn == 2
    await tracker.remember(SCOPE, TURN_TWO, "4", "conv-1", second.turn)

    third = await plan([*TURN_TWO, assistant("4"), user("And 3+3?")], tracker)

    assert third.conversation_id == "conv-1"
    assert third.continued is True
    assert third.turn == 3
    assert third.prompt.query == "And 3+3?"


@pytest.mark.anyio
async def test_auto_continuation_with_a_system_variable_app_sends_only_the_user_turn() -> None:
    tracker = new_tracker()
    await tracker.remember(SCOPE, TURN_ONE, ANSWER_ONE, "conv-1", 1)

    result = await plan(TURN_TWO, tracker, app=make_app("system_prompt"))

    assert result.continued is True
    assert result.prompt.query == "What is 2+2?"
    assert result.inputs == {}


@pytest.mark.anyio
async def test_auto_does_not_continue_another_users_conversation() -> None:
    tracker = new_tracker()
    await tracker.remember(scope_of("client-1", "helper", "bob"), TURN_ONE, ANSWER_ONE, "conv-bob", 1)

    result = await plan(TURN_TWO, tracker)

    assert result.conversation_id is None
    assert result.continued is False
    assert result.prompt.query == TURN_TWO_TRANSCRIPT


@pytest.mark.anyio
async def test_auto_with_an_edited_earlier_message_starts_over_folded() -> None:
    tracker = new_tracker()
    await tracker.remember(SCOPE, TURN_ONE, ANSWER_ONE, "conv-1", 1)
    edited = [system("Be brief."), user("Hello"), assistant(ANSWER_ONE), user("What is 2+2?")]

    result = await plan(edited, tracker)

    assert result.conversation_id is None
    assert result.continued is False
    assert result.turn == 1
    assert result.scope == SCOPE
    assert result.prompt.query == (
        "System: Be brief.\n\nUser: Hello\n\nAssistant: Hello! How can I help?\n\nUser: What is 2+2?"
    )


@pytest.mark.anyio
async def test_auto_with_an_edited_system_prompt_starts_over_with_the_new_prompt() -> None:
    tracker = new_tracker()
    await tracker.remember(SCOPE, TURN_ONE, ANSWER_ONE, "conv-1", 1)
    edited = [system("Be verbose."), user("Hi"), assistant(ANSWER_ONE), user("What is 2+2?")]

    result = await plan(edited, tracker, app=make_app("system_prompt"))

    assert result.conversation_id is None
    assert result.continued is False
    assert result.inputs == {"system_prompt": "Be verbose."}
    assert result.prompt.query == "User: Hi\n\nAssistant: Hello! How can I help?\n\nUser: What is 2+2?"


@pytest.mark.anyio
async def test_auto_after_a_regenerated_answer_starts_a_new_conversation() -> None:
    """Turn 2 was answered in conv-1; the client regenerates it, resending turn 2's request."""
    tracker = new_tracker()
    await tracker.remember(SCOPE, TURN_ONE, ANSWER_ONE, "conv-1", 1)
    await tracker.remember(SCOPE, TURN_TWO, "4", "conv-1", 2)

    result = await plan(TURN_TWO, tracker)

    assert result.conversation_id is None
    assert result.continued is False
    assert result.turn == 1
    assert result.scope == SCOPE
    assert result.prompt.query == TURN_TWO_TRANSCRIPT


@pytest.mark.anyio
async def test_auto_with_messages_after_the_last_user_turn_does_not_continue() -> None:
    store = CountingStore()
    tracker = ConversationTracker(store)
    await tracker.remember(SCOPE, TURN_ONE, ANSWER_ONE, "conv-1", 1)
    reads = store.reads
    messages = [*TURN_TWO, ChatMessage(role="tool", content="42", tool_call_id="call-1")]

    result = await plan(messages, tracker)

    assert result.conversation_id is None
    assert result.continued is False
    assert result.scope is None  # an answer to this request is not a turn the client will resend as history
    assert result.auto_generate_name is False
    assert result.prompt.query == TURN_TWO_TRANSCRIPT + "\n\nTool: 42"
    assert store.reads == reads


@pytest.mark.anyio
async def test_a_history_ending_with_an_assistant_message_is_a_clear_error() -> None:
    """A client's "continue response": Dify cannot go on from a given partial answer (not silently a new one)."""
    with pytest.raises(InvalidRequestError) as raised:
        await plan([*TURN_TWO, assistant("The answer is")], new_tracker())
    assert raised.value.code == "continue_not_supported"
    assert raised.value.param == "messages"


@pytest.mark.anyio
async def test_auto_with_messages_after_the_last_user_turn_still_uses_the_system_variable() -> None:
    messages = [system("Be brief."), user("Hi"), ChatMessage(role="tool", content="42", tool_call_id="call-1")]

    result = await plan(messages, new_tracker(), app=make_app("system_prompt"))

    assert result.inputs == {"system_prompt": "Be brief."}
    assert result.prompt.query == "User: Hi\n\nTool: 42"


@pytest.mark.anyio
async def test_auto_degrades_to_a_folded_new_conversation_when_the_store_is_down() -> None:
    result = await plan(TURN_TWO, ConversationTracker(FailingStore()))

    assert result.conversation_id is None
    assert result.continued is False
    assert result.scope == SCOPE
    assert result.prompt.query == TURN_TWO_TRANSCRIPT


# the remembered conversation is gone from Dify


@pytest.mark.anyio
async def test_fold_instead_starts_a_new_conversation_with_the_history_folded_in() -> None:
    tracker = new_tracker()
    await tracker.remember(SCOPE, TURN_ONE, ANSWER_ONE, "conv-1", 1)
    app = make_app()
    continued = await plan(TURN_TWO, tracker, app=app)
    assert continued.continued is True

    result = fold_instead(TURN_TWO, app, continued)

    assert result.conversation_id is None
    assert result.continued is False
    assert result.turn == 1
    assert result.scope == SCOPE  # the new conversation is remembered in place of the lost one
    assert result.inputs == {}
    assert result.auto_generate_name is None
    assert result.prompt.query == TURN_TWO_TRANSCRIPT


def test_fold_instead_puts_the_system_prompt_into_the_app_variable() -> None:
    app = make_app("system_prompt")
    lost = Plan(prompt=Prompt(query="What is 2+2?"), conversation_id="conv-1", scope=SCOPE, turn=2, continued=True)

    result = fold_instead(TURN_TWO, app, lost)

    assert result.inputs == {"system_prompt": "Be brief."}
    assert result.prompt.query == "User: Hi\n\nAssistant: Hello! How can I help?\n\nUser: What is 2+2?"
    assert result.conversation_id is None
    assert result.scope == SCOPE


@pytest.mark.anyio
async def test_a_turn_that_never_completed_is_not_continued_again() -> None:
    # turn 2 is sent (and Dify keeps it even if it is stopped or fails), but its answer never completes
    tracker = new_tracker()
    await tracker.remember(SCOPE, TURN_ONE, ANSWER_ONE, "conv-1", 1)
    first = await plan(TURN_TWO, tracker)
    assert first.continued
    # "regenerate" with the same history: Dify's memory of conv-1 already holds the aborted turn
    again = await plan(TURN_TWO, tracker)
    assert again.conversation_id is None
    assert again.continued is False


@pytest.mark.anyio
async def test_mode_stateless_puts_the_system_prompt_into_the_apps_variable() -> None:
    messages = [system("Be brief."), user("Hi")]
    result = await plan(messages, new_tracker(), mode="stateless", app=make_app("system_prompt"))
    assert result.inputs == {"system_prompt": "Be brief."}
    assert result.prompt.query == "Hi"
    assert result.scope is None


@pytest.mark.anyio
async def test_of_two_requests_continuing_the_same_turn_at_once_one_continues() -> None:
    tracker = new_tracker()
    await tracker.remember(SCOPE, TURN_ONE, ANSWER_ONE, "conv-1", 1)
    plans = await asyncio.gather(plan(TURN_TWO, tracker), plan(TURN_TWO, tracker))
    assert sorted(p.continued for p in plans) == [False, True]
