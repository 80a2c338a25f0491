"""The service's deployment topology as data: its functions, what triggers each, its topics and queues.

One place lists them; the local stack (scripts/localstack.py), the Terraform cross-check test and the
functions' own code read it from here, so a function, topic or queue cannot exist in one and not the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.infra.config import Settings

Trigger = Literal["http", "pubsub", "tasks", "scheduler"]


@dataclass(frozen=True)
class Function:
    """A Cloud Function: its entry point in functions/main.py and what invokes it."""

    name: str  # entry point name and deployed function name suffix
    trigger: Trigger
    port_env: str  # local port override variable
    default_port: int
    topic: str | None = None  # for pubsub triggers: the settings attribute naming the topic
    queue: str | None = None  # for tasks triggers: the settings attribute naming the queue
    per_venue: bool = False  # deployed once per venue (ports default_port, default_port + 1, ...)


FUNCTIONS: tuple[Function, ...] = (
    Function("api", "http", "API_PORT", 8080),
    Function("signals", "pubsub", "SIGNALS_PORT", 8091, topic="signals_topic"),
    Function("submit", "tasks", "SUBMIT_PORT", 8092, queue="submit_queue"),
    Function("sync", "tasks", "SYNC_PORT", 8093, queue="sync_queue"),
    Function("slices", "tasks", "SLICES_PORT", 8097, queue="slices_queue"),
    Function("sweep", "scheduler", "SWEEP_PORT", 8094),
    Function("heartbeats", "pubsub", "HEARTBEATS_PORT", 8095, topic="heartbeats_topic"),
    Function("dms", "scheduler", "DMS_PORT", 8096),
    # Transaction cost analysis: every order event (a second subscription of order-events), and the markout
    # samples it schedules (shared/app/tca_pipeline.py).
    Function("tca", "pubsub", "TCA_PORT", 8098, topic="order_events_topic"),
    Function("markouts", "tasks", "MARKOUTS_PORT", 8099, queue="tca_queue"),
    Function("adapter", "http", "ADAPTER_PORT", 9101, per_venue=True),
)

# Topics the service owns (settings attribute names). Each pubsub-triggered function's topic gets a push
# subscription and a dead-letter topic.
TOPICS: tuple[str, ...] = ("signals_topic", "order_events_topic", "heartbeats_topic", "tca_records_topic")
# reconcile_queue carries the sweep's fan-out (shared/domain/reconcile.py) to the sync function, apart from the
# per-order sync tasks: its own rate limit, and the per-order polling can be paused without stopping the sweep.
QUEUES: tuple[str, ...] = ("submit_queue", "slices_queue", "sync_queue", "reconcile_queue", "tca_queue")
# Queues made once per venue (Settings.submit_queue_for names them): a slow venue must not delay the others'
# submissions. The attribute's value is the prefix; no queue of that bare name exists.
PER_VENUE_QUEUES: tuple[str, ...] = ("submit_queue",)


@dataclass(frozen=True)
class QueueRetry:
    """A Cloud Tasks queue's retry_config: a failed attempt (no answer, or not 2xx) is tried again after
    min_backoff_s, doubling max_doublings times, then growing linearly up to max_backoff_s, for max_attempts
    attempts in all (-1: no limit). Terraform's var.queues defaults and tasks.tf declare the same values (the
    Terraform cross-check compares them); the local stack creates its queues with them."""

    max_attempts: int = 20
    min_backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    max_doublings: int = 5
    max_retry_duration_s: float = 0.0  # 0: no time limit, only max_attempts


# The handlers' crashes are what these retries cover (the service schedules its own retries of venue errors).
QUEUE_RETRY: dict[str, QueueRetry] = {attr: QueueRetry() for attr in QUEUES}


def subscription_name(settings: Settings, fn: Function) -> str:
    """The push subscription that delivers fn's topic to fn."""
    assert fn.topic is not None
    return f"{getattr(settings, fn.topic)}-{fn.name}"
