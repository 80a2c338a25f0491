"""execctl's `orders watch` and `events tail` against the real stack: a short TWAP watched to its end, a direct order
watched while it rests and then fills, and the events of an order seen by a tail started before it was placed
(execctl/watch.py, execctl/events.py)."""

from __future__ import annotations

import csv
import io
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from shared.domain.orders import order_id_for
from shared.infra import exact_json

EXECCTL = Path(sys.executable).with_name("execctl")
TERMINAL = {"filled", "canceled", "rejected", "expired"}


class Running:
    """execctl as a process of its own (it runs while this test acts), its output read line by line."""

    def __init__(self, stack, *args: str) -> None:
        env = {k: v for k, v in os.environ.items()
               if k not in ("EXECCTL_URL", "EXECCTL_API_KEY", "EXECCTL_API_KEY_FILE", "EXECCTL_PROFILE", "API_URL",
                            "API_KEY")}
        env.update(EXECCTL_STACK_DIR=str(stack.state), COLUMNS="250")
        self.proc = subprocess.Popen([str(EXECCTL), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: queue.Queue[str] = queue.Queue()
        for stream, into in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=lambda s=stream, q=into: [q.put(line) for line in s], daemon=True).start()
        self.lines: list[str] = []
        self.errors: list[str] = []

    def wait_line(self, which: str, found, timeout: float = 60.0) -> str:
        """The first line of stdout/stderr (from now on) for which found(line) holds."""
        source, kept = (self.stdout, self.lines) if which == "stdout" else (self.stderr, self.errors)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = source.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and source.empty():
                    break
                continue
            kept.append(line)
            if found(line):
                return line
        pytest.fail(f"no such line on {which} within {timeout} s; stdout: {self.lines}, stderr: {self.errors}")

    def finish(self, timeout: float = 60.0) -> int:
        code = self.proc.wait(timeout=timeout)
        time.sleep(0)  # let the readers drain what is left
        for source, kept in ((self.stdout, self.lines), (self.stderr, self.errors)):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    kept.append(source.get(timeout=0.2))
                except queue.Empty:
                    if source.empty():
                        break
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def running(stack):
    started: list[Running] = []

    def start(*args: str) -> Running:
        started.append(Running(stack, *args))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()


def _records(stdout: str) -> list[dict]:
    return [exact_json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_watch_follows_a_short_twap_until_it_ends(execctl):
    placed = execctl("orders", "submit", "--strategy", "cli-watch", "-x", "binance", "--symbol", "BTC/USDT",
                     "--side", "sell", "-q", "0.2", "--type", "limit", "-p", "40000", "--algorithm", "twap",
                     "--param", "duration_s=10", "--param", "slices=2", "-o", "json").json()
    result = execctl("orders", "watch", placed["order_id"], "--interval", "0.5", "--timeout", "120", "-o", "json")
    records = _records(result.stdout)
    progress = [r for r in records if r["kind"] == "progress"]
    filled = [Decimal(r["filled_pct"]) for r in progress]
    assert filled == sorted(filled) and filled[0] < 100 and filled[-1] == 100, filled  # rising to 100 %
    planned = [Decimal(r["planned_pct"]) for r in progress if r["planned_pct"] is not None]
    assert planned and planned == sorted(planned) and planned[-1] == 100, progress
    statuses = [r["status"] for r in records if r["kind"] == "status"]
    assert statuses[-1] == "filled" and records[-1]["kind"] == "progress" and records[-1]["status"] == "filled"
    last = progress[-1]
    assert last["slices_done"] >= 2 and last["slices_planned"] == 2 and last["working_children"] == 0
    assert Decimal(last["filled_quantity"]) == Decimal("0.2") and len(last["children"]) >= 2
    assert last["arrival_cost_bps"] is not None and Decimal(last["arrival_mid"]) > 0
    assert last["participation"] is not None or last["participation_note"]
    # the same order, ended, in a person's lines: one pass and exit 0
    text = execctl("orders", "watch", placed["order_id"]).stdout
    assert "progress filled: filled 0.2 of 0.2 (100.00%)" in text and "arrival cost" in text, text


def test_watch_sees_a_direct_order_rest_and_then_fill(execctl, running):
    placed = execctl("orders", "submit", "--strategy", "cli-watch", "-x", "binance", "--symbol", "BTC/USDT",
                     "--side", "buy", "-q", "0.01", "--type", "limit", "-p", "45000", "-o", "json").json()
    watch = running("orders", "watch", placed["order_id"], "--interval", "0.3", "--timeout", "120", "-o", "csv")
    header = watch.wait_line("stdout", lambda line: line.startswith("kind,"))
    watch.wait_line("stdout", lambda line: line.startswith("status,") and ",accepted," in line)
    execctl("orders", "modify", placed["order_id"], "--price", "60000")  # now it crosses the book
    assert watch.finish(timeout=120) == 0, watch.errors
    rows = list(csv.DictReader(io.StringIO("".join([header, *watch.lines]))))
    statuses = [r["status"] for r in rows if r["kind"] == "status"]
    assert statuses[0] == "accepted" and statuses[-1] == "filled", rows
    fills = [r for r in rows if r["kind"] == "fill"]
    assert fills and sum(Decimal(r["fill_quantity"]) for r in fills) == Decimal("0.01"), rows
    assert len({r["trade_id"] for r in fills}) == len(fills)  # each fill once
    assert not [r for r in rows if r["kind"] == "progress"]  # a direct order has no schedule


def test_watch_of_an_unknown_order_is_the_services_refusal(execctl):
    result = execctl("orders", "watch", "ord_" + "0" * 24, expect=1)
    assert "not_found" in result.stderr and "HTTP 404" in result.stderr


def test_events_tail_sees_the_events_of_the_order_it_waits_for_and_no_others(execctl, running, subscriber, stack):
    client_order_id = f"tail-{uuid.uuid4().hex[:16]}"
    order_id = order_id_for("cli-tail", client_order_id)  # known before the order exists
    tail = running("events", "tail", "--order", order_id, "-o", "json", "--timeout", "120")
    subscribed = tail.wait_line("stderr", lambda line: line.startswith("subscribed: "))
    subscription = subscribed.split()[1]
    base = ("--strategy", "cli-tail", "-x", "binance", "--symbol", "BTC/USDT", "--side", "sell", "-q", "0.01",
            "--type", "limit", "-p", "40000", "--until", "terminal", "-o", "json")
    other = execctl("execute", *base).json()  # another order of the same strategy, at the same time
    ours = execctl("execute", *base, "--client-order-id", client_order_id).json()
    assert ours["order_id"] == order_id and ours["status"] == "filled", ours
    tail.wait_line("stdout", lambda line: exact_json.loads(line).get("status") == "filled", timeout=60)
    tail.proc.send_signal(signal.SIGINT)  # Ctrl-C: the tail ends, and takes its subscription with it
    assert tail.finish() == 130, tail.errors
    events = [exact_json.loads(line) for line in tail.lines if line.strip()]
    assert other["order_id"] != order_id and {e["order_id"] for e in events} == {order_id}, events
    statuses = [e["status"] for e in events]
    assert statuses[0] == "new" and "accepted" in statuses and statuses[-1] == "filled", statuses
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(set(sequences)) and sequences[0] == 1, sequences  # in order, each once
    names = [s.name for s in subscriber.list_subscriptions(request={"project": f"projects/{stack.project}"})]
    assert subscription not in names


def test_events_tail_ends_after_count_events_and_says_when_the_timeout_came_first(execctl, running, subscriber,
                                                                                  stack):
    strategy = f"cli-tail-{uuid.uuid4().hex[:6]}"
    tail = running("events", "tail", "--strategy", strategy, "--status", "filled", "--count", "1", "-o", "csv",
                   "--timeout", "120")
    subscriptions = [tail.wait_line("stderr", lambda line: line.startswith("subscribed: ")).split()[1]]
    placed = execctl("execute", "--strategy", strategy, "-x", "binance", "--symbol", "BTC/USDT", "--side", "buy",
                     "-q", "0.01", "--type", "limit", "-p", "60000", "--until", "terminal", "-o", "json").json()
    assert tail.finish(timeout=120) == 0, tail.errors
    rows = list(csv.DictReader(io.StringIO("".join(tail.lines))))
    assert [(r["order_id"], r["status"]) for r in rows] == [(placed["order_id"], "filled")]
    # nothing of a strategy that does not trade: the timeout ends it, with its own exit code
    quiet = execctl("events", "tail", "--strategy", "nobody-trades-this", "--count", "1", "--timeout", "2",
                    expect=4)
    assert "timed out" in quiet.stderr
    subscriptions.append(quiet.stderr.split("subscribed: ")[1].split()[0])
    names = {s.name for s in subscriber.list_subscriptions(request={"project": f"projects/{stack.project}"})}
    assert not names & set(subscriptions), subscriptions  # each deleted, however its tail ended


def test_events_tail_says_when_pubsub_refuses_or_cannot_be_reached(execctl):
    missing = execctl("events", "tail", "--timeout", "1", expect=1, ORDER_EVENTS_TOPIC="no-such-topic")
    assert "not_found" in missing.stderr and "no-such-topic" in missing.stderr, missing.stderr
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    silent = execctl("events", "tail", "--timeout", "1", expect=3, PUBSUB_EMULATOR_HOST=f"127.0.0.1:{port}")
    assert "unreachable" in silent.stderr and "Pub/Sub" in silent.stderr, silent.stderr
