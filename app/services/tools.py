"""How an agent's tool use (`TOOL_USE`) and a chatflow's progress (`WORKFLOW_PROGRESS`) are shown; applied in the
answer's tap (reasoning.ThinkSplitter).

`reasoning` (default): a short narrative in the reasoning (tool, input, a trimmed result), which every chat UI
shows and none tries to act on. `tool_calls`: OpenAI `tool_calls`, with `finish_reason` still `stop` since Dify
already ran the tool (clients that run tools themselves may answer it with a "not found" result and a new request).
`off`: not shown.
"""

import re
from typing import Final, Literal

from app.services.answer import Progress, ToolUse

ToolUseMode = Literal["reasoning", "tool_calls", "off"]
RESULT_LIMIT: Final = 300  # characters of a tool's result shown in the narrative
_BLANK_LINES: Final = re.compile(r"\n\s*\n")


def narrative(tool: ToolUse) -> str:
    """One paragraph (blank lines in the result closed up): NextChat quotes reasoning a paragraph at a time, and a
    line of reasoning must stay one quote when it sends the answer back."""
    result = tool.result if len(tool.result) <= RESULT_LIMIT else tool.result[: RESULT_LIMIT - 1] + "…"
    return f"Used `{tool.name}` with {tool.arguments}: {_BLANK_LINES.sub(chr(10), result.strip())}\n"


def progress_line(progress: Progress) -> str:
    if progress.error is None:
        return f"Running {progress.step}...\n"
    return f"{progress.step} failed: {progress.error}\n"
