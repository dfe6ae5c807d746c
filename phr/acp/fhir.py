"""ACP as FHIR R4, in the shapes of the HL7 PACIO Advance Directive Interoperability IG
(http://hl7.org/fhir/us/pacio-adi/, STU 1):

- the **index card** kept in the record store: a ``Consent`` with scope ``adr`` (advance
  directive, http://terminology.hl7.org/CodeSystem/consentscope) and category LOINC
  42348-3 "Advance healthcare directives", whose ``sourceAttachment`` names the sealed
  document of this version. It carries no wish at all; it is what the consent engine
  gates every read on, and what ``_history`` versions.
- the **ADI document** (sealed, never in the store's indexes): a ``Bundle`` of type
  ``document`` — a ``Composition`` (LOINC 81334-5 "Patient Personal advance care plan")
  with sections for the treatment preferences (ADI Personal Intervention Preference
  Observations, category ``intervention-preference``), the care-experience preferences
  (place of care and of death, religious or cultural wishes, the resident's own words —
  category ``care-experience-preference``), personal goals (``Goal``: what matters),
  the healthcare agent (ADI Participant Consent: ``Consent`` scope ``adr`` whose actor
  role is v3 RoleCode ``HPOWATT``, naming a ``RelatedPerson``), trusted persons and
  contacts in order (``RelatedPerson``, ``telecom.rank`` the order), and the family doctor
  (``PractitionerRole``).

The document is generated from :class:`~phr.acp.schemas.AcpContent` and read back into it
(:func:`content_of`); both are validated with fhir.resources (R4B models).
"""

from __future__ import annotations

import html
import uuid
from typing import Any

from fhir_gateway.validation import validate_resource
from phr.acp import schemas
from phr.errors import InvalidInput
from phr.store.indexer import iso_instant

LOINC = "http://loinc.org"
ADI_CATEGORY = "http://hl7.org/fhir/us/pacio-adi/CodeSystem/ADIPreferenceCategoryCS"
ITEM = "urn:phr:acp-item"
CHOICE = "urn:phr:acp-choice"
PLACE = "urn:phr:acp-place"
ROLE = "urn:phr:acp-role"
SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
# The national guideline the resident's ACP process follows (人生の最終段階における医療・
# ケアの決定プロセスに関するガイドライン, MHLW 2018).
GUIDELINE = (
    "https://www.mhlw.go.jp/file/04-Houdouhappyou-10802000-Iseikyoku-Shidouka/0000197701.pdf"
)
ADR_CATEGORY = {"system": LOINC, "code": "42348-3", "display": "Advance healthcare directives"}

CHOICE_LABELS = {
    "want": ("希望する", "wanted"),
    "do_not_want": ("希望しない", "not wanted"),
    "trial": ("一定期間試して判断", "time-limited trial"),
    "undecided": ("未定", "not decided"),
}
TREATMENT_LABELS = {
    "resuscitation": ("心肺蘇生", "cardiopulmonary resuscitation"),
    "intubation": ("気管挿管・人工呼吸器", "intubation and mechanical ventilation"),
    "intensive_care": ("集中治療", "intensive care"),
    "tube_feeding": ("経管栄養（胃ろう等）", "tube feeding"),
    "dialysis": ("人工透析", "dialysis"),
    "transfusion": ("輸血", "blood transfusion"),
}
PLACE_LABELS = {
    "home": ("自宅", "home"),
    "hospital": ("病院", "hospital"),
    "care_facility": ("介護施設", "care facility"),
    "palliative_unit": ("緩和ケア病棟", "palliative care unit"),
    "undecided": ("未定", "not decided"),
    "other": ("その他", "other"),
}
_CARE_ITEMS = {
    "place-of-care": ("療養したい場所", "preferred place of care"),
    "place-of-death": ("最期を迎えたい場所", "preferred place of death"),
    "religious-cultural": ("宗教・文化的な希望", "religious or cultural wishes"),
    "own-words": ("本人の言葉", "in my own words"),
}


