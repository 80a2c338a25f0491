"""Cloud Scheduler's stand-in for the local stack: POST to each job's URL on its interval, forever.

    python scripts/local_scheduler.py NAME=URL@SECONDS [NAME=URL@SECONDS ...]

In the cloud these are Cloud Scheduler jobs (see terraform/). Each call's outcome goes to stdout as one JSON
line; a failed call is logged and tried again at the next tick.
"""

from __future__ import annotations

import json
import sys
import time

import requests


def parse(spec: str) -> tuple[str, str, float]:
    name, _, rest = spec.partition("=")
    url, _, every = rest.rpartition("@")
    if not name or not url or not every:
        raise SystemExit(f"bad job {spec!r}: expected NAME=URL@SECONDS")
    return name, url, float(every)


def main(argv: list[str]) -> None:
    jobs = [parse(a) for a in argv]
    due = {name: time.monotonic() + every for name, _, every in jobs}
    session = requests.Session()
    while True:
        now = time.monotonic()
        for name, url, every in jobs:
            if now < due[name]:
                continue
            due[name] = now + every
            try:
                resp = session.post(url, timeout=120)
                outcome = {"job": name, "status": resp.status_code, "body": resp.text[:500]}
            except requests.RequestException as exc:
                outcome = {"job": name, "error": str(exc)}
            print(json.dumps(outcome), flush=True)
        time.sleep(max(0.05, min(due.values()) - time.monotonic()))


if __name__ == "__main__":
    main(sys.argv[1:])
