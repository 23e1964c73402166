"""`POST /v1/completions` (legacy text completions): the request, the `text_completion` answer and its chunks."""

from typing import Any, Literal

import msgspec

from app.schemas.openai.chat import StreamOptions
from app.schemas.openai.common import Usage


class CompletionRequest(msgspec.Struct, kw_only=True):
    """Sampling fields are accepted for compatibility; the Dify app decides them. `prompt`: a string, or a list of
    one string (token arrays and several prompts are refused: the gateway answers one text)."""

    model: str
    prompt: str | list[Any] | None = None  # a string, strings, or token ids (msgspec takes one array type)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    logprobs: int | None = None
    echo: bool | None = None
    suffix: str | None = None
    best_of: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, Any] | None = None
    seed: int | None = None
    user: str | None = None
    inputs: dict[str, Any] | None = None  # OpenDify: the Dify app's input variables (the SDK's extra_body)


class CompletionChoice(msgspec.Struct, kw_only=True):
    text: str
    index: int = 0
    logprobs: None = None
    finish_reason: str | None


class TextCompletion(msgspec.Struct, kw_only=True):
    """A `text_completion`; the stream's chunks have the same shape, one text delta each."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
