"""Dify events -> the neutral answer events (app.services.answer). Pure and per run; no I/O.

`ChatInterpreter` reads the message-shaped streams (`/chat-messages` of chat, agent-chat, advanced-chat and agent
apps, and `/completion-messages`); `WorkflowInterpreter` reads `/workflows/run`.
"""

import json
import re
from typing import Any, Final

from app.errors import GatewayError, InvalidRequestError, NotFoundError, UpstreamError
from app.schemas.dify import (
    AgentMessageEvent,
    AgentThoughtEvent,
    BaseEvent,
    BlockingMessage,
    DifyUsage,
    ErrorBody,
    ErrorEvent,
    HumanInputRequiredEvent,
    MessageEndEvent,
    MessageEvent,
    MessageFileEvent,
    MessageReplaceEvent,
    NodeFinishedEvent,
    NodeStartedEvent,
    ReasoningChunkEvent,
    TextChunkEvent,
    TextReplaceEvent,
    WorkflowFinishedEvent,
    WorkflowPausedEvent,
    WorkflowRunAnswer,
    WorkflowRunData,
    WorkflowStartedEvent,
)
from app.schemas.openai import Usage
from app.services.answer import (
    KEEPALIVE,
    AnswerEvent,
    Failed,
    FileOut,
    Finished,
    Progress,
    ReasoningDelta,
    Replaced,
    Started,
    TextDelta,
    ToolUse,
    file_markdown,
)
from app.services.dify.errors import error_from_dify


def usage_from_dify(usage: DifyUsage | None) -> Usage:
    if usage is None:
        return Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    # Dify's agent stream reports total_tokens: 0; an inconsistent total is recomputed
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


PAUSED_NOTICE: Final = "[The app is waiting for input before it can go on; it cannot be given through this API:]\n\n"
_FORM_FIELD = re.compile(r"\{\{#\$output\.(\w+)#\}\}")
_STOPPED = "Aborted: User requested stop"  # Dify 1.15 reports a stopped run as failed, with this error


def paused(forms: list[str]) -> list[AnswerEvent]:
    """A run that waits for a human (Dify 1.12+ human input): its form is the answer, with a notice, never an empty
    `stop`. The form's fields (`{{#$output.comment#}}`) are shown by name."""
    text = PAUSED_NOTICE + "\n\n".join(_FORM_FIELD.sub(r"[\1]", form) for form in forms if form).rstrip()
    return [TextDelta(text), Finished(usage=Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0))]


def never_ran(data: WorkflowRunData) -> bool:
    """Dify 1.12+ validates a run's inputs in its worker: a refused input is a run that never ran a step."""
    return data.status == "failed" and data.total_steps == 0 and not data.created_by


def run_failure(data: WorkflowRunData) -> GatewayError:
    detail = data.error or "the workflow failed"
    if data.status == "stopped" or detail.startswith(_STOPPED):
        return UpstreamError("Dify: the run was stopped", code="workflow_stopped")
    if never_ran(data):
        return InvalidRequestError(f"Dify: {detail}", code="invalid_param")
    return UpstreamError(f"Dify: the workflow failed: {detail}", code="workflow_failed")


def replaced(expected: str) -> GatewayError:
    return NotFoundError(
        f"Dify no longer knows conversation `{expected}` (it started a new one)", code="conversation_not_found"
    )


def tool_uses(thought: AgentThoughtEvent) -> list[ToolUse]:
    """One thought may call several tools (`tool: "a;b"`, input and observation then JSON objects by tool name)."""
    names = [name for name in thought.tool.split(";") if name]
    inputs, results = _by_tool(thought.tool_input, names), _by_tool(thought.observation, names)
    return [
        ToolUse(id=f"call_{thought.id}_{index}", name=name, arguments=inputs[name], result=results[name])
        for index, name in enumerate(names)
    ]


def _by_tool(raw: str, names: list[str]) -> dict[str, str]:
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and all(name in parsed for name in names):
        return {
            name: value if isinstance(value := parsed[name], str) else json.dumps(value, ensure_ascii=False)
            for name in names
        }
    return dict.fromkeys(names, raw)


def incomplete() -> GatewayError:
    return UpstreamError("Dify closed the stream before the answer was complete", code="upstream_incomplete")


