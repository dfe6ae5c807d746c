"""Request dependencies shared by the FHIR routes."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from consent.actors import Actor, Purpose
from consent.identity.oauth import current_actor
from fhir_gateway.validation import known_type
from phr.db import SessionDep
from phr.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from phr.settings import get_settings

__all__ = ["ActorDep", "PurposeDep", "SessionDep", "check_type", "json_body"]

ActorDep = Annotated[Actor, Depends(current_actor)]

PURPOSE_HEADER = "X-Purpose-Of-Use"


def purpose_of(request: Request, actor: ActorDep) -> Purpose:
    """Purpose of use asserted by the client (IHE IUA style).

    Default: treatment for organisations, patient access for a resident reading their own
    record (the token decides who the caller is).
    """
    code = request.headers.get(PURPOSE_HEADER)
    if not code:
        if actor.kind == "resident":
            return Purpose.PATIENT_ACCESS
        return Purpose.TREATMENT
    try:
        return Purpose(code)
    except ValueError:
        raise InvalidInput(f"unknown purpose of use {code!r}") from None


PurposeDep = Annotated[Purpose, Depends(purpose_of)]


def check_type(resource_type: str) -> str:
    if not known_type(resource_type) or resource_type in ("Bundle",):
        raise NotFound(f"resource type {resource_type!r} is not supported")
    return resource_type


async def json_body(request: Request) -> Any:
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype and ctype not in ("application/fhir+json", "application/json"):
        raise UnsupportedMediaType(f"content type {ctype!r} is not supported; send JSON")
    limit = get_settings().max_request_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes")
    if not body:
        raise InvalidInput("request body is empty")
    try:
        return orjson.loads(bytes(body))
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}") from None
