"""Helpers for tests that drive a simulated exchange process (``shared.simulator.server``) with ccxt.

No local stack needed: ``start_simulator`` spawns the server on a free port in its own process group and
``SimProcess.stop`` kills the group; ``binance_client`` points a plain ``ccxt.binance`` at it the way the stack's
adapters do (every URL of ``urls['api']`` moved onto the simulator, spot markets only).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import ccxt
import requests

ROOT = Path(__file__).resolve().parents[2]
CCXT_OPTIONS = {"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False, "fetchCurrencies": False}


class SimulatorDidNotStart(RuntimeError):
    pass


@dataclass
class SimProcess:
    venue: str
    url: str
    proc: subprocess.Popen[str]
    log_path: Path

    def admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET (no body) or POST (JSON body) an admin endpoint; asserts 200."""
        if body is None:
            resp = requests.get(f"{self.url}/admin/{path}", timeout=5)
        else:
            resp = requests.post(f"{self.url}/admin/{path}", json=body, timeout=5)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def client(self, api_key: str | None = None, *, timeout_ms: int = 5000) -> ccxt.binance:
        return binance_client(self.url, api_key or new_key(), timeout_ms=timeout_ms)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        kill_group(self.proc)


def new_key(tag: str = "t") -> str:
    return f"{tag}-{uuid.uuid4().hex[:20]}"


def _rebase(urls: Any, base: str) -> Any:
    if isinstance(urls, dict):
        return {k: _rebase(v, base) for k, v in urls.items()}
    if isinstance(urls, str) and urls.startswith("http"):
        target, parts = urlsplit(base), urlsplit(urls)
        return urlunsplit((target.scheme, target.netloc, target.path + parts.path, parts.query, parts.fragment))
    return urls


def binance_client(url: str, api_key: str, *, timeout_ms: int = 5000) -> ccxt.binance:
    exchange = ccxt.binance({
        "apiKey": api_key, "secret": "sim-secret", "enableRateLimit": False, "timeout": timeout_ms,
        "options": dict(CCXT_OPTIONS),
    })
    exchange.urls["api"] = _rebase(exchange.urls["api"], url.rstrip("/"))
    return exchange


def kill_group(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def start_simulator(venue: str, log_dir: Path, *, step_ms: int | None = None, seed: int | None = None,
                    paused: bool = False, timeout_s: float = 20.0) -> SimProcess:
    """Spawn ``python -m shared.simulator.server --venue VENUE --port 0`` and wait until it answers ping.

    Raises SimulatorDidNotStart (with the process's log) if it does not get there within ``timeout_s``.
    """
    log_path = log_dir / f"sim-{venue}-{uuid.uuid4().hex[:6]}.log"
    cmd = [sys.executable, "-m", "shared.simulator.server", "--venue", venue, "--host", "127.0.0.1", "--port", "0"]
    if step_ms is not None:
        cmd += ["--step-ms", str(step_ms)]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    if paused:
        cmd.append("--paused")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
                                start_new_session=True)
    deadline = time.monotonic() + timeout_s
    line = ""
    try:
        while not line and time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                line = proc.stdout.readline()  # type: ignore[union-attr]
        url = line.strip().rsplit(" ", 1)[-1] if "listening on http://" in line else ""
        while url and time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/api/v3/ping", timeout=1).status_code == 200:
                    return SimProcess(venue, url, proc, log_path)
            except requests.RequestException:
                pass
            time.sleep(0.05)
    except BaseException:
        kill_group(proc)
        raise
    kill_group(proc)
    raise SimulatorDidNotStart(
        f"simulator {venue!r} did not start within {timeout_s:.0f}s (exit code {proc.returncode}); "
        f"stdout: {line!r}; log {log_path}:\n{log_path.read_text(errors='replace')}")
