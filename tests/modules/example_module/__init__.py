"""A small example module: the allergies of a resident, for treatment.

Registered for the tests by ``tests/modules/conftest.py`` (a ``*.dist-info`` directory
with an ``entry_points.txt`` put on ``sys.path``, exactly what ``pip install`` of a
package declaring ``[project.entry-points."phr.modules"] example =
"tests.modules.example_module:MODULE"`` would write). See ``docs/modules.md``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from consent.actors import Purpose
from phr.modules import ModuleReader, PhrModule, module_reader

NAME = "example"
Reader = Annotated[ModuleReader, Depends(module_reader(NAME))]

router = APIRouter(tags=["module: example"])


@router.get("/allergies/{patient_id}")
def allergies(patient_id: str, reader: Reader) -> dict[str, Any]:
    """The resident's allergies the caller may see (through the module's reader)."""
    found = [
        {"id": r.id, "type": r.resource_type}
        for r in reader.compartment(patient_id, types=["AllergyIntolerance"])
    ]
    return {"patient": patient_id, "allergies": found}


@router.get("/read/{resource_type}/{id}")
def read_one(resource_type: str, id: str, reader: Reader) -> dict[str, Any]:
    """Any single resource — refused unless the module declared its type."""
    row = reader.read(resource_type, id)
    return {"id": row.id, "type": row.resource_type}


MODULE = PhrModule(
    name=NAME,
    title="アレルギー確認（例） Allergy check (example)",
    description="Shows a resident's allergies to the clinic treating them.",
    purposes=frozenset({Purpose.TREATMENT}),
    resource_types=frozenset({"Patient", "AllergyIntolerance"}),
    router=router,
    operator="tsukuba-care-co",
    version="1.0",
)
