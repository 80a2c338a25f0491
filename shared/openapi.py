"""Small helpers to assemble OpenAPI 3.1 documents from pydantic models (the adapter protocol's and the API's)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def json_content(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref(model)}}}


def json_body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": ref(model)}}}


def schemas(models: list[type[BaseModel]], inputs: list[type[BaseModel]] = ()) -> dict[str, Any]:
    """The component schemas of `models` as they are written (answers) and of `inputs` as they are read (request
    bodies: a Decimal may come as a JSON number or a decimal string), and everything they reference. A model whose
    two forms differ gets both, as ``Name-Input`` and ``Name-Output``."""
    pairs = [(m, "serialization") for m in models] + [(m, "validation") for m in inputs]
    _, defs = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    return defs.get("$defs", {})
