"""SQL of the incident tables. Authorization is part of the query: an organisation
finds only incidents it attends (EMS) or receives (hospital)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from phr.emergency.models import Incident, IncidentCandidate, IncidentNote


def incident_for(session: Session, incident_id: str, organization_id: str) -> Incident | None:
    return session.scalars(
        select(Incident).where(
            Incident.id == incident_id,
            or_(
                Incident.ems_organization_id == organization_id,
                Incident.hospital_id == organization_id,
            ),
        )
    ).first()


def get_incident(session: Session, incident_id: str) -> Incident | None:
    return session.get(Incident, incident_id)


def candidates(session: Session, incident_id: str) -> list[IncidentCandidate]:
    return list(
        session.scalars(
            select(IncidentCandidate)
            .where(IncidentCandidate.incident_id == incident_id)
            .order_by(IncidentCandidate.pk)
        )
    )


def notes(session: Session, incident_id: str, kind: str | None = None) -> list[IncidentNote]:
    stmt = select(IncidentNote).where(IncidentNote.incident_id == incident_id)
    if kind:
        stmt = stmt.where(IncidentNote.kind == kind)
    return list(session.scalars(stmt.order_by(IncidentNote.pk)))


def incoming(session: Session, hospital_id: str) -> list[Incident]:
    return list(
        session.scalars(
            select(Incident)
            .where(Incident.hospital_id == hospital_id, Incident.status == "reported")
            .order_by(Incident.reported_at.desc())
        )
    )


def open_incidents(session: Session, ems_organization_id: str, limit: int = 50) -> list[Incident]:
    """An EMS organisation's incidents not yet closed, newest first."""
    return list(
        session.scalars(
            select(Incident)
            .where(Incident.ems_organization_id == ems_organization_id, Incident.status != "closed")
            .order_by(Incident.opened_at.desc())
            .limit(limit)
        )
    )
