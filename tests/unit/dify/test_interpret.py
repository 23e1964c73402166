"""Dify events -> answer events: recorded streams, moderation, files, failures, and the New Agent's closing message."""

import json

import msgspec
import pytest

from app.errors import GatewayError, NotFoundError, UpstreamError
from app.schemas.dify import BaseEvent
from app.services.answer import Failed, FileOut, Finished, Keepalive, Progress, Replaced, Started, TextDelta, file_text
from app.services.dify.interpret import ChatInterpreter, WorkflowInterpreter, usage_from_dify
from app.services.dify.stream import decode_event
from tests.traces import load
from tests.unit.dify.events import answer_text, interpret, recorded_events, replace_event

RECORDED = [
    ("chat-streaming", "Echo: Hello from the streaming trace", "ae5a15f3-4633-481f-ace3-1a30668785a4", 1795462020),
    (
        "agent-chat-streaming-toolcall",
        "Echo: tool result: 2026-11-23 19:27:06",
        "cedb6fb9-e2af-4749-9fdd-441bf43114fd",
        1795462027,
    ),
    (
        "advanced-chat-streaming",
        "Echo: Hello from the streaming trace",
        "d5d23f46-348f-415e-a8ae-ca06591c3658",
        1795462034,
    ),
]


def event(payload: dict[str, object]):  # type: ignore[no-untyped-def]
    decoded = decode_event(json.dumps(payload).encode())
    assert decoded is not None
    return decoded


ENVELOPE = {"conversation_id": "c", "message_id": "m", "created_at": 1, "task_id": "t"}


@pytest.mark.parametrize(("name", "answer", "message_id", "created"), RECORDED, ids=[r[0] for r in RECORDED])
def test_a_recorded_stream_is_started_text_and_finished(name: str, answer: str, message_id: str, created: int) -> None:
    events, interpreter = interpret(recorded_events(name))
    assert isinstance(events[0], Started)
    assert events[0].message_id == message_id
    assert events[0].created == created
    assert [e for e in events if isinstance(e, Started)] == [events[0]]
    assert answer_text(events) == answer
    assert isinstance(events[-1], Finished)
    assert interpreter.over
    assert interpreter.task_id is not None
    assert interpreter.conversation_id == events[0].conversation_id is not None
    assert interpreter.close() == []


def test_events_after_the_terminal_one_are_not_read() -> None:
    events = recorded_events("chat-streaming")
    out, _ = interpret([*events, events[1]])
    assert isinstance(out[-1], Finished)


def test_a_keepalive_is_a_keepalive() -> None:
    assert ChatInterpreter().feed([None]) == [Keepalive()]


def test_usage_from_dify_without_usage_is_zero() -> None:
    usage = usage_from_dify(None)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (0, 0, 0)


def test_message_replace_starts_the_answer_over() -> None:
    events = recorded_events("chat-streaming")[:2]
    out, _ = interpret([*events, replace_event()])
    assert isinstance(out[-1], Replaced)
    assert answer_text(out) == "Replaced."
    assert [e.message_id for e in out if isinstance(e, Started)] == ["ae5a15f3-4633-481f-ace3-1a30668785a4"]


def _file_event(url: str, kind: str = "image") -> BaseEvent:
    decoded = decode_event(
        json.dumps(
            {"event": "message_file", **ENVELOPE, "id": "f", "type": kind, "belongs_to": "assistant", "url": url}
        ).encode()
    )
    assert decoded is not None
    return decoded


def test_message_file_from_assistant_is_a_file_out() -> None:
    out, _ = interpret([_file_event("https://files.example/cat.png")])
    assert [e for e in out if isinstance(e, FileOut)] == [FileOut(url="https://files.example/cat.png", kind="image")]
    assert answer_text(out) == ""  # a file, not text: each surface shows it its own way


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "/files/tools/d75b.png?timestamp=1&nonce=n&sign=s",
            "http://dify.local:8080/files/tools/d75b.png?timestamp=1&nonce=n&sign=s",
        ),
        ("https://upload.dify.ai/files/tools/d75b.png", "https://upload.dify.ai/files/tools/d75b.png"),
        ("//cdn.example/x.png", "//cdn.example/x.png"),
    ],
)
def test_a_relative_file_url_is_served_at_difys_origin(url: str, shown: str) -> None:
    """Dify signs `/files/...` URLs relative to itself unless its FILES_URL is set."""
    interpreter = ChatInterpreter(files_origin="http://dify.local:8080")
    out = interpreter.feed([_file_event(url)])
    assert [e.url for e in out if isinstance(e, FileOut)] == [shown]


