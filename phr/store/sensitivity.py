"""Sensitive data categories: shared only when a consent names them explicitly.

A resource is classified on write from its security labels and its codes. Sources:
- HL7 v3 ActCode confidentiality/sensitivity labels used in ``meta.security``
  (http://terminology.hl7.org/CodeSystem/v3-ActCode: PSY, PSYTHPN, MH, ETH, SUD, HIV, STD,
  SDV, SEX, SICKLE, TBOO ...), following the HL7 Healthcare Privacy and Security
  Classification System (HCS).
- ICD-10 chapters: F00-F99 mental and behavioural disorders; A50-A64 infections with a
  predominantly sexual mode of transmission, B20-B24 HIV disease, A15-A19 tuberculosis,
  B15-B19 viral hepatitis; O00-O08 pregnancy with abortive outcome, Z30-Z37 contraception,
  procreative management and pregnancy supervision.
- National drug codes (YJ): therapeutic category 117 精神神経用剤 (psychotropics).
The categories are deliberately coarse: a person reads them in their sharing settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

MENTAL_HEALTH = "mental-health"
INFECTIOUS = "infectious-disease"
REPRODUCTIVE = "reproductive"
SUBSTANCE = "substance-use"

CATEGORIES = (MENTAL_HEALTH, INFECTIOUS, REPRODUCTIVE, SUBSTANCE)
# A resident's privacy consents say whom they trust with what: shared with no one else
# (not nameable in a consent). Advance directives (Consent scope "adr") are ordinary data.
PRIVACY_DIRECTIVE = "privacy-directive"

_LABELS = {
    "PSY": MENTAL_HEALTH,
    "PSYTHPN": MENTAL_HEALTH,
    "MH": MENTAL_HEALTH,
    "HIV": INFECTIOUS,
    "STD": INFECTIOUS,
    "COMPT": INFECTIOUS,
    "SDV": REPRODUCTIVE,
    "SEX": REPRODUCTIVE,
    "REPRO": REPRODUCTIVE,
    "ETH": SUBSTANCE,
    "SUD": SUBSTANCE,
    "ETHUD": SUBSTANCE,
    "OPIOIDUD": SUBSTANCE,
}
ICD10 = "http://hl7.org/fhir/sid/icd-10"
YJ = "urn:oid:1.2.392.100495.20.1.73"
_ICD_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^F1[0-9]"), SUBSTANCE),
    (re.compile(r"^F"), MENTAL_HEALTH),
    (re.compile(r"^(A5[0-9]|A6[0-4]|B2[0-4]|A1[5-9]|B1[5-9])"), INFECTIOUS),
    (re.compile(r"^(O0[0-8]|Z3[0-7])"), REPRODUCTIVE),
)


def _codings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "system" in node and "code" in node:
            yield node
        for v in node.values():
            yield from _codings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _codings(v)


def classify(resource: dict[str, Any]) -> str | None:
    """The sensitive category of a resource, or None for ordinary data."""
    meta = resource.get("meta") or {}
    for label in meta.get("security", []) or []:
        cat = _LABELS.get(str(label.get("code", "")).upper())
        if cat:
            return cat
    rtype = resource.get("resourceType")
    if rtype == "Consent":
        scopes = {c.get("code") for c in (resource.get("scope") or {}).get("coding", []) or []}
        return PRIVACY_DIRECTIVE if "patient-privacy" in scopes else None
    if rtype in ("Patient", "Organization", "Practitioner", "Provenance"):
        return None
    for key in ("code", "medicationCodeableConcept", "valueCodeableConcept", "reasonCode"):
        for c in _codings(resource.get(key)):
            code = str(c.get("code", "")).upper()
            if c.get("system") == ICD10:
                for pattern, cat in _ICD_RULES:
                    if pattern.match(code):
                        return cat
            elif c.get("system") == YJ and code.startswith("117"):
                return MENTAL_HEALTH
    return None
