"""The HTTP function: every ``/api/v1`` route, served by one Flask app built once per process.

Routes parse the request, call a use case, and answer JSON. Every error leaves as
``{"error": {"code", "message", "details": [{"field", "issue"}]}}``; an unexpected exception is logged with its
stack trace and answered as a 500 without one.
"""

from __future__ import annotations

import flask

from functions import http, runtime
from shared.app import adapters, health
from shared.infra import clients

app = http.create_app(__name__)
v1 = flask.Blueprint("v1", __name__, url_prefix="/api/v1")


@v1.get("/health")
def get_health() -> flask.Response:
    report = health.check(health.default_probes())
    return flask.make_response(flask.jsonify(report.as_dict()), 200 if report.ok else 503)


@v1.get("/adapters")
def get_adapters() -> flask.Response:
    return flask.jsonify({"adapters": adapters.registry(clients.venues(), clients.adapter_stats())})


app.register_blueprint(v1)


def api(request: flask.Request) -> flask.Response:
    """Entry point."""
    return http.dispatch(app, request, runtime.SETTINGS.google_cloud_project)
