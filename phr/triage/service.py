"""Triage services: symptom triage for residents (anonymous or signed in), severity scores
for organisations, and the receiving-hospital registry with transport planning.

The PHR is read only by the triage service itself — an actor with ``service="triage"``
acting for the platform's triage organisation — through :class:`RecordReader` under the
TRIAGE purpose. The consent engine therefore decides: the triage PIA must be approved and
the resident must have a consent that permits this recipient (the triage organisation,
``service_provider`` organisations, or anyone) for TRIAGE. Without it the advice is the
anonymous one, and the answer says why.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy.orm import Session

from consent import engine
from consent.actors import Actor, Purpose
from fhir_gateway.validation import validate_resource
from phr.errors import Forbidden, InvalidInput, NotFound, UnprocessableResource
from phr.store import repository as repo
from phr.store.indexer import utcnow
from phr.store.reader import RecordReader
from phr.triage import protocols, repository, risk, scores, transport
from phr.triage import schemas as s

__all__ = [
    "READ_TYPES",
    "TRIAGE_ORGANIZATION",
    "evaluate",
    "get_complaint",
    "list_complaints",
]

JST = timezone(timedelta(hours=9))
TRIAGE_ORGANIZATION = "phr-triage"
READ_TYPES = (
    "Patient",
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "MedicationDispense",
    "Procedure",
    "Observation",
)
URGENCY_SYSTEM = "urn:phr:triage:urgency"
# Child protocols below this age, adult ones from it (the adult NICE guidelines cited are
# for people over 16).
CHILD_UNTIL = 16
PROTOCOL_SYSTEM = "urn:phr:triage:protocol"

LABELS = {
    "red": ("赤：今すぐ119番で救急車を", "Red: call 119 for an ambulance now"),
    "orange": ("橙：1時間以内に医療機関の受診を", "Orange: see a doctor within about 1 hour"),
    "yellow": ("黄：6時間以内を目安に受診を", "Yellow: see a doctor within about 6 hours"),
    "green": (
        "緑：翌日の受診、またはオンライン診療を",
        "Green: see a doctor tomorrow, or use an online consultation",
    ),
    "white": ("白：セルフケアで様子を見てください", "White: self-care at home"),
}
STEPS = {
    "call_119": ("119番に電話して救急車を呼ぶ", "Call 119 for an ambulance", "119"),
    "night_clinic": (
        "夜間・休日の急患診療所（当番医）を受診する",
        "Go to the night and holiday emergency clinic (duty doctor)",
        None,
    ),
    "hospital_now": (
        "今すぐ医療機関（かかりつけ医・救急外来）を受診する",
        "See a doctor now (your family doctor or an emergency department)",
        None,
    ),
    "child_online_clinic": (
        "こどもの休日・夜間オンライン診療を受ける",
        "Use the children's holiday and night online clinic",
        None,
    ),
    "online_consultation": (
        "オンライン診療・医療相談を受ける",
        "Have an online consultation",
        None,
    ),
    "family_doctor": (
        "かかりつけ医を受診する（診療時間内）",
        "See your family doctor (during opening hours)",
        None,
    ),
    "call_7119": (
        "迷ったら救急安心センター（#7119）に電話する",
        "If unsure, call the emergency advice line #7119",
        "#7119",
    ),
    "call_8000": (
        "迷ったら子ども医療電話相談（#8000）に電話する",
        "If unsure, call the children's medical helpline #8000",
        "#8000",
    ),
    "self_care": ("自宅でセルフケア（市販薬）", "Self-care at home (over-the-counter)", None),
}
DISCLAIMER = s.Text(
    ja="これは受診の目安であり診断ではありません。迷ったときや悪くなったときは#7119（こどもは#8000）、"
    "命に関わると思ったら119番へ。",
    en="This is guidance on how urgently to seek care, not a diagnosis. If unsure or getting "
    "worse call #7119 (children #8000); if life is at risk call 119.",
)


def _text(pair: dict[str, str] | tuple[str, ...]) -> s.Text:
    if isinstance(pair, dict):
        return s.Text(ja=pair["ja"], en=pair["en"])
    return s.Text(ja=pair[0], en=pair[1])


# ---- complaints ---------------------------------------------------------------------------------


def list_complaints() -> list[s.ComplaintSummary]:
    return [
        s.ComplaintSummary(
            id=p.id, version=p.version, title=_text(p.title), population=p.population
        )
        for p in protocols.all_protocols().values()
    ]


def _protocol(complaint: str) -> protocols.Protocol:
    p = protocols.get_protocol(complaint)
    if p is None:
        raise NotFound(f"no triage protocol {complaint!r}")
    return p


def get_complaint(complaint: str) -> s.ComplaintRead:
    p = _protocol(complaint)
    return s.ComplaintRead(
        id=p.id,
        version=p.version,
        title=_text(p.title),
        population=p.population,
        questions=[
            s.QuestionRead(
                id=q.id,
                type=q.type,
                text=_text(q.text),
                unit=q.unit,
                min=q.minimum,
                max=q.maximum,
                options=list(q.options),
            )
            for q in p.questions
        ],
        sources=p.sources,
        risk_factors=sorted({r.factor for r in p.risk_factors}),
    )


TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"


def _with_english(text: dict[str, str]) -> dict[str, Any]:
    """``_text`` element carrying the English translation of a Japanese string."""
    return {
        "extension": [
            {
                "url": TRANSLATION,
                "extension": [
                    {"url": "lang", "valueCode": "en"},
                    {"url": "content", "valueString": text["en"]},
                ],
            }
        ]
    }


def questionnaire(complaint: str) -> dict[str, Any]:
    """The protocol as a FHIR R4 Questionnaire (Japanese text, English as translations);
    the recorded QuestionnaireResponses point to it by ``url|version``."""
    p = _protocol(complaint)
    items = []
    for q in p.questions:
        item: dict[str, Any] = {
            "linkId": q.id,
            "text": q.text["ja"],
            "_text": _with_english(q.text),
            "type": {"boolean": "boolean", "number": "decimal", "choice": "choice"}[q.type],
        }
        if q.type == "choice":
            item["answerOption"] = [
                {
                    "valueCoding": {
                        "system": f"{PROTOCOL_SYSTEM}:{q.id}",
                        "code": o["id"],
                        "display": o["text"]["ja"],
                    }
                }
                for o in q.options
            ]
        items.append(item)
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": f"triage-{p.id.replace('_', '-')}",
        "url": f"{PROTOCOL_SYSTEM}:{p.id}",
        "version": p.version,
        "name": "".join(part.title() for part in p.id.split("_")),
        "title": p.title["ja"],
        "_title": _with_english(p.title),
        "status": "active",
        "subjectType": ["Patient"],
        "language": "ja",
        "description": "Sources: " + " | ".join(p.sources.values()),
        "item": items,
    }
    problems = validate_resource(resource)
    if problems:  # a protocol file that cannot be expressed is a defect of the file
        raise UnprocessableResource(f"{p.id} is not a valid Questionnaire", issues=problems)
    return resource


# ---- next steps ---------------------------------------------------------------------------------


def is_night_or_weekend(at: datetime) -> bool:
    local = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(JST)
    return local.weekday() >= 5 or local.hour >= 18 or local.hour < 8


def next_steps(level: str, *, child: bool, at: datetime) -> list[s.NextStep]:
    night = is_night_or_weekend(at)
    helpline = "call_8000" if child else "call_7119"
    ids: list[str]
    if level == "red":
        ids = ["call_119"]
    elif level == "orange":
        ids = ["night_clinic" if night else "hospital_now", helpline]
    elif level == "yellow":
        if night:
            ids = ["night_clinic", "child_online_clinic" if child else "online_consultation"]
        else:
            ids = ["family_doctor", "online_consultation"]
        ids.append(helpline)
    elif level == "green":
        ids = ["family_doctor", "child_online_clinic" if child and night else "online_consultation"]
    else:
        ids = ["self_care", helpline]
    return [s.NextStep(id=i, label=_text(STEPS[i][:2]), contact=STEPS[i][2]) for i in ids]


# ---- evaluating ---------------------------------------------------------------------------------


def triage_actor(resident_actor: Actor) -> Actor:
    """The triage service reading for the signed-in resident (never for anyone else)."""
    return Actor(
        kind="organization",
        organization_id=TRIAGE_ORGANIZATION,
        organization_kind="service_provider",
        client_id=resident_actor.client_id or "triage",
        scopes=frozenset({"system/*.rs"}),
        service="triage",
    )


def _read_phr(
    session: Session, resident_actor: Actor, resident_id: str
) -> tuple[s.PhrUse, list[dict[str, Any]]]:
    actor = triage_actor(resident_actor)
    decisions = [
        engine.decide(session, actor, Purpose.TRIAGE, resident_id=resident_id, resource_type=t)
        for t in READ_TYPES
    ]
    if not any(d.permit for d in decisions):
        why = decisions[0].reason
        if "privacy impact" in why:
            reason = s.Text(
                ja="トリアージサービスのプライバシー影響評価（PIA）が承認されていないため、記録は使っていません。"
                "回答だけで判定しました。",
                en="The triage service has no approved privacy impact assessment, so your "
                "record was not used; the advice is based on your answers only.",
            )
        else:
            reason = s.Text(
                ja="トリアージのために記録を読む同意がないため、既往・服薬は使わず回答だけで判定しました。"
                "同意すると（PUT /api/triage/me/consent）持病や薬も考慮できます。",
                en="You have not consented to the triage service reading your record, so "
                "your conditions and medicines were not used; the advice is based on your "
                "answers only. Consent (PUT /api/triage/me/consent) lets them count.",
            )
        return s.PhrUse(status="not_permitted", reason=reason), []
    reader = RecordReader(session, actor, Purpose.TRIAGE)
    rows = list(reader.compartment(resident_id, types=READ_TYPES, action="triage"))
    resources = [repo.load_json(r.content) for r in rows]
    allowed = [t for t, d in zip(READ_TYPES, decisions, strict=True) if d.permit]
    return (
        s.PhrUse(
            status="used",
            reason=s.Text(
                ja=f"同意に基づき記録（{'、'.join(allowed)}）を参照しました。",
                en=f"Your record ({', '.join(allowed)}) was read under your consent.",
            ),
        ),
        resources,
    )


def evaluate(session: Session, actor: Actor | None, body: s.EvaluateIn) -> s.EvaluateOut:
    p = _protocol(body.complaint)
    problems = protocols.check_answers(p, body.answers)
    unknown = [f for f in body.risk_factors if f not in protocols.RISK_FACTORS]
    if unknown:
        problems.append(f"unknown risk factors {unknown}; one of {protocols.RISK_FACTORS}")
    if body.age is not None:
        if p.population == "child" and body.age >= CHILD_UNTIL:
            problems.append(f"{p.id} is for children under {CHILD_UNTIL}")
        if p.population == "adult" and body.age < CHILD_UNTIL:
            kids = [c.id for c in protocols.all_protocols().values() if c.population != "adult"]
            problems.append(f"{p.id} is for adults; for a child use one of {kids}")
    if problems:
        raise InvalidInput("; ".join(problems))
    at = body.at or datetime.now(UTC)
    resident_id = actor.resident_id if actor and actor.kind == "resident" else None

    factors: dict[str, dict[str, str]] = {
        f: {"ja": "ご本人の申告", "en": "as you told us"} for f in body.risk_factors
    }
    age = body.age
    if resident_id is None:
        phr = s.PhrUse(
            status="anonymous",
            reason=s.Text(
                ja="匿名で利用しています（記録は使っていません）。",
                en="Used anonymously (no record was read).",
            ),
        )
    elif body.subject != "self":
        phr = s.PhrUse(
            status="not_self",
            reason=s.Text(
                ja="ご本人以外についての相談のため、記録は使わず保存もしません。",
                en="Asking for someone else: your record is neither read nor written.",
            ),
        )
    else:
        phr, resources = _read_phr(session, actor, resident_id)  # type: ignore[arg-type]
        found, phr_age = risk.factors_from_resources(resources, today=at.date())
        phr.factors = found
        if phr_age is not None:
            age = phr_age
        for f in found:
            factors[f] = {"ja": "PHRの記録より", "en": "from your health record"}
    for f in risk.age_factors(age):
        factors.setdefault(f, {"ja": f"年齢 {int(age or 0)}歳", "en": f"age {int(age or 0)}"})

    ev = protocols.evaluate(p, body.answers, age_years=age, sex=body.sex, risk_factors=factors)
    child = p.population == "child" or (age is not None and age < CHILD_UNTIL)
    out = s.EvaluateOut(
        complaint=p.id,
        urgency=ev.level,
        urgency_label=_text(LABELS[ev.level]),
        base_urgency=ev.base_level,
        findings=[
            s.FindingRead(
                level=f.level,
                kind=f.kind,
                reason=_text(f.reason),
                source=f.source,
                factor=f.factor,
                raised=f.raised,
            )
            for f in ev.findings
        ],
        next_steps=next_steps(ev.level, child=child, at=at),
        self_care=_text(p.self_care) if ev.level in ("white", "green") else None,
        unanswered=ev.unanswered,
        needs=ev.needs,
        phr=phr,
        disclaimer=DISCLAIMER,
    )
    if resident_id is not None and body.subject == "self" and body.record:
        out.recorded = _record(session, resident_id, p, body, out, at)
    return out


# ---- recording as FHIR --------------------------------------------------------------------------


def _answer_value(q: protocols.Question | None, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int | float):
        # The Questionnaire's number items are decimals, whatever the JSON number's form.
        return {"valueDecimal": float(value)}
    return {"valueCoding": {"system": f"{PROTOCOL_SYSTEM}:{q.id if q else 'x'}", "code": value}}


def _record(
    session: Session,
    resident_id: str,
    p: protocols.Protocol,
    body: s.EvaluateIn,
    out: s.EvaluateOut,
    at: datetime,
) -> dict[str, str]:
    when = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    qr_id, ra_id = repo.new_id(), repo.new_id()
    items = []
    for qid, value in body.answers.items():
        q = p.question(qid)
        items.append(
            {
                "linkId": qid,
                "text": q.text["ja"] if q else qid,
                "answer": [_answer_value(q, value)],
            }
        )
    qr: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": qr_id,
        "questionnaire": f"{PROTOCOL_SYSTEM}:{p.id}|{p.version}",
        "status": "completed",
        "subject": {"reference": f"Patient/{resident_id}"},
        "authored": when,
        "author": {"reference": f"Patient/{resident_id}"},
        "item": items,
    }
    basis = [{"reference": f"QuestionnaireResponse/{qr_id}"}]
    basis += [{"reference": ref} for refs in out.phr.factors.values() for ref in refs]
    ra: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "id": ra_id,
        "status": "final",
        "subject": {"reference": f"Patient/{resident_id}"},
        "occurrenceDateTime": when,
        "method": {
            "coding": [{"system": PROTOCOL_SYSTEM, "code": p.id, "display": p.title["en"]}],
            "text": f"{p.title['ja']} / {p.title['en']} (protocol v{p.version})",
        },
        "basis": basis[:100],
        "prediction": [
            {
                "outcome": {
                    "coding": [
                        {
                            "system": URGENCY_SYSTEM,
                            "code": out.urgency,
                            "display": LABELS[out.urgency][1],
                        }
                    ],
                    "text": LABELS[out.urgency][0],
                },
                "rationale": " / ".join(f.reason.en for f in out.findings)[:4000],
            }
        ],
        "note": [{"text": " / ".join(st.label.ja for st in out.next_steps)}],
    }
    for resource in (qr, ra):
        problems = validate_resource(resource)
        if problems:
            raise UnprocessableResource("triage result is not valid FHIR", issues=problems)
    repo.put_many(session, [repo.Put(qr, resident_id), repo.Put(ra, resident_id)])
    session.flush()
    return {"QuestionnaireResponse": qr_id, "RiskAssessment": ra_id}


def my_results(session: Session, actor: Actor, limit: int = 20) -> list[s.PastResult]:
    """The signed-in resident's recorded triage results, newest first (their own record,
    read as themselves through the choke point)."""
    from phr.store import search as fsearch

    if actor.kind != "resident" or not actor.resident_id:
        raise Forbidden("only a signed-in resident has triage results")
    reader = RecordReader(session, actor, Purpose.PATIENT_ACCESS)
    req = fsearch.parse(
        "RiskAssessment",
        [("patient", actor.resident_id), ("_sort", "-_lastUpdated"), ("_count", str(limit))],
    )
    out = []
    for row in reader.search(req).matches:
        ra = repo.load_json(row.content)
        method = (ra.get("method") or {}).get("coding") or [{}]
        if method[0].get("system") != PROTOCOL_SYSTEM:
            continue  # a risk assessment from somewhere else
        prediction = (ra.get("prediction") or [{}])[0]
        outcome = ((prediction.get("outcome") or {}).get("coding") or [{}])[0]
        qr = next(
            (
                b["reference"].split("/", 1)[1]
                for b in ra.get("basis") or []
                if str(b.get("reference", "")).startswith("QuestionnaireResponse/")
            ),
            None,
        )
        out.append(
            s.PastResult(
                risk_assessment=ra["id"],
                questionnaire_response=qr,
                complaint=method[0].get("code", ""),
                urgency=outcome.get("code", "white"),
                at=ra.get("occurrenceDateTime", ""),
                rationale=prediction.get("rationale", ""),
            )
        )
    return out


# ---- the resident's consent switch --------------------------------------------------------------


def set_triage_consent(session: Session, actor: Actor, enabled: bool) -> dict[str, Any]:
    """Permit (or stop) the triage service reading the data it needs for TRIAGE."""
    from consent.policy import schemas as cs
    from consent.policy import service as consent_service

    if actor.kind != "resident":
        raise Forbidden("only the resident decides")
    mine = [
        c
        for c in consent_service.list_consents(session, actor)
        if c.status == "active" and _is_triage_consent(c.resource)
    ]
    if not enabled:
        for c in mine:
            consent_service.revoke_consent(session, actor, c.id)
        return {"enabled": False, "revoked": [c.id for c in mine]}
    if mine:
        return {"enabled": True, "consent": mine[0].id}
    created = consent_service.create_consent(
        session,
        actor,
        cs.ConsentCreate(
            decision="permit",
            recipients=[cs.Recipient(kind="organization", value=TRIAGE_ORGANIZATION)],
            purposes=[Purpose.TRIAGE],
            data_classes=list(READ_TYPES),
        ),
    )
    return {"enabled": True, "consent": created.id}


def _is_triage_consent(resource: dict[str, Any]) -> bool:
    prov = resource.get("provision") or {}
    actors = [(a.get("reference") or {}).get("reference") for a in prov.get("actor") or []]
    purposes = [c.get("code") for c in prov.get("purpose") or []]
    return f"Organization/{TRIAGE_ORGANIZATION}" in actors and purposes == ["TRIAGE"]


# ---- severity scores ----------------------------------------------------------------------------


def require_organization(actor: Actor) -> None:
    if actor.kind not in ("organization", "staff", "system") or not actor.organization_id:
        raise Forbidden("for organisation clients")


def jtas(body: s.JtasIn) -> tuple[scores.JtasResult, list[str]]:
    """The level and what a receiving hospital needs for the complaint's findings."""
    level = body.complaint_level or 5
    extra: list[str] = []
    needs: list[str] = []
    if body.complaint:
        p = _protocol(body.complaint)
        problems = protocols.check_answers(p, body.answers)
        if problems:
            raise InvalidInput("; ".join(problems))
        ev = protocols.evaluate(p, body.answers)
        needs = ev.needs
        # The phone scale mapped onto JTAS levels: red 1-2 (1 only from the vital signs).
        mapped = {"red": 2, "orange": 2, "yellow": 3, "green": 4, "white": 5}[ev.level]
        if mapped < level:
            level = mapped
            extra = [f"complaint {p.id}: {ev.level} ({ev.findings[0].reason['en']})"]
    r = scores.jtas_level(
        complaint_level=level,
        respiratory_rate=body.respiratory_rate,
        spo2=body.spo2,
        systolic_bp=body.systolic_bp,
        pulse=body.pulse,
        gcs=body.gcs,
        temperature=body.temperature,
        immunocompromised=body.immunocompromised,
    )
    if extra and r.level == level:
        r = scores.JtasResult(r.level, extra + [x for x in r.reasons if "complaint" not in x])
    return r, needs


