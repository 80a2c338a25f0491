"""The local stack: Google's emulators, a Cloud Tasks emulator, Redis and every Cloud Function, on this machine.

    python scripts/localstack.py start  [--state-dir DIR] [--free-ports] [--own-redis] [--with-prometheus]
                                        [--timeout S]
    python scripts/localstack.py stop   [--state-dir DIR]
    python scripts/localstack.py status [--state-dir DIR]
    python scripts/localstack.py logs   [--state-dir DIR] [NAME]

``emulator.sh`` runs it with the state directory ``.local/`` and fixed, overridable ports; ``scripts/test.sh``
runs it with a fresh temporary state directory, free ports and its own Redis, so a test run never touches a
running stack. Every process is started in its own process group, recorded in ``STATE/pids/NAME.pid`` and
logging to ``STATE/logs/NAME.log``; ``stop`` ends those groups and nothing else. ``STATE/env`` is a sourceable
file describing the stack.

``--with-prometheus`` adds a Prometheus (Debian's ``prometheus`` binary) that loads
``monitoring/prometheus/alerts.yml`` and scrapes the API's ``/api/v1/metrics?format=prometheus`` with a key of
its own (an operator key that acts for no strategy: ``prometheus_key_record``), through ``scripts/scrape_proxy.py``
(Prometheus 2.42 cannot send the ``X-API-Key`` header itself); its data lives in ``STATE/prometheus/``. Without
the flag nothing of it is started or written.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared import topology  # noqa: E402
from shared.infra.config import ConfigError, Settings, load_settings  # noqa: E402
from shared.infra.access_keys import KeysUnavailable, read_key_file, write_key_file  # noqa: E402
from shared.domain.access import KeyRecord, Role, new_key, record_for  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"
TASKS_VENV_BIN = ROOT / ".venv-tasks" / "bin"
DEFAULT_STATE = ROOT / ".local"

# Default ports of the infrastructure; each overridable by the environment variable named here.
INFRA_PORTS = {"pubsub": ("PUBSUB_PORT", 8681), "firestore": ("FIRESTORE_PORT", 8682), "tasks": ("TASKS_PORT", 8683)}
SIM_BASE_PORT = 9201
# The local Prometheus (--with-prometheus) and the proxy that adds its key to the scrape.
PROMETHEUS_PORTS = {"prometheus": ("PROMETHEUS_PORT", 9090), "prometheus-proxy": ("PROMETHEUS_PROXY_PORT", 9089)}
PROMETHEUS_SCRAPE_INTERVAL = "5s"  # locally: a scrape is one Redis read, and tests should not wait long
ALERT_RULES = ROOT / "monitoring" / "prometheus" / "alerts.yml"


class StackError(RuntimeError):
    pass


def sdk_root() -> Path:
    gcloud = shutil.which("gcloud")
    if gcloud:
        try:
            out = subprocess.run(
                [gcloud, "info", "--format=value(installation.sdk_root)"],
                capture_output=True, text=True, timeout=30, check=True,
            ).stdout.strip()
            if out:
                return Path(out)
        except (subprocess.SubprocessError, OSError):
            pass
    return Path(os.environ.get("CLOUDSDK_ROOT", "/usr/lib/google-cloud-sdk"))


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# Below Linux's ephemeral range (32768-60999): a port the kernel hands out for port 0 is also what outgoing
# connections use, so a server started on it a moment later can find it taken by some client.
FREE_PORT_RANGE = (20000, 32000)


# Stacks on one machine claim their free ports here (one file per port naming its owner), so two runs that choose
# at the same moment never pick the same port. A claim lapses when its owner's state directory is gone (a test
# run removes it when it ends; `stop` releases its claims) or after a day.
PORT_CLAIMS = Path(tempfile.gettempdir()) / "execution-service-ports"
CLAIM_TTL_S = 24 * 3600


def _claim(port: int, owner: Path) -> bool:
    PORT_CLAIMS.mkdir(exist_ok=True)
    path = PORT_CLAIMS / str(port)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = Path(path.read_text().strip())
                if holder == owner:
                    os.utime(path)  # ours already (a recorded port, claimed again)
                    return True
                stale = not holder.exists() or time.time() - path.stat().st_mtime > CLAIM_TTL_S
            except OSError:
                stale = True
            if not stale:
                return False
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(owner))
        return True
    return False


def release_ports(owner: Path) -> None:
    for path in PORT_CLAIMS.glob("*") if PORT_CLAIMS.exists() else []:
        try:
            if path.read_text().strip() == str(owner):
                path.unlink(missing_ok=True)
        except OSError:
            pass


def free_port(owner: Path | None = None, taken: Collection[int] = ()) -> int:
    """A port nothing listens on now, chosen at random outside the ephemeral range and claimed for `owner`
    (a state directory; LOCALSTACK_STATE when not given, else this process's temporary directory), never one of
    `taken` (the ports its stack has given out already: a stopped part's port is free, and claimed by the same
    owner, but it is that part's)."""
    owner = owner or Path(os.environ.get("LOCALSTACK_STATE") or tempfile.gettempdir())
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randrange(*FREE_PORT_RANGE)
        if port not in taken and port_free(port) and _claim(port, owner):
            return port
    raise StackError(f"no free port found in {FREE_PORT_RANGE}")


def http_ok(url: str, expect: str | None = None, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read().decode(errors="replace")
            return resp.status == 200 and (expect is None or body.strip() == expect)
    except OSError:
        return False


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


@dataclass
class Component:
    name: str
    port: int
    port_env: str
    command: list[str]
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0


class Stack:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.pids = state / "pids"
        self.logs = state / "logs"
        self.state_file = state / "state.json"

    # ---- process bookkeeping -------------------------------------------------------------------------
    def _pidfile(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def pgid(self, name: str) -> int | None:
        try:
            pgid = int(self._pidfile(name).read_text())
        except (OSError, ValueError):
            return None
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pgid

    def spawn(self, comp: Component, base_env: dict[str, str]) -> None:
        self.pids.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{comp.name}.log", "ab")
        proc = subprocess.Popen(
            comp.command,
            cwd=ROOT,
            env={**base_env, **comp.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop kills exactly it and its children
        )
        self._pidfile(comp.name).write_text(str(proc.pid))

    def kill(self, name: str, grace: float = 5.0) -> bool:
        pgid = self.pgid(name)
        self._pidfile(name).unlink(missing_ok=True)
        if pgid is None:
            return False
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.05)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return True

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.pids.glob("*.pid")) if self.pids.exists() else []

    def load(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def save(self, data: dict) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(data, indent=2))


# ---- what the stack is made of ---------------------------------------------------------------------------
def simulated_venues() -> list[str]:
    raw = os.environ.get("SIMULATED_VENUES", "binance,coinbase,kraken")
    venues = [v.strip() for v in raw.split(",") if v.strip()]
    for v in venues:
        if not v.isidentifier() or not v.islower():
            raise StackError(f"SIMULATED_VENUES={raw!r}: expected comma-separated lowercase venue names")
    return venues


def port_plan(venues: list[str], with_prometheus: bool = False) -> dict[str, tuple[str, int]]:
    """Every component's name -> (port variable, default port)."""
    plan = dict(INFRA_PORTS)
    if with_prometheus:
        plan.update(PROMETHEUS_PORTS)
    for i, venue in enumerate(venues):
        plan[f"sim-{venue}"] = (f"SIM_{venue.upper()}_PORT", SIM_BASE_PORT + i)
    for fn in topology.FUNCTIONS:
        if fn.per_venue:
            for i, venue in enumerate(venues):
                plan[f"{fn.name}-{venue}"] = (f"{fn.name.upper()}_{venue.upper()}_PORT", fn.default_port + i)
        else:
            plan[fn.name] = (fn.port_env, fn.default_port)
    return plan


def _port_number(env: str, raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StackError(f"{env}={raw!r}: expected a TCP port number (1-65535)")
    return int(raw)


def choose_ports(plan: dict[str, tuple[str, int]], free: bool, recorded: dict[str, int], running: set[str],
                 owner: Path) -> dict[str, int]:
    """Every component's port. A port recorded in the state directory is kept, running or not: a component
    started again must come back where the running functions call it. Only in fixed-port mode, with nothing of
    the stack running, does an explicitly set port variable replace its record. Recorded ports are claimed again
    (see _claim): one another stack has claimed meanwhile counts as taken."""
    ports = {}
    for name, (env, default) in plan.items():
        explicit = None if free else os.environ.get(env)
        if name in recorded and not (explicit is not None and not running):
            port = ports[name] = recorded[name]
            if explicit is not None and _port_number(env, explicit) != port:
                raise StackError(f"{env}={explicit} but {name} of the running stack uses port {port}: "
                                 f"stop the stack to move it")
            if free and name not in running and not _claim(port, owner):
                raise StackError(f"port {port} recorded for {name} in {owner / 'state.json'} is claimed by "
                                 f"another local stack ({PORT_CLAIMS / str(port)})")
        elif free:
            ports[name] = free_port(owner, taken={*recorded.values(), *ports.values()})
        else:
            ports[name] = _port_number(env, explicit if explicit is not None else str(default))
    return ports


def infra_components(sdk: Path, ports: dict[str, int]) -> list[Component]:
    pubsub = sdk / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
    firestore = sdk / "platform/cloud-firestore-emulator/cloud_firestore_emulator"
    tasks = TASKS_VENV_BIN / "gcloud-tasks-emulator"
    tasks_launcher = ROOT / "scripts" / "tasks_emulator.py"
    for path, package in (
        (pubsub, "google-cloud-cli-pubsub-emulator"),
        (firestore, "google-cloud-cli-firestore-emulator"),
    ):
        if not path.exists():
            raise StackError(f"{path} is missing: install the Debian package {package} (Google Cloud CLI)")
    if not tasks.exists():
        raise StackError(f"{tasks} is missing: run scripts/bootstrap.sh (it installs gcloud-tasks-emulator)")
    p = ports
    return [
        Component("pubsub", p["pubsub"], "PUBSUB_PORT",
                  [str(pubsub), "--host=127.0.0.1", f"--port={p['pubsub']}"],
                  lambda: http_ok(f"http://127.0.0.1:{p['pubsub']}/", "Ok")),
        Component("firestore", p["firestore"], "FIRESTORE_PORT",
                  [str(firestore), "start", "--host=127.0.0.1", f"--port={p['firestore']}"],
                  lambda: http_ok(f"http://127.0.0.1:{p['firestore']}/", "Ok")),
        # Retries follow each queue's retry_config (tasks_emulator.py applies it; create_resources sets it).
        Component("tasks", p["tasks"], "TASKS_PORT",
                  [str(TASKS_VENV_BIN / "python"), str(tasks_launcher), "start", "-p", str(p["tasks"])],
                  lambda: tcp_open(p["tasks"])),
    ]


def _functions_framework(target: str, port: int) -> list[str]:
    return [str(VENV_BIN / "functions-framework"), "--source", str(ROOT / "functions/main.py"),
            "--target", target, "--host", "127.0.0.1", "--port", str(port)]


def venue_components(venues: list[str], ports: dict[str, int], plan: dict[str, tuple[str, int]]) -> list[Component]:
    """A simulated exchange per venue (Binance's REST dialect), each behind its own ccxt adapter."""
    comps = []
    for venue in venues:
        sim, adapter = f"sim-{venue}", f"adapter-{venue}"
        sim_port, adapter_port = ports[sim], ports[adapter]
        comps.append(Component(
            sim, sim_port, plan[sim][0],
            [str(VENV_BIN / "python"), "-m", "shared.simulator.server", "--venue", venue,
             "--host", "127.0.0.1", "--port", str(sim_port)],
            lambda pt=sim_port: http_ok(f"http://127.0.0.1:{pt}/api/v3/ping"),
        ))
        comps.append(Component(
            adapter, adapter_port, plan[adapter][0], _functions_framework("adapter", adapter_port),
            lambda pt=adapter_port: http_ok(f"http://127.0.0.1:{pt}/health", timeout=5),
            env={"FUNCTION_TARGET": "adapter", "K_SERVICE": adapter, "VENUE_NAME": venue,
                 # Every simulator speaks Binance's dialect, so every adapter drives ccxt's binance class.
                 "VENUE_EXCHANGE_ID": "binance", "VENUE_API_URL": f"http://127.0.0.1:{sim_port}",
                 "VENUE_API_KEY": f"sim-{venue}-key", "VENUE_API_SECRET": f"sim-{venue}-secret",
                 # Locally a lost answer should surface in seconds, not ccxt's default 10 s.
                 "VENUE_TIMEOUT_MS": "2000",
                 # The simulators enforce no rate limit; ccxt's binance throttle would add ~10 ms per order.
                 "VENUE_RATE_LIMIT_MS": "0"},
        ))
    return comps


def function_components(ports: dict[str, int], plan: dict[str, tuple[str, int]]) -> list[Component]:
    comps = []
    for fn in topology.FUNCTIONS:
        if fn.per_venue:
            continue
        port = ports[fn.name]
        ready_url = f"http://127.0.0.1:{port}/api/v1/health" if fn.name == "api" else None
        comps.append(Component(
            fn.name, port, plan[fn.name][0], _functions_framework(fn.name, port),
            (lambda u=ready_url: http_ok(u, timeout=5)) if ready_url else (lambda pt=port: tcp_open(pt)),
            env={"FUNCTION_TARGET": fn.name, "K_SERVICE": fn.name},
        ))
    return comps


def local_key_file(path: Path, api_key: str) -> None:
    """The stack's API key file: API_KEY (the key the suite and its users send) as an admin key of every strategy.
    Keys added to the file by hand (or rotated) are kept; the admin key is added again if it went missing."""
    ensure_key_record(path, record_for(api_key, "local-admin", Role.ADMIN))


def ensure_key_record(path: Path, record: KeyRecord) -> None:
    """`record` in the key file: added (replacing a record of the same id) unless its key is there already; every
    other record is kept."""
    try:
        records = list(read_key_file(path).keys) if path.exists() else []
    except KeysUnavailable as exc:
        raise StackError(f"{exc}; fix it or delete it to start with the local admin key only") from None
    if not any(r.sha256 == record.sha256 for r in records):
        records = [r for r in records if r.id != record.id]
        write_key_file(path, [*records, record])


# A strategy id no order, heartbeat or re-enable can name (the input rules allow no parentheses or spaces): the
# scrape key is an operator key (GET /metrics needs one) that can act for no strategy.
NO_STRATEGY = "(no strategy)"


def prometheus_key_record(key: str) -> KeyRecord:
    """The local Prometheus's key: as narrow as GET /api/v1/metrics allows. Its role is operator, the lowest the
    route takes; its one strategy is one no request can name, so it places, lists, cancels and re-enables
    nothing: what it can read besides the metrics is what every operator key reads (adapters, the switches'
    state, the market data routes)."""
    return record_for(key, "local-prometheus", Role.OPERATOR, [NO_STRATEGY])


def prometheus_config(api_port: int, proxy_port: int, rules: Path = ALERT_RULES) -> dict:
    """The local Prometheus's configuration (JSON, which is YAML): one job scraping the API's metrics through the
    key-adding proxy (scrape_proxy.py), and the alert rules."""
    return {
        "global": {"scrape_interval": PROMETHEUS_SCRAPE_INTERVAL, "scrape_timeout": PROMETHEUS_SCRAPE_INTERVAL,
                   "evaluation_interval": "15s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{
            "job_name": "execution",
            # The counts are cluster-wide (Redis): one target, the API (docs/monitoring.md).
            "metrics_path": "/api/v1/metrics",
            "params": {"format": ["prometheus"]},
            "proxy_url": f"http://127.0.0.1:{proxy_port}",
            "static_configs": [{"targets": [f"127.0.0.1:{api_port}"]}],
        }],
    }


def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        raise StackError("prometheus is missing (--with-prometheus): install the Debian package prometheus "
                         "(apt-get install -y prometheus)")
    return binary


def prometheus_components(stack: "Stack", ports: dict[str, int], key: str, binary: str) -> list[Component]:
    """The proxy and Prometheus, their files written (the key file 0600)."""
    home = stack.state / "prometheus"
    (home / "data").mkdir(parents=True, exist_ok=True)
    key_file = home / "scrape-key"
    key_file.touch(mode=0o600)
    key_file.chmod(0o600)
    key_file.write_text(key + "\n")
    config = home / "prometheus.yml"
    config.write_text(json.dumps(prometheus_config(ports["api"], ports["prometheus-proxy"]), indent=2) + "\n")
    proxy_port, port = ports["prometheus-proxy"], ports["prometheus"]
    return [
        Component("prometheus-proxy", proxy_port, PROMETHEUS_PORTS["prometheus-proxy"][0],
                  [str(VENV_BIN / "python"), str(ROOT / "scripts/scrape_proxy.py"), "--port", str(proxy_port),
                   "--upstream", f"http://127.0.0.1:{ports['api']}", "--key-file", str(key_file)],
                  lambda: tcp_open(proxy_port)),
        Component("prometheus", port, PROMETHEUS_PORTS["prometheus"][0],
                  [binary, f"--config.file={config}", f"--storage.tsdb.path={home / 'data'}",
                   f"--web.listen-address=127.0.0.1:{port}"],
                  lambda: http_ok(f"http://127.0.0.1:{port}/-/ready")),
    ]


LOCAL_MAX_AGE_MS = 30_000  # SIGNAL_MAX_AGE_MS and HEARTBEAT_MAX_AGE_MS of the local stack (stack_env)


def stack_env(cfg: Settings, ports: dict[str, int], redis_url: str, api_key: str,
              venues: list[str], api_keys_file: Path) -> dict[str, str]:
    adapters = {v: f"http://127.0.0.1:{ports[f'adapter-{v}']}" for v in venues} or cfg.adapter_endpoints
    env = {
        "GOOGLE_CLOUD_PROJECT": cfg.google_cloud_project,
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{ports['pubsub']}",
        "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{ports['firestore']}",
        "CLOUD_TASKS_EMULATOR_HOST": f"127.0.0.1:{ports['tasks']}",
        # gcloud itself (`gcloud pubsub ...`) talks to the emulator with this.
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB": f"http://127.0.0.1:{ports['pubsub']}/",
        "REDIS_URL": redis_url,
        "API_URL": f"http://127.0.0.1:{ports['api']}/api/v1",
        "API_KEY": api_key,
        "API_KEYS_FILE": str(api_keys_file),  # hashed records (README, Access); re-read every API_KEYS_TTL_S
        "ADAPTER_ENDPOINTS": ",".join(f"{k}={v}" for k, v in adapters.items()),
        "SIMULATED_EXCHANGES": ",".join(f"{v}=http://127.0.0.1:{ports[f'sim-{v}']}" for v in venues),
        "MAX_RETRIES": str(cfg.max_retries),
        "EXECUTION_TIMEOUT": f"{cfg.execution_timeout:g}",
        "LOG_LEVEL": cfg.log_level,
        "TASKS_LOCATION": cfg.tasks_location,
        # The emulators push late on a loaded machine (seconds, where Pub/Sub takes milliseconds): locally a signal
        # or a heartbeat may be 30 s old before it is refused as too old, unless the environment says otherwise.
        "SIGNAL_MAX_AGE_MS": os.environ.get("SIGNAL_MAX_AGE_MS", str(LOCAL_MAX_AGE_MS)),
        "HEARTBEAT_MAX_AGE_MS": os.environ.get("HEARTBEAT_MAX_AGE_MS", str(LOCAL_MAX_AGE_MS)),
    }
    for attr in topology.TOPICS:
        topic = getattr(cfg, attr)
        env[attr.upper()] = topic
    for attr in topology.QUEUES:
        env[attr.upper()] = getattr(cfg, attr)
    env["ORDER_EVENTS_SUBSCRIPTION"] = f"{cfg.order_events_topic}-local"
    for fn in topology.FUNCTIONS:
        if fn.per_venue:
            continue
        env[f"{fn.name.upper()}_FUNCTION_URL"] = f"http://127.0.0.1:{ports[fn.name]}"
        if fn.topic:
            env[f"{fn.name.upper()}_SUBSCRIPTION"] = topology.subscription_name(cfg, fn)
            env[f"{fn.topic.upper()}_DEAD_LETTER"] = cfg.dead_letter_topic(getattr(cfg, fn.topic))
    return env


def create_resources(cfg: Settings, ports: dict[str, int], venues: list[str]) -> None:
    """Topics, push subscriptions with dead-letter topics, and queues (a submit queue per venue, as Terraform
    makes them: Settings.submit_queue_for); safe to run again."""
    from google.api_core.exceptions import AlreadyExists, NotFound
    from google.cloud import pubsub_v1
    from google.cloud.pubsub_v1.types import DeadLetterPolicy, PushConfig

    from shared.infra import clients

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    project = cfg.google_cloud_project

    def topic(name: str) -> str:
        path = cfg.topic_path(name)
        try:
            publisher.create_topic(name=path)
        except AlreadyExists:
            pass
        return path

    def subscription(name: str, topic_path: str, **kwargs) -> None:
        path = subscriber.subscription_path(project, name)
        try:
            subscriber.create_subscription(request={"name": path, "topic": topic_path, **kwargs})
        except AlreadyExists:
            if "push_config" in kwargs:  # the function may have moved to another port
                subscriber.modify_push_config(request={"subscription": path, "push_config": kwargs["push_config"]})

    for attr in topology.TOPICS:
        topic(getattr(cfg, attr))
    # For people watching events; nothing pulls it otherwise. Not ordered: the emulator keeps a thread per
    # ordering key of an ordered subscription that nobody pulls (thousands under load). Every event carries its
    # order's `sequence`, which orders them. An ordered one left by an earlier version is replaced.
    events_local = subscriber.subscription_path(project, f"{cfg.order_events_topic}-local")
    try:
        if subscriber.get_subscription(request={"subscription": events_local}).enable_message_ordering:
            subscriber.delete_subscription(request={"subscription": events_local})
    except NotFound:
        pass
    subscription(f"{cfg.order_events_topic}-local", cfg.topic_path(cfg.order_events_topic))
    for fn in topology.FUNCTIONS:
        if fn.trigger != "pubsub":
            continue
        source = getattr(cfg, fn.topic)
        dead_letter = topic(cfg.dead_letter_topic(source))
        subscription(f"{cfg.dead_letter_topic(source)}-sub", dead_letter)
        # The URL path names the topic, so functions-framework sets the CloudEvent source as Eventarc does.
        endpoint = f"http://127.0.0.1:{ports[fn.name]}/projects/{project}/topics/{source}"
        subscription(
            topology.subscription_name(cfg, fn), cfg.topic_path(source),
            push_config=PushConfig(push_endpoint=endpoint),
            dead_letter_policy=DeadLetterPolicy(
                dead_letter_topic=dead_letter, max_delivery_attempts=cfg.pubsub_max_delivery_attempts
            ),
            ack_deadline_seconds=60,
        )
    for attr in topology.QUEUES:
        names = [cfg.submit_queue_for(v) for v in venues] if attr in topology.PER_VENUE_QUEUES else [getattr(cfg, attr)]
        for name in names:
            ensure_queue(cfg, attr, name)


def ensure_queue(cfg: Settings, attr: str, name: str) -> None:
    """The Cloud Tasks queue `name` (of the kind `attr`, one of topology.QUEUES) with its retry configuration as
    terraform/tasks.tf declares it (one definition: topology.QUEUE_RETRY); nothing if it exists."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import tasks_v2

    from shared.infra import clients

    retry = topology.QUEUE_RETRY[attr]
    retry_config = tasks_v2.RetryConfig(
        max_attempts=retry.max_attempts, max_doublings=retry.max_doublings,
        min_backoff=timedelta(seconds=retry.min_backoff_s), max_backoff=timedelta(seconds=retry.max_backoff_s),
        max_retry_duration=timedelta(seconds=retry.max_retry_duration_s),
    )
    try:
        clients.tasks().create_queue(parent=f"projects/{cfg.google_cloud_project}/locations/{cfg.tasks_location}",
                                     queue=tasks_v2.Queue(name=cfg.queue_path(name), retry_config=retry_config))
    except AlreadyExists:
        pass


def wait_ready(stack: Stack, comps: list[Component], deadline_s: float) -> None:
    pending = {c.name: c for c in comps}
    start = time.monotonic()
    while pending:
        for name, comp in list(pending.items()):
            if comp.ready():
                pending.pop(name)
            elif stack.pgid(name) is None:
                raise StackError(f"{name} exited during start-up; see {stack.logs / (name + '.log')}")
        if pending and time.monotonic() - start > deadline_s:
            names = ", ".join(pending)
            logs = ", ".join(str(stack.logs / f"{n}.log") for n in pending)
            raise StackError(f"not ready after {deadline_s:g}s: {names}; see {logs}")
        time.sleep(0.1)


def start(stack: Stack, free: bool, own_redis: bool, timeout: float, with_prometheus: bool = False) -> dict[str, str]:
    t0 = time.monotonic()
    stack.state.mkdir(parents=True, exist_ok=True)  # it owns the ports it claims
    previous = stack.load()
    # Every port chosen once is kept (recorded in state.json), also for a component that is started again.
    recorded = previous.get("ports", {})
    running = {n for n in stack.names() if stack.pgid(n) is not None}
    venues = simulated_venues()
    # A Prometheus started earlier keeps running (and its ports recorded) when start is run again without the flag.
    with_prometheus = with_prometheus or bool(running & set(PROMETHEUS_PORTS))
    prometheus = prometheus_binary() if with_prometheus else None
    plan = port_plan(venues, with_prometheus)
    ports = choose_ports(plan, free, recorded, running, stack.state)
    os.environ.pop("API_KEYS", None)  # an older .local/env's plain keys: replaced by API_KEYS_FILE
    try:
        cfg = load_settings()
    except ConfigError as exc:
        raise StackError(str(exc)) from None

    prometheus_key = previous.get("prometheus_key") or (new_key() if with_prometheus else None)
    comps = infra_components(sdk_root(), ports) + venue_components(venues, ports, plan) + \
        function_components(ports, plan)
    if with_prometheus:
        comps += prometheus_components(stack, ports, prometheus_key, prometheus)
    for comp in comps:
        if comp.name not in running and not port_free(comp.port):
            raise StackError(port_taken(stack, comp.name, comp.port, comp.port_env, recorded.get(comp.name) == comp.port))

    # Redis: reuse REDIS_URL when it answers (unless told to run our own), else start one on a free port.
    # A Redis of ours that stopped comes back on its recorded port.
    redis_url = previous.get("redis_url") if "redis" in running else None
    redis_comp = None
    if redis_url is None:
        if "redis" not in recorded and not own_redis and redis_ping(cfg.redis_url):
            redis_url = cfg.redis_url
        else:
            server = shutil.which("redis-server")
            if not server:
                raise StackError("redis-server is missing: install the Debian package redis-server "
                                 "(apt-get update && apt-get install -y redis-server) or set REDIS_URL")
            if "redis" in recorded:
                rport = recorded["redis"]
                if (free and not _claim(rport, stack.state)) or not port_free(rport):
                    raise StackError(port_taken(stack, "redis", rport, "REDIS_PORT", True))
            else:
                rport = free_port(stack.state) if free or own_redis else int(os.environ.get("REDIS_PORT") or
                                                                              free_port(stack.state))
            redis_comp = Component("redis", rport, "REDIS_PORT",
                                   [server, "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--daemonize", "no"],
                                   lambda: redis_ping(f"redis://127.0.0.1:{rport}/0"))
            redis_url = f"redis://127.0.0.1:{rport}/0"
            ports["redis"] = rport

    api_key = previous.get("api_key") or f"local-{secrets.token_hex(16)}"
    local_key_file(stack.state / "api-keys.json", api_key)
    if with_prometheus:
        ensure_key_record(stack.state / "api-keys.json", prometheus_key_record(prometheus_key))
    env = stack_env(cfg, ports, redis_url, api_key, venues, (stack.state / "api-keys.json").resolve())
    if with_prometheus:
        env["PROMETHEUS_URL"] = f"http://127.0.0.1:{ports['prometheus']}"
    stack.save({"ports": ports, "redis_url": redis_url, "api_key": api_key,
                **({"prometheus_key": prometheus_key} if prometheus_key else {})})
    base_env = {**os.environ, **env}

    # First what has no dependency of ours (emulators, Redis, simulated exchanges), then the functions.
    first = [c for c in comps if c.name in INFRA_PORTS or c.name.startswith("sim-")]
    first += [redis_comp] if redis_comp else []
    for comp in first:
        if comp.name not in running:
            stack.spawn(comp, base_env)
    wait_ready(stack, first, timeout)

    os.environ.update(env)
    create_resources(cfg, ports, [item.partition("=")[0] for item in env["ADAPTER_ENDPOINTS"].split(",") if item])
    fresh = [v for v in venues if f"sim-{v}" not in running]
    forget_venues(redis_url, fresh)

    functions = [c for c in comps if c not in first]
    sweep_every = float(os.environ.get("SWEEP_INTERVAL_S", "0" if free else "60"))
    if sweep_every > 0:
        # Cloud Scheduler's jobs, locally (the test stack runs none: a sweep would race the tests' counters).
        functions.append(Component(
            "scheduler", 0, "SWEEP_INTERVAL_S",
            [str(VENV_BIN / "python"), str(ROOT / "scripts/local_scheduler.py"),
             f"sweep={env['SWEEP_FUNCTION_URL']}@{sweep_every:g}", f"dms={env['DMS_FUNCTION_URL']}@1"],
            lambda: True))
    for comp in functions:
        if comp.name not in running:
            stack.spawn(comp, base_env)
    wait_ready(stack, functions, max(5.0, timeout - (time.monotonic() - t0)))

    (stack.state / "env").write_text("".join(f"export {k}={_quote(v)}\n" for k, v in env.items()))
    print(f"local stack up in {time.monotonic() - t0:.1f}s; state in {stack.state}", file=sys.stderr)
    return env


def port_taken(stack: Stack, name: str, port: int, env: str, was_recorded: bool) -> str:
    if was_recorded:
        return (f"port {port} of {name} (recorded in {stack.state_file}, where the running functions call it) "
                f"is taken by another program; free it, or stop the stack and delete {stack.state_file} to "
                f"choose new ports")
    return f"port {port} for {name} is taken by another program; set {env} to a free port"


def forget_venues(redis_url: str, venues: list[str]) -> None:
    """Drop what a shared Redis remembers of these venues' adapters (markets and fees, placed client ids, the
    switch): their simulated exchanges start afresh, and a cache of an earlier run would contradict them."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for venue in venues:
        keys = list(client.scan_iter(match=f"adapter:{venue}:*", count=1000))
        keys += list(client.scan_iter(match=f"book:{venue}:*", count=1000))
        if keys:
            client.delete(*keys)


def _quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def stop(stack: Stack) -> None:
    # Functions first (they hold client connections), then the infrastructure.
    names = stack.names()
    last = set(INFRA_PORTS) | {"redis"}
    order = [n for n in names if n not in last] + [n for n in names if n in last]
    for name in order:
        if stack.kill(name):
            print(f"stopped {name}", file=sys.stderr)
    (stack.state / "env").unlink(missing_ok=True)
    release_ports(stack.state)


def status(stack: Stack) -> int:
    data = stack.load()
    ports = data.get("ports", {})
    names = stack.names()
    if not names:
        print("local stack: not running")
        return 1
    all_up = True
    for name in names:
        pgid = stack.pgid(name)
        all_up &= pgid is not None
        state = f"running (pgid {pgid})" if pgid else "DEAD"
        print(f"{name:<18} {state:<22} 127.0.0.1:{ports.get(name, '?'):<6} log {stack.logs / (name + '.log')}")
    if data.get("redis_url") and "redis" not in names:
        print(f"{'redis':<18} {'external':<22} {data['redis_url']}")
    api = ports.get("api")
    if api:
        print(f"{'API_URL':<18} http://127.0.0.1:{api}/api/v1")
    if "prometheus" in names and ports.get("prometheus"):
        print(f"{'PROMETHEUS_URL':<18} http://127.0.0.1:{ports['prometheus']}")
    return 0 if all_up else 1


def logs(stack: Stack, name: str | None, lines: int = 40) -> int:
    files = [stack.logs / f"{name}.log"] if name else sorted(stack.logs.glob("*.log"))
    for f in files:
        if not f.exists():
            print(f"no log for {name} in {stack.logs}", file=sys.stderr)
            return 1
        print(f"==> {f} <==")
        print("\n".join(f.read_text(errors="replace").splitlines()[-lines:]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "status", "logs"], nargs="?", default="start")
    parser.add_argument("name", nargs="?", help="component name for logs")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    parser.add_argument("--free-ports", action="store_true", help="pick free ports for everything")
    parser.add_argument("--own-redis", action="store_true", help="always start a private redis-server")
    parser.add_argument("--with-prometheus", action="store_true",
                        help="also run a Prometheus scraping the API's metrics, with the alert rules loaded")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("STACK_TIMEOUT", 60)))
    args = parser.parse_args(argv)
    stack = Stack(args.state_dir.resolve())
    try:
        if args.command == "start":
            env = start(stack, args.free_ports, args.own_redis, args.timeout, args.with_prometheus)
            print(f"API_URL={env['API_URL']}")
            if "PROMETHEUS_URL" in env:
                print(f"PROMETHEUS_URL={env['PROMETHEUS_URL']}")
            print(f"source {stack.state / 'env'} to use the stack")
            return 0
        if args.command == "stop":
            stop(stack)
            return 0
        if args.command == "status":
            return status(stack)
        return logs(stack, args.name)
    except StackError as exc:
        print(f"localstack: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
