"""Shapes of the research extract API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from phr.analytics.suppression import K_MIN

__all__ = ["ExtractRequest"]


class ExtractRequest(BaseModel):
    project: str = Field(min_length=1, max_length=128, description="ethics-approved project id")
    types: list[str] = Field(min_length=1, description="FHIR resource types to extract")
    quasi_identifiers: list[str] = Field(default_factory=lambda: ["age_band", "sex", "district"])
    k: int = Field(default=K_MIN, ge=K_MIN)
