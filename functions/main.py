"""Every Cloud Function entry point, in one module: one source archive serves every function.

Deployed, this file is the archive's root ``main.py`` and each function picks its ``entry_point`` by name
(shared/topology.py lists them). Locally: ``functions-framework --source functions/main.py --target NAME``.
Entry points load lazily (PEP 562), so a function's process imports only its own module and clients: the
signal function never pays for ccxt, the adapter never builds Firestore clients.
"""

import importlib

_MODULES = {
    "api": "functions.api",
    "signals": "functions.signals",
    "submit": "functions.tasks",
    "sync": "functions.tasks",
    "slices": "functions.tasks",
    "sweep": "functions.tasks",
    "dms": "functions.tasks",
    "heartbeats": "functions.heartbeats",
    "tca": "functions.tca",
    "markouts": "functions.tca",
    "adapter": "functions.adapter",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(name)
    return getattr(importlib.import_module(_MODULES[name]), name)
