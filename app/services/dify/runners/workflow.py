"""`/workflows/run`: workflow apps. The text goes in the app's query variable; `text_chunk` text is streamed, the
outputs answer when nothing was; a failed or stopped run is an error (a blocking one is still HTTP 200)."""

import msgspec

from app.schemas.dify import WorkflowRunAnswer, WorkflowRunRequest
from app.services.answer import AnswerStream
from app.services.dify.client import DifyClient
from app.services.dify.interpret import WorkflowInterpreter
from app.services.dify.runners.base import RunInput, open_run
from app.services.registry import DifyApp

_PATH = "/workflows/run"
_answer = msgspec.json.Decoder(WorkflowRunAnswer)


class WorkflowRunner:
    __slots__ = ("_dify",)

    def __init__(self, dify: DifyClient) -> None:
        self._dify = dify

    async def run(self, app: DifyApp, run: RunInput, *, stream: bool) -> AnswerStream:
        request = WorkflowRunRequest(
            inputs=run.inputs,
            user=run.user,
            response_mode="streaming" if stream else "blocking",
            files=run.files,
        )
        interpreter = WorkflowInterpreter(app.output_key)
        if not stream:
            answer = await self._dify.run_blocking(app.key, _PATH, request, _answer)
            return AnswerStream.complete(interpreter, interpreter.read_blocking(answer))
        return await open_run(
            self._dify,
            app,
            run,
            interpreter,
            path=_PATH,
            request=request,
            stop_path=lambda task_id: f"/workflows/tasks/{task_id}/stop",
        )
