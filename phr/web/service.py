"""What the pages show, built from the resident's own record.

Every read goes through :class:`~phr.store.reader.RecordReader` with the signed-in
resident as actor and purpose PATRQT, exactly as the FHIR API reads for a resident's
token: :func:`reader_for` makes it. Each function takes the reader and returns plain
view objects (dataclasses of display strings and dates), so templates only lay out.

Where each item came from is the resource's ``meta.source``
(``urn:phr:organization:<id>``, stamped by the gateway on ingest), named from the
organisation registry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from consent.actors import Actor, Purpose
from fhir_gateway.sources import codes
from phr.errors import PHRError
from phr.store.indexer import utcnow
from phr.store.models import Resource
from phr.store.reader import RecordReader
from phr.store.repository import load_json
from phr.web import repository
from phr.web.i18n import Lang

__all__ = [
    "CHARTS",
    "Item",
    "MedicineGroup",
    "Record",
    "Series",
    "load_record",
    "reader_for",
    "resident_actor",
]

SOURCE_PREFIX = "urn:phr:organization:"
LOINC = "http://loinc.org"
YJ = codes.YJ
# A prescription or dispense counts as current while its supply lasts, and for this long
# after its date when the supply is not known (Japanese long-term prescriptions run up to
# 90 days) — the same window the IPS summary uses.
CURRENT_WINDOW = timedelta(days=90)

CLINICAL_TYPES = (
    "Patient",
    "Condition",
    "AllergyIntolerance",
    "Immunization",
    "MedicationRequest",
    "MedicationDispense",
    "MedicationStatement",
    "Observation",
    "Encounter",
    "Procedure",
    "DiagnosticReport",
)


def resident_actor(resident_id: str) -> Actor:
    """The resident reading their own record through the web app (a patient context)."""
    return Actor(
        kind="resident",
        resident_id=resident_id,
        client_id="resident-web",
        scopes=frozenset({"patient/*.rs"}),
    )


def medication_review(session: Session, resident_id: str, lang: str) -> dict[str, Any] | None:
    """The polypharmacy service's findings in plain words (``phr.polypharmacy``), read by
    that service for the resident under its own PIA; None when it cannot run."""
    from phr.polypharmacy import service as polypharmacy

    try:
        return polypharmacy.resident_view(
            session, resident_actor(resident_id), resident_id, lang=lang
        )
    except PHRError:  # e.g. the service's PIA is not approved: it reads nothing
        return None


def reader_for(session: Session, resident_id: str) -> RecordReader:
    return RecordReader(session, resident_actor(resident_id), Purpose.PATIENT_ACCESS)


# ---- items -------------------------------------------


@dataclass
class Item:
    """One resource as the pages show it."""

    type: str
    id: str
    body: dict[str, Any]
    source_id: str | None
    source: str  # organisation name (or id when unknown)
    when: str  # YYYY-MM-DD, or ""
    last_updated: str
    sensitivity: str | None = None  # sensitive category (phr.store.sensitivity), if any

    def text(self, key: str, lang: Lang) -> str:
        return concept_text(self.body.get(key), lang)


def concept_text(cc: Any, lang: Lang) -> str:
    """A CodeableConcept in the resident's language: Japanese text or display first in
    Japanese, the coding's (mostly English) display first in English."""
    if not isinstance(cc, dict):
        return ""
    codings = [c for c in cc.get("coding") or [] if isinstance(c, dict)]
    displays = [str(c["display"]) for c in codings if c.get("display")]
    text = str(cc["text"]) if cc.get("text") else ""
    if lang == "en":
        ascii_displays = [d for d in displays if d.isascii()]
        if ascii_displays:
            return ascii_displays[0]
    return text or (displays[0] if displays else "")


def _date_of(body: dict[str, Any]) -> str:
    for key in (
        "effectiveDateTime",
        "issued",
        "authoredOn",
        "whenHandedOver",
        "whenPrepared",
        "occurrenceDateTime",
        "recordedDate",
        "onsetDateTime",
        "performedDateTime",
        "dateAsserted",
        "date",
    ):
        v = body.get(key)
        if isinstance(v, str) and v:
            return v[:10]
    for key in ("period", "effectivePeriod", "performedPeriod", "onsetPeriod"):
        v = body.get(key)
        if isinstance(v, dict) and isinstance(v.get("start"), str):
            return str(v["start"])[:10]
    return ""


