"""`/workflows/run`: workflow apps. The text goes in the app's query variable; `text_chunk` text is streamed, the
outputs answer when nothing was; a failed or stopped run is an error (a blocking one is still HTTP 200)."""

import msgspec

from app.schemas.dify import WorkflowRunAnswer, WorkflowRunRequest
from app.services.answer import AnswerStream
from app.services.dify.interpret import WorkflowInterpreter
from app.services.dify.runners.base import DifyRunner, RunInput
from app.services.registry import DifyApp

_PATH = "/workflows/run"
_answer = msgspec.json.Decoder(WorkflowRunAnswer)


class WorkflowRunner(DifyRunner):
    __slots__ = ()

    async def run(self, app: DifyApp, run: RunInput, *, stream: bool) -> AnswerStream:
        request = WorkflowRunRequest(
            inputs=run.inputs,
            user=run.user,
            response_mode="streaming" if stream else "blocking",
            files=run.files,
        )
        return await self._start(
            app,
            run,
            WorkflowInterpreter(app.output_key, files_origin=self._dify.files_origin),
            request,
            stream=stream,
            path=_PATH,
            answer=_answer,
            read_blocking=WorkflowInterpreter.read_blocking,
            stop_path=lambda task_id: f"/workflows/tasks/{task_id}/stop",
        )
