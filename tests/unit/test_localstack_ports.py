"""The local stack's free-port plan: every part gets a port of its own, also when its state directory already
holds claims from earlier starts (its own claims are accepted again, so they must not be handed out twice)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import localstack  # noqa: E402


def test_free_ports_never_repeat_within_a_stack(tmp_path, monkeypatch):
    monkeypatch.setattr(localstack, "PORT_CLAIMS", tmp_path / "claims")
    # A narrow range makes a repeat likely at once if it can happen at all (22 parts in 60 ports).
    monkeypatch.setattr(localstack, "FREE_PORT_RANGE", (40000, 40060))
    monkeypatch.setattr(localstack, "port_free", lambda port: True)  # nothing listens: a stopped stack's ports
    plan = localstack.port_plan(["binance", "coinbase", "kraken"], with_prometheus=True)
    owner = tmp_path / "state"
    owner.mkdir()
    recorded: dict[str, int] = {}
    for _ in range(30):
        ports = localstack.choose_ports(plan, True, recorded, set(), owner)
        assert len(set(ports.values())) == len(ports), ports
        # a later start keeps what was recorded and adds new parts (here: forget half, as a changed plan would)
        recorded = dict(list(ports.items())[: len(ports) // 2])
