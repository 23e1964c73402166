"""One runner per Dify app mode, behind one interface: `run(app, run_input, *, stream) -> AnswerStream`."""

from app.config import AppMode
from app.services.dify.client import DifyClient
from app.services.dify.runners.base import RunInput, Runner
from app.services.dify.runners.chat import ChatRunner
from app.services.dify.runners.completion import CompletionRunner
from app.services.dify.runners.workflow import WorkflowRunner


class Runners:
    """The runner for each app mode (an app whose mode is not known yet is run as a chat)."""

    __slots__ = ("_by_mode", "_chat")

    def __init__(self, dify: DifyClient) -> None:
        self._chat = ChatRunner(dify)
        self._by_mode: dict[AppMode | None, Runner] = {
            "completion": CompletionRunner(dify),
            "workflow": WorkflowRunner(dify),
        }

    def for_mode(self, mode: AppMode | None) -> Runner:
        return self._by_mode.get(mode, self._chat)


__all__ = ["ChatRunner", "CompletionRunner", "RunInput", "Runner", "Runners", "WorkflowRunner"]
