"""Which failures are a dependency's passing trouble (worth a retry, answered 503 or redelivered) and which are
defects (a retry would fail the same way: answered 500, or for a Pub/Sub message rejected and acknowledged).

Transient: Firestore/Pub/Sub/Cloud Tasks answering 5xx, 429, deadline exceeded or aborted; Redis unreachable or
timing out; a store transaction that stayed contended. Everything else, including Google's 4xx such as
``InvalidArgument`` (a reserved document id, a value out of range), is not: it would come back on every
delivery, so a Pub/Sub message that raised it is a poison message.
"""

from __future__ import annotations

import redis
from google.api_core import exceptions as gexc

from shared.app.ports import Contended

_TRANSIENT = (gexc.ServerError, gexc.TooManyRequests, gexc.DeadlineExceeded, gexc.Aborted, gexc.RetryError,
              redis.ConnectionError, redis.TimeoutError, Contended, ConnectionError, TimeoutError)


def transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT)
