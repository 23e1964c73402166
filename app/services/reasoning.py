"""Reasoning in an answer's text (`<think>...</think>`, Dify's `<details>` "Thinking" blocks) split out of the content,
as a tap on the answer events. A tag may arrive split across deltas at any character.

`REASONING_MODE`: `separate` (reasoning as `ReasoningDelta`, never mixed with content in one event), `inline` (the
text as Dify sent it; separated reasoning wrapped in `<think>` tags), `strip` (reasoning dropped).
"""

import re
from typing import Final, Literal

from app.services.answer import (
    AnswerEvent,
    Failed,
    FileOut,
    Finished,
    Progress,
    ReasoningDelta,
    Replaced,
    TextDelta,
    ToolUse,
)
from app.services.tools import ToolUseMode, narrative, progress_line

ReasoningMode = Literal["separate", "inline", "strip"]

THINK_OPEN: Final = "<think>"
THINK_CLOSE: Final = "</think>"
DETAILS_CLOSE: Final = "</details>"
_DETAILS_OPEN = re.compile(r"<details\b[^>]*>\s*<summary>\s*Thinking[^<]*</summary>", re.IGNORECASE)
_DETAILS_LIMIT = 400  # characters a `<details ...><summary>` opener may take before it is taken for content
_THINK_BLOCK = re.compile(r"<think>.*?</think>|<details\b[^>]*>\s*<summary>\s*Thinking.*?</details>", re.S | re.I)


def without_reasoning(text: str) -> str:
    """The text with its think blocks removed: how an answer is remembered and matched, whatever the client kept."""
    if "<" not in text:
        return text
    return _THINK_BLOCK.sub("", text)


def _partial(text: str, tag: str) -> int:
    """How many characters at the end of `text` could begin `tag` (0 if none)."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ThinkSplitter:
    """Per answer: text deltas in, content and reasoning deltas out (a partial tag is held back until decided)."""

    __slots__ = ("_answered", "_buffer", "_close", "_inline_open", "_mode", "_progress", "_tools", "_trim")

    def __init__(self, mode: ReasoningMode, tools: ToolUseMode = "reasoning", *, progress: bool = False) -> None:
        self._mode: ReasoningMode = mode
        self._tools: ToolUseMode = tools  # an agent's tool use (tools.py): a line of reasoning, tool_calls, or off
        self._progress = progress  # a chatflow's nodes as lines of reasoning (WORKFLOW_PROGRESS), else not shown
        self._answered = False  # the answer's text has begun: progress is no longer shown
        self._buffer = ""
        self._close: str | None = None  # inside a block: the tag that ends it
        self._inline_open = False  # inline: a `<think>` opened for separated reasoning, not closed yet
        self._trim = False  # a block just closed: the newlines after it are dropped, whichever delta has them

    def _emit(self, text: str, reasoning: bool, out: list[AnswerEvent]) -> None:
        if not text:
            return
        if reasoning:
            if self._mode == "separate":
                out.append(ReasoningDelta(text))
        else:
            out.append(TextDelta(text))

    def _split(self, text: str, out: list[AnswerEvent]) -> None:
        text = self._buffer + text
        self._buffer = ""
        while text:
            if self._trim and self._close is None:
                text = text.lstrip("\n")
                if not text:
                    return
                self._trim = False
            if self._close is not None:  # inside reasoning: up to its closing tag
                end = text.find(self._close)
                if end < 0:
                    keep = _partial(text, self._close)
                    self._emit(text[: len(text) - keep], True, out)
                    self._buffer = text[len(text) - keep :]
                    return
                self._emit(text[:end], True, out)
                text = text[end + len(self._close) :]
                self._close = None
                self._trim = True
                continue
            start = text.find("<")
            if start < 0:
                self._emit(text, False, out)
                return
            self._emit(text[:start], False, out)
            text = text[start:]
            if text.startswith(THINK_OPEN):
                self._close, text = THINK_CLOSE, text[len(THINK_OPEN) :]
                continue
            opener = _DETAILS_OPEN.match(text)
            if opener is not None:
                self._close, text = DETAILS_CLOSE, text[opener.end() :]
                continue
            if self._may_open(text):
                self._buffer = text  # perhaps the start of a tag: decided by what comes next
                return
            self._emit("<", False, out)
            text = text[1:]

    @staticmethod
    def _may_open(text: str) -> bool:
        """Could `text` (starting with `<`) still become an opening tag once more arrives?"""
        if THINK_OPEN.startswith(text):
            return True
        lowered = text.lower()
        if len(lowered) < len("<details"):
            return "<details".startswith(lowered)
        return lowered.startswith("<details") and len(text) < _DETAILS_LIMIT and "</summary>" not in lowered

    def _step(self, event: ToolUse | Progress) -> AnswerEvent | None:
        """An agent's tool use or a node's progress: a line of reasoning, the event itself, or nothing."""
        if isinstance(event, Progress):
            return ReasoningDelta(progress_line(event)) if self._progress and not self._answered else None
        if self._tools == "reasoning":
            return ReasoningDelta(narrative(event))
        return event if self._tools == "tool_calls" else None

    def _reason(self, event: ReasoningDelta, out: list[AnswerEvent], inline: bool) -> None:
        if inline:  # separated reasoning shown as Dify's tagged reasoning would be
            out.append(TextDelta(event.text if self._inline_open else THINK_OPEN + event.text))
            self._inline_open = True
        elif self._mode == "separate":
            out.append(event)

    def _content(self, event: TextDelta, out: list[AnswerEvent], inline: bool) -> None:
        self._answered = True
        if not inline and (not self._plain(inline) or "<" in event.text):
            self._split(event.text, out)
        else:
            out.append(event)  # inline, or plain content passed through as it is

    def feed(self, batch: list[AnswerEvent]) -> list[AnswerEvent]:
        out: list[AnswerEvent] = []
        inline = self._mode == "inline"
        plain = self._plain(inline)
        for event in batch:
            if plain and type(event) is TextDelta and "<" not in event.text:
                self._answered = True
                out.append(event)  # the usual case: plain content, outside any block, passed through as it is
                continue
            self._one(event, out, inline)
            plain = self._plain(inline)
        return out

    def _plain(self, inline: bool) -> bool:
        """Outside any block, nothing held back: a text without `<` is content as it is."""
        return not (inline or self._inline_open or self._buffer or self._trim or self._close is not None)

    def _one(self, event: AnswerEvent, out: list[AnswerEvent], inline: bool) -> None:
        if isinstance(event, ToolUse | Progress):
            shown = self._step(event)
            if not isinstance(shown, ReasoningDelta):
                if shown is not None:
                    out.append(shown)
                return
            event = shown  # shown as reasoning, in any REASONING_MODE
        if isinstance(event, ReasoningDelta):
            self._reason(event, out, inline)
            return
        if self._inline_open and isinstance(event, TextDelta | FileOut | Replaced | Finished | Failed):
            out.append(TextDelta(THINK_CLOSE + "\n"))
            self._inline_open = False
        if isinstance(event, TextDelta):
            self._content(event, out, inline)
            return
        if isinstance(event, Finished | Failed) and self._buffer:
            self._emit(self._buffer, self._close is not None, out)  # an unfinished tag was content
            self._buffer = ""
        out.append(event)