class _Interpreter:
    """The loop every interpreter shares: keep-alives, the task id, and no event read past the terminal one."""

    __slots__ = ("_forms", "_origin", "_reasoned", "abandoned", "conversation_id", "over", "task_id")

    def __init__(self, files_origin: str = "") -> None:
        self._origin = files_origin  # where Dify's relative file URLs (`/files/...`, no FILES_URL set) are served
        self.over = False
        self.abandoned = False  # over for the client, though Dify's task still runs (stop it)
        self.task_id: str | None = None
        self.conversation_id: str | None = None
        self._forms: list[str] = []  # the forms of human_input_required, shown if the run pauses
        self._reasoned = False  # separated reasoning was streamed (message_end repeats it in its metadata)

    def feed(self, events: list[BaseEvent | None]) -> list[AnswerEvent]:
        out: list[AnswerEvent] = []
        for event in events:
            if event is None:
                out.append(KEEPALIVE)
                continue
            if event.task_id is not None:
                self.task_id = event.task_id
            self._apply(event, out)
            if self.over:
                break
        return out

    def _apply(self, event: BaseEvent, out: list[AnswerEvent]) -> None:
        raise NotImplementedError

    def _run_event(self, event: BaseEvent, out: list[AnswerEvent]) -> None:
        """What chatflows and workflows share: separated reasoning (Dify 1.15+), and a run that waits for a human
        (its form, then the pause that ends the stream)."""
        if isinstance(event, ReasoningChunkEvent):
            if event.data is not None and event.data.reasoning:
                self._reasoned = True
                out.append(ReasoningDelta(event.data.reasoning))
        elif isinstance(event, HumanInputRequiredEvent):
            self._forms.append(event.data.form_content if event.data else "")
        elif isinstance(event, WorkflowPausedEvent):
            self.over = True
            out += paused(self._forms)
        elif isinstance(event, NodeStartedEvent | NodeFinishedEvent):
            progress = node_progress(event)
            if progress is not None:
                out.append(progress)

    def _error(self, event: ErrorEvent) -> Failed:
        self.over = True
        return Failed(
            error_from_dify(event.status or 500, ErrorBody(code=event.code or "unknown", message=event.message or ""))
        )


