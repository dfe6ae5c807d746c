"""polypharmacy: national drug master and the pharmacist's finding worklist

Revision ID: 5b7d1e9c2a40
Revises: e7a1b2c3d4e5
Create Date: 2026-11-25 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b7d1e9c2a40"
down_revision: str | None = "e7a1b2c3d4e5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drug_product",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("ingredient", sa.String(length=255), nullable=False),
        sa.Column("strength", sa.String(length=255), nullable=False),
        sa.Column("form", sa.String(length=32), nullable=False),
        sa.Column("route", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=4), nullable=False),
        sa.Column("brand", sa.String(length=16), nullable=False),
        sa.Column("narcotic", sa.Boolean(), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("delisting", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_drug_product")),
    )
    op.create_index("ix_drug_product_ingredient", "drug_product", ["ingredient"])
    op.create_index("ix_drug_product_category", "drug_product", ["category"])
    op.create_table(
        "polypharmacy_finding",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("acted_by", sa.String(length=128), nullable=True),
        sa.Column("acted_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_polypharmacy_finding")),
        sa.UniqueConstraint(
            "owner", "resident_id", "fingerprint", name="uq_polypharmacy_finding_key"
        ),
    )
    op.create_index(
        "ix_polypharmacy_finding_owner_state", "polypharmacy_finding", ["owner", "state"]
    )
    op.create_index("ix_polypharmacy_finding_resident", "polypharmacy_finding", ["resident_id"])


def downgrade() -> None:
    op.drop_table("polypharmacy_finding")
    op.drop_index("ix_drug_product_category", table_name="drug_product")
    op.drop_index("ix_drug_product_ingredient", table_name="drug_product")
    op.drop_table("drug_product")
