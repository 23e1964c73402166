"""`/chat-messages`: chat, agent-chat, advanced-chat (chatflow) and agent apps. Agents never block (Dify refuses):
their non-streaming answers are streamed from Dify and collected."""

import msgspec

from app.config import AppMode
from app.schemas.dify import BlockingMessage, ChatMessageRequest
from app.services.answer import AnswerStream
from app.services.dify.client import DifyClient
from app.services.dify.interpret import ChatInterpreter
from app.services.dify.runners.base import RunInput, open_run
from app.services.registry import DifyApp

STREAM_ONLY: frozenset[AppMode | None] = frozenset({"agent-chat", "agent"})
_PATH = "/chat-messages"
_answer = msgspec.json.Decoder(BlockingMessage)


class ChatRunner:
    __slots__ = ("_dify",)

    def __init__(self, dify: DifyClient) -> None:
        self._dify = dify

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
        interpreter = ChatInterpreter(expected_conversation=run.conversation_id)
        if not streaming:
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
