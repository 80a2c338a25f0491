"""One submit queue per venue: a slow or rate-limited venue delays only its own submissions. The rule that names
a venue's queue is Settings.submit_queue_for (Terraform and the local stack make the same queues; tests/terraform
checks Terraform's); the order service hands every submission its order's venue; the scheduler files it there."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.orders import Status
from shared.infra.config import load_settings
from shared.infra.scheduler import TasksScheduler
from tests.unit.app.test_order_service import Env


class RecordingTasks:
    """A Cloud Tasks client stand-in recording create_task (the scheduler's only call here)."""

    def __init__(self) -> None:
        self.created: list[tuple[str, dict[str, Any]]] = []

    def create_task(self, *, parent: str, task: dict[str, Any], timeout: float) -> None:
        self.created.append((parent, task))


def test_a_venues_submit_queue_is_named_from_the_submit_queue():
    cfg = load_settings(submit_queue="order-submit")
    assert cfg.submit_queue_for("binance") == "order-submit-binance"
    assert cfg.submit_queue_for("gate_io") == "order-submit-gate-io"  # queue ids take no underscore


def test_the_scheduler_files_each_submission_on_its_venues_queue():
    cfg = load_settings(google_cloud_project="proj-123", submit_function_url="https://submit.example")
    tasks = RecordingTasks()
    scheduler = TasksScheduler(tasks, cfg)  # type: ignore[arg-type]
    scheduler.submit("ord_1", attempt=0, delay_s=0, venue="binance")
    scheduler.submit("ord_2", attempt=0, delay_s=0, venue="kraken")
    parents = [parent for parent, _ in tasks.created]
    assert parents == ["projects/proj-123/locations/us-central1/queues/order-submit-binance",
                       "projects/proj-123/locations/us-central1/queues/order-submit-kraken"]
    assert tasks.created[0][1]["name"].startswith(parents[0] + "/tasks/submit-ord_1-0")


def test_a_submission_without_a_venue_is_refused():
    cfg = load_settings(submit_function_url="https://s.example")
    scheduler = TasksScheduler(RecordingTasks(), cfg)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no venue"):
        scheduler.submit("ord_1", attempt=0, delay_s=0, venue="")


def test_the_order_service_queues_every_submission_for_its_orders_venue():
    from shared.adapters.protocol import ErrorCode

    env = Env()
    env.create()
    env.venue.fail("place", ErrorCode.RATE_LIMITED)
    order = env.run_submit()  # refused, not sent: submitted again, on the same venue's queue
    assert order.status is Status.PENDING_SUBMIT
    assert env.scheduler.submit_venues == ["binance", "binance"]
