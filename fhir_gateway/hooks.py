"""What other parts of the platform want to hear from the gateway, without the gateway
knowing them: a service registers a callback when it is imported.

``golden_patient_updated(session, resident_id)`` runs inside the ingest's transaction after a
resident's golden Patient changed (a move, a new name): e.g. the face gallery refreshes
the narrowing attributes (sex, birth date, home postal code) it copied at enrollment.
A callback that fails fails the ingest (nothing half written).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

__all__ = ["golden_patient_updated", "on_golden_patient_updated"]

Callback = Callable[[Session, str], object]
_PATIENT_UPDATED: list[Callback] = []


def on_golden_patient_updated(fn: Callback) -> Callback:
    if fn not in _PATIENT_UPDATED:
        _PATIENT_UPDATED.append(fn)
    return fn


def golden_patient_updated(session: Session, resident_id: str) -> None:
    for fn in _PATIENT_UPDATED:
        fn(session, resident_id)
