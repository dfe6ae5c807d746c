"""Demo: the example residents have given the emergency pre-consent and recorded an ACP
(synthetic wishes), so that the paramedic flow shows something at once."""

from __future__ import annotations

from collections.abc import Sequence

from consent.actors import Actor
from consent.policy import schemas as policy_schemas
from consent.policy import service as policy
from phr.acp import repository, schemas, service
from phr.db import transaction

_PLANS = (
    schemas.AcpContent(
        own_words="最期まで自宅で、家族と過ごしたい。機械につながれての延命は望まない。",
        treatments=schemas.Treatments(
            resuscitation="do_not_want",
            intubation="do_not_want",
            intensive_care="do_not_want",
            tube_feeding="do_not_want",
            dialysis="undecided",
            transfusion="want",
        ),
        place_of_care="home",
        place_of_death="home",
        what_matters="孫の成長を見守ること",
        contacts=[schemas.Person(name="長男", relationship="長男", phone="090-0000-0001")],
        spokesperson=schemas.Person(name="長女", relationship="長女"),
    ),
    schemas.AcpContent(
        own_words="回復の見込みがあるなら、できる治療は受けたい。",
        treatments=schemas.Treatments(
            resuscitation="want",
            intubation="trial",
            intensive_care="want",
            tube_feeding="trial",
            dialysis="want",
            transfusion="want",
        ),
        place_of_care="hospital",
        place_of_death="undecided",
        religious_cultural="輸血は可",
        contacts=[schemas.Person(name="配偶者", relationship="妻", phone="090-0000-0002")],
    ),
)


def seed(resident_ids: Sequence[str]) -> int:
    """Idempotent: residents who already have an ACP are left alone."""
    done = 0
    for i, rid in enumerate(resident_ids):
        with transaction() as session:
            if repository.consent_id_of(session, rid) is not None:
                continue
            resident = Actor(kind="resident", resident_id=rid, client_id="demo")
            policy.set_emergency_consent(
                session, resident, policy_schemas.EmergencyConsentIn(enabled=True)
            )
            service.save(
                session=session,
                actor=resident,
                body=schemas.AcpSave(content=_PLANS[i % len(_PLANS)]),
            )
            done += 1
    return done
