"""`/chat-messages`: chat, agent-chat, advanced-chat (chatflow) and agent apps. Agents never block (Dify refuses):
their non-streaming answers are streamed from Dify and collected."""

from app.config import AppMode
from app.schemas.dify import ChatMessageRequest
from app.services.answer import AnswerStream
from app.services.dify.client import BLOCKING_ANSWER
from app.services.dify.interpret import ChatInterpreter
from app.services.dify.runners.base import DifyRunner, RunInput
from app.services.registry import DifyApp

STREAM_ONLY: frozenset[AppMode | None] = frozenset({"agent-chat", "agent"})
_PATH = "/chat-messages"


class ChatRunner(DifyRunner):
    __slots__ = ()

    async def run(self, app: DifyApp, run: RunInput, *, stream: bool) -> AnswerStream:
        streaming = stream or app.mode in STREAM_ONLY
        request = ChatMessageRequest(
            query=run.query,
            inputs=run.inputs,
            user=run.user,
            response_mode="streaming" if streaming else "blocking",
            conversation_id=run.conversation_id,
            files=run.files,
            auto_generate_name=run.auto_generate_name,
        )
        return await self._start(
            app,
            run,
            ChatInterpreter(expected_conversation=run.conversation_id, files_origin=self._dify.files_origin),
            request,
            stream=streaming,
            path=_PATH,
            answer=BLOCKING_ANSWER,
            read_blocking=ChatInterpreter.read_blocking,
            stop_path=lambda task_id: f"{_PATH}/{task_id}/stop",
        )
