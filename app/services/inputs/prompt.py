"""OpenAI `messages` -> one Dify `query` (the current turn's files are `inputs/files.py`'s). Pure functions."""

import hashlib

import msgspec

from app.errors import InvalidRequestError
from app.schemas.openai import ChatMessage, ContentPart

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


def _placeholder(part: ContentPart) -> str | None:
    if part.image_url is not None:
        return "[image]"
    if part.file is not None:
        return f"[file {part.file.filename}]" if part.file.filename else "[file]"
    if part.input_audio is not None:
        return "[audio]"
    return None


def _file_digest(part: ContentPart) -> str | None:
    """A digest of a file part's content (its base64 bytes as sent, or its URL without the query: clients that
    link a private bucket sign the same object anew each time): what tells two files apart."""
    payload = (
        part.image_url.url.partition("?")[0]
        if part.image_url is not None and not part.image_url.url.startswith("data:")
        else part.image_url.url
        if part.image_url is not None
        else part.file.file_data or part.file.file_id
        if part.file is not None
        else part.input_audio.data
        if part.input_audio is not None
        else None
    )
    return None if payload is None else hashlib.sha256(payload.encode()).hexdigest()


def canonical_text(message: ChatMessage) -> str:
    """The message as conversations are matched: its text, and a digest of each file in place (two different images
    never match, the same one sent again does), whatever the prompt rendering."""
    content = message.content
    if not isinstance(content, list):
        return message_text(message)
    pieces = []
    for part in content:
        if part.text is not None:
            pieces.append(part.text)
        else:
            digest = _file_digest(part)
            if digest is not None:
                pieces.append(f"\x00{part.type}:{digest}")
    return "\n".join(pieces)


def message_text(message: ChatMessage, *, placeholders: bool = True) -> str:
    """The message as text; a file part is `[image]`, `[file <name>]` or `[audio]` (`placeholders`) in a folded
    earlier turn, nothing in the current one (its files go to Dify as files)."""
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
            elif placeholders:
                placeholder = _placeholder(part)
                if placeholder is not None:
                    pieces.append(placeholder)
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
    query = message_text(messages[0], placeholders=False) if len(messages) == 1 else transcript(messages, last)
    content = messages[last].content
    has_files = isinstance(content, list) and any(_placeholder(part) is not None for part in content)
    if not query.strip() and not has_files:
        raise InvalidRequestError("The last user message is empty.", param="messages", code="invalid_value")
    return Prompt(query=query or " ")
