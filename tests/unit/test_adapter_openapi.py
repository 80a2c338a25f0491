"""docs/adapter-openapi.json is what the protocol models say."""

import json

from shared.adapters import openapi


def test_committed_openapi_matches_the_models():
    assert openapi.OUT.read_text() == openapi.render(), "run: python -m shared.adapters.openapi"


def test_every_reference_resolves():
    doc = openapi.document()
    text = json.dumps(doc)
    names = set(doc["components"]["schemas"])
    refs = {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}
    assert refs <= names
