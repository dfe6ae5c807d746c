"""The module registry as administrators see it: each module and its PIA standing."""

from __future__ import annotations

from sqlalchemy.orm import Session

from consent.pia import repository as pia_repo
from consent.pia.service import pia_approved
from phr.modules.contract import PhrModule
from phr.modules.schemas import ModuleRead

__all__ = ["describe"]


def describe(session: Session, modules: dict[str, PhrModule]) -> list[ModuleRead]:
    out = []
    for m in sorted(modules.values(), key=lambda m: m.name):
        versions = pia_repo.list_all(session, service_id=m.pia_service_id)
        latest = versions[-1] if versions else None
        in_force = [v for v in versions if v.status in ("approved", "published")]
        current = in_force[-1] if in_force else None
        gaps: list[str] = []
        if current is not None:
            gaps += sorted(p.value for p in m.purposes if p.value not in current.purpose_codes)
            gaps += sorted(t for t in m.resource_types if t not in current.resource_types)
        out.append(
            ModuleRead(
                name=m.name,
                title=m.title,
                description=m.description,
                operator=m.operator,
                version=m.version,
                mount=f"/modules/{m.name}/",
                purposes=sorted(p.value for p in m.purposes),
                resource_types=sorted(m.resource_types),
                pia_service_id=m.pia_service_id,
                pia_status=latest.status if latest else "none",
                pia_in_force=pia_approved(session, m.pia_service_id),
                pia_review_due=(
                    current.review_due.isoformat() if current and current.review_due else None
                ),
                undeclared_in_pia=gaps,
            )
        )
    return out
