"""`POST /v1/audio/transcriptions` (multipart) and `POST /v1/audio/speech` (JSON)."""

from typing import Annotated, Literal

import msgspec
from litestar.datastructures import UploadFile


class TranscriptionForm(msgspec.Struct, kw_only=True):
    """The SDK's multipart form. `language`, `prompt` and `temperature` are accepted; Dify's speech-to-text model
    decides them."""

    file: UploadFile
    model: str
    language: str | None = None
    prompt: str | None = None
    response_format: str = "json"
    temperature: float | None = None
    stream: bool | None = None


class Transcription(msgspec.Struct, kw_only=True):
    text: str


class SpeechRequest(msgspec.Struct, kw_only=True):
    """`voice` reaches Dify only with SPEECH_VOICE=client (else the app's own voice speaks); `response_format`,
    `speed` and `instructions` are accepted and the audio is what the app's text-to-speech model makes."""

    model: str
    input: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    voice: str | dict[str, str] | None = None
    response_format: str | None = None
    speed: float | None = None
    instructions: str | None = None
    stream_format: Literal["audio", "sse"] | None = None
    user: str | None = None
