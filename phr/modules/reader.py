"""The only reader a module gets: the choke point, as the module, within its declaration.

:class:`ModuleReader` is a :class:`~phr.store.reader.RecordReader` whose actor is the
caller's actor with ``service=<module name>`` — the consent engine gives a service
without an approved PIA nothing — and whose access condition is further limited, inside
the SQL, to the resource types the module declared. A purpose or a resource type the
module did not declare is refused with a clear error (403), not silently emptied.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import and_
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from consent.identity.oauth import current_actor
from phr.db import SessionDep
from phr.errors import Forbidden, InvalidInput, NotFound
from phr.modules.contract import PhrModule
from phr.store import search as fsearch
from phr.store.models import Resource, ResourceVersion
from phr.store.reader import RecordReader, SearchResult

__all__ = ["ModuleReader", "module_reader"]

PURPOSE_HEADER = "X-Purpose-Of-Use"


class ModuleReader(RecordReader):
    def __init__(
        self,
        session: Session,
        actor: Actor,
        purpose: Purpose,
        module: PhrModule,
        *,
        identification: bool = False,
    ):
        if actor.kind == "system":
            raise Forbidden(f"module {module.name} reads only for an authenticated caller")
        if purpose not in module.purposes:
            raise Forbidden(
                f"module {module.name} did not declare the purpose {purpose.value}; "
                f"declared: {', '.join(sorted(p.value for p in module.purposes))}"
            )
        self.module = module
        self.types = frozenset({"Patient"}) if identification else module.resource_types
        if not self.types <= module.resource_types:
            raise Forbidden(f"module {module.name} did not declare the resource type Patient")
        acting = (
            _lookup_actor(actor, module.name)
            if identification
            else replace(actor, service=module.name)
        )
        super().__init__(session, acting, purpose)
        self._access = and_(self._access, Resource.resource_type.in_(sorted(self.types)))

    @classmethod
    def for_identification(
        cls, session: Session, actor: Actor, purpose: Purpose, module: PhrModule
    ) -> ModuleReader:
        """A reader for identifying a person in front of the caller (e.g. a shelter's
        intake): ``Patient`` only, across residents — the platform acting as the module's
        service for the caller (a ``system`` actor carrying the caller's organisation and
        user, so the lookup is in the access log as theirs), still gated by the module's
        PIA. The module may only propose a candidate from it, as ``phr.emergency.identify``
        does; the record itself is read with the ordinary reader, under the resident's
        consent."""
        return cls(session, actor, purpose, module, identification=True)

    def _check(self, resource_type: str | None) -> None:
        if resource_type is not None and resource_type not in self.types:
            raise Forbidden(
                f"module {self.module.name} did not declare the resource type {resource_type}"
            )

    def read(self, resource_type: str, id: str) -> Resource:
        self._check(resource_type)
        return super().read(resource_type, id)

    def vread(self, resource_type: str, id: str, version: int) -> ResourceVersion:
        self._check(resource_type)
        return super().vread(resource_type, id, version)

    def history(
        self,
        *,
        resource_type: str | None = None,
        id: str | None = None,
        since: datetime | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> tuple[list[ResourceVersion], int]:
        if resource_type is None:
            raise InvalidInput("a module reads the history of one declared resource type")
        self._check(resource_type)
        return super().history(
            resource_type=resource_type, id=id, since=since, count=count, offset=offset
        )

    def search(self, req: fsearch.SearchRequest, *, query_text: str = "") -> SearchResult:
        self._check(req.resource_type)
        return super().search(req, query_text=query_text)

    def export(
        self,
        *,
        types: Sequence[str] | None,
        since: datetime | None = None,
        residents: Collection[str] | None = None,
        shared: bool = True,
        batch: int = 2000,
        detail: str = "",
    ) -> Iterator[tuple[str, str | None, str]]:
        for t in types or ():
            self._check(t)
        return super().export(
            types=list(types or sorted(self.types)),
            since=since,
            residents=residents,
            shared=shared,
            batch=batch,
            detail=detail or f"module {self.module.name}",
        )

    def compartment(
        self,
        resident_id: str,
        *,
        types: Sequence[str] | None = None,
        since: datetime | None = None,
        action: str = "everything",
        batch: int = 1000,
    ) -> Iterator[Resource]:
        for t in types or ():
            self._check(t)
        return super().compartment(
            resident_id,
            types=list(types or sorted(self.types)),
            since=since,
            action=action,
            batch=batch,
        )


def _lookup_actor(actor: Actor, service: str) -> Actor:
    return Actor(
        kind="system",
        client_id=f"{service}-identify",
        organization_id=actor.organization_id,
        organization_kind=actor.organization_kind,
        user_id=actor.user_id,
        role=actor.role,
        service=service,
    )


def module_reader(name: str) -> Callable[..., ModuleReader]:
    """FastAPI dependency for a module's routes: its :class:`ModuleReader` for the caller.

    The purpose is the ``X-Purpose-Of-Use`` header, or the module's only purpose when it
    declared one.
    """

    def dependency(
        request: Request,
        session: SessionDep,
        actor: Annotated[Actor, Depends(current_actor)],
    ) -> ModuleReader:
        modules: dict[str, PhrModule] = getattr(request.app.state, "phr_modules", {})
        module = modules.get(name)
        if module is None:
            raise NotFound(f"module {name} is not installed")
        code = request.headers.get(PURPOSE_HEADER)
        if code:
            try:
                purpose = Purpose(code)
            except ValueError:
                raise InvalidInput(f"unknown purpose of use {code!r}") from None
        elif len(module.purposes) == 1:
            (purpose,) = module.purposes
        else:
            raise InvalidInput(f"module {name} needs the {PURPOSE_HEADER} header")
        return ModuleReader(session, actor, purpose, module)

    return dependency