def _uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _cc(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _category(code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": ADI_CATEGORY, "code": code, "display": display}]}]


def _div(text: str) -> dict[str, str]:
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{html.escape(text)}</div>',
    }


def _person(p: schemas.Person, role: str, patient: str, rank: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "RelatedPerson",
        "patient": {"reference": patient},
        "relationship": [
            {"coding": [{"system": ROLE, "code": role}], "text": p.relationship or role}
        ],
        "name": [{"text": p.name}],
    }
    if p.phone:
        tel: dict[str, Any] = {"system": "phone", "value": p.phone}
        if rank is not None:
            tel["rank"] = rank
        out["telecom"] = [tel]
    return out


def adi_document(
    resident_id: str, content: schemas.AcpContent, *, version: int, recorded_at: Any
) -> dict[str, Any]:
    """The ADI document Bundle of one version (validated)."""
    patient = f"Patient/{resident_id}"
    stamp = iso_instant(recorded_at)
    entries: list[tuple[str, dict[str, Any]]] = []

    def add(resource: dict[str, Any]) -> str:
        url = _uuid()
        entries.append((url, resource))
        return url

    def observation(item: str, display: str, category: str, value: dict[str, Any]) -> str:
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": _category(
                category,
                "Intervention preference"
                if category == "intervention-preference"
                else "Care experience preference",
            ),
            "code": _cc(ITEM, item, display),
            "subject": {"reference": patient},
            "effectiveDateTime": stamp,
            **value,
        }
        return add(obs)

    interventions = []
    for key in schemas.TREATMENTS:
        choice = getattr(content.treatments, key)
        ja, en = TREATMENT_LABELS[key]
        cja, cen = CHOICE_LABELS[choice]
        interventions.append(
            observation(
                key,
                f"{ja} / {en}",
                "intervention-preference",
                {"valueCodeableConcept": _cc(CHOICE, choice, f"{cja} / {cen}")},
            )
        )
    care = []
    for item, place in (
        ("place-of-care", content.place_of_care),
        ("place-of-death", content.place_of_death),
    ):
        ja, en = _CARE_ITEMS[item]
        pja, pen = PLACE_LABELS[place]
        value: dict[str, Any] = {"valueCodeableConcept": _cc(PLACE, place, f"{pja} / {pen}")}
        if content.place_note:
            value["note"] = [{"text": content.place_note}]
        care.append(observation(item, f"{ja} / {en}", "care-experience-preference", value))
    for item, text in (
        ("religious-cultural", content.religious_cultural),
        ("own-words", content.own_words),
    ):
        if text:
            ja, en = _CARE_ITEMS[item]
            care.append(
                observation(
                    item, f"{ja} / {en}", "care-experience-preference", {"valueString": text}
                )
            )
    goals = []
    if content.what_matters:
        goals.append(
            add(
                {
                    "resourceType": "Goal",
                    "lifecycleStatus": "active",
                    "category": [
                        {
                            "coding": [{"system": ROLE, "code": "personal-goal"}],
                            "text": "大切にしていること",
                        }
                    ],
                    "description": {"text": content.what_matters},
                    "subject": {"reference": patient},
                    "startDate": stamp[:10],
                }
            )
        )
    agents = []
    if content.spokesperson:
        rp = add(_person(content.spokesperson, "spokesperson", patient))
        agents.append(rp)
        agents.append(
            add(
                {
                    "resourceType": "Consent",
                    "status": "active",
                    "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": "adr"}]},
                    "category": [{"coding": [ADR_CATEGORY]}],
                    "patient": {"reference": patient},
                    "dateTime": stamp,
                    "policy": [{"uri": GUIDELINE}],
                    "provision": {
                        "type": "permit",
                        "actor": [
                            {
                                "role": _cc(ROLE_CODE, "HPOWATT", "healthcare power of attorney"),
                                "reference": {"reference": rp},
                            }
                        ],
                    },
                }
            )
        )
    for p in content.trusted_persons:
        agents.append(add(_person(p, "trusted", patient)))
    contacts = [
        add(_person(p, "contact", patient, rank=i + 1)) for i, p in enumerate(content.contacts)
    ]
    doctor = []
    if content.family_doctor:
        d = content.family_doctor
        role: dict[str, Any] = {
            "resourceType": "PractitionerRole",
            "code": [_cc(ROLE, "family-doctor", "かかりつけ医 / family doctor")],
        }
        if d.name:
            role["practitioner"] = {"display": d.name}
        if d.clinic:
            role["organization"] = {"display": d.clinic}
        if d.phone:
            role["telecom"] = [{"system": "phone", "value": d.phone}]
        doctor.append(add(role))

    def section(
        code: tuple[str, str, str], title: str, refs: list[str], text: str
    ) -> dict[str, Any]:
        sec: dict[str, Any] = {
            "title": title,
            "code": _cc(*code),
            "text": _div(text or title),
        }
        if refs:
            sec["entry"] = [{"reference": r} for r in refs]
        else:
            sec["emptyReason"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                        "code": "unavailable",
                    }
                ]
            }
        return sec

    do, dont = plan_lines(content)
    composition = {
        "resourceType": "Composition",
        "status": "final",
        "type": _cc(LOINC, "81334-5", "Patient Personal advance care plan"),
        "category": [{"coding": [ADR_CATEGORY]}],
        "subject": {"reference": patient},
        "date": stamp,
        "author": [{"reference": patient}],
        "title": f"もしもの時の話し合い 第{version}版 / Advance care plan, version {version}",
        "section": [
            section(
                (
                    LOINC,
                    "75773-2",
                    "Goals, preferences, and priorities for medical treatment [Reported]",
                ),
                "望む医療・望まない医療 / Treatment preferences",
                interventions,
                "希望: " + "、".join(do) + " / 希望しない: " + "、".join(dont),
            ),
            section(
                (
                    LOINC,
                    "81338-6",
                    "Patient Goals, preferences, and priorities for care experience",
                ),
                "療養の場所・価値観 / Care experience preferences",
                care + goals,
                content.what_matters,
            ),
            section(
                (LOINC, "81335-2", "Patient Healthcare agent"),
                "代弁者・信頼できる人 / Healthcare agent and trusted persons",
                agents,
                "",
            ),
            section((ROLE, "contacts", "Contacts in order"), "連絡先 / Contacts", contacts, ""),
            section(
                (ROLE, "family-doctor", "Family doctor"), "かかりつけ医 / Family doctor", doctor, ""
            ),
        ],
    }
    comp_url = _uuid()
    bundle = {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": _uuid()},
        "type": "document",
        "timestamp": stamp,
        "entry": [{"fullUrl": comp_url, "resource": composition}]
        + [{"fullUrl": u, "resource": r} for u, r in entries],
    }
    problems = validate_resource(bundle)
    if problems:
        raise InvalidInput("the ACP document is not valid FHIR", issues=problems)
    return bundle


