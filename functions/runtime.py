"""Per-process start-up shared by every entry point: validated settings and structured logging, once.

Importing this module fails fast with a ConfigError naming the bad variable, so a misconfigured function
never starts serving.
"""

from shared.infra import log
from shared.infra.config import settings

SETTINGS = settings()
log.configure(SETTINGS.log_level)