def test_message_file_from_user_shows_nothing() -> None:
    out, _ = interpret(
        [
            event(
                {
                    "event": "message_file",
                    **ENVELOPE,
                    "id": "f",
                    "type": "image",
                    "belongs_to": "user",
                    "url": "https://files.example/cat.png",
                }
            )
        ]
    )
    assert answer_text(out) == ""


def test_the_new_agents_closing_message_is_not_shown_twice() -> None:
    """Dify 1.16's New Agent: agent_message deltas, then one `message` with the whole answer."""
    deltas = [event({"event": "agent_message", **ENVELOPE, "answer": part}) for part in ("Hel", "lo ", "world")]
    closing = event({"event": "message", **ENVELOPE, "answer": "Hello world"})
    end = event(
        {"event": "message_end", **ENVELOPE, "metadata": {"usage": {"prompt_tokens": 3, "completion_tokens": 2}}}
    )
    out, _ = interpret([*deltas, closing, end])
    assert answer_text(out) == "Hello world"


def test_a_closing_message_that_adds_to_the_agents_answer_adds_only_the_rest() -> None:
    deltas = [event({"event": "agent_message", **ENVELOPE, "answer": "Hello"})]
    closing = event({"event": "message_file", **ENVELOPE, "answer": "Hello world"})  # 1.16: typed message_file, no url
    out, _ = interpret([*deltas, closing])
    assert answer_text(out) == "Hello world"


def test_message_deltas_without_agent_messages_are_deltas() -> None:
    """Dify 1.15's New Agent (and every chat app): `message` events are deltas."""
    parts = [event({"event": "message", **ENVELOPE, "answer": part}) for part in ("Hello", " world", " again")]
    out, _ = interpret(parts)
    assert answer_text(out) == "Hello world again"


# --- failures -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("chat-err-upstream-streaming", "completion_request_error"),
        ("agent-chat-err-upstream-streaming", "completion_request_error"),
        ("advanced-chat-err-upstream-streaming", "invalid_param"),
    ],
)
def test_a_recorded_error_event_is_failed(name: str, code: str) -> None:
    out, interpreter = interpret(recorded_events(name))
    assert answer_text(out) == ""
    failure = out[-1]
    assert isinstance(failure, Failed)
    assert isinstance(failure.error, UpstreamError)
    assert failure.error.status_code == 502
    assert failure.error.code == code
    assert "fakellm: simulated upstream failure" in failure.error.message
    assert interpreter.over


def test_advanced_chat_run_failed_event_message() -> None:
    out, _ = interpret(recorded_events("advanced-chat-err-upstream-streaming"))
    assert isinstance(out[-1], Failed)
    assert "Run failed:" in out[-1].error.message


def test_an_error_event_with_a_client_error_status_is_that_error() -> None:
    out, _ = interpret(
        [
            event(
                {
                    "event": "error",
                    **ENVELOPE,
                    "code": "not_found",
                    "status": 404,
                    "message": "Conversation Not Exists.",
                }
            )
        ]
    )
    assert isinstance(out[-1], Failed)
    assert isinstance(out[-1].error, NotFoundError)


def test_an_error_event_without_status_is_a_server_error() -> None:
    out, _ = interpret([event({"event": "error", "message_id": "m", "created_at": 1, "code": "internal_server_error"})])
    assert isinstance(out[-1], Failed)
    assert isinstance(out[-1].error, GatewayError)
    assert out[-1].error.status_code == 500


def test_a_stream_without_its_terminal_event_closes_as_failed() -> None:
    _, interpreter = interpret(recorded_events("chat-streaming")[:-1])  # message_end lost
    assert not interpreter.over
    [failure] = interpreter.close()
    assert isinstance(failure, Failed)
    assert failure.error.status_code == 502
    assert failure.error.code == "upstream_incomplete"


def test_a_failed_chatflow_workflow_is_named_when_the_error_event_is_lost() -> None:
    out, interpreter = interpret(recorded_events("advanced-chat-err-upstream-streaming")[:-1])
    assert answer_text(out) == ""
    [failure] = interpreter.close()
    assert isinstance(failure, Failed)
    assert failure.error.code == "workflow_failed"
    assert "fakellm: simulated upstream failure" in failure.error.message


def test_the_stopped_recording_keeps_its_usage() -> None:
    out, _ = interpret(recorded_events("chat-streaming-stopped"))
    assert isinstance(out[-1], Finished)
    assert msgspec.to_builtins(out[-1].usage) == {"prompt_tokens": 498, "completion_tokens": 82, "total_tokens": 580}
    assert load("chat-streaming-stopped").status == 200


