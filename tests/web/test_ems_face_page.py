"""Face identification on the paramedic tablet (/ems): the photo the crew takes is searched
over the enrolled residents with the real dlib extractor (ORL faces), the candidates are
shown with their scores and — where the resident agreed to one — the reference photo next
to the taken one; the photos go only to this incident's crew, no-store, audited; a visual
confirmation unlocks the summary, and the taken photo is erased."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.actors import Actor
from consent.models import AuditEntry
from phr.biometrics import service as biometrics
from phr.biometrics.extractor import available
from tests.biometrics.conftest import orl_image
from tests.conftest import needs
from tests.emergency.conftest import set_emergency_consent
from tests.web import test_ems_pages as ems_pages
from tests.web.conftest import csrf_of
from tests.web.test_ems_pages import EMS, Staff, open_incident
from tests.web.test_pages import text_of

setup = ems_pages.setup  # the organisations and the PIAs (autouse)
staff = ems_pages.staff  # a signed-in staff member's browser

pytestmark = needs(available(), "the optional face extra (dlib-bin, ...) is not installed")


def png(subject: int, image: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    with Image.open(orl_image(subject, image)) as img:
        img.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(autouse=True)
def fresh_index() -> Any:
    biometrics.reset_index()
    yield
    biometrics.reset_index()


@pytest.fixture
def enrolled(session: Session, hanako: str) -> str:
    """Hanako enrolled with two ORL photos of subject 1 and a reference photo."""
    biometrics.enroll(
        session,
        Actor(kind="resident", resident_id=hanako),
        consent=True,
        images=[orl_image(1, 1).read_bytes(), orl_image(1, 5).read_bytes()],
        photo=png(1, 4),
        photo_consent=True,
    )
    set_emergency_consent(session, hanako, True)
    session.commit()
    return hanako


def search(crew: TestClient, incident: str, subject: int, image: int, **narrow: str) -> Any:
    page = f"/ems/incidents/{incident}"
    return crew.post(
        f"{page}/identify/face",
        data={"csrf_token": csrf_of(crew.get(page).text), **narrow},
        files={"photo": ("face.pgm", orl_image(subject, image).read_bytes(), "image/x-pgm")},
        follow_redirects=False,
    )


def test_the_form_takes_a_photo_with_the_camera(staff: Staff) -> None:
    crew = staff(EMS, "para", "paramedic")
    html = crew.get(f"/ems/incidents/{open_incident(crew)}").text
    assert 'type="file"' in html and 'accept="image/*"' in html
    assert 'capture="environment"' in html and 'enctype="multipart/form-data"' in html
    assert "<script" not in html.split("</header>", 1)[-1]


def test_face_search_photo_side_by_side_and_visual_confirmation(
    session: Session, staff: Staff, enrolled: str
) -> None:
    crew = staff(EMS, "para", "paramedic")
    incident = open_incident(crew)
    r = search(crew, incident, 1, 2, age_min="0", age_max="120")
    assert r.headers["location"].endswith("done=searched"), r.headers["location"]
    page = crew.get(f"/ems/incidents/{incident}").text
    assert "筑波" not in text_of(page)  # a candidate has no name
    assert re.search(r"一致度 0\.9[0-9]{2}", text_of(page))
    cand = re.search(r"/photos/candidates/(\d+)", page)
    assert cand and f"/ems/incidents/{incident}/photos/taken" in page

    taken = crew.get(f"/ems/incidents/{incident}/photos/taken")
    assert taken.status_code == 200 and taken.content.startswith(b"\x89PNG")
    assert taken.headers["cache-control"] == "no-store"
    ref = crew.get(f"/ems/incidents/{incident}/photos/candidates/{cand.group(1)}")
    assert ref.status_code == 200 and ref.content == png(1, 4)
    assert ref.headers["cache-control"] == "no-store"
    # Another EMS organisation's crew gets neither photo.
    from consent.identity.clients import register_organization

    register_organization(session, id="other-fire", name="別の消防", kind="ems")
    session.commit()
    other = staff("other-fire", "para2", "paramedic")
    assert other.get(f"/ems/incidents/{incident}/photos/taken").status_code == 404
    assert (
        other.get(f"/ems/incidents/{incident}/photos/candidates/{cand.group(1)}").status_code == 404
    )
    logged = {
        e.action for e in session.scalars(select(AuditEntry).where(AuditEntry.detail.like(
            f"%incident {incident}%"))).all()
    }  # fmt: skip
    assert "incident-photo" in logged

    # Unchecked box: nothing is confirmed, nothing shown.
    confirm = {"candidate_id": cand.group(1), "method": "visual"}
    p = f"/ems/incidents/{incident}"
    r = crew.post(
        f"{p}/confirm",
        data={"csrf_token": csrf_of(crew.get(p).text), **confirm},
        follow_redirects=False,
    )
    assert r.headers["location"].endswith("error=not_confirmed")
    assert "ems-summary" not in crew.get(p).text
    r = crew.post(
        f"{p}/confirm",
        data={"csrf_token": csrf_of(crew.get(p).text), **confirm, "photo_checked": "true"},
        follow_redirects=False,
    )
    assert r.headers["location"].endswith("done=confirmed")
    summary = crew.get(p).text
    assert "ems-summary" in summary and "筑波" in text_of(summary)
    # The taken photo is erased and no photo is served once identified.
    assert crew.get(f"{p}/photos/taken").status_code == 404


def test_another_face_is_not_identified(staff: Staff, enrolled: str) -> None:
    crew = staff(EMS, "para", "paramedic")
    incident = open_incident(crew)
    r = search(crew, incident, 2, 1)
    assert r.headers["location"].endswith("error=not_identified")
    page = crew.get(f"/ems/incidents/{incident}").text
    assert "/photos/" not in page
    assert crew.get(f"/ems/incidents/{incident}/photos/taken").status_code == 404


def test_a_photo_without_a_face_and_no_photo(staff: Staff, enrolled: str) -> None:
    crew = staff(EMS, "para", "paramedic")
    incident = open_incident(crew)
    p = f"/ems/incidents/{incident}"
    blank = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (200, 200), "white").save(blank, "PNG")
    r = crew.post(
        f"{p}/identify/face",
        data={"csrf_token": csrf_of(crew.get(p).text)},
        files={"photo": ("blank.png", blank.getvalue(), "image/png")},
        follow_redirects=False,
    )
    assert r.headers["location"].endswith("error=no_face")
    r = crew.post(
        f"{p}/identify/face", data={"csrf_token": csrf_of(crew.get(p).text)}, follow_redirects=False
    )
    assert r.headers["location"].endswith("error=invalid")
