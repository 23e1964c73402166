"""`GET /v1/models` and `GET /v1/models/{model}` (ids may contain `/`); also without the `/v1` prefix."""

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from app.controllers.openapi import ERROR_RESPONSES, operation_id
from app.guards import ClientKeyMiddleware
from app.schemas.openai import Model, ModelList
from app.services.registry import ModelRegistry


class ModelsController(Controller):
    path = "/"
    middleware = [ClientKeyMiddleware]  # noqa: RUF012  # (not a guard: see ClientKeyMiddleware)
    tags = ["Models"]  # noqa: RUF012

    @get(
        ["/v1/models", "/models"],
        operation_id=operation_id("listModels"),
        responses=ERROR_RESPONSES,
        summary="The Dify apps served as models",
    )
    async def list_models(self, model_registry: NamedDependency[ModelRegistry]) -> ModelList:
        return ModelList(data=[app.to_model() for app in await model_registry.all_apps()])

    @get(
        ["/v1/models/{model:path}", "/models/{model:path}"],
        operation_id=operation_id("retrieveModel"),
        responses=ERROR_RESPONSES,
        summary="One model",
    )
    async def retrieve_model(self, model: FromPath[str], model_registry: NamedDependency[ModelRegistry]) -> Model:
        return (await model_registry.require(model.lstrip("/"))).to_model()
