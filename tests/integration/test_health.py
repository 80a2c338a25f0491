"""GET /api/v1/health against the real dependencies, and against a broken one."""

import socket


def test_health_reports_every_dependency_with_latency(stack, http):
    resp = http.get(f"{stack.api_url}/health", timeout=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ok"
    assert body["failed"] == []
    assert set(body["dependencies"]) >= {"pubsub", "firestore", "redis", "tasks"}
    for name, dep in body["dependencies"].items():
        assert dep["ok"] is True, name
        assert 0 <= dep["latency_ms"] < 2000, name


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


def test_health_names_the_failed_dependency_with_503(spawn_function, http):
    url = spawn_function("api", REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0")
    resp = http.get(f"{url}/api/v1/health", timeout=10)
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["redis"]
    assert body["dependencies"]["redis"]["ok"] is False
    assert body["dependencies"]["redis"]["error"]
    assert body["dependencies"]["firestore"]["ok"] is True


def test_unknown_route_is_a_json_404(stack, http):
    resp = http.get(f"{stack.api_url}/no-such-thing", timeout=10)
    assert resp.status_code == 404
    err = resp.json()["error"]
    assert err["code"] == "not_found"
    assert err["message"]
    assert [d["field"] for d in err["details"]] == ["path"]  # names what is unknown (issue 12: hostile input)


def test_wrong_method_is_a_json_405(stack, http):
    resp = http.post(f"{stack.api_url}/health", timeout=10)
    assert resp.status_code == 405
    assert resp.json()["error"]["code"] == "method_not_allowed"
