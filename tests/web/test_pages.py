"""What the resident sees and does on each page (in-process, through the test client)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from phr.errors import NotFound
from phr.store.reader import RecordReader
from tests.web.conftest import csrf_of, sign_in
from tests.web.story import CITY, CLINIC_A, CLINIC_B, HOSPITAL
from tests.web.test_security import PAGES


def hospital_actor() -> Actor:
    return Actor(
        kind="organization",
        organization_id=HOSPITAL[0],
        organization_kind=HOSPITAL[2],
        client_id="hospital-client",
        scopes=frozenset({"system/*.rs"}),
    )


def hospital_reads_observations(session: Session, resident: str) -> int:
    from phr.store import search as fsearch

    reader = RecordReader(session, hospital_actor(), Purpose.TREATMENT)
    req = fsearch.parse("Observation", [("patient", resident), ("_count", "5")])
    return len(reader.search(req).matches)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


class TestRecordPages:
    def test_medicines_from_two_clinics_are_grouped_by_ingredient(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        page = text_of(client.get("/me/medicines").text)
        assert "同じ種類のお薬が複数の医療機関から出ています" in page
        current = page.split("現在のお薬", 1)[1].split("過去のお薬")[0]
        # amlodipine from both clinics in one group; the two statins flagged as one kind
        assert "アムロジピンベシル酸塩" in current
        assert CLINIC_A[1] in current and CLINIC_B[1] in current
        assert "2 か所の医療機関から処方されています" in current
        assert re.search(r"高脂血症用剤: .*アトルバスタチン.*ロスバスタチン", page)

    def test_record_shows_each_item_with_its_source_and_date(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        page = text_of(client.get("/me/record").text)
        assert "本態性高血圧症" in page
        assert "急性気管支炎" in page.split("過去の病気")[1]
        assert "ペニシリン系抗菌薬" in page
        assert f"記録元: {CLINIC_B[1]}" in page
        assert "インフルエンザ" in page and CITY[1] in page
        assert "身体障害者手帳 4級" in page

    def test_results_have_trend_charts_with_reference_bands(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        html = client.get("/me/results").text
        for key in ("HbA1c", "血圧", "LDL", "eGFR", "BMI", "体重"):
            assert key in html
        assert html.count('<svg viewBox="0 0 640 260" role="img"') == 6
        assert html.count('class="band"') >= 5  # weight has no reference range
        assert 'class="series series-1"' in html  # diastolic blood pressure
        assert "保健指導判定値" in html

    def test_visits_are_a_timeline_by_year(self, client: TestClient, hanako: str) -> None:
        sign_in(client, hanako)
        page = text_of(client.get("/me/visits").text)
        assert "めまい" in page and CLINIC_B[1] in page
        years = re.findall(r"(\d{4}) 年", page)
        assert years == sorted(years, reverse=True) and len(years) >= 3

    def test_home_counts_what_is_new_since_the_previous_visit(
        self, client: TestClient, hanako: str, session: Session
    ) -> None:
        sign_in(client, hanako)
        assert "初めてのご利用です" in client.get("/me").text
        hospital_reads_observations(session, hanako)  # someone looks (no consent: 0 rows)
        session.commit()
        client.cookies.clear()
        sign_in(client, hanako)
        page = text_of(client.get("/me").text)
        assert "前回のご利用" in page
        assert re.search(r"(\d+) 件の、他の人による閲覧", page)

    @pytest.mark.parametrize("lang", ["ja", "en"])
    def test_every_page_renders_in_both_languages(
        self, client: TestClient, hanako: str, lang: str
    ) -> None:
        sign_in(client, hanako)
        for path in ("/", *PAGES):
            r = client.get(f"{path}?lang={lang}")
            assert r.status_code == 200, path
            assert f'<html lang="{lang}">' in r.text
            assert r.headers["content-language"] == lang

    def test_the_language_switch_is_remembered(self, client: TestClient, hanako: str) -> None:
        sign_in(client, hanako)
        r = client.get("/lang/en?return_to=/me/medicines", follow_redirects=False)
        assert r.headers["location"] == "/me/medicines"
        page = client.get("/me/medicines").text
        assert "My medicines" in page and "Prescribed by" in page
        assert client.get("/lang/ja?return_to=https://evil.example").headers.get("content-language")


class TestCatalogues:
    def test_both_catalogues_have_the_same_keys(self) -> None:
        from phr.web.i18n import catalogue

        assert set(catalogue("ja")) == set(catalogue("en"))

    def test_templates_use_only_keys_that_exist(self) -> None:
        from pathlib import Path

        from phr.web.i18n import catalogue

        keys = set(catalogue("ja"))
        used: set[str] = set()
        for path in (Path(__file__).parents[2] / "phr" / "web" / "templates").glob("*.html"):
            used |= set(re.findall(r"\bt\(\s*[\"']([a-z_.0-9-]+)[\"']", path.read_text()))
        assert {k for k in used if not k.endswith(".")} - keys == set()

    def test_templates_hold_no_words_outside_the_catalogues(self) -> None:
        from pathlib import Path

        for path in (Path(__file__).parents[2] / "phr" / "web" / "templates").glob("*.html"):
            text = re.sub(r"\{[{%#].*?[}%#]\}", "", path.read_text(), flags=re.S)
            text = re.sub(r"<[^>]+>", " ", text)
            leftovers = [w for w in re.findall(r"[^\s—·–()（）:/,.|&;]+", text) if w]
            assert leftovers == [], f"{path.name}: {leftovers[:10]}"


class TestDownloads:
    def test_the_whole_record_downloads_as_a_valid_fhir_bundle(
        self, client: TestClient, hanako: str
    ) -> None:
        from fhir.resources.R4B.bundle import Bundle

        sign_in(client, hanako)
        r = client.get("/me/download/record.json")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/fhir+json")
        assert "attachment" in r.headers["content-disposition"]
        bundle = Bundle.model_validate(r.json())
        types = {e.resource.get_resource_type() for e in bundle.entry or []}
        assert {"Patient", "Observation", "MedicationRequest", "Immunization"} <= types

    def test_the_patient_summary_is_an_ips_document(self, client: TestClient, hanako: str) -> None:
        from fhir.resources.R4B.bundle import Bundle

        sign_in(client, hanako)
        doc = client.get("/me/download/summary.json").json()
        Bundle.model_validate(doc)
        assert doc["type"] == "document"
        assert doc["entry"][0]["resource"]["resourceType"] == "Composition"

    def test_the_printable_page_has_the_record_and_a_print_style(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        html = client.get("/me/print").text
        assert 'media="print"' in html
        assert "ペニシリン系抗菌薬" in html and "アムロジピン" in html

    def test_the_printable_page_has_the_last_two_years_unless_asked_for_all(
        self, client: TestClient, session: Session
    ) -> None:
        from consent.identity import cards
        from tests.web.story import TARO, ingest_story

        rid = ingest_story(session, TARO, years=4, per_year=2)
        cards.issue_card(session, rid)
        session.commit()
        sign_in(client, rid)
        recent = client.get("/me/print").text
        every = client.get("/me/print?all=1").text
        old_year = str(date.today().year - 3)
        assert "以降のものです" in recent and "以降のものです" not in every
        assert f"{old_year}-" not in text_of(recent).split("すべての結果")[-1]
        assert f"{old_year}-" in text_of(every).split("すべての結果")[-1]

    def test_downloads_are_in_the_access_log_as_my_own_looks(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        client.get("/me/download/record.json")
        page = text_of(client.get("/me/access-log?own=1").text)
        assert "ご本人の閲覧" in page


class TestSharing:
    def add(self, client: TestClient, **fields: Any) -> Any:
        token = csrf_of(client.get("/me/sharing").text)
        return client.post("/me/sharing", data={"csrf_token": token, **fields})

    def test_a_consent_lets_a_hospital_read_and_revoking_it_stops_the_next_read(
        self, client: TestClient, hanako: str, session: Session
    ) -> None:
        from consent.identity.clients import register_organization

        register_organization(session, id=HOSPITAL[0], name=HOSPITAL[1], kind=HOSPITAL[2])
        session.commit()
        sign_in(client, hanako)
        assert hospital_reads_observations(session, hanako) == 0
        r = self.add(client, recipient=f"organization:{HOSPITAL[0]}", purpose=["TREAT"])
        assert r.status_code == 200 and "同意を追加しました" in r.text
        page = text_of(r.text)
        assert f"誰に {HOSPITAL[1]}" in page and "何のために 診療" in page
        assert hospital_reads_observations(session, hanako) == 5
        session.commit()
        log = text_of(client.get("/me/access-log").text)
        assert HOSPITAL[1] in log and "診療" in log
        consent_id = re.search(r'action="/me/sharing/([^/"]+)/revoke"', r.text)
        assert consent_id
        r = client.post(
            f"/me/sharing/{consent_id.group(1)}/revoke",
            data={"csrf_token": csrf_of(r.text)},
        )
        assert "取り消し済み" in r.text
        assert hospital_reads_observations(session, hanako) == 0
        with pytest.raises(NotFound):
            RecordReader(session, hospital_actor(), Purpose.TREATMENT).read("Patient", hanako)

    def test_a_consent_can_be_changed_in_plain_words(self, client: TestClient, hanako: str) -> None:
        sign_in(client, hanako)
        r = self.add(
            client,
            recipient="org_kind:pharmacy",
            purpose=["MEDREVIEW"],
            data=["MedicationRequest", "MedicationDispense"],
            until="2099-03-31",
        )
        page = text_of(r.text)
        assert "薬局" in page and "2099-03-31" in page and "処方" in page
        consent_id = re.search(r'href="/me/sharing/([^/"]+)/edit"', r.text)
        assert consent_id
        edit = client.get(f"/me/sharing/{consent_id.group(1)}/edit").text
        assert 'value="org_kind:pharmacy" selected' in edit
        r = client.post(
            f"/me/sharing/{consent_id.group(1)}",
            data={
                "csrf_token": csrf_of(edit),
                "recipient": "org_kind:pharmacy",
                "purpose": ["MEDREVIEW", "TREAT"],
                "until": "2099-12-31",
            },
        )
        assert "同意を変更しました" in r.text and "2099-12-31" in r.text

    def test_bad_input_is_explained_and_nothing_is_saved(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        r = self.add(client, recipient="org_kind:clinic")
        assert r.status_code == 400 and "目的を1つ以上選んでください" in r.text
        r = self.add(client, recipient="org_kind:clinic", purpose=["TREAT"], until="2001-01-01")
        assert r.status_code == 400 and "期限は今日より後の日付" in r.text
        assert "同意はまだありません" in client.get("/me/sharing").text

    def test_the_emergency_switch_and_the_preview_of_what_a_paramedic_sees(
        self, client: TestClient, hanako: str
    ) -> None:
        sign_in(client, hanako)
        page = client.get("/me/emergency").text
        assert "救急隊員には何も見えません" in page
        r = client.post("/me/emergency", data={"csrf_token": csrf_of(page), "enabled": "on"})
        preview = text_of(r.text)
        assert "救急時の情報開示に同意しました" in preview
        assert "ペニシリン系抗菌薬" in preview and "本態性高血圧症" in preview
        assert "アムロジピン" in preview
        assert "インフルエンザ" not in preview  # vaccinations are not in the emergency set
        assert "LDL" in preview  # key recent results are in the emergency set (issue 5)
        r = client.post("/me/emergency", data={"csrf_token": csrf_of(r.text), "enabled": "off"})
        assert "救急隊員には何も見えません" in r.text

    def test_the_preview_leaves_out_what_the_residents_own_deny_rule_withholds(
        self, client: TestClient, session: Session, hanako: str
    ) -> None:
        from consent.actors import Actor
        from consent.policy import schemas as cs
        from consent.policy.service import create_consent

        sign_in(client, hanako)
        page = client.get("/me/emergency").text
        client.post("/me/emergency", data={"csrf_token": csrf_of(page), "enabled": "on"})
        no_allergies_for_ems = cs.ConsentCreate.model_validate(
            {
                "decision": "deny",
                "recipients": [{"kind": "org_kind", "value": "ems"}],
                "purposes": ["ETREAT"],
                "data_classes": ["AllergyIntolerance"],
            }
        )
        me = Actor(kind="resident", resident_id=hanako, client_id="resident-web")
        create_consent(session, me, no_allergies_for_ems)
        session.commit()
        preview = text_of(client.get("/me/emergency").text)
        assert "ペニシリン系抗菌薬" not in preview and "本態性高血圧症" in preview
        assert "「見せない」と決めた 1 件は含まれていません" in preview

    def test_trusted_persons_are_added_and_removed(self, client: TestClient, hanako: str) -> None:
        sign_in(client, hanako)
        token = csrf_of(client.get("/me/sharing").text)
        r = client.post("/me/trusted", data={"csrf_token": token, "person": "daughter-001"})
        assert "daughter-001" in r.text
        r = client.post(
            "/me/trusted/remove", data={"csrf_token": csrf_of(r.text), "person": "daughter-001"}
        )
        assert "登録している人はいません" in r.text


class TestInbox:
    def test_notifications_are_listed_and_marked_read(
        self, client: TestClient, hanako: str, session: Session
    ) -> None:
        from consent import notifications

        notifications.notify(
            session,
            resident_id=hanako,
            kind="finding",
            title="新しい所見があります",
            body="お薬の重複について薬剤師からのお知らせがあります。",
        )
        session.commit()
        sign_in(client, hanako)
        assert "1 件の未読のお知らせ" in text_of(client.get("/me").text)
        page = client.get("/me/notifications").text
        assert "新しい所見があります" in page
        nid = re.search(r'action="/me/notifications/([^/"]+)/read"', page)
        assert nid
        r = client.post(
            f"/me/notifications/{nid.group(1)}/read", data={"csrf_token": csrf_of(page)}
        )
        assert 'action="/me/notifications/' not in r.text


class TestDemoCards:
    def test_the_demo_citys_example_residents_get_one_demo_card_each(
        self, session: Session, client: TestClient
    ) -> None:
        from phr.web.demo import issue_demo_cards
        from tests.web.story import TARO, ingest_story

        rid = ingest_story(session, TARO, years=1, per_year=1)
        assert issue_demo_cards([rid]) == 1
        assert issue_demo_cards([rid]) == 0
        assert f'name="resident_id" value="{rid}"' in client.get("/me/signin").text
