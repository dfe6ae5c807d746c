"""merge the branches of the third round: security (rate-limit windows), the shelter
module, home care

Revision ID: d8e0f2a4b6c8
Revises: e4f6a8b0c2d1, 5e1a7b3c9d20, 7f3a9c1e5d20
Create Date: 2026-11-26 03:30:00

Nothing to do: the branches touch different tables. One head again.
"""

from collections.abc import Sequence

revision: str = "d8e0f2a4b6c8"
down_revision: str | Sequence[str] | None = (
    "e4f6a8b0c2d1",
    "5e1a7b3c9d20",
    "7f3a9c1e5d20",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
