"""Open WebUI 0.12.4's recorded session (tests/fixtures/clients), replayed through the gateway in front of the Dify
double, step by step: chats stay in one Dify conversation, tasks continue none, twin chats never cross, regenerate
and edit start over, an image is uploaded, a stop stops Dify, errors are errors, switching models never carries a
conversation across apps, and "continue response" is refused clearly.

Each request is sent as Open WebUI sent it, with two substitutions Open WebUI itself would make against this
gateway: every earlier answer in a history is the answer this gateway gave to that history (Open WebUI sends back
what it was shown), and the recorded upstream's trigger words are the double's (`#long` is `[slow]`, ...)."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dify_double import DifyDouble, RecordedRequest
from tests.e2e.conftest import CLIENT_KEY, own_gateway

RECORDING = Path(__file__).resolve().parents[1] / "fixtures" / "clients" / "open-webui-0.12.4.jsonl"
MODELS = {
    "Echo Chat": "realdify-chat",
    "Flow Master": "realdify-advanced-chat",
    "Agent Smith": "realdify-agent",
    "Translator WF": "realdify-workflow",
    "Copy Writer": "realdify-completion",
}
MARKERS = {"#long": "[slow]", "#fail500": "[http500]", "#ratelimit": "[http429]", "#err_stream": "[fail]"}
MARKERS["#cut"] = "[truncate]"
RUNS = ("/v1/chat-messages", "/v1/workflows/run", "/v1/completion-messages")


def _steps() -> dict[str, list[dict[str, Any]]]:
    steps: dict[str, list[dict[str, Any]]] = {}
    step = ""
    for line in RECORDING.read_text().splitlines():
        record = json.loads(line)
        if "step" in record:
            step = record["step"]
        elif record["json"]["model"] in MODELS:
            steps.setdefault(step, []).append(record)
    return steps


STEPS = _steps()


def _marked(text: str) -> str:
    for marker, trigger in MARKERS.items():
        text = text.replace(marker, trigger)
    return text


def _is_task(body: dict[str, Any]) -> bool:
    last = body["messages"][-1]["content"]
    return isinstance(last, str) and last.startswith("### Task:")


class Sent:
    """One replayed request: what the client got, and what reached Dify."""

    def __init__(self, task: bool, response: httpx.Response, answer: str, error: dict[str, Any] | None) -> None:
        self.task, self.answer, self.error = task, answer, error
        self.status = response.status_code
        self.conversation = response.headers.get("x-dify-conversation-id")
        self.done = False  # the stream ended with [DONE] (or the whole answer came)
        self.dify: list[RecordedRequest] = []

    @property
    def run(self) -> dict[str, Any]:
        [body] = [r.body for r in self.dify if r.path in RUNS]
        return body  # type: ignore[no-any-return]


class Replayer:
    def __init__(self, gateway: httpx.Client, dify: DifyDouble) -> None:
        self._gateway = gateway
        self._dify = dify
        self._answers: dict[str, str] = {}  # the gateway's answer to each history it was sent

    @staticmethod
    def _key(model: str, messages: list[dict[str, Any]]) -> str:
        return json.dumps([model, messages], sort_keys=True)

    def _body(self, record: dict[str, Any]) -> dict[str, Any]:
        body = json.loads(_marked(json.dumps(record["json"])))
        messages: list[dict[str, Any]] = []
        for message in body["messages"]:
            if message["role"] == "assistant":  # what this gateway answered to the history before it, if it did
                answered = self._answers.get(self._key("", messages))
                message = {**message, "content": answered} if answered is not None else message  # noqa: PLW2901
            messages.append(message)
        return {**body, "model": MODELS[body["model"]], "messages": messages}

    def send(self, record: dict[str, Any], *, stop_after: int | None = None) -> Sent:
        """Send it as Open WebUI did (its `X-OpenWebUI-*` headers too); `stop_after`: close after that many chunks."""
        body = self._body(record)
        headers = {k: v for k, v in record["headers"].items() if k.lower().startswith("x-openwebui")}
        headers["Authorization"] = f"Bearer {CLIENT_KEY}"
        before = len(self._dify.requests)
        answer: list[str] = []
        error: dict[str, Any] | None = None
        done = False
        with self._gateway.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
            if response.status_code != 200 or not body.get("stream"):
                payload = json.loads(response.read())
                error = payload.get("error")
                if error is None:
                    answer.append(payload["choices"][0]["message"]["content"])
            else:
                for count, line in enumerate(response.iter_lines()):
                    if stop_after is not None and count >= stop_after:
                        break  # the user pressed stop: Open WebUI closes the connection
                    if line == "data: [DONE]":
                        done = True
                    elif line.startswith("data: "):
                        chunk = json.loads(line[6:])
                        error = chunk.get("error", error)
                        for choice in chunk.get("choices", []):
                            answer.append(choice["delta"].get("content") or "")
        sent = Sent(_is_task(body), response, "".join(answer), error)
        sent.done = done or (not body.get("stream") and error is None)
        sent.dify = self._dify.requests[before:]
        if not sent.task and error is None:
            self._answers[self._key("", body["messages"])] = sent.answer
        return sent

    def step(self, name: str) -> list[Sent]:
        return [self.send(record) for record in STEPS[name]]


@pytest.fixture
def replay(dify: DifyDouble) -> Iterator[Replayer]:
    """A gateway of its own: its conversation store holds only the replay's turns."""
    with own_gateway(dify) as url, httpx.Client(base_url=url, timeout=20) as client:
        yield Replayer(client, dify)


