"""security: one rate-limit table for sign-ins and identification (replaces the face
search's own biometric_rate_window)

Revision ID: e4f6a8b0c2d1
Revises: c3d5e7f9a1b2
Create Date: 2026-11-26 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e4f6a8b0c2d1"
down_revision: str | Sequence[str] | None = "c3d5e7f9a1b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_window",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name=op.f("pk_rate_limit_window")),
    )
    with op.batch_alter_table("rate_limit_window", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rate_limit_window_window_start"), ["window_start"], unique=False
        )
    # Counters only: nothing to carry over.
    op.drop_table("biometric_rate_window")


def downgrade() -> None:
    op.create_table(
        "biometric_rate_window",
        sa.Column("actor_key", sa.String(length=160), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("actor_key", "window_start", name=op.f("pk_biometric_rate_window")),
    )
    with op.batch_alter_table("rate_limit_window", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_limit_window_window_start"))
    op.drop_table("rate_limit_window")
