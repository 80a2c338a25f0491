"""The local Prometheus's way to the metrics: a forward proxy that adds the scrape key, for the metrics URL alone.

    python scripts/scrape_proxy.py --port P --upstream http://127.0.0.1:API_PORT --key-file FILE

``GET /api/v1/metrics`` needs an operator key in the header ``X-API-Key``. Debian's ``prometheus`` (2.42 on these
machines) cannot send a header of its own choosing: ``http_headers`` in a scrape config came with Prometheus 2.55,
and the only credential 2.42 sends is ``Authorization``, which the API does not read. Prometheus's maintainers
answer that request with "use a proxy" (``proxy_url``), so the local stack does exactly that: Prometheus scrapes
the API's own address through this proxy (its target and ``instance`` label stay the API's), and the proxy sends
the request on with the key read from ``FILE`` (read on every request, so a rotated key needs no restart; the key
never appears in Prometheus's configuration or in a command line).

It forwards nothing but ``GET`` of the upstream's ``/api/v1/metrics`` (403 otherwise), so the key it holds
reaches nothing else; the upstream's answer (a 401 included) is passed on as it is, and an upstream that does not
answer is a 502, which Prometheus shows as the target being down. A Prometheus of 2.55 or later needs none of
this: ``http_headers: {X-API-Key: {files: [FILE]}}`` in the scrape config.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

METRICS_PATH = "/api/v1/metrics"
TIMEOUT_S = 10.0


def forwarded_url(request_target: str, upstream: str) -> str | None:
    """The URL to fetch for a proxied request, or None when it is not the upstream's metrics. A forward proxy
    receives the absolute URL (``GET http://host:port/path?query``); the origin form (``/path?query``, a client
    that takes the proxy for the server) is read as the upstream's."""
    target, base = urlsplit(request_target), urlsplit(upstream)
    if target.scheme or target.netloc:
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            return None
    if target.path != METRICS_PATH:
        return None
    return f"{base.scheme}://{base.netloc}{METRICS_PATH}" + (f"?{target.query}" if target.query else "")


def make_handler(upstream: str, key_file: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = forwarded_url(self.path, upstream)
            if url is None:
                self._refuse()
                return
            try:
                key = key_file.read_text().strip()
            except OSError as exc:
                self._answer(502, f"scrape key {key_file} cannot be read: {exc.strerror or exc}\n".encode())
                return
            request = urllib.request.Request(url, headers={"X-API-Key": key})
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
                    self._answer(resp.status, resp.read(), resp.headers.get("Content-Type", "text/plain"))
            except urllib.error.HTTPError as err:  # the API's own answer (401, 403, 429, 503): passed on
                self._answer(err.code, err.read(), err.headers.get("Content-Type", "text/plain"))
            except OSError as exc:
                self._answer(502, f"{upstream} did not answer: {exc}\n".encode())

        def _refuse(self) -> None:
            self._answer(403, f"this proxy forwards only GET {upstream}{METRICS_PATH}\n".encode())

        do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _refuse

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if str(code).isdigit() and int(code) >= 400:  # a scrape every few seconds: only failures are news
                super().log_request(code, size)

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the API's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--key-file", type=Path, required=True, help="a file holding the X-API-Key to send")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.upstream.rstrip("/"), args.key_file))
    server.daemon_threads = True
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
