"""What goes into a Dify run: the query built from OpenAI messages, files, and the app's input variables."""

from app.services.inputs.prompt import Prompt, build_prompt, last_user_index, message_text, transcript

__all__ = ["Prompt", "build_prompt", "last_user_index", "message_text", "transcript"]
