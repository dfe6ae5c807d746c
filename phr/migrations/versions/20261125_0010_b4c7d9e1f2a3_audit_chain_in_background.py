"""access log entries are chained in the background: chain columns nullable

Revision ID: b4c7d9e1f2a3
Revises: e7a1b2c3d4e5
Create Date: 2026-11-25 00:10:00

Requests insert entries with ``seq``, ``prev_hash`` and ``entry_hash`` empty; the chainer
fills them in (ADR 0004). The resident's log is paged by ``pk`` instead of ``seq``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b4c7d9e1f2a3"
down_revision: str | Sequence[str] | None = "e7a1b2c3d4e5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=True)
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=True)
        batch.alter_column("entry_hash", existing_type=sa.String(64), nullable=True)
        batch.drop_index("ix_audit_entry_resident_seq")
        batch.create_index("ix_audit_entry_resident_pk", ["resident_id", "pk"])
    op.create_index(
        "ix_audit_entry_unchained",
        "audit_entry",
        ["pk"],
        postgresql_where=sa.text("seq IS NULL"),
        sqlite_where=sa.text("seq IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_audit_entry_unchained", table_name="audit_entry")
    with op.batch_alter_table("audit_entry") as batch:
        batch.drop_index("ix_audit_entry_resident_pk")
        batch.create_index("ix_audit_entry_resident_seq", ["resident_id", "seq"])
        # Entries not chained yet cannot satisfy NOT NULL: chain them before downgrading.
        batch.alter_column("entry_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
