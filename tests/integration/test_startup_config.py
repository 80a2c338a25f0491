"""A function given a bad configuration value refuses to start and names the variable."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("var", "value"),
    [("MAX_RETRIES", "lots"), ("ADAPTER_ENDPOINTS", "binance"), ("REDIS_URL", "localhost:6379"),
     ("LOG_LEVEL", "LOUD"), ("PUBSUB_EMULATOR_HOST", "no port")],
)
def test_bad_value_stops_startup_naming_the_variable(stack, var, value):
    proc = subprocess.run(
        [str(ROOT / ".venv/bin/functions-framework"), "--source", str(ROOT / "functions/main.py"),
         "--target", "api", "--host", "127.0.0.1", "--port", "0"],
        env={**os.environ, var: value}, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "invalid configuration" in proc.stderr
    assert var in proc.stderr
