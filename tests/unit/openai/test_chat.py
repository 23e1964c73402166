"""Recorded Dify streams through the interpreter and the chat chunk encoder; the SSE bytes are parsed back."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from app.errors import GatewayError, InvalidRequestError, UpstreamError
from app.schemas.dify import BaseEvent
from app.schemas.openai import ChatCompletionChunk, ErrorResponse, Usage
from app.services.answer import AnswerStream, FileOut, Finished, Started, TextDelta, collect
from app.services.dify.interpret import ChatInterpreter
from app.services.dify.stream import decode_event
from app.services.openai import DONE, PING_COMMENT, REPLACED_NOTICE, ChatChunks, error_event
from tests.traces import TRACES, load
from tests.unit.dify.events import recorded_events, replace_event

MODEL = "dify-echo"
_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)


@dataclass(frozen=True)
class Expected:
    name: str
    answer: str
    message_id: str
    created: int
    usage: dict[str, int]


SUCCESSFUL = [
    Expected(
        "chat-streaming",
        "Echo: Hello from the streaming trace",
        "ae5a15f3-4633-481f-ace3-1a30668785a4",
        1795462020,
        {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16},
    ),
    Expected(
        "agent-chat-streaming-toolcall",
        "Echo: tool result: 2026-11-23 19:27:06",
        "cedb6fb9-e2af-4749-9fdd-441bf43114fd",
        1795462027,
        # Dify's agent stream says total_tokens: 0
        {"prompt_tokens": 34, "completion_tokens": 10, "total_tokens": 44},
    ),
    Expected(
        "advanced-chat-streaming",
        "Echo: Hello from the streaming trace",
        "d5d23f46-348f-415e-a8ae-ca06591c3658",
        1795462034,
        {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16},
    ),
    Expected(
        "chat-streaming-stopped",
        "Echo: " + "".join(f"word{i} " for i in range(35)),
        "c4b599f1-9d02-49ed-a4ba-de62a57ff650",
        1795462022,
        {"prompt_tokens": 498, "completion_tokens": 82, "total_tokens": 580},
    ),
]


def translate(events: list[BaseEvent], include_usage: bool = False) -> tuple[bytes, ChatChunks]:
    chunks = ChatChunks(MODEL, include_usage)
    return chunks.encode(ChatInterpreter().feed(list(events))), chunks


def encode_each(events: list[BaseEvent], include_usage: bool = False) -> list[bytes]:
    """The bytes each event gives on its own, fed in order to one interpreter and one encoder."""
    interpreter, chunks = ChatInterpreter(), ChatChunks(MODEL, include_usage)
    return [chunks.encode(interpreter.feed([event])) for event in events]


def frames(out: bytes) -> list[bytes]:
    """SSE frames of the gateway output; each must be one `data: ` line ended by a blank line."""
    assert out.endswith(b"\n\n")
    parts = out[:-2].split(b"\n\n")
    for part in parts:
        assert b"\n" not in part, part
        assert part.startswith(b"data: "), part
    return parts


def chunk_dicts(out: bytes) -> list[dict[str, Any]]:
    return [json.loads(frame[6:]) for frame in frames(out) if frame != b"data: [DONE]"]


def content_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"] if "delta" in choice
    )


# --- successful recorded streams ------------------------------------------------------------------------


@pytest.mark.parametrize("expected", SUCCESSFUL, ids=lambda e: e.name)
@pytest.mark.parametrize("include_usage", [False, True])
def test_recorded_stream_translation(expected: Expected, include_usage: bool) -> None:
    out, encoder = translate(recorded_events(expected.name), include_usage)

    assert b"event:" not in out
    all_frames = frames(out)
    assert all_frames[-1] == b"data: [DONE]"
    assert all_frames.count(b"data: [DONE]") == 1
    assert out.endswith(DONE)

    chunks = chunk_dicts(out)
    for chunk in chunks:
        assert chunk["id"] == f"chatcmpl-{expected.message_id}"
        assert chunk["object"] == "chat.completion.chunk"
        assert type(chunk["created"]) is int
        assert chunk["created"] == expected.created
        assert chunk["model"] == MODEL

    # role exactly once, in the first chunk
    first = chunks[0]["choices"][0]
    assert first["delta"] == {"role": "assistant", "content": ""}
    assert first["finish_reason"] is None
    roles = [choice for chunk in chunks for choice in chunk["choices"] if "role" in choice["delta"]]
    assert len(roles) == 1

    # content deltas rebuild exactly the recorded answer (agent thoughts never leak in)
    assert content_of(chunks) == expected.answer
    assert encoder.visible_text == expected.answer
    assert encoder.finished
    assert all(choice["delta"].get("content") != "" for chunk in chunks[1:] for choice in chunk["choices"])

    with_choices = [chunk for chunk in chunks if chunk["choices"]]
    final = with_choices[-1]["choices"][0]
    assert final["delta"] == {}
    assert final["finish_reason"] == "stop"
    for chunk in with_choices:
        assert len(chunk["choices"]) == 1
        assert chunk["choices"][0]["index"] == 0
        assert chunk["choices"][0]["logprobs"] is None
    assert [c["choices"][0]["finish_reason"] for c in with_choices[:-1]] == [None] * (len(with_choices) - 1)

    usage_chunks = [chunk for chunk in chunks if "usage" in chunk]
    if include_usage:
        assert len(usage_chunks) == 1
        assert chunks[-1] is usage_chunks[0]  # after the finish chunk, right before [DONE]
        assert usage_chunks[0]["choices"] == []
        assert usage_chunks[0]["usage"] == expected.usage
    else:
        assert usage_chunks == []
        assert all(chunk["choices"] for chunk in chunks)

    for frame in all_frames[:-1]:
        decoded = _chunk_decoder.decode(frame[6:])
        assert decoded.id == f"chatcmpl-{expected.message_id}"


def successful_chat_family_streams() -> list[str]:
    names = sorted(p.name.removesuffix(".txt") for p in Path(TRACES).glob("*streaming*.txt"))
    return [
        n
        for n in names
        if not n.endswith(".request") and not n.startswith("workflow-") and "-err-" not in n and load(n).status == 200
    ]


def test_all_successful_streams_are_found() -> None:
    names = successful_chat_family_streams()
    assert {e.name for e in SUCCESSFUL} <= set(names)
    assert len(names) >= 20


@pytest.mark.parametrize("name", successful_chat_family_streams())
def test_every_recorded_stream_reproduces_its_answer_and_usage(name: str) -> None:
    raw = load(name).events()
    answer = "".join(e["answer"] for e in raw if e["event"] in ("message", "agent_message"))
    end = raw[-1]
    assert end["event"] == "message_end"
    usage = end["metadata"]["usage"]

    out, encoder = translate(recorded_events(name), include_usage=True)
    chunks = chunk_dicts(out)
    assert content_of(chunks) == answer
    assert encoder.visible_text == answer
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert sum("role" in c["choices"][0]["delta"] for c in chunks if c["choices"]) == 1
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
    }
    assert {c["id"] for c in chunks} == {f"chatcmpl-{end['message_id']}"}
    assert {c["created"] for c in chunks} == {end["created_at"]}
    assert frames(out)[-1] == b"data: [DONE]"


def test_agent_final_thought_is_not_added_to_the_answer() -> None:
    events = recorded_events("agent-chat-streaming-toolcall")
    raw = load("agent-chat-streaming-toolcall").events()
    final_thought = [e for e in raw if e["event"] == "agent_thought"][-1]
    assert final_thought["thought"] == "Echo: tool result: 2026-11-23 19:27:06"

    out, _ = translate(events)
    content = content_of(chunk_dicts(out))
    assert content == final_thought["thought"]
    assert content.count("Echo: tool result:") == 1


def test_agent_thoughts_show_each_finished_tool_use_once_as_a_tool_call_chunk() -> None:
    events = recorded_events("agent-chat-streaming-toolcall")
    thoughts = [
        e
        for e, raw in zip(events, load("agent-chat-streaming-toolcall").events(), strict=True)
        if raw["event"] == "agent_thought"
    ]
    assert len(thoughts) >= 2
    outputs = [out for out in encode_each(thoughts, include_usage=True) if out]
    assert len(outputs) == 1  # the one snapshot in which the tool has answered; repeats and the final thought: nothing
    [call] = chunk_dicts(outputs[0])[-1]["choices"][0]["delta"]["tool_calls"]
    assert call["function"] == {"name": "current_time", "arguments": '{"location": "Paris"}'}
    assert call["type"] == "function" and call["index"] == 0


def test_agent_usage_total_is_recomputed() -> None:
    raw_end = load("agent-chat-streaming-toolcall").events()[-1]
    assert raw_end["event"] == "message_end"
    assert raw_end["metadata"]["usage"]["total_tokens"] == 0
    out, _ = translate(recorded_events("agent-chat-streaming-toolcall"), include_usage=True)
    usage = chunk_dicts(out)[-1]["usage"]
    assert usage == {"prompt_tokens": 34, "completion_tokens": 10, "total_tokens": 44}


def test_advanced_chat_workflow_events_show_nothing_before_the_answer() -> None:
    events = recorded_events("advanced-chat-streaming")
    outputs = encode_each(events)
    raw = load("advanced-chat-streaming").events()
    first_text = next(i for i, e in enumerate(raw) if e["event"] == "message" and e["answer"])
    assert outputs[:first_text] == [b""] * first_text
    assert outputs[first_text].count(b'"role":"assistant"') == 1


def test_each_content_event_is_one_flushable_output() -> None:
    outputs = encode_each(recorded_events("chat-streaming"))
    # role + first delta, second delta, empty delta shows nothing, then finish + [DONE]
    assert [len(frames(out)) if out else 0 for out in outputs] == [2, 1, 0, 2]
    assert outputs[-1].endswith(DONE)


def test_stream_with_only_message_end_still_opens_with_role() -> None:
    end = recorded_events("chat-streaming")[-1]
    out, _ = translate([end], include_usage=True)
    chunks = chunk_dicts(out)
    assert [c["choices"][0]["delta"] if c["choices"] else None for c in chunks] == [
        {"role": "assistant", "content": ""},
        {},
        None,
    ]
    assert chunks[1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[0]["id"] == "chatcmpl-ae5a15f3-4633-481f-ace3-1a30668785a4"
    assert out.endswith(DONE)


def test_json_special_characters_in_content_round_trip() -> None:
    text = 'quote " backslash \\ newline \n tab \t héllo 世界 </script>'
    payload = json.dumps(
        {"event": "message", "conversation_id": "c", "message_id": "m", "created_at": 7, "task_id": "t", "answer": text}
    ).encode()
    event = decode_event(payload)
    assert event is not None
    out, _ = translate([event])
    chunks = chunk_dicts(out)
    assert content_of(chunks) == text
    assert chunks[0]["id"] == "chatcmpl-m"
    assert chunks[0]["created"] == 7


def test_model_name_is_json_encoded() -> None:
    end = recorded_events("chat-streaming")[-1]
    chunks = ChatChunks('we"ird\\model', include_usage=False)
    assert {c["model"] for c in chunk_dicts(chunks.encode(ChatInterpreter().feed([end])))} == {'we"ird\\model'}


def test_message_replace_after_partial_answer() -> None:
    events = recorded_events("chat-streaming")
    *body, end = events
    out, encoder = translate([*body, replace_event(), end], include_usage=False)
    content = content_of(chunk_dicts(out))
    partial = "Echo: Hello from the streaming trace"
    assert content == partial + REPLACED_NOTICE + "Replaced."
    assert encoder.visible_text == content  # what is remembered is what the client saw
    assert out.endswith(DONE)


def test_message_file_carrying_text_is_text() -> None:
    event = decode_event(
        b'{"event":"message_file","conversation_id":"c","message_id":"m","created_at":1,"task_id":"t",'
        b'"id":"m","answer":"chunk of text","from_variable_selector":null}'
    )
    assert event is not None
    out, encoder = translate([event])
    assert content_of(chunk_dicts(out)) == "chunk of text"
    assert encoder.visible_text == "chunk of text"


def test_a_file_from_the_app_is_markdown_content_between_its_text() -> None:
    *body, end = recorded_events("chat-streaming")
    file = decode_event(
        b'{"event":"message_file","conversation_id":"c","message_id":"m","created_at":1,"task_id":"t",'
        b'"id":"f","type":"image","belongs_to":"assistant","url":"https://files.example/cat.png"}'
    )
    assert file is not None
    out, encoder = translate([*body, file, end], include_usage=False)
    content = content_of(chunk_dicts(out))
    assert content == "Echo: Hello from the streaming trace\n![image](https://files.example/cat.png)\n"
    assert encoder.visible_text == content  # remembered as the client saw it


@pytest.mark.anyio
async def test_a_whole_answer_carries_its_files_as_markdown() -> None:
    stream = AnswerStream.complete(
        ChatInterpreter(),
        [
            Started(conversation_id="c", message_id="m", created=1),
            TextDelta("Here:"),
            FileOut(url="https://files.example/r.pdf", kind="document", name="r.pdf"),
            Finished(usage=Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2)),
        ],
    )
    assert (await collect(stream)).text == "Here:\n[r.pdf](https://files.example/r.pdf)\n"


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("chat-err-upstream-streaming", "completion_request_error"),
        ("agent-chat-err-upstream-streaming", "completion_request_error"),
        ("advanced-chat-err-upstream-streaming", "invalid_param"),
    ],
)
def test_a_recorded_error_event_becomes_an_in_band_error(name: str, code: str) -> None:
    *before, error = recorded_events(name)
    outputs = encode_each([*before, error])
    assert b"".join(outputs[:-1]) == b""
    body = json.loads(outputs[-1][6:])["error"]
    assert body["code"] == code
    assert body["type"] == "api_error"
    assert "fakellm: simulated upstream failure" in body["message"]
    assert not outputs[-1].endswith(DONE)


@pytest.mark.parametrize(
    "error",
    [
        UpstreamError("Dify closed the stream", code="upstream_incomplete"),
        UpstreamError("no code given"),
        InvalidRequestError("bad messages", param="messages", code="invalid_value"),
        GatewayError("bare"),
    ],
    ids=["upstream", "default-code", "invalid-request", "bare"],
)
def test_error_event_bytes(error: GatewayError) -> None:
    out = error_event(error)
    assert out.startswith(b"data: ")
    assert out.endswith(b"\n\n")
    assert out.count(b"\n") == 2
    body = json.loads(out[6:])
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"] == {
        "message": error.message,
        "type": error.error_type,
        "param": error.param,
        "code": error.code,
    }
    msgspec.json.decode(out[6:], type=ErrorResponse)


def test_error_event_of_upstream_error_defaults() -> None:
    body = json.loads(error_event(UpstreamError("boom"))[6:])
    assert body == {"error": {"message": "boom", "type": "api_error", "param": None, "code": "upstream_error"}}


def test_ping_comment_is_an_sse_comment() -> None:
    assert PING_COMMENT.startswith(b":")
    assert PING_COMMENT.endswith(b"\n\n")
    assert b"data" not in PING_COMMENT
    assert ChatChunks(MODEL, include_usage=False).encode(ChatInterpreter().feed([None])) == PING_COMMENT


def test_text_read_together_with_an_error_event_is_still_sent() -> None:
    envelope = {"conversation_id": "c", "message_id": "m", "created_at": 1}
    message = decode_event(
        json.dumps({"event": "message", **envelope, "task_id": "t", "answer": "partial answer"}).encode()
    )
    error = decode_event(
        json.dumps(
            {"event": "error", **envelope, "code": "completion_request_error", "status": 400, "message": "x"}
        ).encode()
    )
    out, _ = translate([e for e in (message, error) if e is not None])
    *chunks, failure = chunk_dicts(out)
    assert content_of(chunks) == "partial answer"
    assert failure["error"]["code"] == "completion_request_error"
