"""execctl's --since/--until: every accepted form gives the moment it names, and what it cannot read is refused
with the forms it accepts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from execctl.when import parse_moment

NOW = 1_796_411_531_843  # 2026-12-04 19:12:11.843 UTC


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1000


@pytest.mark.parametrize("text, expected", [
    ("1796411500000", 1_796_411_500_000),
    ("now", NOW), (" NOW ", NOW),
    ("90s", NOW - 90_000), ("30m", NOW - 1_800_000), ("1h", NOW - 3_600_000), ("2d", NOW - 2 * 86_400_000),
    ("1w", NOW - 7 * 86_400_000), ("2d ago", NOW - 2 * 86_400_000), ("2 d ago", NOW - 2 * 86_400_000),
    ("-1h", NOW - 3_600_000), ("1h30m", NOW - 5_400_000), ("1h 30m ago", NOW - 5_400_000),
    ("2026-12-04", _ms(2026, 12, 4)),
    ("2026-12-04T10:30", _ms(2026, 12, 4, 10, 30)),
    ("2026-12-04 10:30:00Z", _ms(2026, 12, 4, 10, 30)),
    ("2026-12-04t10:30:00z", _ms(2026, 12, 4, 10, 30)),
    ("2026-12-04T10:30:00+01:00", _ms(2026, 12, 4, 9, 30)),
    ("2026-12-04T10:30:00.250Z", _ms(2026, 12, 4, 10, 30) + 250),
])
def test_each_form_names_its_moment(text, expected):
    assert parse_moment(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "", "1y", "h1", "10", "1700000000", "2026-13-01", "1.5h", "ago"])
def test_what_is_not_a_moment_is_refused_saying_what_is_accepted(text):
    with pytest.raises(ValueError) as exc:
        parse_moment(text, NOW)
    assert repr(text) in str(exc.value)


def test_a_bare_number_too_short_for_epoch_ms_asks_for_a_unit():
    """Ten digits look like epoch seconds: taken as ms they would mean January 1970, so they are refused."""
    with pytest.raises(ValueError, match="add a unit"):
        parse_moment("1796411531", NOW)
