"""Continuing Dify conversations from OpenAI-style full histories: where a turn goes, and what is remembered."""

from app.services.conversations.planner import ConversationMode, Plan, fold_instead, plan_turn
from app.services.conversations.responses import ResponseLog
from app.services.conversations.stores import ConversationStore, MemoryStore, RedisStore, StoreUnavailableError
from app.services.conversations.tracker import Continuation, ConversationTracker, history_hash, scope_of

__all__ = [
    "Continuation",
    "ConversationMode",
    "ConversationStore",
    "ConversationTracker",
    "MemoryStore",
    "Plan",
    "RedisStore",
    "ResponseLog",
    "StoreUnavailableError",
    "fold_instead",
    "history_hash",
    "plan_turn",
    "scope_of",
]
