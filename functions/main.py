"""Every Cloud Function entry point, in one module: one source archive serves every function.

Deployed, this file is the archive's root ``main.py`` and each function picks its ``entry_point`` by name
(see shared/topology.py for the list). Locally: ``functions-framework --source functions/main.py --target NAME``.
"""

from functions.api import api
from functions.signals import signals

__all__ = ["api", "signals"]