def plan_lines(content: schemas.AcpContent) -> tuple[list[str], list[str]]:
    """The treatments wanted and not wanted, in Japanese (for the scannable screen)."""
    do, dont = [], []
    for key in schemas.TREATMENTS:
        choice = getattr(content.treatments, key)
        label = TREATMENT_LABELS[key][0]
        if choice == "want":
            do.append(label)
        elif choice == "trial":
            do.append(label + "（試して判断）")
        elif choice == "do_not_want":
            dont.append(label)
    return do, dont


def _code(cc: Any, system: str) -> str | None:
    for c in (cc or {}).get("coding") or []:
        if c.get("system") == system:
            return str(c.get("code"))
    return None


def _person_of(rp: dict[str, Any]) -> schemas.Person:
    rel = (rp.get("relationship") or [{}])[0]
    tel = (rp.get("telecom") or [{}])[0]
    return schemas.Person(
        name=(rp.get("name") or [{}])[0].get("text", "?"),
        relationship=rel.get("text", "") if rel.get("text") != _code(rel, ROLE) else "",
        phone=tel.get("value", ""),
    )


def content_of(bundle: dict[str, Any]) -> schemas.AcpContent:
    """Read an ADI document back into the structured shape."""
    data: dict[str, Any] = {"treatments": {}}
    contacts: list[tuple[int, schemas.Person]] = []
    trusted: list[schemas.Person] = []
    for e in bundle.get("entry") or []:
        r = e.get("resource") or {}
        rtype = r.get("resourceType")
        if rtype == "Observation":
            item = _code(r.get("code"), ITEM)
            if item in schemas.TREATMENTS:
                data["treatments"][item] = _code(r.get("valueCodeableConcept"), CHOICE)
            elif item in ("place-of-care", "place-of-death"):
                data[item.replace("-", "_")] = _code(r.get("valueCodeableConcept"), PLACE)
                if r.get("note"):
                    data["place_note"] = r["note"][0].get("text", "")
            elif item == "religious-cultural":
                data["religious_cultural"] = r.get("valueString", "")
            elif item == "own-words":
                data["own_words"] = r.get("valueString", "")
        elif rtype == "Goal":
            data["what_matters"] = (r.get("description") or {}).get("text", "")
        elif rtype == "RelatedPerson":
            role = _code((r.get("relationship") or [{}])[0], ROLE)
            person = _person_of(r)
            if role == "spokesperson":
                data["spokesperson"] = person
            elif role == "trusted":
                trusted.append(person)
            elif role == "contact":
                rank = int(((r.get("telecom") or [{}])[0]).get("rank") or 99)
                contacts.append((rank, person))
        elif rtype == "PractitionerRole":
            data["family_doctor"] = schemas.FamilyDoctor(
                name=(r.get("practitioner") or {}).get("display", ""),
                clinic=(r.get("organization") or {}).get("display", ""),
                phone=((r.get("telecom") or [{}])[0]).get("value", ""),
            )
    data["contacts"] = [p for _, p in sorted(contacts, key=lambda x: x[0])]
    data["trusted_persons"] = trusted
    return schemas.AcpContent.model_validate(data)


def index_card(
    resident_id: str, consent_id: str, *, version: int, recorded_at: Any
) -> dict[str, Any]:
    """The advance-directive Consent kept in the record store (no wish in it)."""
    stamp = iso_instant(recorded_at)
    card = {
        "resourceType": "Consent",
        "id": consent_id,
        "status": "active",
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": "adr"}]},
        "category": [{"coding": [ADR_CATEGORY]}],
        "patient": {"reference": f"Patient/{resident_id}"},
        "dateTime": stamp,
        "performer": [{"reference": f"Patient/{resident_id}"}],
        "policy": [{"uri": GUIDELINE}],
        "sourceAttachment": {
            "contentType": "application/fhir+json",
            "url": f"urn:phr:acp:{consent_id}:{version}",
            "title": f"もしもの時の話し合い 第{version}版 (暗号化保存 / sealed)",
            "creation": stamp,
        },
    }
    problems = validate_resource(card)
    if problems:
        raise InvalidInput("the ACP index card is not a valid FHIR Consent", issues=problems)
    return card
