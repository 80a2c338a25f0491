"""Process-wide clients for Pub/Sub, Firestore, Cloud Tasks and Redis.

Each is built on first use and then reused for the life of the process (never per request). Emulator hosts
from the configuration are honoured: the Google libraries read PUBSUB_EMULATOR_HOST / FIRESTORE_EMULATOR_HOST
themselves; Cloud Tasks has no such switch, so an insecure gRPC channel is built for CLOUD_TASKS_EMULATOR_HOST.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

import redis
from google.cloud import firestore, pubsub_v1, tasks_v2
from google.cloud.pubsub_v1.types import BatchSettings, PublisherOptions

from shared.infra import redis_client
from shared.infra.config import settings

if TYPE_CHECKING:
    from shared.infra.venues import AdapterStats, VenueClient


def _export_emulator_hosts() -> None:
    # Settings may come from overrides in tests; the Google libraries read the environment.
    cfg = settings()
    for var, value in (
        ("PUBSUB_EMULATOR_HOST", cfg.pubsub_emulator_host),
        ("FIRESTORE_EMULATOR_HOST", cfg.firestore_emulator_host),
    ):
        if value:
            os.environ.setdefault(var, value)


@functools.cache
def publisher() -> pubsub_v1.PublisherClient:
    """Pub/Sub publisher with message ordering on, so each order's events keep their sequence. Batches wait at
    most 0.5 ms (the default 10 ms sits on every latency path: with ordering, a batch is sent on its timer);
    the events of one change, published together, share one batch and one round trip."""
    _export_emulator_hosts()
    return pubsub_v1.PublisherClient(batch_settings=BatchSettings(max_messages=100, max_latency=0.0005),
                                     publisher_options=PublisherOptions(enable_message_ordering=True))


@functools.cache
def firestore_db() -> firestore.Client:
    _export_emulator_hosts()
    return firestore.Client(project=settings().google_cloud_project)


@functools.cache
def tasks() -> tasks_v2.CloudTasksClient:
    host = settings().cloud_tasks_emulator_host
    if host:
        import grpc
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

        return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(host)))
    return tasks_v2.CloudTasksClient()


@functools.cache
def cache() -> redis.Redis:
    """Redis (Memorystore; TLS as shared/infra/redis_client.py says). Short timeouts: the cache must never be
    what makes a request slow or fail."""
    return redis_client.connect(
        settings().redis_url,
        settings().redis_ca_file,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        health_check_interval=30,
        decode_responses=True,
    )


@functools.cache
def adapter_stats() -> "AdapterStats":
    from shared.infra.venues import AdapterStats

    return AdapterStats(cache())


@functools.cache
def venues() -> dict[str, "VenueClient"]:
    """One client per adapter in ADAPTER_ENDPOINTS, sharing one pooled HTTP session and the Redis statistics."""
    from shared.infra.venues import VenueClient, session

    http = session()
    cfg = settings()
    return {name: VenueClient(name, url, http, adapter_stats(), id_token=cfg.adapter_id_tokens)
            for name, url in cfg.adapter_endpoints.items()}
