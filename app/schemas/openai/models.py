"""`GET /v1/models`."""

from typing import Literal

import msgspec


class Model(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "dify"
    name: str | None = None
    description: str | None = None
    mode: str | None = None
    # workflow and text-generator apps: the input that takes the message (absent for chat apps)
    query_variable: str | msgspec.UnsetType = msgspec.UNSET


class ModelList(msgspec.Struct, kw_only=True):
    object: Literal["list"] = "list"
    data: list[Model]
