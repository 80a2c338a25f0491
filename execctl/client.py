"""The service's ``/api/v1`` over HTTP, for execctl: one ``requests`` session per process, JSON read with every
number exact (Decimal, shared/infra/exact_json.py), and two failures the CLI turns into exit codes:
``Refused`` (the service answered an error: exit 1, its JSON error shown) and ``Unreachable`` (no answer: exit 3).
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from execctl.config import Config
from shared.infra import exact_json

TIMEOUT_S = 35.0  # above the longest wait the service itself takes (POST /execute waits up to 30 s)
# What is retried, for every method: a connection that was never made, and the service's own "nothing was changed,
# try again" answers (429 rate limited, 503 contended or a dependency down, each with Retry-After). Safe for writes
# too: a submit carries its client_order_id, a cancel or modify names its target. An answer lost after the request
# was sent (a read timeout) is not retried: the command says so (exit 3) and its repeat is idempotent.
RETRY = Retry(total=4, connect=3, read=0, status=3, other=0, allowed_methods=None, status_forcelist=(429, 503),
              backoff_factor=0.5, respect_retry_after_header=True, raise_on_status=False)


class Refused(Exception):
    """The service answered with an error status; `body` is its ``{"error": ...}`` document (or a stand-in)."""

    def __init__(self, status: int, body: dict[str, Any], method: str, path: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}")
        self.status, self.body, self.method, self.path = status, body, method, path

    @property
    def error(self) -> dict[str, Any]:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error if isinstance(error, dict) else {"code": f"http_{self.status}", "message": str(self.body),
                                                       "details": []}


class Unreachable(Exception):
    """No answer from the service (refused connection, DNS, timeout, or not the service's JSON)."""


class Api:
    def __init__(self, config: Config, session: requests.Session | None = None, timeout_s: float = TIMEOUT_S):
        self.config = config
        self.timeout_s = timeout_s
        self._session = session or requests.Session()
        self._session.mount("http://", HTTPAdapter(max_retries=RETRY))
        self._session.mount("https://", HTTPAdapter(max_retries=RETRY))
        self._session.headers["Accept"] = "application/json"
        if config.api_key is not None:
            self._session.headers["X-API-Key"] = config.api_key.get_secret_value()

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None, text: bool = False) -> Any:
        """The answer's JSON document (`text`: its body as text), or Refused / Unreachable."""
        url = f"{self.config.url}/{path.lstrip('/')}"
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        data = None if body is None else exact_json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            resp = self._session.request(method, url, params=query, data=data, headers=headers,
                                         timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise Unreachable(f"{method} {url}: {type(exc).__name__}: {exc}") from None
        if text and resp.ok:
            return resp.text
        try:
            doc = exact_json.loads(resp.content) if resp.content else {}
        except ValueError:
            if resp.ok:
                raise Unreachable(f"{method} {url}: HTTP {resp.status_code} but not JSON (is this the service?)")
            doc = {"error": {"code": f"http_{resp.status_code}", "message": resp.text[:500], "details": []}}
        if not resp.ok:
            raise Refused(resp.status_code, doc, method, path)
        return doc

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request("POST", path, params=params, body=body if body is not None else {})

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def pages(self, path: str, key: str, **params: Any):
        """Every item of a paged list (``next_cursor``), to its end."""
        cursor = None
        while True:
            doc = self.get(path, **params, cursor=cursor)
            yield from doc.get(key, [])
            cursor = doc.get("next_cursor")
            if not cursor:
                return
