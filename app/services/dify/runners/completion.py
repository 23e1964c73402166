"""`/completion-messages`: text generator apps. The text goes in the app's query variable; no conversation."""

import msgspec

from app.schemas.dify import BlockingMessage, CompletionMessageRequest
from app.services.answer import AnswerStream
from app.services.dify.client import DifyClient
from app.services.dify.interpret import ChatInterpreter
from app.services.dify.runners.base import RunInput, open_run
from app.services.registry import DifyApp

_PATH = "/completion-messages"
_answer = msgspec.json.Decoder(BlockingMessage)


class CompletionRunner:
    __slots__ = ("_dify",)

    def __init__(self, dify: DifyClient) -> None:
        self._dify = dify

    async def run(self, app: DifyApp, run: RunInput, *, stream: bool) -> AnswerStream:
        request = CompletionMessageRequest(
            inputs=run.inputs,
            user=run.user,
            response_mode="streaming" if stream else "blocking",
            files=run.files,
        )
        interpreter = ChatInterpreter()  # the same message events as a chat, without a conversation
        if not stream:
            message = await self._dify.run_blocking(app.key, _PATH, request, _answer)
            return AnswerStream.complete(interpreter, interpreter.read_blocking(message))
        return await open_run(
            self._dify,
            app,
            run,
            interpreter,
            path=_PATH,
            request=request,
            stop_path=lambda task_id: f"{_PATH}/{task_id}/stop",
        )
