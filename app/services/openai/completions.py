"""`POST /v1/completions` (legacy text completions) over the event model: the request as a `Turn` (the prompt is the
query, stateless), the answer as `text_completion` chunks or one `text_completion`.

Fields the gateway cannot honour are accepted and ignored (`max_tokens`, `temperature`, `stop`, `logprobs`: the
answer's `logprobs` is null, `best_of`), except where ignoring them would mislead: `n` above 1, several prompts or
token arrays (fewer answers or other text than asked for), and `suffix` (an insertion that would silently not be
one) are 400s. `echo` is honoured: the prompt comes first.
"""

from typing import Final

import msgspec

from app.errors import InvalidRequestError
from app.schemas.openai import ChatMessage, CompletionChoice, CompletionRequest, TextCompletion
from app.services.answer import (
    Answer,
    AnswerEvent,
    Failed,
    FileOut,
    Finished,
    Keepalive,
    Replaced,
    Started,
    TextDelta,
)
from app.services.openai.common import DONE, PING_COMMENT, InBandErrors, error_event, shown_text
from app.services.turn import Turn

_encode = msgspec.json.Encoder().encode


def _prompt(request: CompletionRequest) -> str:
    prompt = request.prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str) and prompt.strip():
        return prompt
    if isinstance(prompt, list) and prompt and not all(isinstance(p, str) for p in prompt):
        message = "`prompt` as tokens is not supported: send the text (a Dify app reads text, not token ids)"
    elif isinstance(prompt, list) and len(prompt) > 1:
        message = "`prompt` must be one text: a Dify app answers one prompt a request"
    else:
        message = "`prompt` must be a non-empty string"
    raise InvalidRequestError(message, param="prompt", code="invalid_value")


def completion_turn(request: CompletionRequest) -> Turn:
    """The prompt as the query of a new, stateless run (`CONVERSATION_MODE` does not apply)."""
    prompt = _prompt(request)
    if request.n is not None and request.n > 1:
        raise InvalidRequestError("`n` above 1 is not supported: a Dify app gives one answer", param="n")
    if request.suffix:
        raise InvalidRequestError(
            "`suffix` is not supported: a Dify app cannot insert text between a prompt and a suffix", param="suffix"
        )
    return Turn(
        model=request.model,
        messages=[ChatMessage(role="user", content=prompt)],
        stream=bool(request.stream),
        user=request.user,
        inputs=request.inputs,
        mode="last",
    )


class CompletionChunks(InBandErrors):
    """Per stream: each text delta a `text_completion` chunk; `Finished` the finish chunk, the usage chunk (if asked
    for) and `[DONE]`; `Failed` an in-band error event. With `echo` the prompt is the first chunk's text."""

    __slots__ = ("_echo", "_head", "_include_usage", "_model", "_visible", "finished")

    _SUFFIX: Final = b',"index":0,"logprobs":null,"finish_reason":null}]}\n\n'

    def __init__(self, model: str, include_usage: bool, echo: str | None = None) -> None:
        self._model = model
        self._include_usage = include_usage
        self._echo = echo
        self._head: bytes | None = None
        self._visible: list[str] = []
        self.finished = False

    @property
    def visible_text(self) -> str:
        return "".join(self._visible)

    def _start(self, completion_id: str, created: int) -> bytes:
        self._head = (
            b'data: {"id":'
            + _encode(completion_id)
            + b',"object":"text_completion","created":'
            + str(created).encode()
            + b',"model":'
            + _encode(self._model)
            + b',"choices":['
        )
        return b""

    def _text(self, text: str) -> bytes:
        if self._head is None:
            self._start("cmpl-unknown", 0)
        head = self._head or b""
        if self._echo is not None:
            text, self._echo = self._echo + text, None
        self._visible.append(text)
        return head + b'{"text":' + _encode(text) + self._SUFFIX

    def encode(self, batch: list[AnswerEvent]) -> bytes:
        parts: list[bytes] = []
        for event in batch:
            if isinstance(event, TextDelta):
                parts.append(self._text(event.text))
            elif isinstance(event, FileOut | Replaced):
                parts.append(self._text(shown_text(event)))
            elif isinstance(event, Keepalive):
                parts.append(PING_COMMENT)
            elif isinstance(event, Started):
                parts.append(self._start(f"cmpl-{event.message_id or 'unknown'}", event.created))
            elif isinstance(event, Finished):
                self.finished = True
                if self._echo is not None:
                    parts.append(self._text(""))
                head = self._head or b""
                finish = b'{"text":"","index":0,"logprobs":null,"finish_reason":' + _encode(event.reason) + b"}]}\n\n"
                parts.append(head + finish)
                if self._include_usage:
                    parts.append(head + b'],"usage":' + _encode(event.usage) + b"}\n\n")
                parts.append(DONE)
            elif isinstance(event, Failed):
                parts.append(error_event(event.error))
        return b"".join(parts)


def completion_encoder(request: CompletionRequest) -> CompletionChunks:
    include_usage = bool(request.stream_options and request.stream_options.include_usage)
    return CompletionChunks(request.model, include_usage, echo=_prompt(request) if request.echo else None)


def text_completion(answer: Answer, request: CompletionRequest) -> TextCompletion:
    text = _prompt(request) + answer.text if request.echo else answer.text
    return TextCompletion(
        id=f"cmpl-{answer.message_id or 'unknown'}",
        created=answer.created,
        model=request.model,
        choices=[CompletionChoice(text=text, finish_reason=answer.reason)],
        usage=answer.usage,
    )
