"""The HTTP function: every ``/api/v1`` route, served by one Flask app built once per process.

Routes parse the request, call a use case, and answer JSON. Every error leaves as
``{"error": {"code", "message", "details": [{"field", "issue"}]}}``; an unexpected exception is logged with its
stack trace and answered as a 500 without one.
"""

from __future__ import annotations

import logging

import flask
from werkzeug.exceptions import HTTPException

from functions import runtime
from shared.app import health
from shared.infra import log

logger = logging.getLogger("api")

app = flask.Flask(__name__)
v1 = flask.Blueprint("v1", __name__, url_prefix="/api/v1")


def error_response(status: int, code: str, message: str, details: list[dict] | None = None) -> flask.Response:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return flask.make_response(flask.jsonify(body), status)


@app.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> flask.Response:
    code = (exc.name or "error").lower().replace(" ", "_")
    return error_response(exc.code or 500, code, exc.description or exc.name or "error")


@app.errorhandler(Exception)
def _unexpected(exc: Exception) -> flask.Response:
    logger.exception("unhandled error on %s %s", flask.request.method, flask.request.path)
    return error_response(500, "internal", "internal error; see the service logs")


@v1.get("/health")
def get_health() -> flask.Response:
    report = health.check(health.default_probes())
    return flask.make_response(flask.jsonify(report.as_dict()), 200 if report.ok else 503)


app.register_blueprint(v1)


def api(request: flask.Request) -> flask.Response:
    """Entry point: dispatch the functions-framework request through the routed app."""
    with log.bind(trace=log.trace_from_headers(request.headers, runtime.SETTINGS.google_cloud_project)):
        with app.request_context(request.environ):
            return app.full_dispatch_request()
