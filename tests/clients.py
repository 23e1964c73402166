"""What chat UIs do with an answer before sending it back, ported from their source (`shared/clients/`)."""


def nextchat_render(deltas: list[tuple[bool, str]]) -> str:
    """NextChat's `streamWithThink` (app/utils/chat.ts): `(is_thinking, content)` deltas into the message text it
    keeps and sends back. A thinking run starts a `> ` quote (after a newline if text came before); a later thinking
    chunk holding a blank line continues the quote on the next paragraph; back to content, a blank line first."""
    text, thinking, last = "", False, False
    for is_thinking, content in deltas:
        changed = last != is_thinking
        last = is_thinking
        if is_thinking:
            if not thinking or changed:
                thinking = True
                text += ("\n" if text else "") + "> " + content
            else:
                text += "\n\n> ".join(content.split("\n\n")) if "\n\n" in content else content
        elif thinking or changed:
            thinking = False
            text += "\n\n" + content
        else:
            text += content
    return text
