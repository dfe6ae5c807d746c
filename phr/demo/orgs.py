"""The demo city's organisations and their OAuth2 clients.

All names but the cities', the fire department's and the insurers' are fictional. Client
ids are fixed (``demo-<organisation id>``); secrets are random and exist in clear only in
``demo-credentials.json`` (mode 0600). A re-run keeps the clients whose secret the file
still holds; a client without a known secret (the file was lost, or belongs to another
database) is deleted and registered again — there is no rotation API.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from consent.identity.clients import register_client, register_organization, verify_secret
from consent.models import OAuthClient

__all__ = [
    "CLINICS",
    "ORGANIZATIONS",
    "SCOPES",
    "SYNTHEA",
    "DemoOrg",
    "ensure_clients",
    "read_credentials",
    "write_credentials",
]

MEDICAL_INSTITUTION_NO = "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no"
INSURER_NO = "urn:oid:1.2.392.100495.20.3.61"  # JP Core 保険者番号
LOCAL_GOVERNMENT_CODE = "urn:phr:id:local-government-code"  # 全国地方公共団体コード (6 digits)


@dataclass(frozen=True)
class DemoOrg:
    id: str
    name: str
    kind: str
    identifier_system: str | None = None
    identifier_value: str | None = None

    @property
    def client_id(self) -> str:
        return f"demo-{self.id}"

    @property
    def scopes(self) -> list[str]:
        return SCOPES[self.kind]


SCOPES: dict[str, list[str]] = {
    "clinic": ["system/*.rs", "system/Bundle.c", "system/*.cud"],
    "hospital": ["system/*.rs", "system/Bundle.c", "system/*.cud"],
    "pharmacy": ["system/*.rs"],
    "ems": ["system/*.rs"],
    "nurse_station": ["system/*.rs"],
    "municipality": ["system/*.rs", "system/Bundle.c"],
    "insurer": ["system/*.rs", "system/Bundle.c"],
}

# 10-digit 医療機関コード: 都道府県 08 (茨城県), 点数表 1 (医科) / 4 (調剤) / 6 (訪問看護),
# then 7 fictional digits.
CLINICS: tuple[DemoOrg, ...] = (
    DemoOrg(
        "tsukuba-chuo-clinic",
        "つくば中央クリニック",
        "clinic",
        MEDICAL_INSTITUTION_NO,
        "0819010016",
    ),
    DemoOrg("takezono-naika", "竹園内科医院", "clinic", MEDICAL_INSTITUTION_NO, "0819010024"),
    DemoOrg(
        "tsukuba-gakuen-hospital",
        "つくば学園病院",
        "hospital",
        MEDICAL_INSTITUTION_NO,
        "0819010032",
    ),
)
SYNTHEA = DemoOrg(
    "synthea-general-hospital",
    "Synthea総合病院（米国の合成データ）",
    "hospital",
    MEDICAL_INSTITUTION_NO,
    "0819010040",
)
ORGANIZATIONS: tuple[DemoOrg, ...] = (
    *CLINICS,
    DemoOrg(
        "gakuen-sakura-pharmacy", "学園さくら薬局", "pharmacy", MEDICAL_INSTITUTION_NO, "0849010018"
    ),
    DemoOrg("tsukuba-fire", "つくば市消防本部", "ems"),
    DemoOrg(
        "tsukuba-home-nursing",
        "つくば在宅訪問看護ステーション",
        "nurse_station",
        MEDICAL_INSTITUTION_NO,
        "0869010014",
    ),
    DemoOrg("tsukuba-city", "つくば市", "municipality", LOCAL_GOVERNMENT_CODE, "082201"),
    DemoOrg("tsuchiura-city", "土浦市", "municipality", LOCAL_GOVERNMENT_CODE, "082031"),
    DemoOrg(
        "kyokai-ibaraki",
        "全国健康保険協会 茨城支部（協会けんぽ）",
        "insurer",
        INSURER_NO,
        "01080016",
    ),
    DemoOrg("tsukuba-kokuho", "つくば市国民健康保険", "insurer", INSURER_NO, "083220"),
    SYNTHEA,
)


def read_credentials(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _known_secrets(creds: dict[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in (creds or {}).get("clients", []) or []:
        if isinstance(c, dict) and c.get("client_id") and c.get("client_secret"):
            out[str(c["client_id"])] = str(c["client_secret"])
    return out


def ensure_clients(
    session: Session, orgs: tuple[DemoOrg, ...], creds: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], bool]:
    """Register missing organisations and clients. Returns the client entries of the
    credentials file and whether any secret changed."""
    known = _known_secrets(creds)
    entries: list[dict[str, Any]] = []
    changed = False
    for org in orgs:
        register_organization(
            session,
            id=org.id,
            name=org.name,
            kind=org.kind,
            identifier_system=org.identifier_system,
            identifier_value=org.identifier_value,
        )
        row = session.get(OAuthClient, org.client_id)
        secret = known.get(org.client_id)
        keep = (
            row is not None
            and secret is not None
            and row.organization_id == org.id
            and set(row.scopes.split()) == set(org.scopes)
            and verify_secret(secret, row.client_secret_hash)
        )
        if not keep:
            if row is not None:
                print(
                    f"[demo] client {org.client_id}: no usable secret on file, re-registering",
                    file=sys.stderr,
                )
                session.delete(row)
                session.flush()
            _client, secret = register_client(
                session,
                organization_id=org.id,
                name=f"{org.name} (demo)",
                scopes=org.scopes,
                client_id=org.client_id,
            )
            changed = True
        assert secret is not None
        entries.append(
            {
                "organization": org.id,
                "organization_name": org.name,
                "kind": org.kind,
                "client_id": org.client_id,
                "client_secret": secret,
                "scopes": org.scopes,
            }
        )
    return entries, changed


def write_credentials(path: Path, data: dict[str, Any]) -> None:
    """Write atomically with mode 0600 (the file holds client secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)
        fh.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
