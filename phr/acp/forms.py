"""The ACP pages' HTML forms turned into the service's shapes (and back, to fill a form).

People come as numbered rows (``contact-0-name``, ``contact-0-relationship``,
``contact-0-phone``, ...); an empty row is skipped. Anything that does not fit the shapes
raises :class:`FormError` with the message key the page shows.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import ValidationError

from phr.acp import schemas as s

__all__ = ["ROWS", "FormError", "conversation_from_form", "invitation_from_form", "save_from_form"]

# How many rows a list of people offers beyond those already recorded, and at most.
ROWS = 2
MAX_PEOPLE = 10


class FormError(ValueError):
    """The form does not make a valid plan; ``key`` is the message to show."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _people(form: Any, prefix: str, *, with_phone: bool = True) -> list[dict[str, str]]:
    out = []
    for i in range(MAX_PEOPLE + ROWS):
        name = _text(form, f"{prefix}-{i}-name")
        relationship = _text(form, f"{prefix}-{i}-relationship")
        phone = _text(form, f"{prefix}-{i}-phone") if with_phone else ""
        if name:
            row = {"name": name, "relationship": relationship}
            if with_phone:
                row["phone"] = phone
            out.append(row)
        elif relationship or phone:
            raise FormError("acp.error.person_name")
    return out


def _conversation(form: Any, *, required: bool) -> dict[str, Any] | None:
    held_on = _text(form, "held_on")
    participants = _people(form, "participant", with_phone=False)
    note = _text(form, "note")
    if not (held_on or participants or note):
        if required:
            raise FormError("acp.error.conversation")
        return None
    if not held_on or not participants:
        raise FormError("acp.error.conversation")
    try:
        day = date.fromisoformat(held_on)
    except ValueError:
        raise FormError("acp.error.conversation") from None
    return {"held_on": day, "participants": participants, "note": note}


def _content(form: Any) -> dict[str, Any]:
    spokesperson = _people(form, "spokesperson")
    doctor = {k: _text(form, f"doctor-{k}") for k in ("name", "clinic", "phone")}
    return {
        "own_words": _text(form, "own_words"),
        "treatments": {k: _text(form, f"treatment-{k}") or "undecided" for k in s.TREATMENTS},
        "place_of_care": _text(form, "place_of_care") or "undecided",
        "place_of_death": _text(form, "place_of_death") or "undecided",
        "place_note": _text(form, "place_note"),
        "what_matters": _text(form, "what_matters"),
        "religious_cultural": _text(form, "religious_cultural"),
        "contacts": _people(form, "contact"),
        "trusted_persons": _people(form, "trusted"),
        "spokesperson": spokesperson[0] if spokesperson else None,
        "family_doctor": doctor if any(doctor.values()) else None,
    }


def save_from_form(form: Any) -> s.AcpSave:
    """The edit form: the plan, and the conversation that led to it when one is given."""
    try:
        return s.AcpSave.model_validate(
            {"content": _content(form), "conversation": _conversation(form, required=False)}
        )
    except ValidationError:
        raise FormError("acp.error.invalid") from None


def conversation_from_form(form: Any) -> s.ConversationIn:
    """A conversation that confirmed the plan without changing it."""
    try:
        return s.ConversationIn.model_validate(_conversation(form, required=True))
    except ValidationError:
        raise FormError("acp.error.conversation") from None


def invitation_from_form(form: Any) -> s.InvitationCreate:
    try:
        return s.InvitationCreate(
            label=_text(form, "label"), relationship=_text(form, "relationship")
        )
    except ValidationError:
        raise FormError("acp.error.invitation") from None
