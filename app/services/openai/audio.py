"""Audio through the named app: transcriptions via Dify's `POST /audio-to-text`, speech via `POST /text-to-audio`
(its bytes streamed through as they come). Dify's refusals (the feature off for the app, a file too large or of a
type it does not take) are clear 4xx."""

from collections.abc import AsyncIterator
from typing import Final

import httpx

from app.errors import GatewayError, InvalidRequestError, PayloadTooLargeError
from app.schemas.openai.audio import SpeechRequest, TranscriptionForm
from app.services.dify import DifyClient
from app.services.pipeline import dify_user
from app.services.registry import ModelRegistry

TEXT_FORMATS: Final = ("json", "text")  # Dify answers text alone: no segments, timings or subtitles to give


def _named(error: GatewayError, what: str) -> GatewayError:
    """Dify's refusal, said as the client's problem where it is one."""
    if error.code == "audio_too_large":
        return PayloadTooLargeError(f"{what}: {error.message}", code="audio_too_large", param="file")
    return error


class Audio:
    def __init__(
        self, dify: DifyClient, registry: ModelRegistry, *, raw_user: bool = False, voice: bool = False
    ) -> None:
        self._dify = dify
        self._registry = registry
        self._raw_user = raw_user
        self._voice = voice  # SPEECH_VOICE=client: the client's voice is sent to Dify

    async def transcribe(self, form: TranscriptionForm, client_id: str, user: str | None) -> str:
        if form.stream:
            raise InvalidRequestError(
                "`stream` is not supported: Dify's speech to text answers the whole text at once", param="stream"
            )
        if form.response_format not in TEXT_FORMATS:
            raise InvalidRequestError(
                f"response_format `{form.response_format[:40]}` is not supported: Dify's speech to text gives the "
                "text alone (use json or text)",
                param="response_format",
                code="invalid_value",
            )
        app = await self._registry.require(form.model)
        data = await form.file.read()
        if not data:
            raise InvalidRequestError("The audio file is empty", param="file", code="invalid_file")
        name = form.file.filename or "audio.wav"
        mime_type = form.file.content_type or "application/octet-stream"
        try:
            return await self._dify.audio_to_text(
                app.key, dify_user(user, client_id, raw=self._raw_user), name, mime_type, data
            )
        except GatewayError as exc:
            raise _named(exc, "Dify refused the audio") from exc

    async def speak(self, request: SpeechRequest, client_id: str, user: str | None) -> httpx.Response:
        """The audio response, open: stream it with `audio_bytes`, which closes it."""
        if request.stream_format == "sse":
            raise InvalidRequestError(
                "stream_format `sse` is not supported: the audio is streamed as bytes", param="stream_format"
            )
        app = await self._registry.require(request.model)
        voice = request.voice if self._voice and isinstance(request.voice, str) else None
        return await self._dify.text_to_audio(
            app.key, dify_user(request.user or user, client_id, raw=self._raw_user), request.input, voice
        )


async def audio_bytes(response: httpx.Response) -> AsyncIterator[bytes]:
    """Dify's audio as it comes; the response is closed however the stream ends."""
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    finally:
        await response.aclose()