class ChatInterpreter(_Interpreter):
    """Message-shaped runs: `message`/`agent_message` deltas, `message_replace`, `message_file`, and `message_end` or
    `error` at the end. After `agent_message` deltas (the New Agent of Dify 1.16) a closing `message` repeats the
    whole answer: only what it adds is shown."""

    __slots__ = ("_agent_text", "_expected", "_named", "_tools_seen", "workflow_failure")

    def __init__(self, expected_conversation: str | None = None, *, files_origin: str = "") -> None:
        super().__init__(files_origin)
        self._expected = expected_conversation  # the conversation continued: Dify 1.15 may silently start another
        self._tools_seen: set[str] = set()  # agent thoughts already shown (Dify re-sends each as it fills in)
        self._named = False
        self._agent_text: list[str] | None = None  # the agent_message text so far, once one was seen
        self.workflow_failure: WorkflowRunData | None = None  # a chatflow's failed run, if no error event follows

    def _name(self, event: BaseEvent, out: list[AnswerEvent]) -> None:
        """The first event that names the run. A continued conversation Dify 1.15 silently replaced (an unknown id
        starts a new one) is refused: an answer without the history is never shown, and its task is stopped."""
        self._named = True
        self.conversation_id = event.conversation_id
        if self._expected is not None and event.conversation_id and event.conversation_id != self._expected:
            self.over = self.abandoned = True
            out.append(Failed(replaced(self._expected)))
        else:
            out.append(
                Started(conversation_id=event.conversation_id, message_id=event.message_id, created=event.created_at)
            )

    def _apply(self, event: BaseEvent, out: list[AnswerEvent]) -> None:
        if type(event) is MessageEvent and self._named and self._agent_text is None:  # (nearly every event)
            if event.answer:
                out.append(TextDelta(event.answer))
            return
        if not self._named and event.message_id:
            self._name(event, out)
            if self.over:
                return
        self._dispatch(event, out)

    def _dispatch(self, event: BaseEvent, out: list[AnswerEvent]) -> None:
        if isinstance(event, AgentMessageEvent):
            self._agent_delta(event.answer, out)
        elif isinstance(event, MessageEvent):
            self._message(event.answer, out)
        elif isinstance(event, MessageFileEvent):
            self._file(event, out)
        elif isinstance(event, MessageReplaceEvent):
            out.append(Replaced(event.answer))
        elif isinstance(event, MessageEndEvent):
            self.over = True
            if not self._reasoned and event.metadata is not None and event.metadata.reasoning:
                out.append(ReasoningDelta("\n\n".join(event.metadata.reasoning.values())))
            out.append(Finished(usage=usage_from_dify(event.metadata.usage if event.metadata else None)))
        elif isinstance(event, ErrorEvent):
            out.append(self._error(event))
        elif isinstance(event, WorkflowFinishedEvent):
            self._workflow_finished(event.data, out)
        elif isinstance(event, AgentThoughtEvent):
            self._thought(event, out)
        else:
            self._run_event(event, out)

    def _thought(self, thought: AgentThoughtEvent, out: list[AnswerEvent]) -> None:
        """Shown once, when its tool has answered (its `thought` text is never answer text)."""
        if thought.tool and thought.observation and thought.id not in self._tools_seen:
            self._tools_seen.add(thought.id)
            out += tool_uses(thought)

    def _agent_delta(self, answer: str, out: list[AnswerEvent]) -> None:
        if answer:
            if self._agent_text is None:
                self._agent_text = []
            self._agent_text.append(answer)
            out.append(TextDelta(answer))

    def _workflow_finished(self, data: WorkflowRunData | None, out: list[AnswerEvent]) -> None:
        """A chatflow's run. Failed before it named the conversation, having run no step: a refused input (Dify
        1.12+ validates in its worker), the client's error. Failed later: reported at the end, if no error event
        follows (Dify 1.15 sends none)."""
        if data is None or data.status != "failed":
            return
        if never_ran(data) and not self._named:
            self.over = True
            out.append(Failed(run_failure(data)))
        else:
            self.workflow_failure = data

    def _message(self, answer: str, out: list[AnswerEvent]) -> None:
        if not answer:
            return
        streamed = self._agent_text
        if streamed is None:
            out.append(TextDelta(answer))
            return
        # the closing message of an agent run: the whole answer, already streamed as agent_message deltas
        so_far = "".join(streamed)
        if answer.startswith(so_far) and len(answer) > len(so_far):
            rest = answer[len(so_far) :]
            streamed.append(rest)
            out.append(TextDelta(rest))

    def _file(self, event: MessageFileEvent, out: list[AnswerEvent]) -> None:
        if event.url is None:
            self._message(event.answer or "", out)  # newest Dify sends text chunks as message_file after a file
        elif event.belongs_to == "assistant":
            out.append(FileOut(url=_absolute(event.url, self._origin), kind=event.type))

    def read_blocking(self, message: BlockingMessage) -> list[AnswerEvent]:
        """A blocking answer (`/chat-messages`, `/completion-messages`): the same events, in one batch."""
        self.over = True
        self.task_id = message.task_id
        self.conversation_id = message.conversation_id
        if self._expected is not None and message.conversation_id and message.conversation_id != self._expected:
            return [Failed(replaced(self._expected))]  # (the run is over: nothing to stop)
        batch: list[AnswerEvent] = [
            Started(
                conversation_id=message.conversation_id,
                message_id=message.message_id or message.id,
                created=message.created_at,
            )
        ]
        if message.event == "workflow_paused":
            return batch + paused([r.form_content or "" for r in (message.data.reasons if message.data else [])])
        if message.metadata is not None and message.metadata.reasoning:
            batch.append(ReasoningDelta("\n\n".join(message.metadata.reasoning.values())))
        if message.answer:
            batch.append(TextDelta(message.answer))
        batch.append(Finished(usage=usage_from_dify(message.metadata.usage if message.metadata else None)))
        return batch

    def close(self) -> list[AnswerEvent]:
        if self.over:
            return []
        if self.workflow_failure is not None:
            return [Failed(run_failure(self.workflow_failure))]
        return [Failed(incomplete())]


# they do nothing worth showing (the answer is already shown); nodes inside iterations and loops repeat their step
_QUIET_NODES = frozenset({"start", "end", "answer"})


def node_progress(event: NodeStartedEvent | NodeFinishedEvent) -> Progress | None:
    """A node that started (its title), or failed (with Dify's error); nothing for the rest."""
    data = event.data
    if data is None or not data.title or data.node_type in _QUIET_NODES or data.iteration_id or data.loop_id:
        return None
    if isinstance(event, NodeStartedEvent):
        return Progress(step=str(data.title))
    if data.status in ("failed", "exception"):
        return Progress(step=str(data.title), error=str(data.error or data.status))
    return None


