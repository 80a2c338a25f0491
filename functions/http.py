"""What every HTTP entry point shares: a Flask app whose errors are always JSON, and the dispatch from
functions-framework's request into that app."""

from __future__ import annotations

import logging
from typing import Any

import flask
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from shared.infra import exact_json, log

logger = logging.getLogger("http")


def error_response(status: int, code: str, message: str, details: list[dict] | None = None,
                   **extra: Any) -> flask.Response:
    body = {"error": {"code": code, "message": message, "details": details or [], **extra}}
    return flask.make_response(flask.jsonify(body), status)


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    """pydantic's errors as [{"field": "a.b", "issue": "..."}]."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "issue": err["msg"]}
        for err in exc.errors(include_url=False)
    ]


class UnreadableBody(Exception):
    """The request body is not JSON (HTTP 400)."""


def json_body(request: flask.Request | None = None, optional: bool = False) -> Any:
    """The JSON body of `request` (default: the current one), its numbers exact (``exact_json``: a price never
    passes through a float); UnreadableBody (a 400 naming the body) when there is none or it does not parse.
    `optional`: an empty body is ``{}``."""
    request = request if request is not None else flask.request
    raw = request.get_data(cache=True)
    if optional and not raw.strip():
        return {}
    if not request.is_json:
        raise UnreadableBody("expected a JSON document (Content-Type: application/json)")
    try:
        data = exact_json.loads(raw)
    except ValueError:
        raise UnreadableBody("expected a JSON document (Content-Type: application/json)") from None
    if data is None:
        raise UnreadableBody("expected a JSON document (Content-Type: application/json)")
    return data


def json_body_or_empty(request: flask.Request | None = None) -> Any:
    """What Cloud Tasks and Cloud Scheduler send: the JSON body (numbers exact), or ``{}`` when there is none or
    it does not parse (the caller's model then says what is missing)."""
    try:
        return json_body(request, optional=True) or {}
    except UnreadableBody:
        return {}


def create_app(name: str) -> flask.Flask:
    app = flask.Flask(name)
    app.json.sort_keys = False

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> flask.Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name or "error")

    @app.errorhandler(UnreadableBody)
    def _unreadable(exc: UnreadableBody) -> flask.Response:
        return error_response(400, "bad_request", "the body is not readable JSON",
                              [{"field": "body", "issue": str(exc)}])

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> flask.Response:
        logger.exception("unhandled error on %s %s", flask.request.method, flask.request.path)
        return error_response(500, "internal", "internal error; see the service logs")

    return app


def dispatch(app: flask.Flask, request: flask.Request, project: str) -> flask.Response:
    """Route functions-framework's request through `app`, with the request's trace bound to every log line."""
    with log.bind(trace=log.trace_from_headers(request.headers, project)):
        with app.request_context(request.environ):
            return app.full_dispatch_request()
