"""The app's input form and the `inputs` a run sends."""

import pytest

from app.errors import InvalidRequestError
from app.schemas.dify import AppParameters
from app.services.inputs import FormInput, form_of, query_variable, run_inputs
from tests.traces import load


def test_the_recorded_forms_are_read_typed() -> None:
    workflow = form_of(AppParameters(user_input_form=load("workflow-parameters").json()["user_input_form"]))
    assert workflow == (FormInput(kind="text-input", variable="query", required=True),)
    completion = form_of(AppParameters(user_input_form=load("completion-parameters").json()["user_input_form"]))
    assert completion == (FormInput(kind="paragraph", variable="query", required=True, default=""),)
    assert form_of(AppParameters(user_input_form=load("dify-1.15/agent-parameters").json()["user_input_form"])) == ()


@pytest.mark.parametrize(
    ("form", "configured", "expected"),
    [
        ((FormInput(kind="select", variable="lang"), FormInput(kind="paragraph", variable="query")), None, "query"),
        (
            (FormInput(kind="text-input", variable="a"), FormInput(kind="paragraph", variable="b", required=True)),
            None,
            "b",
        ),
        ((FormInput(kind="number", variable="n"), FormInput(kind="text-input", variable="topic")), None, "topic"),
        ((FormInput(kind="number", variable="n"),), None, "query"),
        ((FormInput(kind="paragraph", variable="query"),), "question", "question"),
    ],
)
def test_query_variable(form: tuple[FormInput, ...], configured: str | None, expected: str) -> None:
    assert query_variable(form, configured) == expected


def test_run_inputs_merge_the_clients_the_gateways_and_the_defaults() -> None:
    form = (
        FormInput(kind="paragraph", variable="query", required=True),
        FormInput(kind="select", variable="lang", required=True, default="en"),
        FormInput(kind="text-input", variable="tone"),
    )
    inputs = run_inputs(form, {"tone": "dry", "extra": 1}, {"query": "hi"})
    assert inputs == {"query": "hi", "lang": "en", "tone": "dry", "extra": 1}
    assert run_inputs(form, {"query": "mine"}, {"query": "hi"})["query"] == "mine"  # the client's own wins


def test_a_required_input_without_value_or_default_is_a_400_naming_it() -> None:
    form = (FormInput(kind="text-input", variable="topic", required=True),)
    with pytest.raises(InvalidRequestError) as raised:
        run_inputs(form, None, {})
    assert raised.value.code == "missing_input"
    assert raised.value.param == "inputs.topic"
