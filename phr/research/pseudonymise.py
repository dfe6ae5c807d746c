"""The transformations of a research extract (個人情報保護法 第41条 仮名加工情報; 個人情報
保護委員会「個人情報の保護に関する法律についてのガイドライン（仮名加工情報・匿名加工情報編）」):

- direct identifiers removed: names, identifiers (My Number, insurance and medical-record
  numbers), telecom, addresses, photos, contacts, and every reference's display text;
- keyed pseudonyms: each resource id and reference is replaced by HMAC-SHA256 of the
  project's key (itself HMAC of the platform's master key and the project name, so two
  projects cannot link their people) — not reversible without the key, stable within the
  project;
- dates shifted per person by a keyed offset of -180..+180 days (intervals within a
  person's record are kept, calendar dates are not);
- free text removed (narrative ``text``, ``note``, ``comment``, ``description``,
  ``valueString``, CodeableConcept ``text``) — codes stay;
- ``meta`` (sources, timestamps of the platform) removed;
- quasi-identifiers generalised: the birth date becomes a 10-year age band, the address
  its district (or nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date, timedelta
from typing import Any

from phr.analytics.population import age_band
from phr.keyfile import master_key
from phr.settings import get_settings

__all__ = ["Pseudonymiser"]

DROP = frozenset(
    {
        "text", "note", "comment", "description", "valueString", "name", "identifier", "telecom",
        "address", "photo", "contact", "meta", "display", "birthDate", "communication",
        "generalPractitioner", "managingOrganization", "link", "patientInstruction",
    }
)  # fmt: skip
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(.*)$")
SHIFT_DAYS = 180


class Pseudonymiser:
    def __init__(self, project: str) -> None:
        master = master_key(
            get_settings().research_pseudonym_key,
            "research-pseudonym.key",
            "PHR_RESEARCH_PSEUDONYM_KEY",
        )
        self._key = hmac.new(master, f"project|{project}".encode(), hashlib.sha256).digest()

    def pseudonym(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def shift_days(self, resident: str) -> int:
        digest = hmac.new(self._key, f"shift|{resident}".encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big") % (2 * SHIFT_DAYS + 1) - SHIFT_DAYS

    def subject(self, patient: dict[str, Any], on: date, quasi: list[str]) -> dict[str, Any]:
        """The person's generalised quasi-identifiers."""
        out: dict[str, Any] = {"subject": self.pseudonym("Patient", str(patient["id"]))}
        birth = str(patient.get("birthDate") or "")
        if "age_band" in quasi:
            age = None
            if len(birth) >= 4:
                m = int(birth[5:7]) if len(birth) >= 7 else 1
                d = int(birth[8:10]) if len(birth) >= 10 else 1
                age = on.year - int(birth[:4]) - ((on.month, on.day) < (m, d))
            out["age_band"] = age_band(age) if age is not None else "unknown"
        if "sex" in quasi:
            out["sex"] = patient.get("gender") or "unknown"
        if "district" in quasi:
            addr = (patient.get("address") or [{}])[0]
            out["district"] = addr.get("district") or addr.get("city") or "unknown"
        return out

    def resource(self, res: dict[str, Any], resident: str) -> dict[str, Any]:
        shift = timedelta(days=self.shift_days(resident))
        out = self._walk(res, shift)
        out["id"] = self.pseudonym(str(res["resourceType"]), str(res["id"]))
        return dict(out)

    def _walk(self, node: Any, shift: timedelta) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k in DROP:
                    continue
                if k == "reference" and isinstance(v, str):
                    out[k] = self._reference(v)
                else:
                    out[k] = self._walk(v, shift)
            return out
        if isinstance(node, list):
            return [self._walk(x, shift) for x in node]
        if isinstance(node, str):
            m = _DATE.match(node)
            if m:
                try:
                    d = date(int(m[1]), int(m[2]), int(m[3])) + shift
                except ValueError:
                    return node
                return d.isoformat() + m[4]
        return node

    def _reference(self, ref: str) -> str:
        rtype, _, rid = ref.partition("/")
        if not rid or "/" in rid:
            return "[removed]"
        return f"{rtype}/{self.pseudonym(rtype, rid)}"
