"""Adapter statistics summaries and the ID-token auth of deployed adapter calls (no I/O)."""

from shared.infra.venues import percentile, summarize


def test_percentiles_nearest_rank():
    values = sorted(float(v) for v in range(1, 101))
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0


def test_summary_has_rates_latency_and_switch():
    s = summarize([5.0, 1.0, 3.0], {"calls": "4", "errors": "1", "last_success_ms": "123", "last_error": "timeout"},
                  {"armed": True, "mode": "watchdog"})
    assert s["calls"] == 4 and s["errors"] == 1 and s["error_rate"] == 0.25
    assert s["latency_ms"] == {"p50": 3.0, "p99": 5.0, "samples": 3}
    assert s["last_success_ms"] == 123 and s["last_error"] == "timeout"
    assert s["dead_mans_switch"]["armed"] is True
    empty = summarize([], {}, None)
    assert empty["error_rate"] == 0.0 and empty["dead_mans_switch"] == {"armed": False}


def test_id_token_auth_sets_a_bearer_token_and_refreshes_it_when_expired():
    import requests

    from shared.infra.venues import IdTokenAuth

    class Creds:  # google-auth's credentials, as far as IdTokenAuth uses them
        def __init__(self) -> None:
            self.valid, self.token, self.refreshed = False, None, 0

        def refresh(self, request) -> None:
            self.refreshed += 1
            self.valid, self.token = True, f"token-{self.refreshed}"

    auth = IdTokenAuth("https://adapter-binance.example")
    auth._creds = creds = Creds()
    first = auth(requests.Request("GET", "https://adapter-binance.example/info").prepare())
    assert first.headers["Authorization"] == "Bearer token-1"
    auth(requests.Request("GET", "https://adapter-binance.example/info").prepare())
    assert creds.refreshed == 1  # still valid: no second fetch
    creds.valid = False
    again = auth(requests.Request("GET", "https://adapter-binance.example/book").prepare())
    assert again.headers["Authorization"] == "Bearer token-2"
