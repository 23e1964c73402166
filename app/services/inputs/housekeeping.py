"""Requests that are a chat UI's housekeeping (titles, tags, follow-ups, summaries, search queries), not a user's
turn, recognised by each UI's own prompt (shared/clients/ui-requests.md). They never continue a conversation, are
never remembered as one, never ask Dify to name one, and can be sent to a task app (`TASK_MODEL`)."""

from app.schemas.openai import ChatMessage
from app.services.inputs.prompt import message_text

# the opening of each UI's housekeeping prompt; Open WebUI's RAG turns also start `### Task:`, so never that alone
SIGNATURES: tuple[str, ...] = (
    # Open WebUI 0.12 (one user message)
    "### Task:\nGenerate a concise title",
    "### Task:\nGenerate 1-3 broad tags",
    "### Task:\nPredict 3-5 useful messages",
    "### Task:\nAnalyze the chat history to determine the necessity of generating search queries",
    "### Task:\nYou are an autocompletion system",
    "### Task:\nGenerate a detailed prompt for am image generation task",
    "### Task:\nSummarize the conversation history that will be compacted",
    # LobeChat / LobeHub (a system message)
    "You are a professional conversation summarizer.",
    "You're an assistant who's good at extracting key takeaways",
    # NextChat (a user message for titles, a trailing system message for its memory)
    "Please generate a four to five word title summarizing our conversation",
    "Summarize the discussion briefly in 200 words or less",
    # Cherry Studio (a system message)
    "Summarize the conversation into a title",
    # LibreChat (`titleConvo`, one user message)
    "Provide a concise, 5-word-or-less title for the conversation",
)


_FIRST = frozenset(signature[0] for signature in SIGNATURES)


def is_housekeeping(messages: list[ChatMessage]) -> bool:
    """The first or the last message opens with a UI's housekeeping prompt."""
    if not messages:
        return False
    ends = (messages[0], messages[-1]) if len(messages) > 1 else (messages[0],)
    for message in ends:
        text = message_text(message).lstrip()
        if text[:1] in _FIRST and text.replace("\r\n", "\n").startswith(SIGNATURES):
            return True
    return False
