"""`POST /v1/audio/transcriptions` and `POST /v1/audio/speech` (also without the `/v1` prefix)."""

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, MultipartBody
from litestar.response import Stream

from app.controllers.openapi import ERROR_RESPONSES, operation_id
from app.guards import ClientKeyMiddleware, client_id_of
from app.schemas.openai.audio import SpeechRequest, Transcription, TranscriptionForm
from app.services.openai.audio import Audio, audio_bytes


class AudioController(Controller):
    path = "/"
    middleware = [ClientKeyMiddleware]  # noqa: RUF012  # (not a guard: see ClientKeyMiddleware)
    tags = ["Audio"]  # noqa: RUF012

    @post(
        ["/v1/audio/transcriptions", "/audio/transcriptions"],
        status_code=200,
        operation_id=operation_id("createTranscription"),
        responses={
            200: ResponseSpec(Transcription, description="The text (`response_format` json)"),
            **ERROR_RESPONSES,
        },
        summary="Transcribe audio with a Dify app's speech to text",
        description="Multipart `file` and `model` (a Dify app with speech to text on); `response_format` json or text.",
    )
    async def create_transcription(
        self, data: MultipartBody[TranscriptionForm], request: Request[Any, Any, Any], audio: NamedDependency[Audio]
    ) -> Response[Any]:
        text = await audio.transcribe(data, client_id_of(request), request.headers.get("x-dify-user"))
        if data.response_format == "text":
            return Response(text, media_type="text/plain; charset=utf-8")
        return Response(Transcription(text=text))

    @post(
        ["/v1/audio/speech", "/audio/speech"],
        status_code=200,
        operation_id=operation_id("createSpeech"),
        responses={
            200: ResponseSpec(bytes, description="The audio, as the app's text to speech makes it"),
            **ERROR_RESPONSES,
        },
        summary="Speak text with a Dify app's text to speech",
        description="JSON `model` (a Dify app with text to speech on) and `input`; the audio bytes are streamed.",
    )
    async def create_speech(
        self, data: JSONBody[SpeechRequest], request: Request[Any, Any, Any], audio: NamedDependency[Audio]
    ) -> Stream:
        answer = await audio.speak(data, client_id_of(request), request.headers.get("x-dify-user"))
        return Stream(audio_bytes(answer), media_type=answer.headers.get("content-type", "audio/mpeg"))
