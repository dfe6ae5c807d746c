"""Shapes of the module registry API."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["ModuleRead"]


class ModuleRead(BaseModel):
    name: str
    title: str
    description: str
    operator: str
    version: str
    mount: str
    purposes: list[str]
    resource_types: list[str]
    pia_service_id: str
    pia_status: str  # status of the latest PIA version, or "none"
    pia_in_force: bool  # what the consent engine checks: without it the module reads nothing
    pia_review_due: str | None
    # Declared but not covered by the PIA in force (the module must be re-assessed).
    undeclared_in_pia: list[str]