def _source_of(body: dict[str, Any]) -> str | None:
    src = (body.get("meta") or {}).get("source")
    if isinstance(src, str) and src.startswith(SOURCE_PREFIX):
        return src[len(SOURCE_PREFIX) :]
    return None


@dataclass
class Record:
    """The resident's record, by resource type, newest first within each type."""

    resident_id: str
    by_type: dict[str, list[Item]]
    patient: Item | None

    def of(self, *types: str) -> list[Item]:
        out: list[Item] = []
        for t in types:
            out += self.by_type.get(t, [])
        return sorted(out, key=lambda i: i.when, reverse=True)


def load_record(
    session: Session,
    resident_id: str,
    types: Sequence[str],
    *,
    since: datetime | None = None,
    action: str = "everything",
) -> Record:
    """Every visible resource of these types (one compartment read: one access-log entry)."""
    reader = reader_for(session, resident_id)
    rows = list(reader.compartment(resident_id, types=list(types), since=since, action=action))
    return _record(session, resident_id, rows)


def load_recent(session: Session, resident_id: str, resource_type: str, since: str) -> Record:
    """Resources of one type dated on or after ``since`` (YYYY-MM-DD), by the search index
    (``date`` parameter) rather than reading the whole compartment."""
    from phr.store import search as fsearch

    reader = reader_for(session, resident_id)
    req = fsearch.parse(
        resource_type, [("patient", resident_id), ("date", f"ge{since}"), ("_count", "1000")]
    )
    return _record(session, resident_id, reader.search(req).matches)


def _record(session: Session, resident_id: str, rows: Sequence[Resource]) -> Record:
    bodies = [(row, load_json(row.content)) for row in rows]
    names = repository.organization_names(
        session, {s for _, b in bodies if (s := _source_of(b)) is not None}
    )
    by_type: dict[str, list[Item]] = defaultdict(list)
    patient = None
    for row, body in bodies:
        src = _source_of(body)
        item = Item(
            type=row.resource_type,
            id=row.id,
            body=body,
            source_id=src,
            source=names.get(src, src) if src else "",
            when=_date_of(body),
            last_updated=str((body.get("meta") or {}).get("lastUpdated", ""))[:10],
            sensitivity=row.sensitivity,
        )
        if row.resource_type == "Patient":
            if row.id == resident_id:
                patient = item
            continue
        by_type[row.resource_type].append(item)
    for items in by_type.values():
        items.sort(key=lambda i: i.when, reverse=True)
    return Record(resident_id, dict(by_type), patient)


# ---- who I am -------------------------------------------


@dataclass
class Person:
    name: str
    kana: str
    birth_date: str
    gender: str
    address: str


def person(patient: Item | None) -> Person | None:
    if patient is None:
        return None
    p = patient.body
    name = kana = ""
    for n in p.get("name") or []:
        text = n.get("text") or " ".join(
            x for x in [n.get("family") or "", " ".join(n.get("given") or [])] if x
        )
        if any(
            e.get("valueCode") == "SYL" for e in n.get("extension") or [] if isinstance(e, dict)
        ):
            kana = kana or text
        else:
            name = name or text
    addr = (p.get("address") or [{}])[0]
    address = addr.get("text") or " ".join(
        x for x in [addr.get("city") or "", *(addr.get("line") or [])] if x
    )
    return Person(
        name=name or patient.id,
        kana=kana,
        birth_date=str(p.get("birthDate") or ""),
        gender=str(p.get("gender") or ""),
        address=address,
    )


# ---- problems, allergies, vaccinations, disability -------------------------------------------

_INACTIVE = {"inactive", "resolved", "remission"}


def _status(body: dict[str, Any], key: str) -> str:
    for c in (body.get(key) or {}).get("coding") or []:
        if c.get("code"):
            return str(c["code"])
    return ""


def is_disability(item: Item) -> bool:
    return any(
        c.get("system") == codes.DISABILITY_CERTIFICATE
        for cat in item.body.get("category") or []
        for c in cat.get("coding") or []
    )


def problems(record: Record) -> tuple[list[Item], list[Item]]:
    """(active, past) diagnoses, without disability certificates and refuted entries."""
    active, past = [], []
    for item in record.of("Condition"):
        if is_disability(item):
            continue
        if _status(item.body, "verificationStatus") in {"entered-in-error", "refuted"}:
            continue
        clinical = _status(item.body, "clinicalStatus")
        if clinical in _INACTIVE or item.body.get("abatementDateTime"):
            past.append(item)
        else:
            active.append(item)
    return active, past


def disabilities(record: Record) -> list[Item]:
    return [i for i in record.of("Condition") if is_disability(i)]