def test_text_before_an_error_in_the_same_read_is_kept() -> None:
    message = event({"event": "message", **ENVELOPE, "answer": "partial answer"})
    error = event({"event": "error", **ENVELOPE, "code": "completion_request_error", "status": 400, "message": "x"})
    out, _ = interpret([message, error])
    assert [type(e) for e in out] == [Started, TextDelta, Failed]


# --- decode_event ---------------------------------------------------------------------------------------


def test_decode_event_ignores_unknown_events() -> None:
    assert decode_event(b'{"event":"something_new","conversation_id":"c"}') is None


def test_decode_event_rejects_malformed_json() -> None:
    with pytest.raises(UpstreamError) as info:
        decode_event(b'{"event": "message", "answer": ')
    assert info.value.code == "upstream_malformed"


def test_decode_event_refuses_a_known_event_with_a_field_of_the_wrong_type() -> None:
    # an error event whose status is a string: dropping it would turn Dify's error into "incomplete"
    with pytest.raises(UpstreamError) as info:
        decode_event(b'{"event":"error","message_id":"m","status":"500","code":"x","message":"boom"}')
    assert info.value.code == "upstream_malformed"
    assert "`error`" in info.value.message


def test_decode_event_still_ignores_an_unknown_event_with_any_fields() -> None:
    assert decode_event(b'{"event":"brand_new","status":"500","data":[1,2]}') is None


def test_an_ignored_event_with_an_unexpected_field_type_does_not_break_the_stream() -> None:
    node = decode_event(b'{"event":"node_finished","created_at":1.5,"task_id":"t","data":{"x":1}}')
    assert node is not None
    assert node.task_id == "t"


def test_a_chatflow_paused_for_a_human_shows_its_form_then_finishes() -> None:
    form = event(
        {"event": "human_input_required", **ENVELOPE, "data": {"form_content": "Approve?\n\n{{#$output.comment#}}"}}
    )
    pause = event({"event": "workflow_paused", **ENVELOPE, "data": {"reasons": []}})
    out, interpreter = interpret([form, pause])
    assert answer_text(out).endswith("Approve?\n\n[comment]")
    assert answer_text(out).startswith("[The app is waiting for input")
    assert isinstance(out[-1], Finished)
    assert interpreter.over


def test_a_file_from_the_app_is_shown_inline_if_an_image_else_as_a_link() -> None:
    out, _ = interpret([_file_event("https://files.example/report.pdf", "document")])
    [document] = [e for e in out if isinstance(e, FileOut)]
    assert file_text(document) == "\n[document](https://files.example/report.pdf)\n"
    assert file_text(FileOut(url="https://x/cat.png", kind="image")) == "\n![image](https://x/cat.png)\n"
    assert file_text(FileOut(url="https://x/a", kind="custom", name="a.zip")) == "\n[a.zip](https://x/a)\n"


# a chatflow's progress (WORKFLOW_PROGRESS): nodes, from the recordings


def _progress(name: str) -> list[Progress]:
    interpreter = ChatInterpreter()
    return [e for e in interpreter.feed(list(recorded_events(name))) if isinstance(e, Progress)]


def test_each_working_node_that_starts_is_progress_but_start_and_answer_are_not() -> None:
    assert _progress("advanced-chat-streaming") == [Progress(step="LLM")]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("advanced-chat-err-upstream-streaming", "[openai_api_compatible] Error: API request failed"),
        ("dify-1.15/advanced-chat-err-node-failed-streaming", "[Errno 111] Connection refused"),
    ],
)
def test_a_failed_node_is_progress_with_difys_error(name: str, error: str) -> None:
    failed = [p for p in _progress(name) if p.error is not None]
    assert len(failed) == 1
    assert failed[0].error is not None and failed[0].error.startswith(error)


def test_workflow_nodes_are_progress_too() -> None:
    interpreter = WorkflowInterpreter()
    steps = [e for e in interpreter.feed(list(recorded_events("workflow-streaming"))) if isinstance(e, Progress)]
    assert steps and all(p.error is None for p in steps)


def test_nodes_inside_an_iteration_or_a_loop_are_not_progress() -> None:
    inside = event(
        {"event": "node_started", **ENVELOPE, "data": {"title": "LLM", "node_type": "llm", "iteration_id": "it1"}}
    )
    looped = event({"event": "node_started", **ENVELOPE, "data": {"title": "LLM", "node_type": "llm", "loop_id": "l1"}})
    top = event({"event": "node_started", **ENVELOPE, "data": {"title": "Search", "node_type": "tool"}})
    out, _ = interpret([inside, looped, top])
    assert [e for e in out if isinstance(e, Progress)] == [Progress(step="Search")]
