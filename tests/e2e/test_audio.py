"""Audio through the official SDK: transcriptions via Dify's speech to text, speech via its text to speech (the bytes
streamed through), and the app's refusals as 4xx."""

from typing import Any

import openai
import pytest

from tests.dify_double import DifyDouble
from tests.e2e.conftest import own_client, scoped

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80>\x00\x00\x02\x00\x10\x00data"


def test_a_transcription_is_difys_text(client: openai.OpenAI, dify: DifyDouble) -> None:
    transcript = client.audio.transcriptions.create(model="voice-chat", file=("hello.wav", WAV, "audio/wav"))
    assert transcript.text == f"Heard {len(WAV)} bytes of hello.wav"
    [sent] = [r for r in dify.requests if r.path == "/v1/audio-to-text"][-1:]
    assert sent.key == "app-e2e-voice"


def test_a_text_transcription_is_plain_text(client: openai.OpenAI) -> None:
    text: Any = client.audio.transcriptions.create(
        model="voice-chat", file=("hello.wav", WAV, "audio/wav"), response_format="text"
    )
    assert text.strip() == f"Heard {len(WAV)} bytes of hello.wav"


def test_formats_dify_cannot_give_are_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(
            model="voice-chat", file=("hello.wav", WAV, "audio/wav"), response_format="verbose_json"
        )
    assert "response_format" in str(caught.value)


@pytest.mark.parametrize(
    ("model", "file", "status", "why"),
    [
        ("realdify-chat", ("hello.wav", WAV, "audio/wav"), 400, "Speech to text is not enabled"),
        ("voice-chat", ("notes.txt", b"not audio", "text/plain"), 400, "Audio type not allowed"),
    ],
)
def test_difys_refusals_are_4xx(
    client: openai.OpenAI, model: str, file: tuple[str, bytes, str], status: int, why: str
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(model=model, file=file)
    assert caught.value.status_code == status
    assert why in str(caught.value)


def test_speech_streams_difys_audio(client: openai.OpenAI, dify: DifyDouble) -> None:
    with client.audio.speech.with_streaming_response.create(model="voice-chat", voice="alloy", input="Hello") as speech:
        assert speech.headers["content-type"] == "audio/mpeg"
        audio = b"".join(speech.iter_bytes())
    assert audio == b"ID3\x04\x00app-voice:Hello"  # the app's own voice: SPEECH_VOICE=app
    [sent] = [r.body for r in dify.requests if r.path == "/v1/text-to-audio"][-1:]
    assert sent["text"] == "Hello" and "voice" not in sent and sent["user"] == scoped("").rstrip(":")


def test_speech_voice_client_sends_the_clients_voice(dify: DifyDouble) -> None:
    with own_client(dify, speech_voice="client") as sdk:
        audio = sdk.audio.speech.create(model="voice-chat", voice="nova", input="Hi").content
    assert audio == b"ID3\x04\x00nova:Hi"


def test_speech_on_an_app_without_text_to_speech_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="realdify-chat", voice="alloy", input="Hello")
    assert "TTS is not enabled" in str(caught.value)


def test_speech_for_an_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.audio.speech.create(model="no-such-app", voice="alloy", input="Hello")


def test_a_streamed_transcription_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="voice-chat", file=("hello.wav", WAV, "audio/wav"), stream=True)
    assert "stream" in str(caught.value)
