"""The local stack manager behind ./emulator.sh: start, start again, status, stop leaves nothing behind."""

import os
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCALSTACK = [str(ROOT / ".venv/bin/python"), str(ROOT / "scripts/localstack.py")]


def run(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    return subprocess.run([*LOCALSTACK, *args], env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pgids(state: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in (state / "pids").glob("*.pid")}


def alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


ONE_VENUE = {"SIMULATED_VENUES": "binance"}  # a lighter second stack: one simulated venue


def test_start_twice_status_and_stop_leave_no_process(stack, tmp_path):
    state = tmp_path / "stack"
    try:
        first = run("start", "--state-dir", str(state), "--free-ports", "--own-redis", env=ONE_VENUE)
        assert first.returncode == 0, first.stderr
        started = pgids(state)
        assert set(started) >= {"pubsub", "firestore", "tasks", "redis", "api", "signals", "sim-binance",
                                "adapter-binance"}
        env_file = (state / "env").read_text()
        for var in ("GOOGLE_CLOUD_PROJECT", "PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST",
                    "CLOUD_TASKS_EMULATOR_HOST", "REDIS_URL", "API_URL", "API_KEY", "SIGNALS_TOPIC",
                    "ORDER_EVENTS_TOPIC", "SIGNALS_SUBSCRIPTION", "SUBMIT_QUEUE", "ADAPTER_ENDPOINTS",
                    "SIMULATED_EXCHANGES"):
            assert f"export {var}=" in env_file, var

        again = run("start", "--state-dir", str(state), "--free-ports", "--own-redis", env=ONE_VENUE)
        assert again.returncode == 0, again.stderr
        assert pgids(state) == started  # nothing restarted, nothing duplicated

        status = run("status", "--state-dir", str(state))
        assert status.returncode == 0
        assert "DEAD" not in status.stdout and "api" in status.stdout
    finally:
        stop = run("stop", "--state-dir", str(state))
    assert stop.returncode == 0
    assert not [name for name, pgid in started.items() if alive(pgid)]
    assert run("status", "--state-dir", str(state)).returncode == 1


def test_a_taken_port_is_reported_not_waited_on(stack, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = {var: str(free_port()) for var in ("PUBSUB_PORT", "FIRESTORE_PORT", "TASKS_PORT", "SIGNALS_PORT",
                                                   "SIM_BINANCE_PORT", "ADAPTER_BINANCE_PORT")}
        ports.update(ONE_VENUE)
        result = run("start", "--state-dir", str(tmp_path / "s"), env={**ports, "API_PORT": str(port)}, timeout=30)
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "API_PORT" in result.stderr
    assert not list((tmp_path / "s").glob("pids/*.pid"))  # refused before starting anything
