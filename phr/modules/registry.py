"""Discovery of installed modules (``importlib.metadata`` entry points) and mounting."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from fastapi import FastAPI

from phr.modules.contract import ENTRY_POINT_GROUP, PhrModule

__all__ = ["discover", "mount_modules"]

log = logging.getLogger("phr.modules")


def discover(group: str = ENTRY_POINT_GROUP) -> dict[str, PhrModule]:
    """Every module registered under ``group``, by name.

    An entry point names a :class:`PhrModule` (or a callable returning one). A broken
    module (import error, bad manifest, duplicate name) is left out and logged; it never
    stops the platform.
    """
    found: dict[str, PhrModule] = {}
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            obj = ep.load()
            module = obj() if callable(obj) and not isinstance(obj, PhrModule) else obj
            if not isinstance(module, PhrModule):
                raise TypeError(f"{ep.value} is not a PhrModule")
            if module.name != ep.name:
                raise ValueError(f"entry point {ep.name} names the module {module.name}")
            if module.name in found:
                raise ValueError(f"module {module.name} is registered twice")
        except Exception as exc:
            log.error("module %s not loaded: %s", ep.name, exc)
            continue
        found[module.name] = module
    return found


def mount_modules(app: FastAPI) -> dict[str, PhrModule]:
    """Discover the modules, mount their routers under ``/modules/<name>``, remember them
    on ``app.state.phr_modules`` (what the module reader and the registry page use)."""
    modules = discover()
    for module in modules.values():
        if module.router is not None:
            app.include_router(module.router, prefix=f"/modules/{module.name}")
        log.info("module %s mounted", module.name)
    app.state.phr_modules = modules
    return modules
