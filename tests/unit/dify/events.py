"""Recorded Dify events for unit tests, decoded as the gateway decodes them."""

from app.schemas.dify import BaseEvent
from app.services.answer import AnswerEvent, Replaced, TextDelta
from app.services.dify.interpret import ChatInterpreter
from app.services.dify.stream import decode_event
from tests.traces import load


def recorded_events(name: str) -> list[BaseEvent]:
    """Each `data:` line of a recording through decode_event (what dify_event_batches does)."""
    events: list[BaseEvent] = []
    for line in load(name).body.split(b"\n"):
        if line.startswith(b"data: "):
            event = decode_event(line[6:])
            assert event is not None, line[:80]
            events.append(event)
    return events


def answer_text(events: list[AnswerEvent]) -> str:
    """The answer as Dify stores it: the deltas, a replacement starting it over."""
    parts: list[str] = []
    for event in events:
        if isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, Replaced):
            parts = [event.text]
    return "".join(parts)


def interpret(events: list[BaseEvent]) -> tuple[list[AnswerEvent], ChatInterpreter]:
    interpreter = ChatInterpreter()
    return interpreter.feed(list(events)), interpreter


def replace_event() -> BaseEvent:
    event = decode_event(
        b'{"event":"message_replace","conversation_id":"c","message_id":"m","created_at":1,"task_id":"t",'
        b'"answer":"Replaced."}'
    )
    assert event is not None
    return event
