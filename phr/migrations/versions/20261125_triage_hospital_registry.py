"""triage: receiving-hospital registry

Revision ID: 7c1d2e3f4a5b
Revises: e7a1b2c3d4e5
Create Date: 2026-11-25 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7c1d2e3f4a5b"
down_revision: str | None = "e7a1b2c3d4e5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "triage_hospital",
        sa.Column("organization_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("capabilities", JSONType, nullable=False),
        sa.Column("accepts_24h", sa.Boolean(), nullable=False),
        sa.Column("accepting", sa.Boolean(), nullable=False),
        sa.Column("free_beds", sa.Integer(), nullable=False),
        sa.Column("unavailable", JSONType, nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_triage_hospital_organization_id_organization"),
        ),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_triage_hospital")),
    )


def downgrade() -> None:
    op.drop_table("triage_hospital")
