"""The topology list and the functions module agree."""

import ast
from pathlib import Path

from shared import topology
from shared.infra.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_listed_function_is_exported_by_main():
    tree = ast.parse((ROOT / "functions/main.py").read_text())
    exported = next(
        [elt.value for elt in node.value.elts]
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "__all__"
    )
    assert sorted(exported) == sorted(fn.name for fn in topology.FUNCTIONS)


def test_triggers_name_real_settings():
    s = load_settings()
    for fn in topology.FUNCTIONS:
        if fn.trigger == "pubsub":
            assert getattr(s, fn.topic) and topology.subscription_name(s, fn)
        if fn.trigger == "tasks":
            assert getattr(s, fn.queue)
    for attr in topology.TOPICS + topology.QUEUES:
        assert getattr(s, attr)
    assert len({fn.port_env for fn in topology.FUNCTIONS}) == len(topology.FUNCTIONS)
