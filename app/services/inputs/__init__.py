"""What goes into a Dify run: the query built from OpenAI messages, files, and the app's input variables."""

from app.services.inputs.housekeeping import is_housekeeping
from app.services.inputs.prompt import Prompt, build_prompt, last_user_index, message_text, transcript
from app.services.inputs.variables import FormInput, form_of, query_variable, run_inputs

__all__ = [
    "FormInput",
    "Prompt",
    "build_prompt",
    "form_of",
    "is_housekeeping",
    "last_user_index",
    "message_text",
    "query_variable",
    "run_inputs",
    "transcript",
]
