"""merge the trust-service branches (consent rules, staff, sign-in/OIDC, audit chain, PIA)

Revision ID: e7a1b2c3d4e5
Revises: c0a5e1d2b3f4, 4254b4200785, da5e567f6d83, cacd9fa0c26f, f16a10a2b1a0
Create Date: 2026-11-24 22:00:00
"""

from collections.abc import Sequence

revision: str = "e7a1b2c3d4e5"
down_revision: str | Sequence[str] | None = (
    "c0a5e1d2b3f4",
    "4254b4200785",
    "da5e567f6d83",
    "cacd9fa0c26f",
    "f16a10a2b1a0",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
