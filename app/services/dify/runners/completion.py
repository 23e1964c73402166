"""`/completion-messages`: text generator apps. The text goes in the app's query variable; no conversation."""

from app.schemas.dify import CompletionMessageRequest
from app.services.answer import AnswerStream
from app.services.dify.client import BLOCKING_ANSWER
from app.services.dify.interpret import ChatInterpreter
from app.services.dify.runners.base import DifyRunner, RunInput
from app.services.registry import DifyApp

_PATH = "/completion-messages"


class CompletionRunner(DifyRunner):
    __slots__ = ()

    async def run(self, app: DifyApp, run: RunInput, *, stream: bool) -> AnswerStream:
        request = CompletionMessageRequest(
            inputs=run.inputs,
            user=run.user,
            response_mode="streaming" if stream else "blocking",
            files=run.files,
        )
        return await self._start(
            app,
            run,
            # the same message events as a chat, without a conversation
            ChatInterpreter(files_origin=self._dify.files_origin),
            request,
            stream=stream,
            path=_PATH,
            answer=BLOCKING_ANSWER,
            read_blocking=ChatInterpreter.read_blocking,
            stop_path=lambda task_id: f"{_PATH}/{task_id}/stop",
        )
