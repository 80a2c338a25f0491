"""What every HTTP entry point shares: a Flask app whose errors are always JSON, and the dispatch from
functions-framework's request into that app.

Every answer that is an error is ``{"error": {"code", "message", "details": [{"field", "issue"}]}}``: Flask's
own 404 and 405 too (a 405 keeps its ``Allow`` header), and the framework's 404 for a path its router cannot
match (a newline in the path). An unexpected exception is logged with its stack trace and answered 500
``internal`` with the request's ``request_id`` (also in the ``X-Request-Id`` header and on every log line of the
request), never with the trace. Bodies are read with ``exact_json`` within ``exact_json.EDGE_MAX_BYTES`` (413
beyond) and its nesting bound (400).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import flask
import functions_framework
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
        {"field": ".".join(str(p) for p in err["loc"]) or "body",
         "issue": err["msg"].removeprefix("Value error, ")}
        for err in exc.errors(include_url=False)
    ]


class UnreadableBody(Exception):
    """The request body is not JSON (HTTP 400); `field` names what is wrong (the body, or its Content-Type)."""

    def __init__(self, issue: str, field: str = "body") -> None:
        super().__init__(issue)
        self.field = field


class BodyTooLarge(Exception):
    """The request body is longer than the edge's bound (HTTP 413)."""


def json_body(request: flask.Request | None = None, optional: bool = False) -> Any:
    """The JSON body of `request` (default: the current one), its numbers exact (``exact_json``: a price never
    passes through a float); UnreadableBody (a 400 naming the body) when there is none or it does not parse,
    BodyTooLarge beyond ``exact_json.EDGE_MAX_BYTES``. `optional`: an empty body is ``{}``."""
    request = request if request is not None else flask.request
    limit = exact_json.EDGE_MAX_BYTES
    if (request.content_length or 0) > limit:
        raise BodyTooLarge(f"at most {limit} bytes")
    raw = request.get_data(cache=True)
    if optional and not raw.strip():
        return {}
    if not request.is_json:
        raise UnreadableBody("expected application/json", field="Content-Type")
    try:
        data = exact_json.loads(raw, max_bytes=limit)
    except exact_json.TooLarge:
        raise BodyTooLarge(f"at most {limit} bytes") from None
    except exact_json.TooDeep as exc:
        raise UnreadableBody(str(exc)) from None
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


def _http_error(exc: HTTPException) -> flask.Response:
    code = (exc.name or "error").lower().replace(" ", "_")
    details = {404: [{"field": "path", "issue": "no such route"}],
               405: [{"field": "method", "issue": "not allowed on this route (see Allow)"}]}.get(exc.code or 0, [])
    response = error_response(exc.code or 500, code, exc.description or exc.name or "error", details)
    for name, value in exc.get_headers():  # 405's Allow, 413's ..., but our own Content-Type
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def create_app(name: str) -> flask.Flask:
    app = flask.Flask(name)
    app.json.sort_keys = False
    app.register_error_handler(HTTPException, _http_error)

    @app.errorhandler(UnreadableBody)
    def _unreadable(exc: UnreadableBody) -> flask.Response:
        return error_response(400, "bad_request", "the body is not readable JSON",
                              [{"field": exc.field, "issue": str(exc)}])

    @app.errorhandler(BodyTooLarge)
    def _too_large(exc: BodyTooLarge) -> flask.Response:
        return error_response(413, "too_large", "the body is too large", [{"field": "body", "issue": str(exc)}])

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> flask.Response:
        return unexpected(exc)

    return app


def unexpected(exc: BaseException) -> flask.Response:
    """A 500 for an exception nobody expected: logged with its stack trace, answered without it."""
    logger.error("unhandled error on %s %s", flask.request.method, flask.request.path, exc_info=exc)
    request_id = log.current().get("request_id")
    return error_response(500, "internal", "internal error; the service logs have it under request_id",
                          request_id=request_id)


def install_framework_errors() -> None:
    """Make functions-framework's own errors JSON too (call at import time of an HTTP function's module): a path
    its router cannot match (a newline in it) never reaches our app and was answered with Flask's HTML page."""
    functions_framework.errorhandler(HTTPException)(_http_error)


def dispatch(app: flask.Flask, request: flask.Request, project: str) -> flask.Response:
    """Route functions-framework's request through `app`, with the request's trace and a fresh request id bound
    to every log line (the id is answered in ``X-Request-Id``)."""
    request_id = uuid.uuid4().hex
    with log.bind(trace=log.trace_from_headers(request.headers, project), request_id=request_id):
        with app.request_context(request.environ):
            response = app.full_dispatch_request()
    response.headers["X-Request-Id"] = request_id
    return response
