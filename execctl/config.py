"""Where execctl finds the service and its key, first found wins:

1. flags (``--url``, ``--api-key``, ``--api-key-file``);
2. the environment (``EXECCTL_URL``, ``EXECCTL_API_KEY``, ``EXECCTL_API_KEY_FILE``);
3. a named profile (``--profile NAME`` or ``EXECCTL_PROFILE``) of the profile file (``--config`` or
   ``EXECCTL_CONFIG``, default ``~/.config/execctl/profiles.toml``): ``[NAME]`` with ``url`` and ``api_key`` or
   ``api_key_file``, and for ``events tail`` ``project`` (and ``pubsub_emulator_host``, ``order_events_topic``);
4. a sourced local stack env (``API_URL`` and ``API_KEY`` in the environment);
5. the ``env`` file of a running local stack (``--stack-dir``, ``EXECCTL_STACK_DIR`` or ``LOCALSTACK_STATE``,
   default the checkout's ``.local``): its ``API_URL``, ``API_KEY``, and for ``events tail`` its Pub/Sub emulator.

The key is a ``SecretStr``: it is never printed (``execctl config`` shows where it came from, not what it is).
"""

from __future__ import annotations

import os
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROFILES = Path("~/.config/execctl/profiles.toml")


class ConfigProblem(ValueError):
    """The configuration cannot be used (a usage error: exit code 2)."""


@dataclass(frozen=True)
class Config:
    url: str
    api_key: SecretStr | None
    source: dict[str, str]  # setting -> where it came from ("flag", "env EXECCTL_URL", "profile prod", ...)
    pubsub_emulator_host: str | None = None
    project: str | None = None
    order_events_topic: str = "order-events"

    def describe(self) -> dict[str, str]:
        """What execctl would use, the key shown only as set or not."""
        return {"url": self.url, "api_key": "set" if self.api_key else "not set",
                **{f"{k}_from": v for k, v in self.source.items()},
                "pubsub": self.pubsub_emulator_host or "Google Cloud (application default credentials)",
                "project": self.project or "", "order_events_topic": self.order_events_topic}


def read_env_file(path: Path) -> dict[str, str]:
    """The ``export K=V`` lines of a local stack's sourceable env file (values shell-quoted)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            words = words[1:]
        for word in words:
            key, sep, value = word.partition("=")
            if sep:
                values[key] = value
    return values


def _read_key_file(path: str, where: str) -> SecretStr:
    try:
        key = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise ConfigProblem(f"{where}: cannot read the API key file {path}: {exc.strerror}") from None
    if not key:
        raise ConfigProblem(f"{where}: the API key file {path} is empty")
    return SecretStr(key)


def _profile(name: str, config_file: str | None) -> dict[str, str]:
    path = Path(config_file or DEFAULT_PROFILES).expanduser()
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigProblem(f"profile {name!r}: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigProblem(f"profile {name!r}: {path} is not TOML: {exc}") from None
    section = doc.get(name)
    if not isinstance(section, dict):
        raise ConfigProblem(f"profile {name!r}: no [{name}] table in {path} (it has: {', '.join(doc) or 'none'})")
    return {k: str(v) for k, v in section.items()}


def resolve(*, url: str | None = None, api_key: str | None = None, api_key_file: str | None = None,
            profile: str | None = None, config_file: str | None = None, stack_dir: str | None = None,
            environ: dict[str, str] | None = None) -> Config:
    """The configuration from flags (the arguments), then `environ`, a profile, and a local stack's env file."""
    env = os.environ if environ is None else environ
    source: dict[str, str] = {}
    key: SecretStr | None = None
    if api_key:
        key, source["api_key"] = SecretStr(api_key), "flag --api-key"
    elif api_key_file:
        key, source["api_key"] = _read_key_file(api_key_file, "--api-key-file"), "flag --api-key-file"
    if url:
        source["url"] = "flag --url"
    if not url and env.get("EXECCTL_URL"):
        url, source["url"] = env["EXECCTL_URL"], "env EXECCTL_URL"
    if key is None and env.get("EXECCTL_API_KEY"):
        key, source["api_key"] = SecretStr(env["EXECCTL_API_KEY"]), "env EXECCTL_API_KEY"
    if key is None and env.get("EXECCTL_API_KEY_FILE"):
        key = _read_key_file(env["EXECCTL_API_KEY_FILE"], "EXECCTL_API_KEY_FILE")
        source["api_key"] = "env EXECCTL_API_KEY_FILE"
    profile = profile or env.get("EXECCTL_PROFILE")
    section: dict[str, str] = {}
    if profile:
        section = _profile(profile, config_file or env.get("EXECCTL_CONFIG"))
        if not url and section.get("url"):
            url, source["url"] = section["url"], f"profile {profile}"
        if key is None and section.get("api_key"):
            key, source["api_key"] = SecretStr(section["api_key"]), f"profile {profile}"
        if key is None and section.get("api_key_file"):
            key = _read_key_file(section["api_key_file"], f"profile {profile}")
            source["api_key"] = f"profile {profile} (api_key_file)"
    if not url and env.get("API_URL") and (key is not None or env.get("API_KEY")):  # a sourced stack env file
        url, source["url"] = env["API_URL"], "env API_URL (a sourced stack env)"
        if key is None:
            key, source["api_key"] = SecretStr(env["API_KEY"]), "env API_KEY (a sourced stack env)"
    stack: dict[str, str] = {}
    stack_path = Path(stack_dir or env.get("EXECCTL_STACK_DIR") or env.get("LOCALSTACK_STATE")
                      or REPO_ROOT / ".local") / "env"
    if stack_path.is_file():
        stack = read_env_file(stack_path)
        if not url and stack.get("API_URL"):
            url, source["url"] = stack["API_URL"], f"local stack {stack_path}"
            if key is None and stack.get("API_KEY"):  # the stack's key goes to the stack only
                key, source["api_key"] = SecretStr(stack["API_KEY"]), f"local stack {stack_path}"
    if not url:
        raise ConfigProblem("no service URL: pass --url, set EXECCTL_URL, name a --profile, or start the local "
                            f"stack (./emulator.sh start writes {stack_path})")
    # Pub/Sub (events tail) follows the service: the local stack's emulator only when the URL is the stack's.
    extra = stack if source["url"].startswith("local stack") else section if profile and section.get("url") else {}
    pubsub = env.get("PUBSUB_EMULATOR_HOST") or extra.get("PUBSUB_EMULATOR_HOST") or extra.get("pubsub_emulator_host")
    project = env.get("GOOGLE_CLOUD_PROJECT") or extra.get("GOOGLE_CLOUD_PROJECT") or extra.get("project")
    topic = (env.get("ORDER_EVENTS_TOPIC") or extra.get("ORDER_EVENTS_TOPIC") or extra.get("order_events_topic")
             or "order-events")
    return Config(url=url.rstrip("/"), api_key=key, source=source, pubsub_emulator_host=pubsub, project=project,
                  order_events_topic=topic)
