"""Files the app sends (`message_file`) reach the client as markdown in the content: an image inline, at an address
the client can open (Dify's relative `/files/...` URLs made absolute), streaming and not, on both Dify generations
(current Dify then sends its text chunks as `message_file` events too)."""

import re
import uuid
from typing import Any

import openai
import pytest

from tests.dify_double import DifyDouble

IMAGE = re.compile(r"!\[image\]\((?P<url>[^)]+)\)")


# Dify's blocking answers carry no message_file events; an agent's whole answer is streamed from Dify and collected
@pytest.mark.parametrize(
    ("model", "stream"),
    [("realdify-chat", True), ("realdify-agent", True), ("realdify-advanced-chat", True), ("realdify-agent", False)],
)
def test_an_image_from_the_app_is_an_inline_markdown_image(
    client: openai.OpenAI, dify: DifyDouble, model: str, stream: bool
) -> None:
    user = f"files-{uuid.uuid4()}"
    raw = client.chat.completions.create(
        model=model, user=user, messages=[{"role": "user", "content": "[image] draw a cat"}], stream=stream
    )
    if stream:
        content = "".join(c.choices[0].delta.content or "" for c in raw if c.choices)  # type: ignore[union-attr]
    else:
        content = raw.choices[0].message.content or ""  # type: ignore[union-attr]
    match = IMAGE.search(content)
    assert match is not None, content
    assert match.group("url").startswith(f"{dify.url}/files/tools/")  # absolute: the client can load it
    assert "sign=" in match.group("url")
    assert content.replace(match.group(0), "").strip() == "Echo: [image] draw a cat"  # and the text, all of it


def test_the_image_is_part_of_the_remembered_answer(client: openai.OpenAI, dify: DifyDouble) -> None:
    """The client sends the answer back with the image markdown in it: the chat still continues."""
    user = f"files-{uuid.uuid4()}"
    messages: list[dict[str, str]] = [{"role": "user", "content": "[image] draw a cat"}]
    first = client.chat.completions.with_raw_response.create(
        model="realdify-chat",
        user=user,
        messages=messages,  # type: ignore[arg-type]
        stream=True,
    )
    chunks: Any = first.parse()
    answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "and a dog"}]
    second = client.chat.completions.with_raw_response.create(
        model="realdify-chat",
        user=user,
        messages=messages,  # type: ignore[arg-type]
    )
    assert second.headers["x-dify-conversation-id"] == first.headers["x-dify-conversation-id"]
