"""What goes into a Dify run: the query built from OpenAI messages, files, and the app's input variables."""

from app.services.inputs.housekeeping import is_housekeeping
from app.services.inputs.prompt import last_user_index
from app.services.inputs.variables import FormInput, form_of, query_variable, run_inputs

__all__ = [
    "FormInput",
    "form_of",
    "is_housekeeping",
    "last_user_index",
    "query_variable",
    "run_inputs",
]
