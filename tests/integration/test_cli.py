"""execctl against the real stack: each command's table and JSON output, and its exit codes (README, Operator
tools)."""

from __future__ import annotations

import uuid


def test_health_table_and_json(execctl):
    doc = execctl("health", "-o", "json").json()
    assert doc["status"] == "ok" and "redis" in doc["dependencies"]
    table = execctl("health").stdout
    assert "health: ok" in table and "firestore" in table
