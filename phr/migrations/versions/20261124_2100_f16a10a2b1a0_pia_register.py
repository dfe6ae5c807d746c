"""privacy impact assessment register (つくばPIA)

Revision ID: f16a10a2b1a0
Revises: 82c857885568
Create Date: 2026-11-24 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "f16a10a2b1a0"
down_revision: str | None = "82c857885568"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "pia_assessment",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("service_name", sa.String(length=255), nullable=False),
        sa.Column("service_name_en", sa.String(length=255), nullable=False),
        sa.Column("organization_id", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("purposes", JSONType, nullable=False),
        sa.Column("purpose_codes", JSONType, nullable=False),
        sa.Column("data_categories", JSONType, nullable=False),
        sa.Column("resource_types", JSONType, nullable=False),
        sa.Column("recipients", JSONType, nullable=False),
        sa.Column("retention", sa.Text(), nullable=False),
        sa.Column("answers", JSONType, nullable=False),
        sa.Column("risks", JSONType, nullable=False),
        sa.Column("overall_level", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("submitted_by", sa.String(length=128), nullable=True),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("approved_by", sa.String(length=128), nullable=True),
        sa.Column("approved_at", sa.DateTime(), nullable=True),
        sa.Column("published_by", sa.String(length=128), nullable=True),
        sa.Column("published_at", sa.DateTime(), nullable=True),
        sa.Column("withdrawn_by", sa.String(length=128), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
        sa.Column("superseded_at", sa.DateTime(), nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("review_due", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_pia_assessment_organization_id_organization"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pia_assessment")),
        sa.UniqueConstraint("service_id", "version", name="uq_pia_assessment_service_version"),
    )
    with op.batch_alter_table("pia_assessment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pia_assessment_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            "ix_pia_assessment_service_status", ["service_id", "status"], unique=False
        )
        batch_op.create_index("ix_pia_assessment_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pia_assessment", schema=None) as batch_op:
        batch_op.drop_index("ix_pia_assessment_status")
        batch_op.drop_index("ix_pia_assessment_service_status")
        batch_op.drop_index(batch_op.f("ix_pia_assessment_organization_id"))
    op.drop_table("pia_assessment")
