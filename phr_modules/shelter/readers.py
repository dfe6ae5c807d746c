"""The module's two readers for a request: the consent-checked record reader and the
identification reader (Patient only), both from the platform's module registry."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session

from consent.actors import Actor
from phr.errors import NotFound
from phr.modules import ModuleReader, PhrModule
from phr_modules.shelter import NAME, PURPOSE

__all__ = ["lookup", "record"]


def _module(request: Request) -> PhrModule:
    module: PhrModule | None = getattr(request.app.state, "phr_modules", {}).get(NAME)
    if module is None:  # pragma: no cover - the routes exist only when it is mounted
        raise NotFound(f"module {NAME} is not installed")
    return module


def record(request: Request, session: Session, actor: Actor) -> ModuleReader:
    return ModuleReader(session, actor, PURPOSE, _module(request))


def lookup(request: Request, session: Session, actor: Actor) -> ModuleReader:
    return ModuleReader.for_identification(session, actor, PURPOSE, _module(request))
