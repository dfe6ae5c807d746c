"""Demo receiving hospitals around Tsukuba (synthetic: fictional names, approximate
positions, invented capabilities and beds) and the triage service's organisation.

The two hospitals of the demo city (:mod:`phr.demo.orgs`) are included; the others are
registered here as organisations without OAuth2 clients (``phr org add`` gives one a
client, which can then report its availability).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from consent.identity.clients import register_organization
from phr.demo.orgs import CLINICS, SYNTHEA
from phr.triage import repository
from phr.triage.schemas import CAPABILITIES
from phr.triage.service import TRIAGE_ORGANIZATION

__all__ = ["HOSPITALS", "DemoHospital", "seed_hospitals"]


@dataclass(frozen=True)
class DemoHospital:
    id: str
    name: str
    lat: float
    lon: float
    capabilities: tuple[str, ...]
    accepts_24h: bool
    beds: int


_GAKUEN = next(o for o in CLINICS if o.kind == "hospital")
_ALL = CAPABILITIES

HOSPITALS: tuple[DemoHospital, ...] = (
    DemoHospital(
        _GAKUEN.id,
        _GAKUEN.name,
        36.0835,
        140.1115,
        ("ct", "mri", "cath_lab", "stroke", "dialysis"),
        True,
        6,
    ),
    DemoHospital(
        SYNTHEA.id,
        SYNTHEA.name,
        36.0570,
        140.1240,
        ("ct", "mri", "trauma", "obstetrics", "paediatrics"),
        True,
        5,
    ),
    DemoHospital(
        "tsukuba-academic-medical-center",
        "筑波学術医療センター（架空）",
        36.1140,
        140.1030,
        _ALL,
        True,
        8,
    ),
    DemoHospital(
        "yatabe-emergency-hospital",
        "谷田部救急病院（架空）",
        36.0370,
        140.0760,
        ("ct", "trauma", "stroke"),
        True,
        4,
    ),
    DemoHospital(
        "hojo-memorial-hospital",
        "北条記念病院（架空）",
        36.1600,
        140.0850,
        ("ct", "dialysis"),
        False,
        3,
    ),
    DemoHospital(
        "kenkyu-gakuen-general-hospital",
        "研究学園総合病院（架空）",
        36.0800,
        140.0800,
        ("ct", "mri", "cath_lab", "stroke"),
        True,
        5,
    ),
    DemoHospital(
        "tsuchiura-rinko-medical-center",
        "土浦臨湖医療センター（架空）",
        36.0780,
        140.2050,
        ("ct", "mri", "cath_lab", "stroke", "trauma", "obstetrics", "paediatrics", "burns"),
        True,
        8,
    ),
    DemoHospital(
        "ushiku-midori-hospital",
        "牛久みどり病院（架空）",
        35.9780,
        140.1500,
        ("ct", "dialysis", "obstetrics"),
        True,
        4,
    ),
    DemoHospital(
        "mirai-central-hospital",
        "みらい中央病院（架空）",
        35.9630,
        140.0370,
        ("ct", "trauma", "paediatrics"),
        True,
        4,
    ),
    DemoHospital(
        "shimotsuma-kokoro-hospital",
        "下妻こころの病院（架空）",
        36.1840,
        139.9670,
        ("psychiatry",),
        True,
        3,
    ),
    DemoHospital(
        "tsukuba-east-childrens-hospital",
        "つくば東こども病院（架空）",
        36.0950,
        140.1550,
        ("ct", "paediatrics"),
        True,
        4,
    ),
    DemoHospital(
        "joso-medical-hospital",
        "常総メディカル病院（架空）",
        36.0230,
        139.9940,
        ("ct", "mri", "dialysis"),
        False,
        3,
    ),
)


def seed_hospitals(session: Session) -> int:
    """Register the demo hospitals (idempotent; current availability is left as it is)."""
    register_organization(
        session,
        id=TRIAGE_ORGANIZATION,
        name="つくばPHR トリアージサービス",
        kind="service_provider",
    )
    for h in HOSPITALS:
        register_organization(session, id=h.id, name=h.name, kind="hospital")
        repository.upsert_hospital(
            session,
            organization_id=h.id,
            name=h.name,
            latitude=h.lat,
            longitude=h.lon,
            capabilities=list(h.capabilities),
            accepts_24h=h.accepts_24h,
            free_beds=h.beds,
        )
    return len(HOSPITALS)
