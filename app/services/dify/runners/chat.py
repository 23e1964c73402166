"""`/chat-messages`: chat, agent-chat, advanced-chat (chatflow) and agent apps. Agents never block: their
non-streaming answers are streamed from Dify and collected."""

from app.config import AppMode
from app.schemas.dify import ChatMessageRequest
from app.services.answer import AnswerEvent, AnswerStream, Finished, Started, TextDelta
from app.services.dify.client import DifyClient
from app.services.dify.interpret import ChatInterpreter, usage_from_dify
from app.services.dify.runners.base import RunInput
from app.services.dify.stream import dify_event_batches
from app.services.registry import DifyApp

STREAM_ONLY: frozenset[AppMode | None] = frozenset({"agent-chat"})


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
        interpreter = ChatInterpreter()
        if not streaming:
            message = await self._dify.chat_blocking(app.key, request)
            interpreter.over = True
            interpreter.conversation_id = message.conversation_id
            batch: list[AnswerEvent] = [
                Started(
                    conversation_id=message.conversation_id,
                    message_id=message.message_id or message.id,
                    created=message.created_at,
                )
            ]
            if message.answer:
                batch.append(TextDelta(message.answer))
            batch.append(Finished(usage=usage_from_dify(message.metadata.usage if message.metadata else None)))
            return AnswerStream.complete(interpreter, batch)

        response = await self._dify.chat_stream(app.key, request)

        async def stop(task_id: str) -> None:
            await self._dify.stop_chat(app.key, task_id, run.user)

        return AnswerStream(interpreter, source=dify_event_batches(response), response=response, stop=stop)
