"""Small helpers to assemble OpenAPI 3.1 documents from pydantic models (the adapter protocol's and the API's)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
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


def render(document: dict[str, Any]) -> str:
    """A generated document as it is committed (docs/*.json): indented, keys sorted, one final newline."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write(out: Path, document: dict[str, Any]) -> None:
    """Write a generated document to its committed place (a module's ``python -m`` entry point)."""
    out.parent.mkdir(exist_ok=True)
    out.write_text(render(document))
    sys.stdout.write(f"wrote {out}\n")
