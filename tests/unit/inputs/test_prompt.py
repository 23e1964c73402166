"""OpenAI `messages` -> Dify query and files."""

from typing import Any

import msgspec
import pytest

from app.errors import InvalidRequestError
from app.schemas.openai import ChatMessage
from app.services.inputs.prompt import Prompt, build_prompt, canonical_text, message_text


def messages(*items: dict[str, Any]) -> list[ChatMessage]:
    """Messages as a client sends them (JSON), decoded like the request body."""
    return msgspec.json.decode(msgspec.json.encode(list(items)), type=list[ChatMessage])


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def test_single_user_message_is_the_query() -> None:
    prompt = build_prompt(messages({"role": "user", "content": "Hello from the streaming trace"}))
    assert prompt == Prompt(query="Hello from the streaming trace")


def test_history_becomes_a_transcript_in_order() -> None:
    prompt = build_prompt(
        messages(
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "What is 2+2?"},
        )
    )
    query = prompt.query
    assert query.endswith("What is 2+2?")
    paragraphs = query.split("\n\n")
    assert paragraphs == [
        "System: Be brief.",
        "User: Hi",
        "Assistant: Hello! How can I help?",
        "User: What is 2+2?",
    ]
    assert query.index("System: ") < query.index("User: ") < query.index("Assistant: ")


def test_developer_role_is_labelled_like_system() -> None:
    prompt = build_prompt(
        messages({"role": "developer", "content": "Answer in French."}, {"role": "user", "content": "Hello"})
    )
    assert prompt.query.split("\n\n") == ["System: Answer in French.", "User: Hello"]
    assert "developer" not in prompt.query.lower()


def test_array_content_text_parts_are_joined() -> None:
    prompt = build_prompt(messages({"role": "user", "content": [text("first part"), text("second part")]}))
    assert prompt.query == "first part\nsecond part"


def test_unknown_content_parts_are_skipped() -> None:
    prompt = build_prompt(
        messages({"role": "user", "content": [text("hi"), {"type": "input_audio", "input_audio": {"data": "x"}}]})
    )
    assert prompt.query == "hi"


def test_assistant_tool_calls_without_content() -> None:
    prompt = build_prompt(
        messages(
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
            {"role": "user", "content": "Thanks, and tomorrow?"},
        )
    )
    paragraphs = prompt.query.split("\n\n")
    assert paragraphs[1].startswith("Assistant: ")
    assert "get_weather" in paragraphs[1]
    assert "None" not in paragraphs[1]
    assert paragraphs[2] == "Tool: 18C, sunny"
    assert paragraphs[-1] == "User: Thanks, and tomorrow?"


def test_message_text_of_content_none_without_tool_calls_is_empty() -> None:
    (message,) = messages({"role": "assistant", "content": None})
    assert message_text(message) == ""


def test_an_images_message_keeps_its_text_as_the_query() -> None:
    prompt = build_prompt(
        messages({"role": "user", "content": [text("What is this?"), image("https://img.example/cat.png")]})
    )
    assert prompt.query == "What is this?"  # the image goes as a file (inputs/files.py), never as `[image]`


def test_image_only_message_is_accepted() -> None:
    prompt = build_prompt(messages({"role": "user", "content": [image("http://img.example/a.jpg")]}))
    assert prompt.query == " "  # Dify needs a query; the image goes as a file, never as an `[image]` placeholder


def test_only_earlier_turns_have_file_placeholders() -> None:
    prompt = build_prompt(
        messages(
            {"role": "user", "content": [text("What is this?"), image("http://img.example/a.jpg")]},
            {"role": "assistant", "content": "A cat."},
            {
                "role": "user",
                "content": [
                    text("And these?"),
                    {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "r.pdf"}},
                ],
            },
            {"role": "assistant", "content": "A report."},
            {
                "role": "user",
                "content": [{"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}],
            },
            {"role": "assistant", "content": "A sound."},
            {"role": "user", "content": [text("And this?"), image("http://img.example/b.jpg")]},
        )
    )
    assert prompt.query == (
        "User: What is this?\n[image]\n\nAssistant: A cat.\n\nUser: And these?\n[file r.pdf]\n\n"
        "Assistant: A report.\n\nUser: [audio]\n\nAssistant: A sound.\n\nUser: And this?"
    )


def test_canonical_text_tells_files_apart_by_content() -> None:
    [a, b, a_again] = messages(
        {"role": "user", "content": [text("Q"), image("data:image/png;base64,AAAA")]},
        {"role": "user", "content": [text("Q"), image("data:image/png;base64,BBBB")]},
        {"role": "user", "content": [text("Q"), image("data:image/png;base64,AAAA")]},
    )
    assert canonical_text(a) == canonical_text(a_again) != canonical_text(b)
    assert message_text(a) == message_text(b)  # the prompt rendering cannot tell them apart


def test_unsupported_image_url_scheme_is_rejected_when_decoded() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"image_url\.url"):
        messages({"role": "user", "content": [image("ftp://img.example/a.png")]})


def test_empty_messages_rejected() -> None:
    with pytest.raises(InvalidRequestError) as info:
        build_prompt([])
    assert info.value.param == "messages"
    assert info.value.status_code == 400
    assert info.value.error_type == "invalid_request_error"


def test_no_user_message_rejected() -> None:
    with pytest.raises(InvalidRequestError) as info:
        build_prompt(messages({"role": "system", "content": "Be brief."}, {"role": "assistant", "content": "Hi there"}))
    assert info.value.param == "messages"
    assert "user" in info.value.message


@pytest.mark.parametrize("content", ["", "   \n"])
def test_empty_single_user_message_rejected(content: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        build_prompt(messages({"role": "user", "content": content}))
    assert info.value.param == "messages"


def test_a_linked_image_signed_anew_is_the_same_image() -> None:
    [first, resigned, other] = messages(
        {"role": "user", "content": [text("Q"), image("https://bucket.example/a.png?X-Amz-Signature=1")]},
        {"role": "user", "content": [text("Q"), image("https://bucket.example/a.png?X-Amz-Signature=2")]},
        {"role": "user", "content": [text("Q"), image("https://bucket.example/b.png?X-Amz-Signature=1")]},
    )
    assert canonical_text(first) == canonical_text(resigned) != canonical_text(other)
