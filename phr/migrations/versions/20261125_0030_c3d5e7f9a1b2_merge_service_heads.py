"""merge the service branches: ACP and emergency, biometrics, polypharmacy, bulk export
(after the background audit chain), triage

Revision ID: c3d5e7f9a1b2
Revises: a5c7e9d1b3f2, b10e7c1a5f00, 5b7d1e9c2a40, b9e2c4a61d07, 7c1d2e3f4a5b
Create Date: 2026-11-25 00:30:00

Nothing to do: the branches touch different tables. One head again, so that
``alembic revision --autogenerate`` works for the next change.
"""

from collections.abc import Sequence

revision: str = "c3d5e7f9a1b2"
down_revision: str | Sequence[str] | None = (
    "a5c7e9d1b3f2",
    "b10e7c1a5f00",
    "5b7d1e9c2a40",
    "b9e2c4a61d07",
    "7c1d2e3f4a5b",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
