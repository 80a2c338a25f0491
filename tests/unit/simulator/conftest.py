"""Fixtures for the simulated exchange's tests."""

from __future__ import annotations

import pytest
from sim_helpers import new_engine

from shared.simulator.engine import Engine


@pytest.fixture
def engine() -> Engine:
    return new_engine()
