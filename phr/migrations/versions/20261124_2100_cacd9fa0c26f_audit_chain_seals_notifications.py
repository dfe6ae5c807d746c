"""access log hash chain and seals, notifications and their outbox

Revision ID: cacd9fa0c26f
Revises: 82c857885568
Create Date: 2026-11-24 21:00:00

Entries already in ``audit_entry`` are chained in ``pk`` order (format v1 of
consent.audit: SHA-256 over sorted-key JSON of the hashed fields).
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "cacd9fa0c26f"
down_revision: str | None = "82c857885568"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENESIS_HASH = "0" * 64
# consent.audit.HASHED_FIELDS as of this revision.
HASHED_FIELDS = (
    "seq",
    "prev_hash",
    "at",
    "actor_kind",
    "client_id",
    "organization_id",
    "user_id",
    "role",
    "service",
    "purpose",
    "action",
    "resource_type",
    "resource_id",
    "resident_id",
    "outcome",
    "count",
    "detail",
    "consent_ref",
)


def _hash(row: dict[str, Any]) -> str:
    doc = {
        k: (row[k].isoformat(timespec="microseconds") if isinstance(row[k], datetime) else row[k])
        for k in HASHED_FIELDS
    }
    data = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


def _chain_existing_entries() -> tuple[int, str]:
    bind = op.get_bind()
    types: dict[str, Any] = {
        "pk": PK,
        "seq": sa.BigInteger(),
        "at": sa.DateTime(),
        "count": sa.Integer(),
    }
    entries = sa.table(
        "audit_entry",
        *(sa.column(c, types.get(c, sa.String())) for c in ("pk", *HASHED_FIELDS, "entry_hash")),
    )
    content = [c for c in HASHED_FIELDS if c not in ("seq", "prev_hash", "service")]
    seq, prev, last_pk = 0, GENESIS_HASH, None
    while True:
        stmt = sa.select(entries.c.pk, *(entries.c[c] for c in content))
        if last_pk is not None:
            stmt = stmt.where(entries.c.pk > last_pk)
        rows = bind.execute(stmt.order_by(entries.c.pk).limit(5000)).mappings().all()
        if not rows:
            break
        updates = []
        for r in rows:
            seq += 1
            h = _hash({**r, "seq": seq, "prev_hash": prev, "service": None})
            updates.append({"b_pk": r["pk"], "b_seq": seq, "b_prev": prev, "b_hash": h})
            prev, last_pk = h, r["pk"]
        bind.execute(
            entries.update()
            .where(entries.c.pk == sa.bindparam("b_pk"))
            .values(
                seq=sa.bindparam("b_seq"),
                prev_hash=sa.bindparam("b_prev"),
                entry_hash=sa.bindparam("b_hash"),
            ),
            updates,
        )
    return seq, prev


def upgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("entry_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("service", sa.String(length=64), nullable=True))

    head_seq, head_hash = _chain_existing_entries()

    with op.batch_alter_table("audit_entry") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("entry_hash", existing_type=sa.String(length=64), nullable=False)
        batch.create_index("ix_audit_entry_seq", ["seq"], unique=True)
        batch.create_index("ix_audit_entry_resident_seq", ["resident_id", "seq"], unique=False)

    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": head_seq, "hash": head_hash}])

    op.create_table(
        "audit_seal",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("seq_from", sa.BigInteger(), nullable=False),
        sa.Column("seq_to", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_seal")),
    )
    with op.batch_alter_table("audit_seal") as batch:
        batch.create_index("ix_audit_seal_seq_from", ["seq_from"], unique=True)

    op.create_table(
        "notification",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
    )
    with op.batch_alter_table("notification") as batch:
        batch.create_index(
            "ix_notification_dedupe", ["recipient", "dedupe_key", "created_at"], unique=False
        )
        batch.create_index(
            "ix_notification_recipient_created", ["recipient", "created_at"], unique=False
        )
        batch.create_index(batch.f("ix_notification_resident_id"), ["resident_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("notification_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("recipient", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notification.id"],
            name=op.f("fk_outbox_notification_id_notification"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.create_index(batch.f("ix_outbox_notification_id"), ["notification_id"], unique=False)
        batch.create_index("ix_outbox_status_created", ["status", "created_at"], unique=False)

    op.create_table(
        "notification_watcher",
        sa.Column("pk", PK, autoincrement=True, nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("trusted_person_id", sa.String(length=64), nullable=False),
        sa.Column("kinds", sa.String(length=255), nullable=False),
        sa.Column("channels", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_notification_watcher")),
        sa.UniqueConstraint(
            "resident_id", "trusted_person_id", name="uq_notification_watcher_resident_person"
        ),
    )
    with op.batch_alter_table("notification_watcher") as batch:
        batch.create_index(
            batch.f("ix_notification_watcher_resident_id"), ["resident_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_watcher") as batch:
        batch.drop_index(batch.f("ix_notification_watcher_resident_id"))
    op.drop_table("notification_watcher")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_status_created")
        batch.drop_index(batch.f("ix_outbox_notification_id"))
    op.drop_table("outbox")
    with op.batch_alter_table("notification") as batch:
        batch.drop_index(batch.f("ix_notification_resident_id"))
        batch.drop_index("ix_notification_recipient_created")
        batch.drop_index("ix_notification_dedupe")
    op.drop_table("notification")
    with op.batch_alter_table("audit_seal") as batch:
        batch.drop_index("ix_audit_seal_seq_from")
    op.drop_table("audit_seal")
    op.drop_table("audit_chain_head")
    with op.batch_alter_table("audit_entry") as batch:
        batch.drop_index("ix_audit_entry_resident_seq")
        batch.drop_index("ix_audit_entry_seq")
        batch.drop_column("service")
        batch.drop_column("entry_hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