# ---- hospitals ----------------------------------------------------------------------------------


def list_hospitals(session: Session) -> list[s.HospitalRead]:
    return [_hospital_read(h) for h in repository.hospitals(session)]


def _hospital_read(h: Any) -> s.HospitalRead:
    return s.HospitalRead(
        id=h.organization_id,
        name=h.name,
        latitude=h.latitude,
        longitude=h.longitude,
        capabilities=sorted(h.capabilities),
        unavailable=sorted(h.unavailable),
        accepts_24h=h.accepts_24h,
        accepting=h.accepting,
        free_beds=h.free_beds,
        updated_at=h.updated_at,
    )


def update_availability(
    session: Session, actor: Actor, hospital_id: str, body: s.AvailabilityIn
) -> s.HospitalRead:
    require_organization(actor)
    if actor.organization_id != hospital_id:
        raise Forbidden("a hospital updates only its own availability")
    h = repository.get_hospital(session, hospital_id)
    if h is None:
        raise NotFound(f"hospital {hospital_id} is not in the registry")
    unknown = set(body.unavailable) - set(h.capabilities)
    if unknown:
        raise InvalidInput(f"{sorted(unknown)}: not capabilities of this hospital")
    repository.set_availability(
        session,
        h,
        accepting=body.accepting,
        free_beds=body.free_beds,
        unavailable=list(body.unavailable),
    )
    return _hospital_read(h)


