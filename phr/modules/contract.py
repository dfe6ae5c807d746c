"""What a module declares: its name, purposes, data categories (FHIR resource types) and
the PIA it is assessed under."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import APIRouter

from consent.actors import Purpose
from fhir_gateway.validation import known_type

__all__ = ["ENTRY_POINT_GROUP", "PhrModule"]

ENTRY_POINT_GROUP = "phr.modules"

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


@dataclass(frozen=True)
class PhrModule:
    """A module's manifest, the object its ``phr.modules`` entry point names.

    ``name`` is the URL segment (``/modules/<name>/``), the ``service`` the module's
    actor carries and the ``service_id`` of its privacy impact assessment in the PIA
    register: no assessment in force under this name, no data.
    """

    name: str
    title: str
    purposes: frozenset[Purpose]
    resource_types: frozenset[str]
    router: APIRouter | None = None
    description: str = ""
    operator: str = ""  # the organisation that runs it (as in its PIA)
    version: str = "0"

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"module name {self.name!r}: lower-case letters, digits and '-'")
        if not self.purposes:
            raise ValueError(f"module {self.name}: declare at least one purpose")
        if not self.resource_types:
            raise ValueError(f"module {self.name}: declare at least one resource type")
        object.__setattr__(self, "purposes", frozenset(Purpose(p) for p in self.purposes))
        unknown = sorted(t for t in self.resource_types if not known_type(t))
        if unknown:
            raise ValueError(f"module {self.name}: unknown resource types {unknown}")
        object.__setattr__(self, "resource_types", frozenset(self.resource_types))

    @property
    def pia_service_id(self) -> str:
        return self.name