# ---- medicines -------------------------------------------


@dataclass
class MedicineLine:
    item: Item
    name: str
    kind: str  # "prescribed" | "dispensed" | "taken"
    prescriber: str
    pharmacy: str
    dosage: str
    days: int | None
    current: bool


@dataclass
class MedicineGroup:
    """All prescriptions and dispenses of one ingredient (YJ code's first 7 characters)."""

    key: str
    name: str
    drug_class: str  # 薬効分類 (first 4 characters of the YJ code)
    class_name: str
    lines: list[MedicineLine] = field(default_factory=list)

    @property
    def current(self) -> bool:
        return any(line.current for line in self.lines)

    @property
    def prescribers(self) -> list[str]:
        return sorted({line.prescriber for line in self.lines if line.prescriber})

    @property
    def current_prescribers(self) -> list[str]:
        return sorted({line.prescriber for line in self.lines if line.current and line.prescriber})

    @property
    def latest(self) -> str:
        return max((line.item.when for line in self.lines), default="")


@dataclass
class Duplicate:
    """The same kind of drug (one 薬効分類) given now by more than one prescriber."""

    drug_class: str
    class_name: str
    medicines: list[str]
    prescribers: list[str]


def _yj(cc: Any) -> str | None:
    for c in (cc or {}).get("coding") or []:
        if c.get("system") == YJ and isinstance(c.get("code"), str) and len(c["code"]) >= 7:
            return str(c["code"])
    return None


def _ext_display(body: dict[str, Any], url: str) -> str:
    for e in body.get("extension") or []:
        if e.get("url") == url:
            ref = e.get("valueReference") or {}
            return str(ref.get("display") or "")
    return ""


def _days(body: dict[str, Any]) -> int | None:
    q = body.get("daysSupply") or (body.get("dispenseRequest") or {}).get("expectedSupplyDuration")
    if isinstance(q, dict) and isinstance(q.get("value"), int | float):
        return int(q["value"])
    return None


def _current(item: Item, days: int | None, today: date) -> bool:
    """Is this line a medicine taken now? As the IPS summary decides
    (fhir_gateway.api.operations.summary): a prescription the prescriber keeps ``active``,
    a statement ``active``/``intended``, a dispense while its supply lasts (its days'
    supply, else 90 days)."""
    status = item.body.get("status")
    if item.type == "MedicationRequest":
        return status == "active"
    if item.type == "MedicationStatement":
        return status in {"active", "intended"}
    if status in {"entered-in-error", "cancelled", "declined", "stopped"} or not item.when:
        return False
    try:
        start = date.fromisoformat(item.when)
    except ValueError:
        return False
    window = timedelta(days=days) if days else CURRENT_WINDOW
    return start + window >= today


def _line(item: Item, lang: Lang, today: date) -> MedicineLine:
    b = item.body
    days = _days(b)
    name = concept_text(b.get("medicationCodeableConcept"), "ja") or item.id
    if item.type == "MedicationRequest":
        prescriber = str((b.get("requester") or {}).get("display") or item.source)
        pharmacy = ""
        kind = "prescribed"
        dosage = " ".join(str(d.get("text") or "") for d in b.get("dosageInstruction") or [])
    elif item.type == "MedicationDispense":
        prescriber = _ext_display(b, codes.EXT_PRESCRIBING_INSTITUTION)
        pharmacy = " ".join(
            str((p.get("actor") or {}).get("display") or "") for p in b.get("performer") or []
        ).strip()
        kind = "dispensed"
        dosage = " ".join(str(d.get("text") or "") for d in b.get("dosageInstruction") or [])
    else:
        prescriber = str((b.get("informationSource") or {}).get("display") or item.source)
        pharmacy = ""
        kind = "taken"
        dosage = " ".join(str(d.get("text") or "") for d in b.get("dosage") or [])
    return MedicineLine(
        item=item,
        name=name,
        kind=kind,
        prescriber=prescriber,
        pharmacy=pharmacy,
        dosage=dosage.strip(),
        days=days,
        current=_current(item, days, today),
    )


