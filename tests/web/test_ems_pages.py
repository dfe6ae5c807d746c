"""The paramedic tablet screen (/ems) and the receiving hospital's pages (/hospital) on the
staff session: sign-in and role, identification and confirmation, the emergency summary
only under emergency consent, vitals, status report, handover to the chosen hospital only,
close; CSRF on every POST; both languages."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.identity.clients import register_organization
from consent.staff.service import configure_password_hasher, create_staff, start_session
from tests.emergency.conftest import set_emergency_consent
from tests.emergency.test_flow import save_acp
from tests.web.conftest import csrf_of
from tests.web.story import HOSPITAL
from tests.web.test_pages import text_of

EMS = "tsukuba-fire"
OTHER_HOSPITAL = "other-hospital"
NO_CONSENT = "緊急時の情報開示の事前同意がありません"

Staff = Callable[[str, str, str], TestClient]


@pytest.fixture(autouse=True)
def setup(session: Session) -> Iterator[None]:
    from consent.pia.service import seed_platform_pias

    configure_password_hasher(PasswordHasher.from_parameters(profiles.CHEAPEST))
    seed_platform_pias(session)
    register_organization(session, id=EMS, name="つくば消防", kind="ems")
    register_organization(session, id=OTHER_HOSPITAL, name="別の病院", kind="hospital")
    register_organization(session, id=HOSPITAL[0], name=HOSPITAL[1], kind=HOSPITAL[2])
    session.commit()
    yield
    configure_password_hasher(None)


@pytest.fixture
def staff(app: Any, session: Session) -> Iterator[Staff]:
    """A browser signed in as a staff member (a real staff session row)."""
    opened: list[TestClient] = []

    def make(org: str, username: str, role: str) -> TestClient:
        user, _ = create_staff(
            session,
            organization_id=org,
            username=username,
            display_name=username,
            role=role,
            password="correct horse battery staple",
        )
        c = TestClient(app)
        c.cookies.set("phr_staff", start_session(session, user))
        session.commit()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


def post(c: TestClient, path: str, data: dict[str, Any], page: str) -> Any:
    return c.post(
        path, data={"csrf_token": csrf_of(c.get(page).text), **data}, follow_redirects=False
    )


def open_incident(crew: TestClient) -> str:
    r = post(crew, "/ems/incidents", {"district": "北条"}, "/ems")
    assert r.status_code == 303, r.text
    m = re.fullmatch(r"/ems/incidents/([^/?]+)", r.headers["location"])
    assert m
    return m.group(1)


def identify(crew: TestClient, incident: str, **query: str) -> Any:
    data = {"family": "筑波", "given": "花子", "birth_date": "1950-04-01", "sex": "female"}
    page = f"/ems/incidents/{incident}"
    return post(crew, f"{page}/identify/demographic", {**data, **query}, page)


def confirm(crew: TestClient, incident: str, birth_date: str = "1950-04-01") -> Any:
    page = f"/ems/incidents/{incident}"
    cand = re.search(r'name="candidate_id" value="(\d+)"', crew.get(page).text)
    assert cand
    data = {"candidate_id": cand.group(1), "method": "birth_date", "birth_date": birth_date}
    return post(crew, f"{page}/confirm", data, page)


def confirmed(crew: TestClient) -> str:
    incident = open_incident(crew)
    assert identify(crew, incident).headers["location"].endswith("done=searched")
    assert confirm(crew, incident).headers["location"].endswith("done=confirmed")
    return incident


class TestAccess:
    def test_signed_out_goes_to_the_staff_sign_in(self, client: TestClient) -> None:
        r = client.get("/ems", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/auth/staff/login?return_to=/ems")

    def test_a_non_paramedic_cannot_open_the_tablet_screen(self, staff: Staff, hanako: str) -> None:
        for org, role in ((EMS, "clerk"), (HOSPITAL[0], "doctor")):
            c = staff(org, f"{role}1", role)
            r = c.get("/ems")
            assert r.status_code == 403
            assert "救急隊員" in text_of(r.text)
            assert c.post("/ems/incidents", data={}).status_code == 403
        # a paramedic cannot use the hospital's pages either
        assert staff(EMS, "para", "paramedic").get("/hospital/incoming").status_code == 403

    def test_every_post_needs_the_csrf_token(self, staff: Staff, hanako: str) -> None:
        crew = staff(EMS, "para", "paramedic")
        incident = open_incident(crew)
        steps = ("identify/demographic", "identify/card", "confirm", "vitals", "findings", "close")
        for step in steps:
            r = crew.post(f"/ems/incidents/{incident}/{step}", data={"csrf_token": "x"})
            assert r.status_code == 403, step
        assert crew.post("/ems/incidents", data={}).status_code == 403
        assert "本人確認前" in text_of(crew.get(f"/ems/incidents/{incident}").text)


class TestCrewFlow:
    def test_no_emergency_consent_nothing_is_shown(self, staff: Staff, hanako: str) -> None:
        crew = staff(EMS, "para", "paramedic")
        incident = confirmed(crew)
        page = text_of(crew.get(f"/ems/incidents/{incident}").text)
        assert NO_CONSENT in page
        for shown in ("筑波 花子", "ペニシリン", "アムロジピン", "1950-04-01", "竹園内科医院"):
            assert shown not in page, shown
        en = text_of(crew.get(f"/ems/incidents/{incident}?lang=en").text)
        assert "No emergency consent on file" in en

    def test_a_candidate_shows_nothing_until_confirmed(
        self, staff: Staff, hanako: str, session: Session
    ) -> None:
        set_emergency_consent(session, hanako, True)
        crew = staff(EMS, "para", "paramedic")
        incident = open_incident(crew)
        assert (
            identify(crew, incident, given="花")
            .headers["location"]
            .endswith("error=not_identified")
        )
        identify(crew, incident)
        page = text_of(crew.get(f"/ems/incidents/{incident}").text)
        assert "候補 1" in page and "花子" not in page
        r = confirm(crew, incident, birth_date="1950-04-02")
        assert r.headers["location"].endswith("error=not_confirmed")
        page = text_of(crew.get(r.headers["location"]).text)
        assert "確認できませんでした" in page and "ペニシリン" not in page and "花子" not in page

    def test_the_whole_call_summary_vitals_report_handover_close(
        self, staff: Staff, hanako: str, session: Session
    ) -> None:
        set_emergency_consent(session, hanako, True)
        save_acp(session, hanako)
        crew = staff(EMS, "para", "paramedic")
        incident = confirmed(crew)
        page = text_of(crew.get(f"/ems/incidents/{incident}").text)
        assert NO_CONSENT not in page
        assert "筑波 花子" in page and "1950-04-01" in page
        assert "ペニシリン" in page and "アムロジピン" in page
        assert "竹園内科医院" in page  # the source of the items
        acp = page.split("もしもの時の希望（ACP）", 1)[1]
        assert "第1版" in acp and "記録" in acp
        assert "心肺蘇生" in acp.split("してほしくないこと", 1)[1].split("してほしいこと")[0]
        assert "輸血" in acp.split("してほしいこと", 1)[1].split("まだ決めていないこと")[0]
        assert "筑波 一郎" in page and "山田医師" in page
        base = f"/ems/incidents/{incident}"
        r = post(crew, f"{base}/vitals", {"systolic": "88", "pulse": "120", "jcs": "10"}, base)
        assert r.headers["location"].endswith("done=vitals")
        assert (
            post(crew, f"{base}/vitals", {"spo2": "5"}, base)
            .headers["location"]
            .endswith("error=invalid")
        )
        r = post(crew, f"{base}/findings", {"text": "右片麻痺あり"}, base)
        assert r.headers["location"].endswith("done=finding")
        assert (
            post(crew, f"{base}/findings", {"text": ""}, base)
            .headers["location"]
            .endswith("error=invalid")
        )
        # the status report goes to the chosen hospital, and only it sees the handover
        doctor = staff(HOSPITAL[0], "doc", "doctor")
        other = staff(OTHER_HOSPITAL, "doc2", "doctor")
        assert incident not in doctor.get("/hospital/incoming").text
        data = {"hospital_id": HOSPITAL[0], "chief_complaint": "意識障害", "eta_minutes": "12"}
        r = post(crew, f"{base}/status-report", data, base)
        assert r.headers["location"].endswith("done=reported")
        assert f"/hospital/incidents/{incident}" in doctor.get("/hospital/incoming").text
        assert f"{HOSPITAL[1]} へ報告済みです" in text_of(crew.get(base).text)
        handover = text_of(doctor.get(f"/hospital/incidents/{incident}").text)
        assert "意識障害" in handover and "心肺蘇生" in handover and "ペニシリン" in handover
        assert other.get(f"/hospital/incidents/{incident}").status_code == 404
        assert incident not in other.get("/hospital/incoming").text
        # close: the summary is no longer shown
        r = post(crew, f"{base}/close", {}, base)
        assert r.headers["location"].endswith("done=closed")
        closed = text_of(crew.get(base).text)
        assert "終了" in closed and "ペニシリン" not in closed and "筑波 花子" not in closed
        after = doctor.get(f"/hospital/incidents/{incident}")
        assert after.status_code == 200
        assert "終了" in text_of(after.text) and "ペニシリン" not in after.text

    def test_another_crews_incident_is_not_found(
        self, staff: Staff, hanako: str, session: Session
    ) -> None:
        register_organization(session, id="other-fire", name="別の消防", kind="ems")
        crew = staff(EMS, "para", "paramedic")
        incident = open_incident(crew)
        other = staff("other-fire", "para2", "paramedic")
        assert other.get(f"/ems/incidents/{incident}").status_code == 404
        r = post(other, f"/ems/incidents/{incident}/close", {}, "/ems")
        assert r.headers["location"].endswith("error=not_found")
        assert "本人確認前" in text_of(crew.get(f"/ems/incidents/{incident}").text)


class TestPages:
    def test_headers_no_inline_code_and_labelled_fields(
        self, staff: Staff, hanako: str, session: Session
    ) -> None:
        set_emergency_consent(session, hanako, True)
        crew = staff(EMS, "para", "paramedic")
        open_incident(crew)
        incident = confirmed(crew)
        for path in ("/ems", f"/ems/incidents/{incident}", f"/ems/incidents/{incident}?lang=en"):
            r = crew.get(path)
            assert r.status_code == 200, path
            assert "default-src 'none'" in r.headers["content-security-policy"]
            assert r.headers["cache-control"] == "no-store"
            html = r.text
            assert "<style" not in html and not re.search(r"\sstyle=", html), path
            assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
            assert not re.search(r"\son[a-z]+=", html), path
            for field in re.findall(r'<(?:input|select|textarea)[^>]*\sid="([^"]+)"', html):
                assert f'<label for="{field}">' in html, (path, field)


class TestCardAndSignOut:
    def test_the_card_certificate_identifies_and_confirms(
        self, staff: Staff, hanako: str, session: Session, tmp_path: Any
    ) -> None:
        from consent.identity.cards import issue_card

        pem = issue_card(session, hanako, out_dir=tmp_path / "c2").certificate_path.read_text()
        session.commit()
        set_emergency_consent(session, hanako, True)
        crew = staff(EMS, "para", "paramedic")
        incident = open_incident(crew)
        base = f"/ems/incidents/{incident}"
        bad = post(crew, f"{base}/identify/card", {"certificate": "not a certificate"}, base)
        assert bad.headers["location"].endswith("error=invalid")  # not a certificate at all
        r = post(crew, f"{base}/identify/card", {"certificate": pem}, base)
        assert r.headers["location"].endswith("done=searched")
        page = crew.get(base).text
        assert "マイナンバーカード" in text_of(page) and "花子" not in page
        cand = re.search(r'name="candidate_id" value="(\d+)"', page)
        assert cand
        data = {"candidate_id": cand.group(1), "method": "card", "certificate": pem}
        r = post(crew, f"{base}/confirm", data, base)
        assert r.headers["location"].endswith("done=confirmed")
        assert "筑波 花子" in text_of(crew.get(base).text)

    def test_sign_out_ends_the_staff_session(self, staff: Staff, hanako: str) -> None:
        crew = staff(EMS, "para", "paramedic")
        r = post(crew, "/ems/signout", {}, "/ems")
        assert r.status_code == 303 and r.headers["location"] == "/auth/staff/login"
        assert crew.get("/ems", follow_redirects=False).status_code == 303
