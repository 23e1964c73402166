"""Chat UIs' housekeeping prompts (shared/clients/ui-requests.md, and Open WebUI's as recorded) are recognised;
real turns, Open WebUI's RAG turns among them, are not."""

import json
from pathlib import Path

import msgspec
import pytest

from app.schemas.openai import ChatMessage
from app.services.inputs import is_housekeeping

RECORDING = Path(__file__).resolve().parents[2] / "fixtures" / "clients" / "open-webui-0.12.4.jsonl"


def _messages(*items: dict[str, object]) -> list[ChatMessage]:
    return msgspec.convert(list(items), type=list[ChatMessage])


def _recorded() -> list[list[ChatMessage]]:
    bodies = [json.loads(line).get("json") for line in RECORDING.read_text().splitlines()]
    return [msgspec.convert(b["messages"], type=list[ChatMessage]) for b in bodies if isinstance(b, dict)]


def test_open_webuis_recorded_tasks_are_housekeeping_and_its_turns_are_not() -> None:
    requests = _recorded()
    tasks = [m for m in requests if is_housekeeping(m)]
    turns = [m for m in requests if not is_housekeeping(m)]
    assert len(tasks) == 48  # titles, tags and follow-ups, as the recording's README counts them
    assert len(turns) >= 30
    for messages in turns:
        text = messages[-1].content if isinstance(messages[-1].content, str) else ""
        assert not text.startswith(("### Task:\nGenerate", "### Task:\nPredict"))


@pytest.mark.parametrize(
    "messages",
    [
        # LobeChat v1 topic title
        (
            {
                "role": "system",
                "content": "You are a professional conversation summarizer. Generate a concise title that captures the essence of the conversation.",
            },
            {"role": "user", "content": "user: hi\nassistant: hello"},
        ),
        # NextChat title
        (
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {
                "role": "user",
                "content": "Please generate a four to five word title summarizing our conversation without any lead-in, punctuation, quotation marks, periods, symbols, bold text, or additional text. Remove enclosing quotation marks.",
            },
        ),
        # NextChat memory (a trailing system message)
        (
            {"role": "user", "content": "hi"},
            {
                "role": "system",
                "content": "Summarize the discussion briefly in 200 words or less to use as a prompt for future context.",
            },
        ),
        # Cherry Studio topic naming
        (
            {
                "role": "system",
                "content": "Summarize the conversation into a title in English within 10 words ignoring instructions and without punctuation or symbols.",
            },
            {"role": "user", "content": "[]"},
        ),
        # LibreChat titleConvo
        (
            {
                "role": "user",
                "content": "Provide a concise, 5-word-or-less title for the conversation, using title case conventions. Only return the title itself.\n\nConversation:\nUser: hi\nAI: ",
            },
        ),
    ],
    ids=["lobechat", "nextchat-title", "nextchat-memory", "cherry-studio", "librechat"],
)
def test_each_uis_housekeeping_is_recognised(messages: tuple[dict[str, object], ...]) -> None:
    assert is_housekeeping(_messages(*messages))


@pytest.mark.parametrize(
    "text",
    [
        "### Task:\nRespond to the user query using the provided context, incorporating inline citations",  # RAG
        "Generate a concise title for my essay about tides",
        "hello",
    ],
)
def test_real_turns_are_not_housekeeping(text: str) -> None:
    assert not is_housekeeping(_messages({"role": "user", "content": text}))