def _absolute(url: str, origin: str) -> str:
    """Dify's file URLs are relative (`/files/...`) unless its FILES_URL is set: served at Dify's own origin."""
    return origin + url if url.startswith("/") and not url.startswith("//") else url


def _files_in(value: Any, origin: str) -> list[str]:
    """Dify file objects in a workflow output (a file, or a list of them) as markdown."""
    items = value if isinstance(value, list) else [value]
    return [
        file_markdown(_absolute(str(item["url"]), origin), item.get("type"), item.get("filename"))
        for item in items
        if isinstance(item, dict) and item.get("url") and ("type" in item or "filename" in item)
    ]


def workflow_output(outputs: dict[str, Any] | None, key: str | None, origin: str = "") -> str:
    """The answer text of a workflow's outputs (`_answer_text`), with the files among them shown after it."""
    text = _answer_text(outputs, key)
    files = [markdown for value in (outputs or {}).values() for markdown in _files_in(value, origin)]
    return "\n\n".join([text, *files]) if files and not text.startswith("```json") else text


def _answer_text(outputs: dict[str, Any] | None, key: str | None) -> str:
    """What a workflow answers when it streamed nothing: the configured output; else its only output, if text; else
    a text output with a conventional name (`answer`, `result`, `output`, `text`); else all outputs as JSON in a
    fenced block."""
    if not outputs:
        return ""
    if key is not None and key in outputs:
        value = outputs[key]
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(outputs) == 1:
        [value] = outputs.values()
        if isinstance(value, str):
            return value
    for name in _ANSWER_NAMES:
        if isinstance(outputs.get(name), str):
            return str(outputs[name])
    return "```json\n" + json.dumps(outputs, ensure_ascii=False, indent=2) + "\n```"


_ANSWER_NAMES = ("answer", "result", "output", "text")


class WorkflowInterpreter(_Interpreter):
    """`/workflows/run`: `text_chunk` text is the answer; `workflow_finished` ends it (its outputs are the answer
    when nothing was streamed). A failed, stopped or paused run is never a normal `stop`."""

    __slots__ = ("_named", "_output_key", "_streamed")

    def __init__(self, output_key: str | None = None, *, files_origin: str = "") -> None:
        super().__init__(files_origin)  # (a workflow has no conversation)
        self._output_key = output_key
        self._named = False
        self._streamed = False

    def _started(self, run_id: str | None, created: int) -> list[AnswerEvent]:
        if self._named:
            return []
        self._named = True
        return [Started(conversation_id=None, message_id=run_id, created=created)]

    def _apply(self, event: BaseEvent, out: list[AnswerEvent]) -> None:
        if isinstance(event, TextChunkEvent):
            if event.data is not None and event.data.text:
                self._streamed = True
                out.append(TextDelta(event.data.text))
        elif isinstance(event, WorkflowStartedEvent):
            out += self._started(event.workflow_run_id, event.data.created_at if event.data else 0)
        elif isinstance(event, TextReplaceEvent):
            out.append(Replaced(event.data.text if event.data else ""))
        elif isinstance(event, WorkflowFinishedEvent):
            out += self._started(event.workflow_run_id, event.created_at)
            out += self.finish(event.data or WorkflowRunData())
        elif isinstance(event, ErrorEvent):
            out.append(self._error(event))
        else:
            self._run_event(event, out)

    def finish(self, data: WorkflowRunData) -> list[AnswerEvent]:
        self.over = True
        if data.status in ("succeeded", "partial-succeeded"):
            text = "" if self._streamed else workflow_output(data.outputs, self._output_key, self._origin)
            usage = Usage(prompt_tokens=0, completion_tokens=0, total_tokens=data.total_tokens)
            return [TextDelta(text), Finished(usage=usage)] if text else [Finished(usage=usage)]
        if data.status == "paused":
            return paused([r.form_content or "" for r in data.reasons or []])
        return [Failed(run_failure(data))]

    def read_blocking(self, answer: WorkflowRunAnswer) -> list[AnswerEvent]:
        self.task_id = answer.task_id
        return self._started(answer.workflow_run_id, answer.data.created_at) + self.finish(answer.data)

    def close(self) -> list[AnswerEvent]:
        return [] if self.over else [Failed(incomplete())]
