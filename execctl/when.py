"""Moments on the command line (``--since``, ``--until``) as epoch milliseconds: pure, the clock passed in.

Accepted forms (UTC unless an offset is given):
- epoch milliseconds: ``1733300000000``;
- ``now``;
- a span back from now: ``90s``, ``30m``, ``1h``, ``2d``, ``1w``, optionally with ``ago`` (``2d ago``) or a
  leading minus (``-1h``); a combination such as ``1h30m``;
- an ISO 8601 date or time: ``2026-12-04`` (its midnight), ``2026-12-04T10:30``, ``2026-12-04 10:30:00Z``,
  ``2026-12-04T10:30:00+01:00``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_SPAN = re.compile(r"^-?\s*((?:\d+\s*[smhdw]\s*)+)(?:ago)?$")
_PART = re.compile(r"(\d+)\s*([smhdw])")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_MS_DIGITS = 12  # a bare number with at least this many digits is epoch ms (12 digits: from 1973 on)


def parse_moment(text: str, now_ms: int) -> int:
    """`text` as epoch ms, spans counted back from `now_ms`. ValueError saying what is accepted otherwise."""
    value = text.strip().lower()
    if value == "now":
        return now_ms
    if value.isdigit():
        if len(value) < EPOCH_MS_DIGITS:
            raise ValueError(f"{text!r}: a bare number is epoch milliseconds (at least {EPOCH_MS_DIGITS} digits); "
                             "for a span back from now add a unit, e.g. 30m, 2h, 1d")
        return int(value)
    span = _SPAN.match(value)
    if span:
        return now_ms - sum(int(n) * _UNIT_MS[unit] for n, unit in _PART.findall(span.group(1)))
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text!r}: expected epoch ms, now, a span back from now (90s, 30m, 1h, 2d ago, 1w) or an "
                         "ISO date/time (2026-12-04, 2026-12-04T10:30Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)