def medicine_groups(
    record: Record, lang: Lang, *, today: date | None = None
) -> tuple[list[MedicineGroup], list[MedicineGroup], list[Duplicate]]:
    """(current groups, past groups, same kind of drug from several prescribers)."""
    today = today or utcnow().date()
    groups: dict[str, MedicineGroup] = {}
    for item in record.of("MedicationRequest", "MedicationDispense", "MedicationStatement"):
        cc = item.body.get("medicationCodeableConcept")
        yj = _yj(cc)
        key = yj[:7] if yj else "name:" + (concept_text(cc, "ja") or item.id)
        line = _line(item, lang, today)
        g = groups.get(key)
        if g is None:
            drug_class = yj[:4] if yj else ""
            g = groups[key] = MedicineGroup(
                key=key,
                name=line.name,
                drug_class=drug_class,
                class_name=(codes.yakko_display(drug_class) or "") if drug_class else "",
            )
        g.lines.append(line)
    current = sorted((g for g in groups.values() if g.current), key=lambda g: g.name)
    past = sorted((g for g in groups.values() if not g.current), key=lambda g: g.latest)[::-1]
    by_class: dict[str, list[MedicineGroup]] = defaultdict(list)
    for g in current:
        if g.drug_class:
            by_class[g.drug_class].append(g)
    duplicates = []
    for drug_class, gs in sorted(by_class.items()):
        prescribers = sorted({p for g in gs for p in g.current_prescribers})
        if len(prescribers) >= 2:
            duplicates.append(
                Duplicate(
                    drug_class=drug_class,
                    class_name=gs[0].class_name,
                    medicines=[g.name for g in gs],
                    prescribers=prescribers,
                )
            )
    return current, past, duplicates


# ---- results and trends -------------------------------------------


@dataclass(frozen=True)
class ChartSpec:
    """A trend chart: LOINC codes (a component code for blood pressure)."""

    key: str
    codes: tuple[str, ...]  # one per series
    panel: str | None = None  # the panel code whose components hold the series


CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec("hba1c", ("4548-4",)),
    ChartSpec("bp", ("8480-6", "8462-4"), panel="85354-9"),
    ChartSpec("ldl", ("2089-1",)),
    ChartSpec("egfr", ("69405-9",)),
    ChartSpec("bmi", ("39156-5",)),
    ChartSpec("weight", ("29463-7",)),
)

# Reference limits: the 特定保健指導判定値 (health-guidance thresholds) of 厚生労働省
# 「標準的な健診・保健指導プログラム（令和6年度版）」, as the checkup importer records them
# (fhir_gateway.sources.codes.MEASURES). A value at or above ``high_from`` or below
# ``low_below`` is outside. Weight has none.
_MEASURE_BY_LOINC = {m.loinc: m for m in codes.MEASURES}


@dataclass
class Point:
    when: str
    value: float
    unit: str
    source: str
    flag: str  # "high" | "low" | ""


@dataclass
class Series:
    code: str
    points: list[Point]
    high_from: float | None
    low_below: float | None
    unit: str


def _loinc(cc: Any) -> set[str]:
    return {
        str(c.get("code"))
        for c in (cc or {}).get("coding") or []
        if c.get("system") == LOINC and c.get("code")
    }


def _flag(code: str, value: float) -> str:
    m = _MEASURE_BY_LOINC.get(code)
    if m is None:
        return ""
    if m.high_from is not None and value >= m.high_from:
        return "high"
    if m.low_below is not None and value < m.low_below:
        return "low"
    return ""


def _quantity(node: dict[str, Any]) -> tuple[float, str] | None:
    q = node.get("valueQuantity")
    if isinstance(q, dict) and isinstance(q.get("value"), int | float):
        return float(q["value"]), str(q.get("unit") or q.get("code") or "")
    return None


def all_series(record: Record) -> list[tuple[ChartSpec, list[Series]]]:
    """The series of every chart, in one pass over the observations."""
    by_code: dict[str, Series] = {}
    for spec in CHARTS:
        for code in spec.codes:
            m = _MEASURE_BY_LOINC.get(code)
            by_code[code] = (
                Series(code, [], m.high_from, m.low_below, m.unit_display)
                if m is not None
                else Series(code, [], None, None, "")
            )
    panels = {spec.panel for spec in CHARTS if spec.panel}
    for item in record.of("Observation"):
        if item.body.get("status") in {"entered-in-error", "cancelled"} or not item.when:
            continue
        own = _loinc(item.body.get("code"))
        nodes: Iterable[tuple[str, dict[str, Any]]]
        if own & panels:
            nodes = [
                (code, comp)
                for comp in item.body.get("component") or []
                for code in _loinc(comp.get("code"))
                if code in by_code
            ]
        else:
            nodes = [(code, item.body) for code in own if code in by_code]
        for code, node in nodes:
            q = _quantity(node)
            if q is None:
                continue
            value, unit = q
            series = by_code[code]
            series.points.append(Point(item.when, value, unit, item.source, _flag(code, value)))
            series.unit = series.unit or unit
    for series in by_code.values():
        series.points.sort(key=lambda p: p.when)
    return [(spec, [by_code[c] for c in spec.codes]) for spec in CHARTS]


