"""Fixtures of the gateway tests: the organisations that send files, synthetic My Numbers.

The database and the ``session`` fixture come from ``tests/conftest.py`` (SQLite, or
PostgreSQL when ``PHR_TEST_DATABASE_URL`` is set; a rollback per test).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_gateway.models import IdentityLink
from phr.store.models import Resource

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"

CITY = "tsukuba-city"
INSURER = "kyokai-ibaraki"
INSURER_2 = "kenpo-tsukuba"
LOINC = "http://loinc.org"


def mynumber(body: str) -> str:
    """A synthetic 個人番号: 11 digits of your choosing plus the correct check digit.

    The check digit of 総務省令「行政手続における特定の個人を識別するための番号の利用等に
    関する法律施行令第八条及び...」第五条: weights 2..7, 2..6 from the right.
    """
    assert len(body) == 11 and body.isdigit()
    total = 0
    for n in range(1, 12):
        q = n + 1 if n <= 6 else n - 5
        total += int(body[11 - n]) * q
    rem = total % 11
    return body + str(0 if rem <= 1 else 11 - rem)


# The people of the example files (docs/examples/*.csv). Synthetic: no real person.
HANAKO = mynumber("10000000001")  # 筑波 花子, 国保 of the city, then 協会けんぽ
TARO = mynumber("10000000002")  # 研究 太郎, 協会けんぽ 茨城支部
SAKURA = mynumber("10000000003")  # 学園 さくら, an infant
ICHIRO = mynumber("10000000004")  # 桜 一郎
KEN = mynumber("10000000005")  # 北条 健


@pytest.fixture
def orgs(session: Session) -> dict[str, str]:
    """The city (municipality) and two insurers, registered as organisations."""
    from consent.models import Organization
    from phr.store.indexer import utcnow

    rows = {
        CITY: ("つくば市", "municipality"),
        INSURER: ("全国健康保険協会 茨城支部", "insurer"),
        INSURER_2: ("つくば研究学園健康保険組合", "insurer"),
    }
    for org_id, (name, kind) in rows.items():
        if session.get(Organization, org_id) is None:
            session.add(Organization(id=org_id, name=name, kind=kind, created_at=utcnow()))
    session.flush()
    return {"city": CITY, "insurer": INSURER, "insurer2": INSURER_2}


def person(mn: str | None = TARO, **over: str) -> dict[str, str]:
    """The person columns of a row (研究 太郎 unless overridden)."""
    cells = {
        "mynumber": mn or "",
        "insurer_number": "",
        "insured_number": "",
        "family_name": "研究",
        "given_name": "太郎",
        "family_name_kana": "ケンキュウ",
        "given_name_kana": "タロウ",
        "birth_date": "1962-11-23",
        "sex": "M",
        "postal_code": "305-0047",
    }
    cells.update(over)
    return cells


def write_csv(path: Path, rows: list[dict[str, str]], *, encoding: str = "utf-8") -> Path:
    """Write rows (dicts; the header is the union of their keys, in order) as CSV."""
    import csv

    header: list[str] = []
    for r in rows:
        header += [k for k in r if k not in header]
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


# ---- reading what was stored (plain functions, shared by the import tests) ---------------


def count(session: Session, model: type = Resource, **where: Any) -> int:
    stmt = select(func.count()).select_from(model)
    for k, v in where.items():
        stmt = stmt.where(getattr(model, k) == v)
    return int(session.scalar(stmt) or 0)


def stored(session: Session, rtype: str, resident: str | None = None) -> list[dict[str, Any]]:
    stmt = select(Resource.content).where(
        Resource.resource_type == rtype, Resource.deleted.is_(False)
    )
    if resident:
        stmt = stmt.where(Resource.resident_id == resident)
    return [orjson.loads(c) for c in session.scalars(stmt)]


def coding(cc: dict[str, Any], system: str) -> dict[str, Any]:
    return next(c for c in cc["coding"] if c["system"] == system)


def by_loinc(observations: list[dict[str, Any]], code: str) -> dict[str, Any]:
    return next(o for o in observations if coding(o["code"], LOINC)["code"] == code)


def resident_of(session: Session, mn: str) -> str:
    from fhir_gateway.identity import hash_mynumber

    return str(
        session.scalar(
            select(IdentityLink.resident_id).where(
                IdentityLink.kind == "mynumber", IdentityLink.value == hash_mynumber(mn)
            )
        )
    )


def checkup_row(mn: str = TARO, **over: str) -> dict[str, str]:
    row = person(mn) | {
        "checkup_date": "2025-06-10",
        "institution": "つくば市健診センター",
        "height_cm": "171.2",
        "weight_kg": "78.9",
        "bmi": "26.9",
        "waist_cm": "92.5",
        "sbp": "142",
        "dbp": "91",
        "hba1c_ngsp": "6.8",
        "fasting_glucose": "131",
        "ldl": "158",
        "hdl": "38",
        "triglycerides": "210",
        "ast": "35",
        "alt": "42",
        "ggt": "68",
        "creatinine": "1.02",
        "egfr": "58.7",
        "urine_protein": "+",
    }
    row.update(over)
    return row
