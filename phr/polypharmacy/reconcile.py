"""The reconciled medicine list: prescriptions, dispensings and self-reported medicines of
one resident merged into current medicines, grouped by ingredient.

- ``MedicationRequest`` (a clinic's prescription): current while ``status`` is active and,
  when the prescription states its supply (``dispenseRequest.expectedSupplyDuration``),
  until ``authoredOn`` + days + the grace period.
- ``MedicationDispense`` (pharmacy or claims): current until ``whenHandedOver`` +
  ``daysSupply`` + the grace period; without a days' supply for
  :data:`DEFAULT_DISPENSE_DAYS` (the platform's summary uses the same window: Japanese
  long-term prescriptions run up to 90 days).
- ``MedicationStatement`` (self-reported, e.g. over the counter): current while active or
  intended and its effective period has not ended.

Each record is identified by its code: a YJ code (薬価基準収載医薬品コード) through the
drug master, an RxNorm code by its English ingredient names (``kb/rxnorm_ingredients.csv``),
or else it stays *unrecognised* — still listed, still counted, never dropped. Records of
the same ingredient(s) form one medicine with all their sources, prescribers and pharmacies.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from phr.polypharmacy import dose
from phr.polypharmacy.kb import KnowledgeBase
from phr.polypharmacy.master import RXNORM, YJ, components, match_english

__all__ = [
    "DEFAULT_DISPENSE_DAYS",
    "GRACE_DAYS",
    "MEDICATION_TYPES",
    "Medicine",
    "ProductInfo",
    "SourceRecord",
    "medication_codes",
    "reconcile",
]

MEDICATION_TYPES = ("MedicationRequest", "MedicationDispense", "MedicationStatement")
# Project choices (docs/polypharmacy.md): a medicine stays current this long after its
# supply should have run out (patients stretch supplies; refills come a few days late).
GRACE_DAYS = 14
DEFAULT_DISPENSE_DAYS = 90
EXT_PRESCRIBING_INSTITUTION = "urn:phr:extension:prescribing-institution"

_REQUEST_ACTIVE = {"active", "on-hold"}
_DISPENSE_DONE = {"completed", "in-progress"}
_STATEMENT_ACTIVE = {"active", "intended"}


@dataclass(frozen=True)
class ProductInfo:
    """What the drug master says about one YJ code (a plain copy, no ORM object)."""

    code: str
    name: str
    ingredient: str
    route: str
    category: str
    form: str
    brand: str
    strength: str = ""  # 規格, e.g. "500mg1錠" (the dose checks read one unit's strength)


@dataclass
class SourceRecord:
    resource_type: str
    id: str
    status: str
    date: dt.date | None
    until: dt.date | None
    active: bool
    # Current without the grace period: its stated supply covers today (or no end is
    # known). Two of these at once are a real duplicate, not a refill that came early.
    running: bool
    prescriber: str | None
    pharmacy: str | None
    system: str | None
    code: str | None
    display: str
    days: int | None
    # Daily dose in mg when the record says enough (phr.polypharmacy.dose), else None.
    daily_mg: float | None = None

    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"


@dataclass
class Medicine:
    key: str
    name: str  # ingredient(s) in Japanese, or the record's own text when unrecognised
    ingredients: tuple[str, ...]
    recognised: bool
    how: str  # yj | rxnorm | unrecognised
    category: str | None
    route: str | None
    classes: frozenset[str]
    sources: list[SourceRecord] = field(default_factory=list)
    # Days of uninterrupted use up to today (records following each other within the
    # grace period), when current; None when not current or no start date is known.
    continuous_days: int | None = None

    @property
    def active(self) -> bool:
        return any(s.active for s in self.sources)

    @cached_property
    def refs(self) -> frozenset[str]:
        """What rule references name this medicine: ``class:<id>`` and ``ing:<成分名>``."""
        return frozenset(
            [*(f"class:{c}" for c in self.classes), *(f"ing:{i}" for i in self.ingredients)]
        )

    @property
    def active_sources(self) -> list[SourceRecord]:
        return [s for s in self.sources if s.active]

    @property
    def running_prescribers(self) -> set[str]:
        return {s.prescriber for s in self.sources if s.running and s.prescriber}

    @property
    def running_pharmacies(self) -> set[str]:
        return {s.pharmacy for s in self.sources if s.running and s.pharmacy}

    @property
    def prescribers(self) -> list[str]:
        return sorted({s.prescriber for s in self.active_sources if s.prescriber})

    @property
    def pharmacies(self) -> list[str]:
        return sorted({s.pharmacy for s in self.active_sources if s.pharmacy})

    @property
    def daily_mg(self) -> float | None:
        """The highest daily dose among the records still running (a prescription and its
        dispensing describe one therapy, so doses are not added up; a second running
        prescription of the same ingredient is the duplicate check's finding)."""
        doses = [s.daily_mg for s in self.sources if s.running and s.daily_mg is not None]
        return max(doses) if doses else None

    @property
    def latest(self) -> SourceRecord:
        return max(self.sources, key=lambda s: (s.date or date.min, s.resource_type, s.id))


def _clean(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    t = unicodedata.normalize("NFKC", text).strip()
    return t or None


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _concept(body: Mapping[str, Any]) -> Mapping[str, Any]:
    cc = body.get("medicationCodeableConcept")
    return cc if isinstance(cc, Mapping) else {}


def medication_codes(body: Mapping[str, Any]) -> list[tuple[str | None, str | None, str]]:
    cc = _concept(body)
    out: list[tuple[str | None, str | None, str]] = []
    for c in cc.get("coding") or []:
        if isinstance(c, Mapping) and c.get("code"):
            out.append((c.get("system"), str(c["code"]), str(c.get("display") or "")))
    return out


def _text(body: Mapping[str, Any]) -> str:
    cc = _concept(body)
    if cc.get("text"):
        return str(cc["text"])
    for _, _, display in medication_codes(body):
        if display:
            return display
    ref = body.get("medicationReference")
    if isinstance(ref, Mapping):
        return str(ref.get("display") or ref.get("reference") or "")
    return ""


def _ref_name(ref: Any) -> str | None:
    if isinstance(ref, Mapping):
        return _clean(ref.get("display")) or _clean(ref.get("reference"))
    return None


def _source_org(body: Mapping[str, Any]) -> str | None:
    meta = body.get("meta")
    return _clean(meta.get("source")) if isinstance(meta, Mapping) else None


def _record(body: Mapping[str, Any], today: date) -> SourceRecord | None:
    rtype = str(body.get("resourceType") or "")
    status = str(body.get("status") or "")
    codes = medication_codes(body)
    yj = next((c for c in codes if c[0] == YJ), None)
    first = yj or (codes[0] if codes else (None, None, ""))
    prescriber = pharmacy = None
    days: int | None = None
    when: date | None = None
    until: date | None = None
    if rtype == "MedicationRequest":
        when = _day(body.get("authoredOn"))
        prescriber = (
            _ref_name(body.get("requester")) or _ref_name(body.get("recorder")) or _source_org(body)
        )
        dur = (body.get("dispenseRequest") or {}).get("expectedSupplyDuration") or {}
        days = _days(dur)
        active = status in _REQUEST_ACTIVE
        if active and when and days is not None:
            until = when + timedelta(days=days + GRACE_DAYS)
            active = until >= today
    elif rtype == "MedicationDispense":
        when = _day(body.get("whenHandedOver")) or _day(body.get("whenPrepared"))
        days = _days(body.get("daysSupply") or {})
        for ext in body.get("extension") or []:
            if isinstance(ext, Mapping) and ext.get("url") == EXT_PRESCRIBING_INSTITUTION:
                prescriber = _ref_name(ext.get("valueReference"))
        for p in body.get("performer") or []:
            if isinstance(p, Mapping):
                pharmacy = _ref_name(p.get("actor")) or pharmacy
        pharmacy = pharmacy or _ref_name(body.get("location")) or _source_org(body)
        active = status in _DISPENSE_DONE and when is not None
        if active and when is not None:
            until = when + timedelta(days=(days or DEFAULT_DISPENSE_DAYS) + GRACE_DAYS)
            active = until >= today
    elif rtype == "MedicationStatement":
        period = body.get("effectivePeriod") or {}
        when = _day(body.get("effectiveDateTime")) or _day(period.get("start"))
        when = when or _day(body.get("dateAsserted"))
        end = _day(period.get("end"))
        prescriber = _ref_name(body.get("informationSource"))
        active = status in _STATEMENT_ACTIVE and (end is None or end >= today)
        until = end
    else:
        return None
    supply_end = (
        until - timedelta(days=GRACE_DAYS) if until and rtype != "MedicationStatement" else until
    )
    running = active and (supply_end is None or supply_end >= today)
    return SourceRecord(
        resource_type=rtype,
        id=str(body.get("id") or ""),
        status=status,
        date=when,
        until=until,
        active=active,
        running=running,
        prescriber=prescriber,
        pharmacy=pharmacy,
        system=first[0],
        code=first[1],
        display=_text(body),
        days=days,
    )


def _days(q: Any) -> int | None:
    if not isinstance(q, Mapping) or q.get("value") is None:
        return None
    try:
        value = float(q["value"])
    except (TypeError, ValueError):
        return None
    unit = str(q.get("code") or q.get("unit") or "d")
    factor = {"wk": 7, "mo": 30, "週": 7}.get(unit, 1)
    return max(0, round(value * factor))


def reconcile(
    bodies: Iterable[Mapping[str, Any]],
    products: Mapping[str, ProductInfo],
    kb: KnowledgeBase,
    *,
    today: date,
) -> list[Medicine]:
    """Group the medicine records into medicines (current and past), newest first."""
    groups: dict[str, Medicine] = {}
    for body in bodies:
        rec = _record(body, today)
        if rec is None:
            continue
        product = products.get(rec.code or "") if rec.system == YJ else None
        category: str | None
        route: str | None
        if product is not None:
            ings = components(product.ingredient)
            how, category, route = "yj", product.category, product.route
            if len(ings) == 1:
                rec.daily_mg = dose.daily_mg(
                    body, dose.unit_strength_mg(product.strength), product_form=product.form
                )
        else:
            ings = ()
            if rec.system == RXNORM or rec.system is None or rec.system != YJ:
                names = [rec.display, *(d for _, _, d in medication_codes(body))]
                ings = match_english(" ".join(names))
            how = "rxnorm" if ings else "unrecognised"
            category = route = None
            if len(ings) == 1:
                unit_mg = dose.unit_strength_mg(display=rec.display)
                rec.daily_mg = dose.daily_mg(body, unit_mg)
        if ings:
            key = "・".join(sorted(ings))
            name = "・".join(ings)
        else:
            key = f"code:{rec.system or ''}|{rec.code or ''}|{rec.display}"
            name = rec.display or (rec.code or "?")
        med = groups.get(key)
        if med is None:
            med = groups[key] = Medicine(
                key=key,
                name=name,
                ingredients=tuple(ings),
                recognised=bool(ings),
                how=how,
                category=category,
                route=route,
                classes=kb.classes_of(ings, category, route),
            )
        elif med.route is None and route is not None:
            med.route, med.category = route, category
        med.sources.append(rec)
    meds = list(groups.values())
    for m in meds:
        m.continuous_days = _continuous_days(m, today)
    meds.sort(key=lambda m: (not m.active, -(m.latest.date or date.min).toordinal(), m.key))
    return meds


def _end(s: SourceRecord, today: date) -> date:
    """Where a record's supply window ends: its computed end, else (a current record of no
    stated length) today, else (a finished one) its days' supply and the grace period."""
    if s.until is not None:
        return s.until
    if s.active:
        return today
    assert s.date is not None
    return s.date + timedelta(days=(s.days or 0) + GRACE_DAYS)


def _continuous_days(m: Medicine, today: date) -> int | None:
    """Days since the current course began: the records' supply windows (each already
    extended by the grace period) merged where they touch or overlap; the course is the
    merged window that reaches today."""
    if not m.active:
        return None
    spans = sorted(
        (s.date, _end(s, today)) for s in m.sources if s.date is not None and s.date <= today
    )
    if not spans:
        return None
    start, end = spans[0]
    for first, last in spans[1:]:
        if first <= end:
            end = max(end, last)
        else:
            start, end = first, last
    return (today - start).days if end >= today else None


def as_of(now: datetime) -> date:
    """Today in Japan (the supply windows are calendar days where the resident lives)."""
    return (now + timedelta(hours=9)).date()
