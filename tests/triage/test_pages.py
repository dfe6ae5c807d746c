"""The residents' self-triage pages (/triage): anonymous use keeps nothing; a signed-in
resident's record counts (with their triage consent) and the result is kept if they wish;
a red result leads with 119."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.actors import Actor
from phr.triage import service
from tests.triage.test_api import own_records
from tests.web.conftest import csrf_of, sign_in
from tests.web.test_security import set_cookie_headers


def answer(client: TestClient, complaint: str, data: dict[str, Any]) -> Any:
    form = client.get(f"/triage/{complaint}")
    assert form.status_code == 200, form.text
    return client.post(f"/triage/{complaint}", data={"csrf_token": csrf_of(form.text), **data})


class TestAnonymous:
    def test_the_complaints_in_japanese_and_english_with_119_first(
        self, client: TestClient
    ) -> None:
        ja = client.get("/triage")
        assert ja.status_code == 200
        assert "胸の痛み" in ja.text and 'href="tel:119"' in ja.text
        assert ja.text.index("tel:119") < ja.text.index("/triage/chest_pain")
        en = client.get("/triage?lang=en")
        assert "Chest pain" in en.text and "Call 119" in en.text

    def test_the_questions_of_a_protocol(self, client: TestClient) -> None:
        r = client.get("/triage/fever?lang=en")
        assert r.status_code == 200
        assert "Confused or not making sense?" in r.text
        assert 'name="q_temperature"' in r.text and 'type="number"' in r.text
        assert client.get("/triage/no-such-thing").status_code == 404

    def test_a_red_flag_says_call_119_and_nothing_is_kept(
        self, client: TestClient, session: Session
    ) -> None:
        r = answer(client, "chest_pain", {"q_fainted": "yes", "age": "58", "sex": "male"})
        assert r.status_code == 200, r.text
        assert 'data-urgency="red"' in r.text
        assert r.text.index('href="tel:119"') < r.text.index("理由")
        assert "匿名" in r.text  # used anonymously: no record read
        assert "健康記録に残しました" not in r.text

    def test_a_mild_complaint_gets_self_care_advice(self, client: TestClient) -> None:
        r = answer(
            client,
            "fever",
            {
                "q_confused": "no",
                "q_breathless_fast": "no",
                "q_mottled_or_rash": "no",
                "q_no_urine_18h": "no",
                "q_chemotherapy": "no",
                "q_stiff_neck_headache": "no",
                "q_rigors": "no",
                "q_temperature": "37.8",
                "q_days": "1",
                "q_can_drink": "yes",
                "age": "30",
            },
        )
        assert 'data-urgency="green"' in r.text
        assert "自分でできること" in r.text

    def test_bad_input_is_shown_on_the_form_with_the_answers_kept(self, client: TestClient) -> None:
        r = answer(client, "fever", {"q_temperature": "hot", "q_confused": "no", "age": "40"})
        assert r.status_code == 422
        assert "入力を確認してください" in r.text
        assert 'id="q_confused-no" name="q_confused" value="no" checked' in r.text

    def test_a_child_protocol_refuses_an_adult_age(self, client: TestClient) -> None:
        r = answer(client, "child_fever", {"age": "40"})
        assert r.status_code == 422 and "children" in r.text

    def test_a_post_without_the_csrf_token_is_refused(self, client: TestClient) -> None:
        r = client.post("/triage/fever", data={"q_confused": "no"})
        assert r.status_code in (400, 403)

    def test_security_headers(self, client: TestClient) -> None:
        r = client.get("/triage")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "phr_session" not in set_cookie_headers(r)


class TestSignedIn:
    def test_the_record_counts_with_consent_and_the_result_is_kept(
        self,
        client: TestClient,
        session: Session,
        pias: None,
        phr_resident: dict[str, Any],
        tmp_path: Path,
    ) -> None:
        from consent.identity import cards

        rid = phr_resident["id"]
        cards.issue_card(session, rid, out_dir=tmp_path / "cards")
        session.commit()
        sign_in(client, rid)
        service.set_triage_consent(session, Actor(kind="resident", resident_id=rid), True)
        session.commit()
        r = answer(client, "injury_fall", {"q_head_hit": "yes", "record": "yes"})
        assert r.status_code == 200, r.text
        # On warfarin (from the clinic's record): a head injury is raised to orange.
        assert 'data-urgency="orange"' in r.text
        assert "健康記録に残しました" in r.text
        ras = own_records(session, rid, "RiskAssessment")
        assert [ra["prediction"][0]["outcome"]["coding"][0]["code"] for ra in ras] == ["orange"]

        # Unticked, nothing more is kept; asking for someone else reads nothing.
        answer(client, "injury_fall", {"q_head_hit": "yes"})
        other = answer(client, "injury_fall", {"q_head_hit": "yes", "subject": "other"})
        assert 'data-urgency="green"' in other.text
        assert len(own_records(session, rid, "RiskAssessment")) == 1
