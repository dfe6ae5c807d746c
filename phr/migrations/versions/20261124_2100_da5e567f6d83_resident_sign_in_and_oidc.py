"""resident sign-in with the My Number card (JPKI) and the OpenID Connect provider

Revision ID: da5e567f6d83
Revises: 82c857885568
Create Date: 2026-11-24 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "da5e567f6d83"
down_revision: str | None = "82c857885568"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "card_challenge",
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("nonce_hash", name=op.f("pk_card_challenge")),
    )
    op.create_index("ix_card_challenge_expires_at", "card_challenge", ["expires_at"])

    op.create_table(
        "card_link",
        sa.Column("pk", PK, autoincrement=True, nullable=False),
        sa.Column("issuer_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("certificate_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("not_after", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("demo_key_path", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_card_link")),
        sa.UniqueConstraint("issuer_fingerprint", "serial", name="uq_card_link_issuer_serial"),
    )
    op.create_index(op.f("ix_card_link_resident_id"), "card_link", ["resident_id"])

    op.create_table(
        "resident_session",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("card_link_pk", PK, nullable=True),
        sa.Column("auth_method", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_resident_session")),
    )
    op.create_index(op.f("ix_resident_session_resident_id"), "resident_session", ["resident_id"])

    op.create_table(
        "oauth_app_client",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("client_secret_hash", sa.String(length=255), nullable=True),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("grant_types", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oauth_app_client")),
    )

    op.create_table(
        "oauth_authorization_code",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=True),
        sa.Column("organization_id", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("nonce", sa.String(length=255), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("code_challenge_method", sa.String(length=8), nullable=True),
        sa.Column("auth_time", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("family_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_oauth_authorization_code")),
    )
    op.create_index(
        "ix_oauth_authorization_code_client_nonce",
        "oauth_authorization_code",
        ["client_id", "nonce"],
    )

    op.create_table(
        "oauth_token_family",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=True),
        sa.Column("organization_id", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("auth_time", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_token_family")),
    )
    op.create_index(
        op.f("ix_oauth_token_family_client_id"), "oauth_token_family", ["client_id"]
    )
    op.create_index(
        "ix_oauth_token_family_subject", "oauth_token_family", ["subject_kind", "subject_id"]
    )

    op.create_table(
        "oauth_refresh_token",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["oauth_token_family.id"],
            name=op.f("fk_oauth_refresh_token_family_id_oauth_token_family"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_oauth_refresh_token")),
    )
    op.create_index(
        op.f("ix_oauth_refresh_token_family_id"), "oauth_refresh_token", ["family_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_oauth_refresh_token_family_id"), table_name="oauth_refresh_token")
    op.drop_table("oauth_refresh_token")
    op.drop_index("ix_oauth_token_family_subject", table_name="oauth_token_family")
    op.drop_index(op.f("ix_oauth_token_family_client_id"), table_name="oauth_token_family")
    op.drop_table("oauth_token_family")
    op.drop_index(
        "ix_oauth_authorization_code_client_nonce", table_name="oauth_authorization_code"
    )
    op.drop_table("oauth_authorization_code")
    op.drop_table("oauth_app_client")
    op.drop_index(op.f("ix_resident_session_resident_id"), table_name="resident_session")
    op.drop_table("resident_session")
    op.drop_index(op.f("ix_card_link_resident_id"), table_name="card_link")
    op.drop_table("card_link")
    op.drop_index("ix_card_challenge_expires_at", table_name="card_challenge")
    op.drop_table("card_challenge")
