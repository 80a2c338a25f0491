"""Empty functions: the baselines scripts/bench_orders.py measures the service against, in the same run.

``empty_http`` answers at once; ``durable_http`` writes one Firestore document and answers (the floor of any
request that must record something before answering); ``empty_relay`` takes a Pub/Sub push and publishes one
message to BENCH_RELAY_TOPIC (one hop, the floor of any Pub/Sub-triggered path). Clients are built once,
like the service's.
"""

import os
import uuid

import functions_framework
from google.cloud import firestore, pubsub_v1
from google.cloud.pubsub_v1.types import BatchSettings

_publisher = pubsub_v1.PublisherClient(batch_settings=BatchSettings(max_messages=1))
_topic = _publisher.topic_path(os.environ.get("GOOGLE_CLOUD_PROJECT", "execution-local"),
                               os.environ.get("BENCH_RELAY_TOPIC", "bench-relay"))


_db = firestore.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "execution-local"))


@functions_framework.http
def empty_http(request):
    return {"ok": True}, 201


@functions_framework.http
def durable_http(request):
    _db.collection("bench").document(uuid.uuid4().hex).create(request.get_json() or {})
    return {"ok": True}, 201


@functions_framework.cloud_event
def empty_relay(event):
    import base64

    data = base64.b64decode(event.data["message"].get("data", ""))
    _publisher.publish(_topic, data).result()
