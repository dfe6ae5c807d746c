"""Tables of the record store.

FHIR JSON is the one data model: ``resource`` holds the current version of every
resource as JSON text, ``resource_version`` every version ever written, and the
``search_*`` tables the index values extracted on write. Every row carries the
resident key (``resident_id``; NULL only for shared reference data such as
Organization or Practitioner) so that the store can be sharded by resident later.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from phr.db import Base

# BIGINT on PostgreSQL; INTEGER on SQLite so that it aliases the rowid.
PK = BigInteger().with_variant(Integer(), "sqlite")


class Resident(Base):
    """One person of the city: the key every record hangs on."""

    __tablename__ = "resident"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # active | merged (then merged_into names the surviving resident)
    status: Mapped[str] = mapped_column(String(16), default="active")
    merged_into: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Resource(Base):
    __tablename__ = "resource"
    __table_args__ = (
        UniqueConstraint("resource_type", "id", name="uq_resource_type_id"),
        Index("ix_resource_resident_type", "resident_id", "resource_type"),
        Index("ix_resource_type_updated", "resource_type", "last_updated"),
        Index("ix_resource_fact", "resident_id", "fact_key"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(64))
    id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer)
    resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_updated: Mapped[datetime] = mapped_column(DateTime)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # The JSON text exactly as served (meta.versionId/lastUpdated already set), so reads
    # return it without parsing.
    content: Mapped[str] = mapped_column(Text)
    # sha256 of the content without meta: an unchanged re-import writes nothing.
    content_hash: Mapped[str] = mapped_column(String(64))
    # Clinical identity of the fact (e.g. vaccine + date for an Immunization) used to
    # recognise the same fact arriving from two sources.
    fact_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Sensitive category (phr.store.sensitivity): shared only under a consent naming it.
    sensitivity: Mapped[str | None] = mapped_column(String(32), nullable=True)


class ResourceVersion(Base):
    __tablename__ = "resource_version"
    __table_args__ = (
        UniqueConstraint("resource_type", "id", "version_id", name="uq_resource_version_key"),
        Index("ix_resource_version_resident", "resident_id"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    resource_pk: Mapped[int] = mapped_column(ForeignKey("resource.pk", ondelete="CASCADE"))
    resource_type: Mapped[str] = mapped_column(String(64))
    id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer)
    resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_updated: Mapped[datetime] = mapped_column(DateTime)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    method: Mapped[str] = mapped_column(String(8))  # POST | PUT | DELETE
    content: Mapped[str] = mapped_column(Text)


class _IndexMixin:
    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    resource_pk: Mapped[int] = mapped_column(
        ForeignKey("resource.pk", ondelete="CASCADE"), index=True
    )
    resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resource_type: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))


class SearchToken(_IndexMixin, Base):
    __tablename__ = "search_token"
    __table_args__ = (
        Index("ix_search_token_lookup", "resource_type", "param", "code", "resident_id"),
    )
    system: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code: Mapped[str] = mapped_column(String(255))


class SearchString(_IndexMixin, Base):
    __tablename__ = "search_string"
    __table_args__ = (Index("ix_search_string_lookup", "resource_type", "param", "value"),)
    # Normalised: lower case, accents kept (Japanese has none to fold).
    value: Mapped[str] = mapped_column(String(255))


class SearchDate(_IndexMixin, Base):
    __tablename__ = "search_date"
    __table_args__ = (
        Index("ix_search_date_lookup", "resource_type", "param", "low"),
        Index("ix_search_date_resident", "resident_id", "resource_type", "param", "low"),
    )
    # Half-open UTC interval [low, high) covered by the value at its precision.
    low: Mapped[datetime] = mapped_column(DateTime)
    high: Mapped[datetime] = mapped_column(DateTime)


class SearchReference(_IndexMixin, Base):
    __tablename__ = "search_reference"
    __table_args__ = (
        Index("ix_search_reference_lookup", "target_type", "target_id", "resource_type", "param"),
    )
    target_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    target_id: Mapped[str] = mapped_column(String(255))


class SearchQuantity(_IndexMixin, Base):
    __tablename__ = "search_quantity"
    __table_args__ = (Index("ix_search_quantity_lookup", "resource_type", "param", "value"),)
    value: Mapped[float] = mapped_column(Float)
    system: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ResourceSource(Base):
    """Which organisation contributed a resource, under which of its own keys.

    The gateway's idempotency (the same source record re-sent changes nothing) and
    de-duplication (the same fact from two sources is one resource with two rows here)
    both rest on this table; so does "an organisation always sees its own chart".
    """

    __tablename__ = "resource_source"
    __table_args__ = (
        UniqueConstraint(
            "organization_id", "resource_type", "source_key", name="uq_resource_source_key"
        ),
        Index("ix_resource_source_resource_org", "resource_pk", "organization_id"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    resource_pk: Mapped[int] = mapped_column(ForeignKey("resource.pk", ondelete="CASCADE"))
    resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    organization_id: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(64))
    # The source's own key for the record (its resource id, fullUrl, or row identity).
    source_key: Mapped[str] = mapped_column(String(255))
    # Hash of the record as the source sent it: re-sent unchanged means nothing to do.
    source_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime)
    import_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


INDEX_MODELS = (SearchToken, SearchString, SearchDate, SearchReference, SearchQuantity)
