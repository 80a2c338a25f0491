"""How old a message may be and still be acted on: one rule for signals and heartbeats.

A message is judged by when it was sent (Pub/Sub's publish time, or a timestamp the sender put in it), never by
when it happens to be processed: a push subscription redelivers for up to 7 days after an outage, and a message
republished from a dead-letter topic can arrive any time later. Pure: times are epoch milliseconds passed in.
"""

from __future__ import annotations


def staleness(sent_ms: int | None, now_ms: int, max_age_ms: int) -> str | None:
    """Why a message sent at `sent_ms` must not be acted on at `now_ms` (None: it is fresh enough).

    Too old: more than `max_age_ms` before now. Dated in the future by more than `max_age_ms` (a sender's clock
    far ahead, or a forged time): refused too, since taking it at its word would stretch a deadline."""
    if sent_ms is None:
        return "it carries no send time, so its age cannot be judged"
    age = now_ms - sent_ms
    if age > max_age_ms:
        return f"sent {age} ms ago, older than the {max_age_ms} ms allowed"
    if -age > max_age_ms:
        return f"dated {-age} ms in the future, beyond the {max_age_ms} ms allowed"
    return None


def oldest(*sent_ms: int | None) -> int | None:
    """The earliest of the send times known (a republished message keeps the age of its first send)."""
    known = [t for t in sent_ms if t is not None]
    return min(known) if known else None
