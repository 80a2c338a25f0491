"""The execution service's library: pure domain core, use cases, and the infrastructure around them.

Layers (imports point down only): ``shared.app`` (use cases) -> ``shared.domain`` (pure rules, no I/O)
and ``shared.infra`` (clients, store, bus, scheduler, config, logging). Cloud Function entry points in
``functions/`` call into ``shared.app``.
"""
