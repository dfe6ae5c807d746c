"""bulk export jobs (FHIR $export)

Revision ID: b9e2c4a61d07
Revises: b4c7d9e1f2a3
Create Date: 2026-11-25 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b9e2c4a61d07"
down_revision: str | None = "b4c7d9e1f2a3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "bulk_export_job",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=True),
        sa.Column("types", JSONType, nullable=False),
        sa.Column("since", sa.DateTime(), nullable=True),
        sa.Column("request_url", sa.Text(), nullable=False),
        sa.Column("actor", JSONType, nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("transaction_time", sa.DateTime(), nullable=True),
        sa.Column("output", JSONType, nullable=False),
        sa.Column("resources", sa.Integer(), nullable=False),
        sa.Column("residents", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_export_job")),
    )
    op.create_index("ix_bulk_export_job_status", "bulk_export_job", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_bulk_export_job_status", table_name="bulk_export_job")
    op.drop_table("bulk_export_job")
