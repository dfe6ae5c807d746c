"""consent rules, emergency episodes, break-glass, resource sensitivity

Revision ID: c0a5e1d2b3f4
Revises: 82c857885568
Create Date: 2026-11-24 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c0a5e1d2b3f4"
down_revision: str | None = "82c857885568"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("resource") as batch:
        batch.add_column(sa.Column("sensitivity", sa.String(length=32), nullable=True))
    op.create_table(
        "consent_rule",
        sa.Column("pk", PK, autoincrement=True, nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("consent_id", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_value", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("period_start", sa.DateTime(), nullable=True),
        sa.Column("period_end", sa.DateTime(), nullable=True),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_consent_rule")),
    )
    op.create_index("ix_consent_rule_match", "consent_rule",
                    ["resident_id", "decision", "actor_kind", "actor_value"])
    op.create_index("ix_consent_rule_consent", "consent_rule", ["consent_id"])
    op.create_table(
        "emergency_episode",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("ems_organization_id", sa.String(length=64), nullable=False),
        sa.Column("receiving_organization_id", sa.String(length=64), nullable=True),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_episode")),
    )
    op.create_index("ix_emergency_episode_resident", "emergency_episode",
                    ["resident_id", "expires_at"])
    op.create_table(
        "break_glass",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.String(length=64), nullable=False),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("review_status", sa.String(length=16), nullable=False),
        sa.Column("reviewed_by", sa.String(length=64), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_break_glass")),
    )
    op.create_index("ix_break_glass_resident", "break_glass", ["resident_id", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_break_glass_resident", table_name="break_glass")
    op.drop_table("break_glass")
    op.drop_index("ix_emergency_episode_resident", table_name="emergency_episode")
    op.drop_table("emergency_episode")
    op.drop_index("ix_consent_rule_consent", table_name="consent_rule")
    op.drop_index("ix_consent_rule_match", table_name="consent_rule")
    op.drop_table("consent_rule")
    with op.batch_alter_table("resource") as batch:
        batch.drop_column("sensitivity")
