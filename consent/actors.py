"""Who is asking, and why: the inputs of every consent decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Purpose(StrEnum):
    """Purposes of use (HL7 v3 PurposeOfUse codes where one exists)."""

    TREATMENT = "TREAT"
    EMERGENCY = "ETREAT"
    HOME_CARE = "HOMECARE"
    TRIAGE = "TRIAGE"
    MEDICATION_REVIEW = "MEDREVIEW"
    RESEARCH = "HRESCH"
    PUBLIC_HEALTH = "PUBHLTH"
    PATIENT_ACCESS = "PATRQT"  # the resident reading their own record
    OPERATIONS = "HOPERAT"  # gateway and platform jobs (ingest, migration)
    DISASTER = "DISASTER"  # disaster relief: shelters continuing residents' care (ADR 0006)


PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


@dataclass(frozen=True)
class Actor:
    kind: Literal["organization", "resident", "system", "staff", "trusted_person"]
    client_id: str | None = None
    organization_id: str | None = None
    organization_kind: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    resident_id: str | None = None
    user_id: str | None = None
    role: str | None = None  # doctor nurse pharmacist paramedic clerk analyst administrator
    # The platform service or module acting (e.g. "acp", "triage", "shelter"); a service
    # without an approved privacy impact assessment gets nothing.
    service: str | None = None

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """The platform itself (CLI jobs, migrations): used only outside HTTP."""
        return cls(kind="system", client_id=name, scopes=frozenset({"system/*.cruds"}))

    @property
    def label(self) -> str:
        return self.client_id or self.user_id or self.kind


_INTERACTION_LETTERS = {"c": "c", "r": "r", "u": "u", "d": "d", "s": "s"}


def scope_allows(scopes: frozenset[str], resource_type: str, interaction: str) -> bool:
    """SMART v2 scopes (``system/Observation.rs``) and v1 (``system/*.read``).

    ``interaction`` is one of c r u d s.
    """
    for scope in scopes:
        context, _, rest = scope.partition("/")
        if context not in ("system", "user", "patient") or not rest:
            continue
        rtype, _, perms = rest.partition(".")
        if rtype not in ("*", resource_type):
            continue
        perms = perms.split("?", 1)[0]
        if perms in ("*", "write") and interaction in "cud":
            return True
        if perms in ("*", "read") and interaction in "rs":
            return True
        if interaction in perms and set(perms) <= set("cruds"):
            return True
    return False
