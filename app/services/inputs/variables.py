"""An app's input form (`GET /parameters`), and the `inputs` a run sends: the client's, the gateway's, defaults.

Dify's form is a list of one-key objects, `{<kind>: {"variable", "label", "required", "default", ...}}`, the kind
being `text-input`, `paragraph`, `select`, `number`, `checkbox`, `file`, `file-list`, `json_object` or
`external_data_tool`.
"""

from typing import Any

import msgspec

from app.errors import InvalidRequestError
from app.schemas.dify import AppParameters
from app.services.inputs.files import FileRule, rule_of

TEXT_KINDS = frozenset({"text-input", "paragraph"})
FILE_KINDS = frozenset({"file", "file-list"})
DEFAULT_QUERY_VARIABLE = "query"


class FormInput(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    variable: str
    required: bool = False
    default: Any = None
    accepts: FileRule | None = None  # a file input's own allowed types, extensions, methods and count


def form_of(parameters: AppParameters) -> tuple[FormInput, ...]:
    form: list[FormInput] = []
    for item in parameters.user_input_form:
        for kind, spec in item.items():
            if isinstance(spec, dict) and isinstance(spec.get("variable"), str):
                count = 1 if kind == "file" else spec.get("max_length")
                form.append(
                    FormInput(
                        kind=kind,
                        variable=spec["variable"],
                        required=bool(spec.get("required")),
                        default=spec.get("default"),
                        accepts=rule_of(spec, count) if kind in FILE_KINDS else None,
                    )
                )
    return tuple(form)


def query_variable(form: tuple[FormInput, ...], configured: str | None = None) -> str:
    """The input that takes the user's text in a workflow or text generator: the configured one; else `query` when
    the form has it; else the first required text input; else the first text input; else `query`."""
    if configured:
        return configured
    if any(field.variable == DEFAULT_QUERY_VARIABLE for field in form):
        return DEFAULT_QUERY_VARIABLE
    texts = [field for field in form if field.kind in TEXT_KINDS]
    for field in texts:
        if field.required:
            return field.variable
    return texts[0].variable if texts else DEFAULT_QUERY_VARIABLE


def run_inputs(form: tuple[FormInput, ...], client: dict[str, Any] | None, gateway: dict[str, Any]) -> dict[str, Any]:
    """What a new run sends as `inputs`: the client's own (`inputs` in the request) win; the gateway's (the query
    variable, the system prompt) fill what the client left out; then the form's defaults. A required input still
    missing is the client's error, named before Dify is called."""
    inputs = {**gateway, **(client or {})}
    for field in form:
        if field.kind == "external_data_tool":
            continue  # Dify fills it itself
        if field.variable in inputs and inputs[field.variable] not in (None, ""):
            continue
        if field.default not in (None, ""):
            inputs[field.variable] = field.default
        elif field.required:
            raise InvalidRequestError(
                f"The app requires the input `{field.variable}`: send it in `inputs` "
                f'(the SDK\'s extra_body={{"inputs": {{"{field.variable}": ...}}}}).',
                param=f"inputs.{field.variable}",
                code="missing_input",
            )
    return inputs


def file_input(form: tuple[FormInput, ...], configured: str | None = None) -> FormInput | None:
    """The workflow input that takes the request's files: the configured one, else the first file input."""
    files = [field for field in form if field.kind in FILE_KINDS]
    if configured:
        return next((field for field in files if field.variable == configured), None)
    return files[0] if files else None