def _sites(session: Session) -> list[transport.Hospital]:
    now = utcnow()
    return [
        transport.Hospital(
            id=h.organization_id,
            name=h.name,
            lat=h.latitude,
            lon=h.longitude,
            capabilities=frozenset(h.capabilities),
            unavailable=frozenset(h.unavailable),
            accepting=h.accepting,
            capacity=h.free_beds,
            accepts_24h=h.accepts_24h,
            reported_minutes_ago=(now - h.updated_at).total_seconds() / 60,
        )
        for h in repository.hospitals(session)
    ]


def rank(session: Session, actor: Actor, body: s.RankIn) -> list[s.RankedHospital]:
    require_organization(actor)
    patient = transport.Patient(
        body.id, body.latitude, body.longitude, body.urgency, frozenset(body.needs)
    )
    return [
        s.RankedHospital(
            hospital=h.id, name=h.name, minutes=round(m, 1), km=round(km, 2), reason=why
        )
        for h, m, km, why in transport.rank_hospitals(patient, _sites(session))[: body.limit]
    ]


def assign(session: Session, actor: Actor, body: s.McIn) -> s.McOut:
    require_organization(actor)
    ids = [p.id for p in body.patients]
    if len(set(ids)) != len(ids):
        raise InvalidInput("patient ids must be unique")
    patients = [
        transport.Patient(p.id, p.latitude, p.longitude, p.urgency, frozenset(p.needs))
        for p in body.patients
    ]
    t0 = time.perf_counter()
    plan = transport.assign(patients, _sites(session))
    seconds = time.perf_counter() - t0
    return s.McOut(
        assignments=[
            s.Assignment(
                patient=a.patient,
                hospital=a.hospital,
                minutes=round(a.minutes, 1) if a.minutes is not None else None,
                reason=a.reason,
            )
            for a in plan.assignments
        ],
        weighted_minutes=round(plan.weighted_minutes, 1),
        unassigned=plan.unassigned,
        seconds=round(seconds, 4),
    )
