"""execctl against the real stack: each command's table and JSON (and CSV) output, its exit codes (0 ok, 1 the
service refused, 2 usage, 3 unreachable), and the key never shown (README, Operator tools)."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from decimal import Decimal

import pytest

from tests.integration.conftest import wait_for


def _strategy() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


def _touch(execctl, venue: str = "binance") -> Decimal:
    rows = execctl("routes", "--symbol", "BTC/USDT", "-o", "json").json()["routes"]
    return Decimal(next(r for r in rows if r["venue"] == venue)["best_bid"])


def _resting(execctl, strategy: str, *extra: str, expect: int = 0):
    """A buy far below the market: it rests at the venue until canceled."""
    price = (_touch(execctl) * Decimal("0.9")).quantize(Decimal("0.01"))
    return execctl("orders", "submit", "-s", strategy, "--symbol", "BTC/USDT", "--side", "buy", "-q", "0.01",
                   "-p", str(price), "-x", "binance", *extra, "-o", "json", expect=expect)


def test_health_table_and_json(execctl):
    doc = execctl("health", "-o", "json").json()
    assert doc["status"] == "ok" and "redis" in doc["dependencies"]
    table = execctl("health").stdout
    assert "health: ok" in table and "firestore" in table


def test_the_key_is_used_but_never_printed(execctl, stack):
    key = stack.env["API_KEY"]
    shown = execctl("config", "-o", "json")
    doc = shown.json()
    assert doc["api_key"] == "set" and doc["url"] == stack.api_url and doc["api_key_from"].startswith("local stack")
    for run in (shown, execctl("config"), execctl("--help"), execctl("adapters"),
                execctl("orders", "show", "ord_" + "0" * 24, expect=1)):
        assert key not in run.stdout and key not in run.stderr


def test_order_lifecycle_table_json_csv(execctl, api):
    strategy = _strategy()
    placed = _resting(execctl, strategy).json()
    order_id = placed["order_id"]
    assert placed["status"] in ("new", "pending_submit", "accepted") and placed["client_order_id"].startswith("execctl-")
    accepted = wait_for(api, order_id, lambda o: o["status"] == "accepted")
    assert accepted["status"] == "accepted", accepted

    shown = execctl("orders", "show", order_id)
    assert order_id in shown.stdout and "accepted" in shown.stdout and strategy in shown.stdout
    assert execctl("orders", "show", order_id, "-o", "json").json()["order_id"] == order_id

    listed = execctl("orders", "list", "-s", strategy, "-o", "json").json()
    assert [o["order_id"] for o in listed["orders"]] == [order_id] and listed["more"] is False
    assert order_id in execctl("orders", "list", "-s", strategy).stdout
    rows = list(csv.DictReader(io.StringIO(execctl("orders", "list", "-s", strategy, "-o", "csv").stdout)))
    assert [(r["order_id"], r["status"], r["quantity"]) for r in rows] == [(order_id, "accepted", "0.01")]

    new_price = (Decimal(placed["price"]) - 1).quantize(Decimal("0.01"))
    modified = execctl("orders", "modify", order_id, "-p", str(new_price), "-o", "json").json()
    assert modified["status"] in ("pending_replace", "accepted")
    replaced = wait_for(api, order_id, lambda o: o["status"] == "accepted" and Decimal(o["price"]) == new_price)
    assert Decimal(replaced["price"]) == new_price, replaced

    canceled = execctl("orders", "cancel", order_id, "-o", "json").json()
    assert canceled["status"] in ("pending_cancel", "canceled")
    assert wait_for(api, order_id, lambda o: o["status"] == "canceled")["status"] == "canceled"
    assert execctl("orders", "cancel", order_id, "-o", "json").json()["status"] == "canceled"  # a repeat: no change


def test_a_repeated_submit_is_the_same_order_and_different_terms_are_refused(execctl):
    strategy, client_id = _strategy(), f"cli-{uuid.uuid4().hex[:12]}"
    first = _resting(execctl, strategy, "--client-order-id", client_id).json()
    repeat = execctl("orders", "submit", "--body", "-", "-o", "json", input=_body(first)).json()
    assert repeat["order_id"] == first["order_id"]
    other = execctl("orders", "submit", "--body", "-", "-q", "0.02", input=_body(first), expect=1)
    assert "client_order_id" in other.stderr or "conflict" in other.stderr
    execctl("orders", "cancel", first["order_id"])


def _body(order: dict) -> str:
    keys = ("strategy_id", "symbol", "side", "quantity", "price", "exchange", "client_order_id")
    return json.dumps({k: str(order[k]) for k in keys})


def test_execute_waits_until_the_order_works(execctl):
    strategy = _strategy()
    price = (_touch(execctl) * Decimal("0.9")).quantize(Decimal("0.01"))
    doc = execctl("execute", "-s", strategy, "--symbol", "BTC/USDT", "--side", "buy", "-q", "0.01", "-p", str(price),
                  "-x", "binance", "--wait-s", "20", "-o", "json").json()
    assert doc["status"] == "accepted", doc
    execctl("orders", "cancel", doc["order_id"])


def test_list_announces_what_it_leaves_out_and_pages_to_the_end(execctl):
    strategy = _strategy()
    ids = {_resting(execctl, strategy).json()["order_id"] for _ in range(3)}
    first = execctl("orders", "list", "-s", strategy, "--limit", "2", "-o", "json")
    assert len(first.json()["orders"]) == 2 and first.json()["more"] is True and "more orders match" in first.stderr
    every = execctl("orders", "list", "-s", strategy, "--all", "-o", "json").json()["orders"]
    assert {o["order_id"] for o in every} == ids
    recent = execctl("orders", "list", "-s", strategy, "--since", "10m", "-o", "json").json()["orders"]
    assert {o["order_id"] for o in recent} == ids
    assert execctl("orders", "list", "-s", strategy, "--until", "1h ago", "-o", "json").json()["orders"] == []
    assert "--since" in execctl("orders", "list", "--since", "yesterday-ish", expect=2).stderr
    for order_id in ids:
        execctl("orders", "cancel", order_id)


def test_pause_and_resume_a_parent(execctl, api):
    strategy = _strategy()
    price = (_touch(execctl) * Decimal("0.9")).quantize(Decimal("0.01"))
    parent = execctl("orders", "submit", "-s", strategy, "--symbol", "BTC/USDT", "--side", "buy", "-q", "0.03",
                     "-p", str(price), "-x", "binance", "-a", "twap", "--param", "duration_s=20",
                     "--param", "slices=3", "-o", "json").json()
    assert parent["algorithm"] == "twap" and parent["algorithm_params"]["slices"] == 3
    assert execctl("orders", "pause", parent["order_id"], "-o", "json").json()["paused"] is True
    shown = execctl("orders", "show", parent["order_id"]).stdout
    assert "progress" in shown and "filled_pct" in shown and "slices_done" in shown
    assert execctl("orders", "resume", parent["order_id"], "-o", "json").json()["paused"] is False
    execctl("orders", "cancel", parent["order_id"])
    done = wait_for(api, parent["order_id"], lambda o: o["status"] == "canceled", timeout=60)
    assert done["status"] == "canceled", done
    direct = _resting(execctl, strategy).json()
    assert "only an algorithm's parent" in execctl("orders", "pause", direct["order_id"], expect=1).stderr
    execctl("orders", "cancel", direct["order_id"])


def test_routes_optimize_adapters_metrics(execctl, stack):
    routes = execctl("routes", "-o", "json").json()
    venues = {r["venue"] for r in routes["routes"]}
    assert venues == set(stack.adapters)
    table = execctl("routes").stdout
    assert all(v in table for v in venues) and "BTC/USDT" in table

    plan = execctl("optimize", "--side", "buy", "--symbol", "BTC/USDT", "-q", "0.5", "-o", "json").json()
    assert Decimal(plan["allocation"]["total_quantity"]) == Decimal("0.5")
    rows = list(csv.DictReader(io.StringIO(execctl("optimize", "--side", "buy", "--symbol", "BTC/USDT", "-q", "0.5",
                                                   "-o", "csv").stdout)))
    assert sum(Decimal(r["quantity"]) for r in rows) == Decimal("0.5") and {r["venue"] for r in rows} <= venues
    assert "best_single_venue" in execctl("optimize", "--side", "buy", "--symbol", "BTC/USDT", "-q", "0.5").stdout

    adapters = execctl("adapters", "-o", "json").json()["adapters"]
    assert {a["name"] for a in adapters} == set(stack.adapters)
    assert all(a in execctl("adapters").stdout for a in stack.adapters)

    metrics = execctl("metrics", "-o", "json").json()
    assert isinstance(metrics, dict) and metrics
    assert "execution_orders_total" in execctl("metrics", "--prometheus").stdout
    assert execctl("metrics").stdout.strip()


def test_dead_mans_switch_heartbeat_status_halt_and_enable(execctl, stack, http):
    strategy = _strategy()
    beat = execctl("dms", "heartbeat", "-s", strategy, "--timeout-ms", "1000", "-o", "json").json()
    assert beat["strategy_id"] == strategy and beat["deadline_ms"] == beat["last_heartbeat_ms"] + 1000

    def switch() -> dict:
        return next((s for s in execctl("dms", "status", "-o", "json").json()["switches"]
                     if s.get("strategy_id") == strategy), {})

    deadline = time.monotonic() + 90
    while switch().get("halted_at_ms") is None and time.monotonic() < deadline:
        # The stack's scheduled check fires it; this check (as test_dms.py's) makes it sooner on a loaded machine.
        http.post(stack.env["DMS_FUNCTION_URL"], json={"for_s": 0}, timeout=60)
        time.sleep(0.2)
    halted = switch()
    assert halted.get("halted_at_ms") is not None, halted
    row = next(line for line in execctl("dms", "status").stdout.splitlines() if strategy in line)
    assert "missed" in row  # halted, and why
    refused = _resting(execctl, strategy, expect=1)  # a halted strategy's order is refused, with the reason
    assert "halt" in refused.stderr.lower()
    enabled = execctl("dms", "enable", strategy, "-o", "json").json()
    assert enabled["halted_at_ms"] is None
    execctl("orders", "cancel", _resting(execctl, strategy).json()["order_id"])  # accepted again
    assert "not_found" in execctl("dms", "enable", "no-such-strategy-x", expect=1).stderr


@pytest.mark.parametrize("args, code, says", [
    (("orders", "show", "ord_" + "0" * 24), 1, "not_found"),
    (("orders", "submit", "-s", "s1", "--symbol", "BTC/USDT", "--side", "buy", "-q", "-1", "-p", "1"), 1, "quantity"),
    (("orders", "submit", "-s", "s1", "--symbol", "BTC/USDT", "--side", "up", "-q", "1"), 2, "--side"),
    (("orders", "submit", "-s", "s1", "--symbol", "BTC/USDT", "--side", "buy", "-q", "lots"), 2, "not a number"),
    (("orders", "submit", "--symbol", "BTC/USDT", "--side", "buy", "-q", "1"), 2, "--strategy"),
    (("orders", "modify", "ord_" + "0" * 24), 2, "--price"),
    (("orders", "bogus"), 2, "bogus"),
])
def test_exit_codes_and_errors_say_what_is_wrong(execctl, args, code, says):
    result = execctl(*args, expect=code)
    assert says in result.stderr + result.stdout


def test_an_unreachable_service_exits_3_and_a_missing_configuration_2(execctl, tmp_path):
    down = execctl("--url", "http://127.0.0.1:9/api/v1", "health", expect=3)
    assert "unreachable" in down.stderr
    missing = execctl("health", expect=2, EXECCTL_STACK_DIR=str(tmp_path))
    assert "no service URL" in missing.stderr


def test_a_wrong_key_is_refused_with_the_services_error(execctl):
    result = execctl("--api-key", "not-a-key", "orders", "list", expect=1)
    assert "401" in result.stderr and "unauthorized" in result.stderr


def test_a_busy_answer_is_retried_and_a_refusal_is_not(execctl):
    """The service's 503 "contended, nothing was changed" (with Retry-After) is asked again; a 4xx is final."""
    import http.server
    import threading

    answers = [(503, b'{"error":{"code":"contended","message":"busy","details":[]}}'), (200, b'{"orders":[],'
               b'"next_cursor":null}'), (422, b'{"error":{"code":"invalid_request","message":"bad","details":[]}}')]
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            seen.append(self.path)
            status, body = answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/v1"
        assert execctl("--url", url, "--api-key", "k", "orders", "list", "-o", "json").json()["orders"] == []
        assert len(seen) == 2  # the 503, then its retry
        refused = execctl("--url", url, "--api-key", "k", "orders", "list", expect=1)
        assert "invalid_request" in refused.stderr and len(seen) == 3
    finally:
        server.shutdown()


def test_the_installed_command_answers_with_its_exit_codes(stack):
    """.venv/bin/execctl, as scripts/bootstrap.sh installs it, run as a user runs it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    command = Path(sys.executable).parent / "execctl"
    assert command.is_file(), f"{command} is missing: scripts/bootstrap.sh installs it"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECCTL_") and k not in ("API_URL", "API_KEY")}
    env["EXECCTL_STACK_DIR"] = str(stack.state)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(command), *args], env=env, capture_output=True, text=True, timeout=120)

    ok = run("health", "-o", "json")
    assert ok.returncode == 0 and '"status":"ok"' in ok.stdout, ok
    refused = run("orders", "show", "ord_" + "0" * 24)
    assert refused.returncode == 1 and "not_found" in refused.stderr and "Traceback" not in refused.stderr, refused
    usage = run("orders", "list", "--status", "sideways")
    assert usage.returncode == 2 and "--status" in usage.stderr, usage
    down = run("--url", "http://127.0.0.1:9/api/v1", "health")
    assert down.returncode == 3 and "unreachable" in down.stderr, down