def _turns(sent: list[Sent]) -> list[Sent]:
    return [s for s in sent if not s.task]


def _assert_tasks_stand_alone(sent: list[Sent]) -> None:
    tasks = [s for s in sent if s.task]
    assert tasks
    for task in tasks:
        assert task.status == 200
        assert "conversation_id" not in task.run
        assert task.run.get("auto_generate_name") is False


@pytest.mark.parametrize(
    "steps",
    [("step2 turn 1", "step2 turn 2", "step2 turn 3"), ("step5 flow", "step5 flow turn2")],
    ids=["chat", "chatflow"],
)
def test_a_recorded_chat_stays_in_one_conversation_and_its_tasks_in_none(
    replay: Replayer, steps: tuple[str, ...]
) -> None:
    sent = [s for step in steps for s in replay.step(step)]
    turns = _turns(sent)
    assert len(turns) >= 2 and all(t.status == 200 and t.done for t in turns)
    assert "conversation_id" not in turns[0].run
    conversations = {t.run.get("conversation_id") for t in turns[1:]}
    assert len(conversations) == 1 and None not in conversations  # every later turn continued the first's
    assert all(len(t.run["query"]) < 200 for t in turns[1:])  # only the new message: Dify keeps the history
    _assert_tasks_stand_alone(sent)


def test_the_recorded_agent_chat_stays_in_one_conversation(replay: Replayer) -> None:
    first, second = (t for step in ("step5 agent", "step5 agent turn2") for t in _turns(replay.step(step)))
    assert first.conversation and "conversation_id" not in first.run
    assert second.run["conversation_id"] == first.conversation
    assert second.run["query"] == "#first and again?"


def test_recorded_regenerate_and_edit_start_over_and_the_edited_branch_continues(replay: Replayer) -> None:
    for step in ("step2 turn 1", "step2 turn 2", "step2 turn 3"):
        replay.step(step)
    [regenerated] = _turns(replay.step("step3 regenerate"))
    # Dify's conversation already holds the answer being regenerated: the history is folded into a new one
    assert "conversation_id" not in regenerated.run
    assert regenerated.run["query"].startswith("User: Hello, my name is Alice")
    [edited] = _turns(replay.step("step3 edit"))
    assert "conversation_id" not in edited.run
    assert edited.run["query"].endswith("User: What is the capital of Spain? #first")
    [after_edit] = _turns(replay.step("step8 after edit"))
    assert after_edit.run["conversation_id"] == edited.conversation  # the edited branch's new conversation goes on
    assert after_edit.run["query"] == "#first next turn on the edited branch"


