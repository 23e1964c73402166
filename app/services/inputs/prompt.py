"""OpenAI `messages` -> one Dify `query` (plus image files). Pure functions."""

import msgspec

from app.errors import InvalidRequestError
from app.schemas.dify import DifyFile
from app.schemas.openai import ChatMessage

_ROLE_LABELS = {
    "system": "System",
    "developer": "System",
    "user": "User",
    "assistant": "Assistant",
    "tool": "Tool",
    "function": "Function",
}


class Prompt(msgspec.Struct, frozen=True, kw_only=True):
    query: str
    files: tuple[DifyFile, ...] = ()
    data_urls: tuple[str, ...] = ()  # inline images that must be uploaded to Dify first


def message_text(message: ChatMessage, *, placeholders: bool = True) -> str:
    """The message as text; an image part is `[image]` (`placeholders`) in a folded earlier turn, nothing in the
    current one (its images go to Dify as files)."""
    content = message.content
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        pieces = []
        for part in content:
            if part.text is not None:
                pieces.append(part.text)
            elif part.type == "image_url" and placeholders:
                pieces.append("[image]")
        text = "\n".join(pieces)
    if not text and message.tool_calls:
        names = [_tool_name(call) for call in message.tool_calls]
        text = "[called " + ", ".join(name for name in names if name) + "]"
    return text


def _tool_name(call: object) -> str:
    if isinstance(call, dict):
        function = call.get("function")
        if isinstance(function, dict):
            return str(function.get("name") or "")
    return ""


def _images(message: ChatMessage) -> tuple[list[DifyFile], list[str]]:
    files: list[DifyFile] = []
    data_urls: list[str] = []
    if isinstance(message.content, list):
        for part in message.content:
            if part.image_url is None:
                continue
            url = part.image_url.url
            if url.startswith("data:"):
                data_urls.append(url)
            else:  # http(s): the schema admits nothing else
                files.append(DifyFile(type="image", transfer_method="remote_url", url=url))
    return files, data_urls


def last_user_index(messages: list[ChatMessage]) -> int:
    if not messages:
        raise InvalidRequestError("`messages` must not be empty.", param="messages", code="invalid_value")
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return index
    raise InvalidRequestError("`messages` must contain a user message.", param="messages", code="invalid_value")


def transcript(messages: list[ChatMessage], current: int = -1) -> str:
    """A readable transcript: one `Role: text` paragraph a message (`current`: the turn whose images are files)."""
    current %= len(messages)
    return "\n\n".join(
        f"{_ROLE_LABELS[m.role]}: {message_text(m, placeholders=index != current)}" for index, m in enumerate(messages)
    )


def build_prompt(messages: list[ChatMessage]) -> Prompt:
    """Stateless: the last user turn, with everything else folded in front of it as a transcript."""
    last = last_user_index(messages)
    files, data_urls = _images(messages[last])
    query = message_text(messages[0], placeholders=False) if len(messages) == 1 else transcript(messages, last)
    if not query.strip() and not files and not data_urls:
        raise InvalidRequestError("The last user message is empty.", param="messages", code="invalid_value")
    return Prompt(query=query or " ", files=tuple(files), data_urls=tuple(data_urls))
