"""Which Dify conversation a request goes to, and what its `query` and `inputs` are (CONVERSATION_MODE)."""

from typing import Any, Literal

import msgspec

from app.errors import InvalidRequestError
from app.schemas.openai import ChatMessage
from app.services.conversations.tracker import ConversationTracker
from app.services.inputs.prompt import Prompt, build_prompt, last_user_index, message_text
from app.services.registry import DifyApp

ConversationMode = Literal["auto", "stateless", "last"]
_SYSTEM = frozenset({"system", "developer"})


class Plan(msgspec.Struct, kw_only=True):
    prompt: Prompt
    conversation_id: str | None = None
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    scope: str | None = None  # set when the answer is to be remembered for the next turn
    turn: int = 1  # the conversation's turn count once this answer is complete
    continued: bool = False  # a remembered conversation is continued
    auto_generate_name: bool | None = False


def _new_conversation(messages: list[ChatMessage], app: DifyApp, scope: str | None) -> Plan:
    """A new conversation. The system prompt goes into the app's system-prompt variable when it has one;
    everything else (earlier turns, or the system prompt of an app without that variable) is folded into the query."""
    inputs: dict[str, Any] = {}
    if app.system_variable is not None:
        system = [m for m in messages if m.role in _SYSTEM]
        if system:
            inputs[app.system_variable] = "\n\n".join(message_text(m) for m in system)
            messages = [m for m in messages if m.role not in _SYSTEM]
    return Plan(prompt=build_prompt(messages), inputs=inputs, scope=scope, auto_generate_name=None if scope else False)


async def plan_turn(
    messages: list[ChatMessage],
    app: DifyApp,
    *,
    mode: ConversationMode,
    tracker: ConversationTracker,
    scope: str,
    explicit_conversation: str | None,
) -> Plan:
    last = last_user_index(messages)
    if explicit_conversation:
        # the client names the conversation: Dify holds the history, only the new user turn is sent
        return Plan(
            prompt=build_prompt([messages[last]]), conversation_id=explicit_conversation, auto_generate_name=None
        )
    if mode == "last":
        return Plan(prompt=build_prompt([messages[last]]))
    if mode == "stateless":
        return _new_conversation(messages, app, None)
    history = messages[:last]
    if messages[-1].role == "assistant":
        # a client's "continue response": Dify cannot go on from a given partial answer
        raise InvalidRequestError(
            "Continuing a partial answer is not supported: Dify apps answer a user message. Regenerate it instead.",
            param="messages",
            code="continue_not_supported",
        )
    if last != len(messages) - 1:
        return _new_conversation(messages, app, None)  # something after the last user turn: nothing to continue
    if any(m.role not in _SYSTEM for m in history):
        found = await tracker.find(scope, history)
        # Dify keeps even a turn that is stopped or fails: until this one completes, the history that led to it
        # must not continue the conversation again (a regenerate after an aborted answer, a concurrent duplicate)
        if found is not None and await tracker.claim(found):
            return Plan(
                prompt=build_prompt([messages[last]]),
                conversation_id=found.conversation_id,
                scope=scope,
                turn=found.turn + 1,
                continued=True,
                auto_generate_name=None,
            )
    return _new_conversation(messages, app, scope)


def fold_instead(messages: list[ChatMessage], app: DifyApp, plan: Plan) -> Plan:
    """The remembered conversation is gone from Dify (deleted, expired): start over with the history folded in."""
    return _new_conversation(messages, app, plan.scope)
