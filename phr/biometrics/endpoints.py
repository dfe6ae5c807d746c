"""Biometric identification API: residents enroll and delete; EMS search and confirm."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Request, Response

from consent.actors import Purpose
from consent.identity.oauth import ActorDep
from phr.biometrics import schemas, service
from phr.db import SessionDep
from phr.errors import InvalidInput, NotFound
from phr.settings import get_settings


@asynccontextmanager
async def _warm_up(_app: Any) -> AsyncIterator[None]:
    """Load the face gallery in the background when the server starts: searches that come
    first wait for it (correct, only slower), nothing else does."""
    settings = get_settings()
    if settings.biometric_warm_up and settings.env != "test":
        threading.Thread(target=service.warm_up, name="biometric-warm-up", daemon=True).start()
    yield


router = APIRouter(tags=["biometrics"], lifespan=_warm_up)

PURPOSE_HEADER = "X-Purpose-Of-Use"


@router.get("/api/me/biometrics", response_model=schemas.EnrollmentRead)
def my_enrollment(session: SessionDep, actor: ActorDep) -> schemas.EnrollmentRead:
    """My enrollment: consent, templates (ids only), whether a reference photo is kept."""
    return service.my_enrollment(session, actor)


@router.post("/api/me/biometrics", response_model=schemas.EnrollmentRead, status_code=201)
def enroll(
    body: schemas.EnrollmentCreate, session: SessionDep, actor: ActorDep
) -> schemas.EnrollmentRead:
    """Opt in to identification at the scene, or add templates / replace the photo.

    Templates as vectors (128 numbers) or as face images (base64 JPEG/PNG; needs the
    ``face`` extra on the server, else 501).
    """
    images = [service.decode_base64(i, "images[]") for i in body.images]
    photo = service.decode_base64(body.photo, "photo") if body.photo is not None else None
    return service.enroll(
        session,
        actor,
        consent=body.consent,
        vectors=body.vectors,
        images=images,
        photo=photo,
        photo_consent=body.photo_consent,
    )


@router.delete("/api/me/biometrics", response_model=schemas.EnrollmentRead)
def withdraw(session: SessionDep, actor: ActorDep) -> schemas.EnrollmentRead:
    """Delete all my templates and my photo, and withdraw my consent. Effective at once
    in every server process."""
    return service.withdraw(session, actor)


@router.delete("/api/me/biometrics/templates/{template_id}", response_model=schemas.EnrollmentRead)
def delete_template(
    template_id: str, session: SessionDep, actor: ActorDep
) -> schemas.EnrollmentRead:
    return service.delete_template(session, actor, template_id)


@router.delete("/api/me/biometrics/photo", response_model=schemas.EnrollmentRead)
def delete_photo(session: SessionDep, actor: ActorDep) -> schemas.EnrollmentRead:
    return service.delete_photo(session, actor)


def _emergency_purpose(request: Request) -> None:
    code = request.headers.get(PURPOSE_HEADER, Purpose.EMERGENCY.value)
    if code != Purpose.EMERGENCY.value:
        raise InvalidInput(
            f"face identification is for emergency treatment ({PURPOSE_HEADER}: "
            f"{Purpose.EMERGENCY.value}) only"
        )


@router.post("/api/emergency/identify/face", response_model=schemas.SearchRead)
def identify(
    body: schemas.SearchCreate, request: Request, session: SessionDep, actor: ActorDep
) -> schemas.SearchRead:
    """1:N search: at most three candidates (ids and scores) above the calibrated
    threshold; none = not identified. Confirm one before anything of the record is shown."""
    _emergency_purpose(request)
    if (body.embedding is None) == (body.image is None):
        raise InvalidInput("send either embedding or image")
    narrowing: dict[str, Any] = {
        "sex": body.sex,
        "age_min": body.age_min,
        "age_max": body.age_max,
        "district": body.district,
        "limit": body.limit,
    }
    if body.embedding is not None:
        found = service.identify(session, actor, body.embedding, **narrowing)
    else:
        assert body.image is not None
        image = service.decode_base64(body.image, "image")
        found = service.identify_image(session, actor, image, **narrowing)
    return schemas.SearchRead(
        identified=bool(found),
        candidates=[
            schemas.CandidateRead(rank=i, resident_id=c.resident_id, score=c.score)
            for i, c in enumerate(found, 1)
        ],
        threshold=service.match_threshold(),
    )


@router.get(
    "/api/emergency/identify/face/candidates/{resident_id}/photo",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
def candidate_photo(
    resident_id: str, request: Request, session: SessionDep, actor: ActorDep
) -> Response:
    """The reference photo of a candidate of a recent search, for visual confirmation."""
    _emergency_purpose(request)
    got = service.reference_photo_with_type(session, actor, resident_id)
    if got is None:
        raise NotFound("this candidate has no reference photo")
    data, media_type = got
    return Response(data, media_type=media_type, headers={"Cache-Control": "no-store"})
