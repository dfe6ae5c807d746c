"""shelter module: intakes (受付) of evacuees

Revision ID: 5e1a7b3c9d20
Revises: c3d5e7f9a1b2
Create Date: 2026-11-26 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e1a7b3c9d20"
down_revision: str | None = "c3d5e7f9a1b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shelter_intake",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("shelter_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("opened_by", sa.String(length=80), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("candidate_resident_id", sa.String(length=64), nullable=True),
        sa.Column("candidate_method", sa.String(length=16), nullable=True),
        sa.Column("identify_attempts", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=True),
        sa.Column("confirmed_method", sa.String(length=16), nullable=True),
        sa.Column("checked_in_at", sa.DateTime(), nullable=True),
        sa.Column("left_at", sa.DateTime(), nullable=True),
        sa.Column("episode_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_shelter_intake_shelter", "shelter_intake", ["shelter_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_shelter_intake_shelter", table_name="shelter_intake")
    op.drop_table("shelter_intake")
