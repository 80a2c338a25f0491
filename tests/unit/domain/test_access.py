"""API key records, hashing, constant-time comparison, roles and strategy scope (shared/domain/access.py)."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from shared.domain import access
from shared.domain.access import (
    ALL, Denied, KeyFile, KeyRecord, OutOfScope, Role, check_role, check_strategy, digest, new_key,
    publisher_topic, record_for,
)

TRADER_KEY = "ek_" + "a" * 64
OPERATOR_KEY = "ek_" + "b" * 64


def keys() -> KeyFile:
    return KeyFile(keys=[record_for(TRADER_KEY, "desk-a", "trader", ["momentum_1", "mean_rev"]),
                         record_for(OPERATOR_KEY, "ops", "operator", ALL)])


# ---- parsing ------------------------------------------------------------------------------------------------
def test_a_key_file_parses_from_json_and_keeps_no_key():
    doc = ('{"keys": [{"id": "desk-a", "sha256": "%s", "role": "trader", "strategies": ["momentum_1"]},'
           ' {"id": "root", "sha256": "%s", "role": "admin", "strategies": "*"}]}'
           % (digest(TRADER_KEY), digest(OPERATOR_KEY)))
    parsed = KeyFile.model_validate_json(doc)
    assert [(k.id, k.role, k.strategies) for k in parsed.keys] == [
        ("desk-a", Role.TRADER, ["momentum_1"]), ("root", Role.ADMIN, "*")]
    assert TRADER_KEY not in parsed.model_dump_json()


@pytest.mark.parametrize("record, field", [
    ({"sha256": "abc"}, "sha256"),  # not a SHA-256 hex digest
    ({"sha256": "A" * 64}, "sha256"),  # upper case: not the form digest() writes
    ({"role": "root"}, "role"),
    ({"strategies": []}, "strategies"),
    ({"strategies": ["a", "a"]}, "strategies"),
    ({"strategies": [f"s{i}" for i in range(31)]}, "strategies"),  # above Firestore's `in` limit
    ({"strategies": ["*"]}, "strategies"),  # "*" stands alone, never inside a list
    ({"strategies": "all"}, "strategies"),
    ({"id": ""}, "id"),
    ({"extra": 1}, "extra"),
])
def test_a_bad_record_is_refused_naming_its_field(record, field):
    good = {"id": "desk-a", "sha256": digest(TRADER_KEY), "role": "trader", "strategies": ["momentum_1"]}
    with pytest.raises(ValidationError) as err:
        KeyRecord.model_validate({**good, **record})
    assert field in str(err.value)


def test_an_admin_key_covers_every_strategy():
    with pytest.raises(ValidationError, match="admin"):
        record_for(TRADER_KEY, "root", "admin", ["momentum_1"])
    assert record_for(TRADER_KEY, "root", "admin").all_strategies


def test_two_records_may_not_share_an_id_or_a_key():
    one = record_for(TRADER_KEY, "desk-a", "trader", ["a"])
    with pytest.raises(ValidationError, match="id"):
        KeyFile(keys=[one, record_for(OPERATOR_KEY, "desk-a", "trader", ["a"])])
    with pytest.raises(ValidationError, match="sha256"):
        KeyFile(keys=[one, record_for(TRADER_KEY, "desk-b", "trader", ["b"])])


# ---- hashing and comparison -------------------------------------------------------------------------------
def test_the_stored_form_is_the_sha256_of_the_key():
    assert digest(TRADER_KEY) == hashlib.sha256(TRADER_KEY.encode()).hexdigest()
    assert record_for(TRADER_KEY, "k", "trader", ["a"]).sha256 == digest(TRADER_KEY)


def test_new_keys_are_random_and_long():
    made = {new_key() for _ in range(20)}
    assert len(made) == 20 and all(len(k) >= 64 for k in made)


def test_a_presented_key_finds_its_record_and_nothing_else_does():
    found = keys().authenticate(TRADER_KEY)
    assert found is not None and found.id == "desk-a"
    assert keys().authenticate(OPERATOR_KEY).id == "ops"
    assert keys().authenticate(TRADER_KEY + "x") is None
    assert keys().authenticate(digest(TRADER_KEY)) is None  # the hash itself is no key
    assert keys().authenticate("") is None


def test_the_comparison_is_constant_time_over_the_hashes_of_every_record(monkeypatch):
    seen: list[tuple[bytes, bytes]] = []
    real = access.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(access.hmac, "compare_digest", spy)
    assert keys().authenticate(TRADER_KEY).id == "desk-a"  # the first record matches: the rest are still compared
    assert len(seen) == 2
    assert all(a == digest(TRADER_KEY).encode() for a, _ in seen)  # the presented key's hash, never the key
    assert {b for _, b in seen} == {digest(TRADER_KEY).encode(), digest(OPERATOR_KEY).encode()}


# ---- decisions ----------------------------------------------------------------------------------------------
def test_roles_are_ranked_trader_operator_admin():
    trader, operator = keys().keys
    admin = record_for("ek_" + "c" * 64, "root", "admin")
    check_role(trader, Role.TRADER)
    with pytest.raises(Denied, match="operator"):
        check_role(trader, Role.OPERATOR)
    check_role(operator, Role.OPERATOR)
    with pytest.raises(Denied):
        check_role(operator, Role.ADMIN)
    for needed in Role:
        check_role(admin, needed)


def test_a_key_trades_only_its_strategies():
    trader, operator = keys().keys
    assert trader.may_trade("momentum_1") and trader.may_trade("mean_rev")
    assert not trader.may_trade("other") and not trader.may_trade("momentum_")
    assert not trader.may_trade(None)  # the global scope (the global switch) needs a key of every strategy
    assert not trader.may_trade("*")
    assert operator.may_trade("anything") and operator.may_trade(None)
    with pytest.raises(OutOfScope) as err:
        check_strategy(trader, "other")
    assert err.value.strategy_id == "other"
    check_strategy(trader, "momentum_1")


def test_a_scoped_key_limits_queries_to_its_strategies():
    trader, operator = keys().keys
    assert trader.scoped_strategies() == ["momentum_1", "mean_rev"]
    assert operator.scoped_strategies() is None


# ---- signals: the topic is the publisher ------------------------------------------------------------------
def test_the_publisher_topic_comes_from_the_cloudevent_source():
    assert publisher_topic("//pubsub.googleapis.com/projects/p-1/topics/desk-a-signals") == "desk-a-signals"
    assert publisher_topic("//pubsub.googleapis.com/projects/p-1/topics/a/extra") is None
    assert publisher_topic("http://127.0.0.1:8091/") is None
    assert publisher_topic(None) is None
