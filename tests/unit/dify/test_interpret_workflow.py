"""Workflow runs -> answer events: every recorded workflow stream of both generations through feed/close."""

from pathlib import Path

import pytest

from app.errors import InvalidRequestError, UpstreamError
from app.schemas.dify import WorkflowRunAnswer, WorkflowRunData
from app.services.answer import Failed, Finished, Keepalive, Started
from app.services.dify.interpret import WorkflowInterpreter, workflow_output
from app.services.dify.stream import decode_event
from tests.traces import TRACES, load
from tests.unit.dify.events import answer_text


def _events(name: str) -> list[object]:
    """The recording's events in wire order, pings (None) included."""
    out: list[object] = []
    for block in load(name).body.split(b"\n\n"):
        lines = block.strip().split(b"\n")
        data = [line[6:] for line in lines if line.startswith(b"data: ")]
        if data:
            event = decode_event(data[0])
            if event is not None:
                out.append(event)
        elif lines and lines[0].startswith(b"event: ping"):
            out.append(None)
    return out


def _streams() -> list[str]:
    names = [
        f"{prefix}{p.name.removesuffix('.txt')}"
        for prefix, folder in (("", TRACES), ("dify-1.15/", TRACES / "dify-1.15"))
        for p in Path(folder).glob("workflow-*streaming*.txt")
        if not p.name.endswith(".request.txt")
    ]
    return sorted(
        n for n in names if load(n).status == 200 and load(n).headers["content-type"].startswith("text/event-stream")
    )


def test_the_recorded_workflow_streams_are_found() -> None:
    assert len(_streams()) >= 10


@pytest.mark.parametrize("name", _streams())
def test_every_recorded_workflow_stream_ends_in_one_terminal_event(name: str) -> None:
    interpreter = WorkflowInterpreter()
    out = interpreter.feed(_events(name))  # type: ignore[arg-type]
    out += interpreter.close()
    terminal = [e for e in out if isinstance(e, Finished | Failed)]
    assert len(terminal) == 1
    assert out[-1] is terminal[0]
    raw = load(name).events()
    finished = [e for e in raw if e["event"] == "workflow_finished"]
    if any(e["event"] == "workflow_paused" for e in raw):  # the form is the answer
        assert isinstance(terminal[0], Finished)
        assert answer_text(out).startswith("[The app is waiting for input")
    elif finished and finished[-1]["data"]["status"] == "succeeded":
        assert isinstance(terminal[0], Finished)
        streamed = "".join(e["data"]["text"] for e in raw if e["event"] == "text_chunk")
        assert answer_text(out) == (streamed or workflow_output(finished[-1]["data"]["outputs"], None))
    else:
        assert isinstance(terminal[0], Failed)
    started = [e for e in out if isinstance(e, Started)]
    assert len(started) == 1
    assert started[0].conversation_id is None
    assert interpreter.task_id is not None
    if b"event: ping" in load(name).body:
        assert any(isinstance(e, Keepalive) for e in out)


def test_the_stopped_recordings_are_stops_in_both_generations() -> None:
    for name in ("workflow-streaming-stopped", "dify-1.15/workflow-streaming-stopped"):
        interpreter = WorkflowInterpreter()
        out = interpreter.feed(_events(name))  # type: ignore[arg-type]
        assert isinstance(out[-1], Failed)
        assert out[-1].error.code == "workflow_stopped"


def test_a_run_that_never_ran_a_step_is_the_clients_error() -> None:
    interpreter = WorkflowInterpreter()
    out = interpreter.feed(_events("dify-1.15/workflow-err-missing-input-streaming"))  # type: ignore[arg-type]
    assert isinstance(out[-1], Failed)
    assert isinstance(out[-1].error, InvalidRequestError)
    assert "query is required in input form" in out[-1].error.message


def test_a_stream_cut_before_workflow_finished_closes_as_failed() -> None:
    interpreter = WorkflowInterpreter()
    events = _events("workflow-streaming")[:-1]
    out = interpreter.feed(events)  # type: ignore[arg-type]
    assert not any(isinstance(e, Finished | Failed) for e in out)
    [failure] = interpreter.close()
    assert isinstance(failure, Failed)
    assert failure.error.code == "upstream_incomplete"


@pytest.mark.parametrize(
    ("outputs", "key", "expected"),
    [
        ({"result": "only one"}, None, "only one"),
        ({"answer": "the answer", "query": "the question"}, None, "the answer"),
        ({"summary": "s", "score": 3}, "summary", "s"),
        ({"score": 3}, "score", "3"),
        ({"a": "x", "b": "y"}, None, '```json\n{\n  "a": "x",\n  "b": "y"\n}\n```'),
        ({}, None, ""),
        (None, None, ""),
    ],
)
def test_workflow_output(outputs: dict[str, object] | None, key: str | None, expected: str) -> None:
    assert workflow_output(outputs, key) == expected


def test_a_blocking_failure_is_failed_even_with_http_200() -> None:
    answer = WorkflowRunAnswer(
        task_id="t",
        workflow_run_id="r",
        data=WorkflowRunData(status="failed", error="boom", total_steps=3, created_by={"id": "u"}),
    )
    out = WorkflowInterpreter().read_blocking(answer)
    assert isinstance(out[-1], Failed)
    assert isinstance(out[-1].error, UpstreamError)
    assert out[-1].error.code == "workflow_failed"
    assert "boom" in out[-1].error.message


def test_files_in_a_workflows_outputs_are_shown_after_its_text() -> None:
    outputs = {
        "result": "Here you go",
        "files": [
            {"type": "image", "filename": "red.png", "url": "http://files.example/red.png"},
            {"type": "document", "filename": "notes.txt", "url": "http://files.example/notes.txt"},
        ],
    }
    assert workflow_output(outputs, None) == (
        "Here you go\n\n![red.png](http://files.example/red.png)\n\n[notes.txt](http://files.example/notes.txt)"
    )
