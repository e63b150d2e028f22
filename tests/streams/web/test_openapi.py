"""Every route of the app is in the hand-written OpenAPI document, and nothing else is."""

from __future__ import annotations

import json
from importlib import resources

from streams.app import create_app
from streams.settings import Settings

_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}


def _document() -> dict:  # type: ignore[type-arg]
    return json.loads(resources.files("streams.web").joinpath("openapi.json").read_text())


def test_every_route_is_documented() -> None:
    worker = create_app(Settings(), 4)
    routes = {
        (route.method, route.resource.canonical)
        for route in worker.app.web.web_app.router.routes()
        if route.method in _METHODS
        and route.resource is not None
        # the Segments page's HTML and helpers are not the API (docs/ui.md describes them)
        and not (route.resource.canonical == "/ui" or route.resource.canonical.startswith("/ui/"))
    }
    doc = _document()
    documented = {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method.upper() in _METHODS
    }
    assert routes - documented == set(), "routes missing from openapi.json"
    assert documented - routes == set(), "openapi.json documents routes the app lacks"


def test_document_is_openapi_31_and_references_resolve() -> None:
    doc = _document()
    assert doc["openapi"] == "3.1.0"
    text = json.dumps(doc)
    for name in doc["components"]["schemas"]:
        assert f'"#/components/schemas/{name}"' in text or name == "Error"
    refs = {part.split('"')[0] for part in text.split('"$ref": "')[1:]}
    for ref in refs:
        node = doc
        for key in ref.removeprefix("#/").split("/"):
            node = node[key]
    secured = [
        (path, method)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and op.get("security")
    ]
    assert ("/segments", "post") in secured
    assert ("/segments/{id}", "delete") in secured
