"""homecare: enrolments, deposited stock, requests, visits, prescribed lines, steps

Revision ID: 7f3a9c1e5d20
Revises: c3d5e7f9a1b2
Create Date: 2026-11-26 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7f3a9c1e5d20"
down_revision: str | None = "c3d5e7f9a1b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "homecare_enrolment",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("clinic_id", sa.String(length=64), nullable=False),
        sa.Column("doctor_id", sa.String(length=64), nullable=True),
        sa.Column("pharmacy_id", sa.String(length=64), nullable=False),
        sa.Column("care_team_ref", sa.String(length=80), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(), nullable=False),
        sa.Column("enrolled_by", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_homecare_enrolment")),
    )
    op.create_index(
        op.f("ix_homecare_enrolment_resident_id"), "homecare_enrolment", ["resident_id"]
    )
    op.create_index(
        "ix_homecare_enrolment_station", "homecare_enrolment", ["station_id", "active"]
    )
    op.create_table(
        "homecare_stock",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("enrolment_id", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("drug_code", sa.String(length=12), nullable=False),
        sa.Column("drug_name", sa.String(length=255), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("lot", sa.String(length=64), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("deposited_by_org", sa.String(length=64), nullable=False),
        sa.Column("deposited_by", sa.String(length=80), nullable=False),
        sa.Column("deposited_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_homecare_stock_quantity_not_negative")),
        sa.ForeignKeyConstraint(
            ["enrolment_id"],
            ["homecare_enrolment.id"],
            name=op.f("fk_homecare_stock_enrolment_id_homecare_enrolment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_homecare_stock")),
    )
    op.create_index(op.f("ix_homecare_stock_enrolment_id"), "homecare_stock", ["enrolment_id"])
    op.create_index(op.f("ix_homecare_stock_resident_id"), "homecare_stock", ["resident_id"])
    op.create_table(
        "homecare_request",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("enrolment_id", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("complaint", sa.String(length=64), nullable=False),
        sa.Column("urgency", sa.String(length=8), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("nurse_id", sa.String(length=64), nullable=True),
        sa.Column("assigned_at", sa.DateTime(), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(), nullable=True),
        sa.Column("arrived_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrolment_id"],
            ["homecare_enrolment.id"],
            name=op.f("fk_homecare_request_enrolment_id_homecare_enrolment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_homecare_request")),
    )
    op.create_index(
        op.f("ix_homecare_request_enrolment_id"), "homecare_request", ["enrolment_id"]
    )
    op.create_index(op.f("ix_homecare_request_resident_id"), "homecare_request", ["resident_id"])
    op.create_index(op.f("ix_homecare_request_updated_at"), "homecare_request", ["updated_at"])
    op.create_index("ix_homecare_request_station", "homecare_request", ["station_id", "status"])
    op.create_table(
        "homecare_visit",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("nurse_id", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("encounter_ref", sa.String(length=80), nullable=False),
        sa.Column("news2", sa.Integer(), nullable=True),
        sa.Column("news2_risk", sa.String(length=16), nullable=True),
        sa.Column("consultation_ref", sa.String(length=80), nullable=True),
        sa.Column("doctor_org", sa.String(length=64), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("incident_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["homecare_request.id"],
            name=op.f("fk_homecare_visit_request_id_homecare_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_homecare_visit")),
    )
    op.create_index(
        op.f("ix_homecare_visit_request_id"), "homecare_visit", ["request_id"], unique=True
    )
    op.create_index(op.f("ix_homecare_visit_resident_id"), "homecare_visit", ["resident_id"])
    op.create_table(
        "homecare_order",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("visit_id", sa.String(length=64), nullable=False),
        sa.Column("stock_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("dosage", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request_ref", sa.String(length=80), nullable=False),
        sa.Column("guidance_ref", sa.String(length=80), nullable=True),
        sa.Column("administration_ref", sa.String(length=80), nullable=True),
        sa.Column("prescribed_at", sa.DateTime(), nullable=False),
        sa.Column("administered_at", sa.DateTime(), nullable=True),
        sa.Column("administered_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_homecare_order_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["stock_id"],
            ["homecare_stock.id"],
            name=op.f("fk_homecare_order_stock_id_homecare_stock"),
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["homecare_visit.id"],
            name=op.f("fk_homecare_order_visit_id_homecare_visit"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_homecare_order")),
    )
    op.create_index(op.f("ix_homecare_order_stock_id"), "homecare_order", ["stock_id"])
    op.create_index(op.f("ix_homecare_order_visit_id"), "homecare_order", ["visit_id"])
    op.create_table(
        "homecare_step",
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("organization_id", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("resource_refs", sa.Text(), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["homecare_request.id"],
            name=op.f("fk_homecare_step_request_id_homecare_request"),
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_homecare_step")),
    )
    op.create_index(op.f("ix_homecare_step_request_id"), "homecare_step", ["request_id"])


def downgrade() -> None:
    op.drop_table("homecare_step")
    op.drop_table("homecare_order")
    op.drop_table("homecare_visit")
    op.drop_table("homecare_request")
    op.drop_table("homecare_stock")
    op.drop_table("homecare_enrolment")
