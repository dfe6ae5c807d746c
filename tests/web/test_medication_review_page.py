"""The medicines page shows the polypharmacy service's findings in plain words — read by
that service under its own privacy impact assessment — and says so when it cannot run."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.web.conftest import sign_in


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_findings_are_shown_in_plain_words(
    client: TestClient, session: Session, hanako: str
) -> None:
    from consent.pia.service import seed_platform_pias
    from phr.polypharmacy.master import import_drug_list
    from tests.conftest import DRUGS_CSV

    seed_platform_pias(session)
    import_drug_list(session, DRUGS_CSV)  # the national drug master (phr drugs import)
    session.commit()
    sign_in(client, hanako)
    page = text_of(client.get("/me/medicines").text)
    review = page.split("お薬の組み合わせの確認", 1)[1].split("現在のお薬")[0]
    assert "自己判断でお薬をやめないでください" in review
    assert "アムロジピン" in review  # the same ingredient from two clinics
    assert re.search(r"(重要|注意|参考) ", review)


def test_without_the_services_assessment_the_check_is_unavailable(
    client: TestClient, hanako: str
) -> None:
    sign_in(client, hanako)
    page = text_of(client.get("/me/medicines").text)
    assert "お薬の確認はいま利用できません" in page
