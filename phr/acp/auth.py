"""The trusted person's dependency: ``Authorization: Bearer <session token>`` from
``POST /api/acp/trusted/sign-in`` (or accepting an invitation)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from consent.actors import Actor
from phr.acp import service
from phr.db import SessionDep
from phr.errors import NotAuthenticated


def trusted_person(request: Request, session: SessionDep) -> Actor:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("sign in as a trusted person (Authorization: Bearer ...)")
    actor = service.trusted_actor(session, token.strip())
    request.state.actor = actor
    return actor


TrustedDep = Annotated[Actor, Depends(trusted_person)]
