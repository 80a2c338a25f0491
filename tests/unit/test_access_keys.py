"""The key provider: the key file is re-read once its TTL has passed (a fake clock), and an unreadable or invalid
file refuses every key until it is good again (shared/infra/access_keys.py)."""

from __future__ import annotations

import pytest

from shared.domain.access import KeyFile, record_for
from shared.infra.access_keys import KeyProvider, KeysUnavailable

OLD, NEW = "ek_" + "1" * 64, "ek_" + "2" * 64


class Source:
    """What the file holds now, and how often it was read."""

    def __init__(self, keys: KeyFile) -> None:
        self.keys: KeyFile | KeysUnavailable = keys
        self.reads = 0

    def read(self, path) -> KeyFile:
        self.reads += 1
        if isinstance(self.keys, KeysUnavailable):
            raise self.keys
        return self.keys


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def one(key: str) -> KeyFile:
    return KeyFile(keys=[record_for(key, "desk-a", "trader", ["momentum_1"])])


def test_a_rotated_key_is_picked_up_once_the_ttl_has_passed_and_not_before():
    source, clock = Source(one(OLD)), Clock()
    provider = KeyProvider("keys.json", ttl_s=30, clock=clock, read=source.read)
    assert provider.authenticate(OLD) is not None and source.reads == 1
    source.keys = one(NEW)  # rotated
    clock.now += 29.9
    assert provider.authenticate(OLD) is not None and provider.authenticate(NEW) is None
    assert source.reads == 1  # within the TTL: no read
    clock.now += 0.1
    assert provider.authenticate(NEW) is not None and provider.authenticate(OLD) is None
    assert source.reads == 2


def test_a_broken_key_file_refuses_every_key_until_it_is_fixed():
    source, clock = Source(one(OLD)), Clock()
    provider = KeyProvider("keys.json", ttl_s=30, clock=clock, read=source.read)
    assert provider.authenticate(OLD) is not None
    source.keys = KeysUnavailable("keys.json is invalid")
    clock.now += 30
    with pytest.raises(KeysUnavailable):  # the last good set is not kept: fail closed
        provider.authenticate(OLD)
    with pytest.raises(KeysUnavailable):
        provider.current()
    source.keys = one(NEW)
    clock.now += 30
    assert provider.authenticate(NEW) is not None and provider.authenticate(OLD) is None
