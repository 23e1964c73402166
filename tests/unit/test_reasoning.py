"""The think splitter, fed every split of tagged answers; and reasoning left out of history matching."""

import pytest

from app.schemas.openai import Usage
from app.services.answer import AnswerEvent, Finished, ReasoningDelta, TextDelta
from app.services.reasoning import ReasoningMode, ThinkSplitter, without_reasoning

END = Finished(usage=Usage(prompt_tokens=0, completion_tokens=0, total_tokens=0))
DETAILS = '<details style="color:gray" open> <summary> Thinking... </summary>Let me see.</details>'

CASES = [
    # (answer as Dify streams it, expected content, expected reasoning)
    ("<think>pondering</think>Echo: hi", "Echo: hi", "pondering"),
    ("<think>\nstep 1\nstep 2\n</think>\n\nThe answer.", "The answer.", "\nstep 1\nstep 2\n"),
    ("Before <think>mid</think>after", "Before after", "mid"),
    (DETAILS + "\n\nDone.", "Done.", "Let me see."),
    ("a < b and <thinking about it", "a < b and <thinking about it", ""),
    ("no tags at all", "no tags at all", ""),
    ("<think>never closed", "", "never closed"),
    ("ends with <thi", "ends with <thi", ""),
    ("<details><summary>Sources</summary>x</details>", "<details><summary>Sources</summary>x</details>", ""),
]


def _run(pieces: list[str], mode: ReasoningMode = "separate") -> tuple[str, str, list[AnswerEvent]]:
    splitter = ThinkSplitter(mode)
    out: list[AnswerEvent] = []
    for piece in pieces:
        out += splitter.feed([TextDelta(piece)])
    out += splitter.feed([END])
    content = "".join(e.text for e in out if isinstance(e, TextDelta))
    reasoning = "".join(e.text for e in out if isinstance(e, ReasoningDelta))
    return content, reasoning, out


@pytest.mark.parametrize(("answer", "content", "reasoning"), CASES)
def test_every_split_of_a_tagged_answer_gives_the_same_content_and_reasoning(
    answer: str, content: str, reasoning: str
) -> None:
    for size in range(1, len(answer) + 1):
        pieces = [answer[i : i + size] for i in range(0, len(answer), size)]
        assert _run(pieces)[:2] == (content, reasoning), size
    for cut in range(1, len(answer)):  # and every two-piece split
        assert _run([answer[:cut], answer[cut:]])[:2] == (content, reasoning), cut


def test_an_event_is_never_both_reasoning_and_content() -> None:
    *_, events = _run(["<think>a", "b</think>c", "d"])
    for event in events:
        assert isinstance(event, TextDelta | ReasoningDelta | Finished)
    assert [type(e) for e in events if not isinstance(e, Finished)] == [
        ReasoningDelta,
        ReasoningDelta,
        TextDelta,
        TextDelta,
    ]


def test_inline_leaves_the_text_as_it_is_and_wraps_separated_reasoning() -> None:
    assert _run(["<think>x</think>y"], "inline")[:2] == ("<think>x</think>y", "")
    splitter = ThinkSplitter("inline")
    out = splitter.feed([ReasoningDelta("pon"), ReasoningDelta("dering"), TextDelta("Echo")])
    assert "".join(e.text for e in out if isinstance(e, TextDelta)) == "<think>pondering</think>\nEcho"


def test_strip_drops_reasoning() -> None:
    assert _run(["<think>x</think>y"], "strip")[:2] == ("y", "")
    assert ThinkSplitter("strip").feed([ReasoningDelta("r")]) == []


def test_plain_deltas_pass_through_unchanged() -> None:
    delta = TextDelta("plain")
    assert ThinkSplitter("separate").feed([delta])[0] is delta


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>r</think>Answer", "Answer"),
        (DETAILS + "Answer", "Answer"),
        ("Answer", "Answer"),
        ("a <b> c", "a <b> c"),
    ],
)
def test_without_reasoning(text: str, expected: str) -> None:
    assert without_reasoning(text) == expected


# --- tool use -------------------------------------------------------------------------------------------


def test_a_thought_calling_two_tools_is_two_tool_uses() -> None:
    from app.services.dify.interpret import tool_uses  # noqa: PLC0415
    from app.services.dify.stream import decode_event  # noqa: PLC0415

    thought = decode_event(
        b'{"event":"agent_thought","id":"t1","tool":"search;clock","tool_input":"{\\"search\\": {\\"q\\": \\"x\\"}, '
        b'\\"clock\\": {}}","observation":"{\\"search\\": \\"found\\", \\"clock\\": \\"noon\\"}"}'
    )
    uses = tool_uses(thought)  # type: ignore[arg-type]
    assert [(u.name, u.arguments, u.result) for u in uses] == [
        ("search", '{"q": "x"}', "found"),
        ("clock", "{}", "noon"),
    ]
    assert len({u.id for u in uses}) == 2


def test_tool_use_in_each_mode() -> None:
    from app.services.answer import ToolUse  # noqa: PLC0415

    tool = ToolUse(id="c", name="clock", arguments="{}", result="x" * 500)
    [narrated] = ThinkSplitter("separate", "reasoning").feed([tool])
    assert isinstance(narrated, ReasoningDelta)
    assert narrated.text.startswith("Used `clock` with {}: xxx") and len(narrated.text) < 400
    assert ThinkSplitter("separate", "tool_calls").feed([tool]) == [tool]
    assert ThinkSplitter("separate", "off").feed([tool]) == []
    assert ThinkSplitter("strip", "reasoning").feed([tool]) == []  # a line of reasoning: stripped with it


def test_workflow_progress_is_a_line_of_reasoning_only_when_asked_for() -> None:
    from app.services.answer import Progress  # noqa: PLC0415

    started, failed = Progress(step="LLM"), Progress(step="HTTP", error="[Errno 111] Connection refused")
    assert ThinkSplitter("separate").feed([started, TextDelta("hi")]) == [TextDelta("hi")]  # off by default
    shown = ThinkSplitter("separate", progress=True).feed([started, failed, TextDelta("hi")])
    assert shown == [
        ReasoningDelta("Running LLM...\n"),
        ReasoningDelta("HTTP failed: [Errno 111] Connection refused\n"),
        TextDelta("hi"),
    ]
    inline = ThinkSplitter("inline", progress=True).feed([started, TextDelta("hi")])
    assert "".join(e.text for e in inline if isinstance(e, TextDelta)) == "<think>Running LLM...\n</think>\nhi"
    assert ThinkSplitter("strip", progress=True).feed([started]) == []


def test_inline_reasoning_closes_before_a_file() -> None:
    from app.services.answer import FileOut  # noqa: PLC0415

    file = FileOut(url="https://x/cat.png", kind="image")
    out = ThinkSplitter("inline").feed([ReasoningDelta("drawing"), file, TextDelta("Here.")])
    assert out == [TextDelta("<think>drawing"), TextDelta("</think>\n"), file, TextDelta("Here.")]


def test_progress_stops_once_the_answer_has_begun() -> None:
    from app.services.answer import Progress  # noqa: PLC0415

    splitter = ThinkSplitter("separate", progress=True)
    out = splitter.feed([Progress(step="LLM"), TextDelta("Hi"), Progress(step="Tool")])
    assert out == [ReasoningDelta("Running LLM...\n"), TextDelta("Hi")]
