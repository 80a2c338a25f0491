"""Who may do what: API key records (a role and the strategies a key may trade) and the pure decisions on them.

A key is never stored: its record holds the SHA-256 of it (``digest``), and a presented key is hashed and compared
with every record's hash in constant time (``hmac.compare_digest``; every record is compared, so the time taken
says nothing about which one matched). SHA-256 rather than a slow password hash because API keys are random and
long (``new_key``: 256 bits): a slow hash protects guessable passwords and would cost every request milliseconds;
nobody can search a 2**256 space however fast the hash.

Roles are ranked (``trader`` < ``operator`` < ``admin``): a route needs a minimum role. Independently, a key acts
only on its strategies (a list, or ``*`` for all): an order of another strategy is answered as unknown (never
leaking that it exists), a new order for one is refused naming ``strategy_id``. An ``admin`` key covers every
strategy. No I/O here: the records come from a provider (``shared/infra/access_keys.py``).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

ALL = "*"
MAX_STRATEGIES = 30  # Firestore's `in` takes at most 30 values: a scoped list is one query (store.list)

StrategyId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f*]+$")]


class Role(enum.Enum):
    TRADER = "trader"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, required: "Role") -> bool:
        return self.rank >= required.rank


_RANKS = {Role.TRADER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def digest(key: str) -> str:
    """The stored form of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random key (256 bits)."""
    return f"ek_{secrets.token_hex(32)}"


class KeyRecord(BaseModel):
    """One API key: a name for logs, the hash of the key, its role and the strategies it may trade."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    role: Role
    strategies: Literal["*"] | Annotated[list[StrategyId], Field(min_length=1, max_length=MAX_STRATEGIES)]

    @field_validator("strategies")
    @classmethod
    def _distinct(cls, v: object) -> object:
        if isinstance(v, list) and len(set(v)) != len(v):
            raise ValueError("strategies listed twice")
        return v

    @model_validator(mode="after")
    def _admin_covers_all(self) -> "KeyRecord":
        if self.role is Role.ADMIN and self.strategies != ALL:
            raise ValueError('an admin key covers every strategy: its strategies must be "*"')
        return self

    @property
    def all_strategies(self) -> bool:
        return self.strategies == ALL

    def may_trade(self, strategy_id: str | None) -> bool:
        """Whether the key acts on this strategy (None: the global scope, e.g. the global dead man's switch,
        which only a key of every strategy covers)."""
        if self.all_strategies:
            return True
        return strategy_id is not None and strategy_id in self.strategies

    def scoped_strategies(self) -> list[str] | None:
        """The strategies a query must be limited to; None: no limit."""
        return None if self.all_strategies else list(self.strategies)


class KeyFile(BaseModel):
    """The key document (the Secret Manager secret, or the local file): ``{"keys": [record, ...]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: list[KeyRecord]

    @model_validator(mode="after")
    def _unique(self) -> "KeyFile":
        for attr in ("id", "sha256"):
            values = [getattr(k, attr) for k in self.keys]
            if len(set(values)) != len(values):
                raise ValueError(f"two keys share one {attr}")
        return self

    def authenticate(self, presented: str) -> KeyRecord | None:
        """The record of the presented key, or None. Compares the presented key's hash with every record's in
        constant time."""
        if not presented:
            return None
        wanted = digest(presented).encode()
        found = None
        for record in self.keys:
            if hmac.compare_digest(wanted, record.sha256.encode()):
                found = record
        return found


def record_for(key: str, key_id: str, role: Role | str, strategies: list[str] | str = ALL) -> KeyRecord:
    """The record of a key (what the key file stores)."""
    return KeyRecord(id=key_id, sha256=digest(key), role=Role(role), strategies=strategies)


# ---- routes -----------------------------------------------------------------------------------------------
class Denied(Exception):
    """The key's role is below the route's (HTTP 403)."""

    def __init__(self, required: Role, record: KeyRecord) -> None:
        super().__init__(f"this route needs a key of role {required.value} or above; key {record.id} is "
                         f"{record.role.value}")
        self.required = required


class OutOfScope(Exception):
    """A new order (or heartbeat, or re-enable) for a strategy the key does not cover (HTTP 403 naming
    strategy_id). Existing orders outside the scope are answered as unknown instead."""

    def __init__(self, strategy_id: str | None, record: KeyRecord) -> None:
        what = repr(strategy_id) if strategy_id is not None else "the global scope (no strategy_id)"
        super().__init__(f"key {record.id} may not act for {what}")
        self.strategy_id = strategy_id


OPEN = None  # a route anyone may call without a key


def check_role(record: KeyRecord, required: Role) -> None:
    if not record.role.at_least(required):
        raise Denied(required, record)


def check_strategy(record: KeyRecord, strategy_id: str | None) -> None:
    if not record.may_trade(strategy_id):
        raise OutOfScope(strategy_id, record)


# ---- signals ----------------------------------------------------------------------------------------------
_TOPIC = re.compile(r"^//pubsub\.googleapis\.com/projects/[^/]+/topics/([^/]+)$")


def publisher_topic(source: str | None) -> str | None:
    """The topic a pushed message was published on, from its CloudEvent source
    (``//pubsub.googleapis.com/projects/P/topics/T``: the push subscription's path names it, as Eventarc's does);
    None when the source names no topic. Pub/Sub carries no publisher identity; the topic is the identity, since
    only the principals its IAM names may publish on it."""
    match = _TOPIC.match(source or "")
    return match[1] if match else None
