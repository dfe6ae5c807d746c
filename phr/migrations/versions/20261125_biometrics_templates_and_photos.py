"""biometric enrollment: sealed face templates, reference photos, gallery generation

Revision ID: b10e7c1a5f00
Revises: e7a1b2c3d4e5
Create Date: 2026-11-25 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b10e7c1a5f00"
down_revision: str | None = "e7a1b2c3d4e5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "biometric_enrollment",
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("consent_version", sa.String(length=32), nullable=False),
        sa.Column("photo_consent", sa.Boolean(), nullable=False),
        sa.Column("consented_at", sa.DateTime(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
        sa.Column("sex", sa.String(length=16), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("district", sa.String(length=16), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["resident.id"],
            name=op.f("fk_biometric_enrollment_resident_id_resident"),
        ),
        sa.PrimaryKeyConstraint("resident_id", name=op.f("pk_biometric_enrollment")),
    )
    op.create_table(
        "biometric_template",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("extractor", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["biometric_enrollment.resident_id"],
            name=op.f("fk_biometric_template_resident_id_biometric_enrollment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_biometric_template")),
    )
    with op.batch_alter_table("biometric_template", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_biometric_template_resident_id"), ["resident_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_biometric_template_generation"), ["generation"], unique=False
        )
    op.create_table(
        "biometric_photo",
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["biometric_enrollment.resident_id"],
            name=op.f("fk_biometric_photo_resident_id_biometric_enrollment"),
        ),
        sa.PrimaryKeyConstraint("resident_id", name=op.f("pk_biometric_photo")),
    )
    op.create_table(
        "biometric_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_biometric_state")),
    )
    op.execute("INSERT INTO biometric_state (id, generation, pruned_through) VALUES (1, 0, 0)")
    op.create_table(
        "biometric_tombstone",
        sa.Column("template_id", sa.String(length=36), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("template_id", name=op.f("pk_biometric_tombstone")),
    )
    with op.batch_alter_table("biometric_tombstone", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_biometric_tombstone_generation"), ["generation"], unique=False
        )
    op.create_table(
        "biometric_rate_window",
        sa.Column("actor_key", sa.String(length=160), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("actor_key", "window_start", name=op.f("pk_biometric_rate_window")),
    )


def downgrade() -> None:
    op.drop_table("biometric_rate_window")
    with op.batch_alter_table("biometric_tombstone", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_biometric_tombstone_generation"))
    op.drop_table("biometric_tombstone")
    op.drop_table("biometric_state")
    op.drop_table("biometric_photo")
    with op.batch_alter_table("biometric_template", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_biometric_template_generation"))
        batch_op.drop_index(batch_op.f("ix_biometric_template_resident_id"))
    op.drop_table("biometric_template")
    op.drop_table("biometric_enrollment")
