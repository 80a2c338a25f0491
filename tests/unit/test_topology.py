"""The topology list and the functions module agree."""

import importlib.util
from pathlib import Path

from shared import topology
from shared.infra.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_listed_function_is_exported_by_main():
    import functions.main as main  # cheap: entry points load lazily

    assert sorted(main.__all__) == sorted(fn.name for fn in topology.FUNCTIONS)
    for fn in topology.FUNCTIONS:
        module = importlib.util.find_spec(main._MODULES[fn.name])
        assert module is not None, fn.name
        assert f"def {fn.name}(" in Path(module.origin).read_text(), fn.name


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
