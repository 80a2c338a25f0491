"""Launch gcloud-tasks-emulator (run with .venv-tasks/bin/python) polling its queues every 10 ms.

The emulator looks at each queue every 100 ms, so every task waited ~50 ms on average before dispatch: an
artefact of the emulator (production Cloud Tasks dispatches a due task at once) that dominated the local
latency of the submission path. TASKS_EMULATOR_POLL_S sets the interval. Arguments go to the emulator.
"""

import os

import gcloud_tasks_emulator.server as server
from gcloud_tasks_emulator.__main__ import main

server._LOOP_SLEEP_TIME = float(os.environ.get("TASKS_EMULATOR_POLL_S", "0.01"))

if __name__ == "__main__":
    main()
