"""SSEParser / iter_sse_batches against the recorded Dify byte streams, cut into network chunks at every offset."""

import json
import random
from collections.abc import AsyncIterator, Iterable

import pytest

from app.services.dify.sse import PING, EventTooLargeError, SSEParser, iter_sse_batches
from tests.traces import load

RECORDED_STREAMS = ["chat-streaming", "chat-streaming-slow-ping", "agent-chat-streaming-toolcall"]


def parse(chunks: Iterable[bytes]) -> list[bytes]:
    parser = SSEParser()
    events: list[bytes] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events


def recorded_payloads(name: str) -> list[bytes]:
    """The `data:` payloads of a recording, found without the parser under test."""
    return [line[6:] for line in load(name).body.split(b"\n") if line.startswith(b"data: ")]


def without_pings(events: list[bytes]) -> list[bytes]:
    return [event for event in events if event != PING]


async def aiter_chunks(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


# --- whole recordings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECORDED_STREAMS)
def test_unsplit_recording_yields_every_data_payload(name: str) -> None:
    trace = load(name)
    events = without_pings(parse([trace.body]))
    assert events == recorded_payloads(name)
    assert [json.loads(event) for event in events] == trace.events()


def test_recorded_ping_is_yielded_as_ping_in_place() -> None:
    events = parse([load("chat-streaming-slow-ping").body])
    assert events.count(PING) == 1
    index = events.index(PING)
    # the recorded keep-alive arrived between two message events, not at either end
    assert 0 < index < len(events) - 1
    assert json.loads(events[index - 1])["event"] == "message"
    assert json.loads(events[index + 1])["event"] == "message"


@pytest.mark.parametrize("name", ["chat-streaming", "chat-streaming-slow-ping"])
def test_recording_split_in_two_at_every_offset(name: str) -> None:
    body = load(name).body
    expected = parse([body])
    assert len(without_pings(expected)) == len(load(name).events())
    for offset in range(len(body) + 1):
        assert parse([body[:offset], body[offset:]]) == expected, f"split at byte {offset}"


@pytest.mark.parametrize("name", RECORDED_STREAMS)
def test_recording_fed_one_byte_at_a_time(name: str) -> None:
    body = load(name).body
    one_byte_chunks = [body[i : i + 1] for i in range(len(body))]
    assert parse(one_byte_chunks) == parse([body])


def test_events_come_out_as_soon_as_their_blank_line_arrives() -> None:
    body = load("chat-streaming").body
    first_end = body.index(b"\n\n") + 2
    parser = SSEParser()
    assert parser.feed(body[: first_end - 1]) == []  # the blank line is not complete yet
    assert parser.feed(body[first_end - 1 : first_end]) == [recorded_payloads("chat-streaming")[0]]


# --- line endings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["chat-streaming", "chat-streaming-slow-ping"])
def test_crlf_line_endings_split_at_every_offset(name: str) -> None:
    body = load(name).body.replace(b"\n", b"\r\n")
    expected = parse([load(name).body])  # the same events (and ping) as with LF
    assert parse([body]) == expected
    assert without_pings(expected) == recorded_payloads(name)
    for offset in range(len(body) + 1):
        assert parse([body[:offset], body[offset:]]) == expected, f"split at byte {offset}"


def test_crlf_split_between_cr_and_lf() -> None:
    payload = b'{"event": "message", "answer": "x"}'
    parser = SSEParser()
    assert parser.feed(b"data: " + payload + b"\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\n") == [payload]
    assert parser.close() == []


def test_crlf_ping() -> None:
    assert parse([b"event: ping\r\n\r\n"]) == [PING]


# --- multi-byte UTF-8 -----------------------------------------------------------------------------------


def test_utf8_answer_split_inside_a_character() -> None:
    # newest Dify builds send raw UTF-8 (orjson); put it into the recorded bytes
    body = load("chat-streaming").body.replace(b"Hello from ", "héllo 世界 ".encode())
    assert "héllo 世界 ".encode() in body
    expected = [line[6:] for line in body.split(b"\n") if line.startswith(b"data: ")]
    start = body.index("世".encode())
    # every offset inside the three-byte characters and the two-byte é
    offsets = [start + 1, start + 2, start + 4, start + 5, body.index("é".encode()) + 1]
    for offset in offsets:
        events = parse([body[:offset], body[offset:]])
        assert events == expected
        assert json.loads(events[0])["answer"] == "Echo: héllo 世界 "
    # and one byte at a time
    assert parse([body[i : i + 1] for i in range(len(body))]) == expected


@pytest.mark.anyio
async def test_iter_sse_batches_utf8_split_inside_a_character() -> None:
    payload = json.dumps({"event": "message", "answer": "héllo 世界"}, ensure_ascii=False).encode()
    body = b"data: " + payload + b"\n\n"
    cut = body.index("界".encode()) + 1
    events = [event async for batch in iter_sse_batches(aiter_chunks([body[:cut], body[cut:]])) for event in batch]
    assert events == [payload]
    assert json.loads(events[0])["answer"] == "héllo 世界"


# --- keep-alives, comments, fields ----------------------------------------------------------------------


def test_event_ping_yields_ping() -> None:
    assert PING == b""
    assert parse([b"event: ping\n\n"]) == [PING]


def test_ping_between_events() -> None:
    events = parse([b"data: 1\n\nevent: ping\n\ndata: 2\n\n"])
    assert events == [b"1", PING, b"2"]


def test_comments_are_ignored() -> None:
    assert parse([b": keep-alive\n\n"]) == []
    assert parse([b": a comment\ndata: x\n: another\n\n"]) == [b"x"]


def test_extra_blank_lines_dispatch_nothing() -> None:
    assert parse([b"\n\n\ndata: x\n\n\n\n"]) == [b"x"]


def test_data_without_space_and_one_space_stripped() -> None:
    assert parse([b"data:x\n\n"]) == [b"x"]
    assert parse([b"data:  two spaces\n\n"]) == [b" two spaces"]


def test_multiple_data_lines_joined_with_newline() -> None:
    assert parse([b"data: a\ndata: b\n\n"]) == [b"a\nb"]


def test_event_name_does_not_hide_data() -> None:
    assert parse([b"event: message\ndata: {}\n\n"]) == [b"{}"]


def test_id_and_retry_fields_alone_are_data_less() -> None:
    assert parse([b"id: 1\nretry: 1000\n\n"]) == [PING]


# --- end of input ---------------------------------------------------------------------------------------


def test_final_event_without_blank_line_is_delivered_by_close() -> None:
    body = load("chat-streaming").body
    assert body.endswith(b"\n\n")
    truncated = body[:-2]  # the last event, message_end, loses its blank line
    parser = SSEParser()
    events = parser.feed(truncated)
    assert events == recorded_payloads("chat-streaming")[:-1]
    last = parser.close()
    assert last == recorded_payloads("chat-streaming")[-1:]
    assert json.loads(last[0])["event"] == "message_end"
    assert parser.close() == []  # nothing twice


def test_final_event_ending_in_one_newline_is_delivered_by_close() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\n") == []
    assert parser.close() == [b"x"]


def test_final_crlf_line_without_newline_is_delivered_by_close() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.close() == [b"x"]


def test_close_does_not_deliver_a_trailing_ping_or_comment() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\n\nevent: ping") == [b"x"]
    assert parser.close() == []
    parser = SSEParser()
    assert parser.feed(b": comment") == []
    assert parser.close() == []


def test_close_after_complete_stream_delivers_nothing() -> None:
    parser = SSEParser()
    parser.feed(load("chat-streaming").body)
    assert parser.close() == []


@pytest.mark.anyio
async def test_iter_sse_batches_recorded_stream_in_small_chunks() -> None:
    body = load("chat-streaming-slow-ping").body
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
    events = [event async for batch in iter_sse_batches(aiter_chunks(chunks)) for event in batch]
    assert events == parse([body])
    assert without_pings(events) == recorded_payloads("chat-streaming-slow-ping")


@pytest.mark.anyio
async def test_iter_sse_batches_delivers_unterminated_final_event() -> None:
    events = [event async for batch in iter_sse_batches(aiter_chunks([b"data: a\n\ndata: ", b"b"])) for event in batch]
    assert events == [b"a", b"b"]


@pytest.mark.parametrize("shape", [b"data: " + b"x" * 1024, b"data: x\n" * 128, b"\r" + b"y" * 1024])
def test_an_event_that_never_ends_is_refused_past_the_limit(shape: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.services.dify.sse.MAX_EVENT_BYTES", 4096)
    parser = SSEParser()
    with pytest.raises(EventTooLargeError):
        for _ in range(100):
            parser.feed(shape)


def test_events_under_the_limit_are_unaffected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.services.dify.sse.MAX_EVENT_BYTES", 4096)
    parser = SSEParser()
    events = [event for _ in range(100) for event in parser.feed(b"data: " + b"x" * 3000 + b"\n\n")]
    assert len(events) == 100


# --- the read of one-line data events (the shape of nearly every read) --------------------------------

_SHAPES = [
    b'data: {"answer": "plain"}\n\n',
    b'data: {"answer": "text that says data: inside"}\n\n',
    b"event: ping\n\n",
    b"data: first line\ndata: second line\n\n",
    b": a comment\n\n",
    b"data:no space\n\n",
    b"data: \n\n",
    b"\n",  # an extra blank line between events
    b'data: {"answer": "\\n\\ndata: escaped, as JSON writes it"}\n\n',
]


def _reference(stream: bytes) -> list[bytes]:
    """The spec's reading of a whole stream, line by line, independent of the parser under test."""
    events: list[bytes] = []
    data: list[bytes] | None = None
    for line in stream.split(b"\n")[:-1]:
        if not line:
            if data is not None:
                events.append(b"\n".join(data))
            data = None
        elif line.startswith(b"data:"):
            value = line[5:]
            data = [*(data or []), value[1:] if value.startswith(b" ") else value]
        elif not line.startswith(b":"):
            data = data if data is not None else []
    return events


@pytest.mark.parametrize("seed", range(40))
def test_any_mix_of_events_cut_anywhere_reads_as_the_spec_says(seed: int) -> None:

    rng = random.Random(seed)
    stream = b"".join(rng.choice(_SHAPES) if rng.random() < 0.3 else _SHAPES[0] for _ in range(60))
    cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(0, 12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert parse(chunks) == _reference(stream)


def test_a_read_of_whole_data_events_is_split_at_once() -> None:
    parser = SSEParser()
    read = b'data: {"a": 1}\n\ndata: {"b": "data: 2"}\n\ndata: {"c"'
    assert parser.feed(read) == [b'{"a": 1}', b'{"b": "data: 2"}']
    assert parser.feed(b": 3}\n\n") == [b'{"c": 3}']


def test_a_crlf_event_after_an_lf_event_in_the_same_read_is_delivered_with_it() -> None:
    assert SSEParser().feed(b"data: a\n\ndata: b\r\n\r\n") == [b"a", b"b"]


def test_a_ping_after_an_lf_event_in_the_same_read_is_delivered_with_it() -> None:
    assert SSEParser().feed(b"data: a\n\nevent: ping\r\n\r\n") == [b"a", PING]


def test_an_unterminated_field_line_at_the_end_of_input_is_not_a_ping() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n\nid: 1\r\n") == [b"a"]
    assert parser.close() == []
