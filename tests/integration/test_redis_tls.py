"""Redis over TLS as Memorystore serves it, against a real redis-server of this test's own (TLS on a free port,
AUTH, a certificate from its own CA that does not name the address the client dials).

Shows what shared/infra/redis_client.py says: redis-py 8's default (the hostname checked) cannot talk to such a
server at all; our client, given the CA, can; and a server whose certificate another CA signed is refused, so the
CA really is verified. Needs no stack: ``.venv/bin/python -m pytest tests/integration/test_redis_tls.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shared.infra import redis_client

PASSWORD = "auth-string-of-the-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(directory: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=directory)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    if not shutil.which("openssl"):
        pytest.fail("openssl is needed to make the test's certificates (Debian package openssl)")
    d = tmp_path_factory.mktemp("redis-tls")
    _ca(d, "instance-ca")
    _ca(d, "other-ca")
    # The server's certificate names a host, not 127.0.0.1 (Memorystore's names no IP the client dials).
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=redis-instance.internal",
             "-keyout", "server.key", "-out", "server.csr", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "instance-ca.pem", "-CAkey", "instance-ca.key",
             "-CAcreateserial", "-days", "2", "-out", "server.pem", cwd=d)
    return d


@pytest.fixture(scope="module")
def tls_redis(certs: Path) -> Iterator[int]:
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is needed (Debian package redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--requirepass", PASSWORD, "--tls-auth-clients", "no",
         "--tls-cert-file", str(certs / "server.pem"), "--tls-key-file", str(certs / "server.key"),
         "--tls-ca-cert-file", str(certs / "instance-ca.pem")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client = redis_client.connect(f"rediss://:{PASSWORD}@127.0.0.1:{port}/0", str(certs / "instance-ca.pem"),
                                      socket_timeout=2, socket_connect_timeout=2)
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"redis-server (TLS) exited: {proc.stdout.read().decode()[-2000:]}")
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_our_client_verifies_the_instance_ca_and_works(tls_redis, certs):
    client = redis_client.connect(f"rediss://:{PASSWORD}@127.0.0.1:{tls_redis}/0", str(certs / "instance-ca.pem"),
                                  socket_timeout=2, decode_responses=True)
    assert client.set("tls-check", "1", ex=10) and client.get("tls-check") == "1"


def test_redis_py_default_with_the_same_ca_fails_on_the_hostname(tls_redis, certs):
    # What REDIS_URL?ssl_ca_certs=... did before: the CA given, the hostname checked by redis-py 8's default.
    client = redis.Redis.from_url(f"rediss://:{PASSWORD}@127.0.0.1:{tls_redis}/0",
                                  ssl_ca_certs=str(certs / "instance-ca.pem"), socket_timeout=2)
    with pytest.raises(redis.ConnectionError, match="(?i)mismatch|doesn't match|hostname"):
        client.ping()


def test_a_certificate_from_another_ca_is_refused(tls_redis, certs):
    client = redis_client.connect(f"rediss://:{PASSWORD}@127.0.0.1:{tls_redis}/0", str(certs / "other-ca.pem"),
                                  socket_timeout=2)
    with pytest.raises(redis.ConnectionError, match="(?i)certificate verify failed"):
        client.ping()
