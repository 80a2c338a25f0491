"""The API keys, re-read on a short TTL so they rotate without a redeploy: one small provider over one file.

In the cloud the file is the Secret Manager secret ``<name>-api-keys`` mounted as a volume on the API function
(version ``latest``: Cloud Run fetches the secret's latest version whenever a mounted secret is read); locally it
is the file ``scripts/localstack.py`` writes (``API_KEYS_FILE`` in ``.local/env``). Its form is
``shared.domain.access.KeyFile``: ``{"keys": [{"id", "sha256", "role", "strategies"}]}``.

Fails closed: a file that cannot be read or does not parse refuses every key (``KeysUnavailable``, HTTP 503)
until it is good again; the last good set is not kept, so a revocation can never be undone by a broken write.

``python -m shared.infra.access_keys new --id NAME --role trader --strategies s1,s2 [--file F]`` prints a fresh
key once and its record (added to F when given).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from shared.domain.access import ALL, KeyFile, KeyRecord, new_key, record_for

logger = logging.getLogger(__name__)


class KeysUnavailable(RuntimeError):
    """The key file cannot be read or is invalid: every key is refused."""


def read_key_file(path: str | Path) -> KeyFile:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise KeysUnavailable(f"API key file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        return KeyFile.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}"
                             for e in exc.errors(include_url=False, include_input=False))
        raise KeysUnavailable(f"API key file {path} is invalid: {problems}") from None


class KeyProvider:
    """The current key set: the file is read again once `ttl_s` has passed since the last read (`clock`:
    monotonic seconds, injected). Thread-safe; one per process."""

    def __init__(self, path: str | Path, ttl_s: float, clock: Callable[[], float],
                 read: Callable[[str | Path], KeyFile] = read_key_file) -> None:
        self.path, self.ttl_s, self._clock, self._read = path, ttl_s, clock, read
        self._lock = threading.Lock()
        self._keys: KeyFile | None = None
        self._error: KeysUnavailable | None = None
        self._read_at: float | None = None

    def current(self) -> KeyFile:
        now = self._clock()
        with self._lock:
            if self._read_at is None or now - self._read_at >= self.ttl_s:
                self._read_at = now
                try:
                    keys = self._read(self.path)
                except KeysUnavailable as exc:
                    if self._error is None:
                        logger.error("%s; every API key is refused until it is fixed", exc)
                    self._keys, self._error = None, exc
                else:
                    if self._error is not None or (self._keys is not None and keys != self._keys):
                        logger.warning("API keys reloaded from %s: %d keys", self.path, len(keys.keys))
                    self._keys, self._error = keys, None
            if self._error is not None:
                raise self._error
            assert self._keys is not None
            return self._keys

    def authenticate(self, presented: str) -> KeyRecord | None:
        return self.current().authenticate(presented)


def write_key_file(path: str | Path, records: list[KeyRecord]) -> None:
    """Write the key file atomically (a reader never sees half a file)."""
    path = Path(path)
    body = KeyFile(keys=records).model_dump_json(indent=1)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(body + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.infra.access_keys")
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="make a key: prints the key (once) and its record")
    new.add_argument("--id", required=True)
    new.add_argument("--role", required=True, choices=["trader", "operator", "admin"])
    new.add_argument("--strategies", default=ALL, help='comma-separated strategy ids, or "*" (default)')
    new.add_argument("--file", help="add the record to this key file (created if missing)")
    args = parser.parse_args(argv)
    key = new_key()
    strategies = ALL if args.strategies == ALL else [s.strip() for s in args.strategies.split(",") if s.strip()]
    try:
        record = record_for(key, args.id, args.role, strategies)
    except ValidationError as exc:
        print(f"invalid key record: {exc}", file=sys.stderr)
        return 2
    if args.file:
        existing = read_key_file(args.file).keys if Path(args.file).exists() else []
        write_key_file(args.file, [*existing, record])
    print(json.dumps({"key": key, "record": record.model_dump(mode="json")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