def test_a_recorded_image_is_uploaded_once_and_the_chat_goes_on(replay: Replayer) -> None:
    sent = replay.step("step4 image")
    [turn] = _turns(sent)
    assert turn.status == 200 and turn.done
    uploads = [r for r in turn.dify if r.path == "/v1/files/upload"]
    assert len(uploads) == 1
    [file] = turn.run["files"]
    assert file["type"] == "image" and file["transfer_method"] == "local_file" and file["upload_file_id"]
    assert "[image]" not in turn.run["query"]  # the current turn's image is a file, not a placeholder
    _assert_tasks_stand_alone(sent)
    [follow_up] = _turns(replay.step("step4b image followup"))
    assert follow_up.run["conversation_id"] == turn.conversation
    assert follow_up.run["query"] == "#first and the colour?"
    assert not [r for r in follow_up.dify if r.path == "/v1/files/upload"]  # Dify has the image already


def test_a_recorded_stop_stops_the_dify_task_and_the_next_turn_starts_over(replay: Replayer, dify: DifyDouble) -> None:
    [title, story] = STEPS["step6 stop"]
    replay.send(title)
    stopped = len(dify.stopped)
    partial = replay.send(story, stop_after=3)
    assert not partial.done
    deadline = time.monotonic() + 5
    while len(dify.stopped) == stopped and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(dify.stopped) > stopped, "the gateway did not stop the Dify task"
    # Open WebUI keeps the partial answer and goes on; Dify kept the stopped turn, so the history starts over
    [after] = _turns(replay.step("step8 after stop"))
    assert after.status == 200
    assert "conversation_id" not in after.run
    assert after.run["query"].startswith("User: [slow] tell me a long story")


@pytest.mark.parametrize(
    ("step", "status", "code"),
    [
        ("step7 500", 500, "internal_server_error"),  # Dify's 5xx, with Dify's code
        ("step7 ratelimit", 429, "rate_limit_exceeded"),
        ("step7 errstream", 502, "completion_request_error"),  # failed before any text: a real HTTP error
        ("step7 cut", 200, "upstream_incomplete"),  # cut after text: in-band, and no [DONE]
    ],
)
def test_recorded_failures_are_errors_never_answers(replay: Replayer, step: str, status: int, code: str | None) -> None:
    turns = _turns(replay.step(step))
    [turn] = turns
    assert turn.status == status
    assert turn.error is not None and not turn.done  # never a normal end: Open WebUI shows an error
    if code is not None:
        assert turn.error["code"] == code


def test_switching_models_never_carries_a_conversation_across_apps(replay: Replayer) -> None:
    first, as_agent, back = _turns(replay.step("step8 switch models"))
    assert first.dify[-1].key != as_agent.dify[-1].key  # another app
    for later in (as_agent, back):
        assert "conversation_id" not in later.run  # nothing remembered for this history in that app
        assert later.run["query"].startswith("User: Tell me about cats")


def test_recorded_continue_response_is_a_clear_400(replay: Replayer) -> None:
    [record, _] = STEPS["step8 continue response"]
    sent = replay.send(record)
    assert sent.status == 400
    assert sent.error is not None and sent.error["code"] == "continue_not_supported"
    assert not [r for r in sent.dify if r.path in RUNS]


@pytest.mark.parametrize("step", ["step8 workflow", "step8 completion"])
def test_recorded_workflow_and_text_generator_chats_answer_with_the_text_in_their_input(
    replay: Replayer, step: str
) -> None:
    sent = replay.step(step)
    [turn] = _turns(sent)
    assert turn.status == 200 and turn.done
    assert turn.run["inputs"]["query"] == "Translate: hello world"
    assert "Translate: hello world" in turn.answer


def test_recorded_twin_chats_never_cross(replay: Replayer) -> None:
    open_a, open_b, second_a, second_b = _turns(replay.step("step8 twin chats"))
    assert "conversation_id" not in open_a.run and "conversation_id" not in open_b.run
    # without chat ids the two histories are alike: neither continues (either could be the other chat's); each
    # starts a new conversation with its history folded in
    for second in (second_a, second_b):
        assert "conversation_id" not in second.run
        assert second.run["query"].startswith("User: Good morning\n\nAssistant: Echo: Good morning")


def test_recorded_forwarded_chat_ids_keep_the_chat_in_its_conversation(replay: Replayer) -> None:
    first, second = _turns(replay.step("step8 forward headers"))[:2]
    assert "conversation_id" not in first.run
    assert second.run["conversation_id"] == first.conversation
    assert second.run["query"] == "#first with forwarded headers"