@dataclass
class ResultRow:
    item: Item
    name: str
    value: str
    flag: str
    reference: str


def _value_text(body: dict[str, Any]) -> str:
    q = _quantity(body)
    if q is not None:
        return f"{q[0]:g} {q[1]}".strip()
    if "valueCodeableConcept" in body:
        return concept_text(body["valueCodeableConcept"], "ja")
    if "valueString" in body:
        return str(body["valueString"])
    parts = []
    for comp in body.get("component") or []:
        cq = _quantity(comp)
        if cq is not None:
            parts.append(f"{cq[0]:g}")
    if parts:
        unit = _quantity((body.get("component") or [{}])[0]) or (0, "")
        return "/".join(parts) + f" {unit[1]}"
    return ""


def _reference_text(body: dict[str, Any]) -> str:
    texts = []
    for rr in body.get("referenceRange") or []:
        if rr.get("text"):
            texts.append(str(rr["text"]))
    for comp in body.get("component") or []:
        for rr in comp.get("referenceRange") or []:
            if rr.get("text"):
                texts.append(str(rr["text"]))
    return " / ".join(texts)


def result_years(record: Record) -> list[str]:
    """The years that have results, newest first."""
    return sorted({i.when[:4] for i in record.of("Observation") if i.when}, reverse=True)


def result_rows(record: Record, lang: Lang, *, year: str | None = None) -> list[ResultRow]:
    """Every result (of one year, when given), newest first."""
    rows = []
    for item in record.of("Observation"):
        if year is not None and not item.when.startswith(year):
            continue
        codes_ = _loinc(item.body.get("code"))
        flag = ""
        q = _quantity(item.body)
        if q is not None:
            flag = next((f for c in codes_ if (f := _flag(c, q[0]))), "")
        for comp in item.body.get("component") or []:
            cq = _quantity(comp)
            if cq is not None and not flag:
                flag = next((f for c in _loinc(comp.get("code")) if (f := _flag(c, cq[0]))), "")
        rows.append(
            ResultRow(
                item=item,
                name=item.text("code", lang),
                value=_value_text(item.body),
                flag=flag,
                reference=_reference_text(item.body),
            )
        )
    return rows


# ---- visits -------------------------------------------


@dataclass
class Visit:
    item: Item
    kind: str
    reasons: str
    place: str


def visits(record: Record, lang: Lang) -> list[tuple[str, list[Visit]]]:
    """Encounters by year, newest first."""
    by_year: dict[str, list[Visit]] = defaultdict(list)
    for item in record.of("Encounter"):
        b = item.body
        reasons = "、".join(
            t for t in (concept_text(r, lang) for r in b.get("reasonCode") or []) if t
        )
        kind = "、".join(t for t in (concept_text(x, lang) for x in b.get("type") or []) if t)
        place = str((b.get("serviceProvider") or {}).get("display") or item.source)
        by_year[item.when[:4] or "—"].append(Visit(item, kind, reasons, place))
    return sorted(by_year.items(), reverse=True)


# ---- what is new -------------------------------------------


@dataclass
class WhatsNew:
    since: datetime | None
    results: list[Item]
    medicines: list[Item]
    other: list[Item]
    accesses: int
    unread: int


def whats_new(session: Session, resident_id: str) -> tuple[Person | None, WhatsNew]:
    """Who I am, and what arrived since my previous visit (sign-in)."""
    since = repository.previous_visit(session, resident_id)
    me = load_record(session, resident_id, ["Patient"], action="read")
    new = (
        load_record(
            session,
            resident_id,
            [
                "Observation",
                "MedicationRequest",
                "MedicationDispense",
                "Condition",
                "Immunization",
                "AllergyIntolerance",
            ],
            since=since,
        )
        if since is not None
        else None
    )
    results = new.of("Observation") if new else []
    medicines = new.of("MedicationRequest", "MedicationDispense") if new else []
    other = new.of("Condition", "Immunization", "AllergyIntolerance") if new else []
    return person(me.patient), WhatsNew(
        since=since,
        results=results,
        medicines=medicines,
        other=other,
        accesses=repository.accesses_since(session, resident_id, since),
        unread=repository.unread_notifications(session, resident_id),
    )
