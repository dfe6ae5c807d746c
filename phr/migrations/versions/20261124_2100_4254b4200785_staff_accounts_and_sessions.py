"""staff accounts (password + TOTP, roles) and their web sessions

Revision ID: 4254b4200785
Revises: 82c857885568
Create Date: 2026-11-24 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4254b4200785"
down_revision: str | None = "82c857885568"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_user",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("totp_secret", sa.String(length=512), nullable=False),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_staff_user_organization_id_organization"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_user")),
        sa.UniqueConstraint("organization_id", "username", name="uq_staff_user_org_username"),
    )
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_staff_user_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "staff_session",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_user.id"],
            name=op.f("fk_staff_session_staff_id_staff_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_staff_session")),
    )
    with op.batch_alter_table("staff_session", schema=None) as batch_op:
        batch_op.create_index("ix_staff_session_expires_at", ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_staff_session_staff_id"), ["staff_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_session_staff_id"))
        batch_op.drop_index("ix_staff_session_expires_at")
    op.drop_table("staff_session")
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_user_organization_id"))
    op.drop_table("staff_user")
