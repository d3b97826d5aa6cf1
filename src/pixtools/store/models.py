"""Database tables (SQLAlchemy 2). The schema is owned by Alembic migrations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pixtools.store.types import DateTimeUTC

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """The declarative base of every table."""

    pass


class JobRow(Base):
    """A job: its spec and source, how many outputs are pending, its archive and webhook state."""

    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    source: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    # The raw/ object the job renders from (``source["key"]``), shared by the jobs made
    # from it by reference: an object goes only when no row names it.
    source_key: Mapped[str | None] = mapped_column(sa.String(512))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    pending_outputs: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    archive_status: Mapped[str | None] = mapped_column(sa.String(16))
    archive_key: Mapped[str | None] = mapped_column(sa.String(512))
    webhook_url: Mapped[str | None] = mapped_column(sa.String(2048))
    webhook_status: Mapped[str | None] = mapped_column(sa.String(16))
    webhook_attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC)

    __table_args__ = (
        sa.Index("ix_jobs_owner_created", "owner", "created_at", "id"),
        sa.Index("ix_jobs_status", "status"),
        sa.Index("ix_jobs_source_key", "source_key"),
    )


class OutputRow(Base):
    """One output of a job: its steps, its status and attempts, and what it stored."""

    __tablename__ = "outputs"

    job_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    position: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    queue: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    steps: Mapped[list[Any]] = mapped_column(JSONType, nullable=False)
    format: Mapped[str | None] = mapped_column(sa.String(16))
    content_type: Mapped[str | None] = mapped_column(sa.String(64))
    object_key: Mapped[str | None] = mapped_column(sa.String(512))
    width: Mapped[int | None] = mapped_column(sa.Integer)
    height: Mapped[int | None] = mapped_column(sa.Integer)
    bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    started_at: Mapped[datetime | None] = mapped_column(DateTimeUTC)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTimeUTC)
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC)

    __table_args__ = (sa.Index("ix_outputs_status_heartbeat", "status", "heartbeat_at"),)


class OutboxRow(Base):
    """A message to publish; written in the same transaction as the state it announces."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False, unique=True)
    queue: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    actor: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    args: Mapped[list[Any]] = mapped_column(JSONType, nullable=False)
    job_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC, nullable=False)
    available_at: Mapped[datetime] = mapped_column(DateTimeUTC, nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC)
    publish_attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    trace_context: Mapped[str | None] = mapped_column(sa.String(128))

    __table_args__ = (sa.Index("ix_outbox_unsent", "sent_at", "available_at", "id"),)


class IdempotencyKeyRow(Base):
    """An ``Idempotency-Key`` an owner has used: the request's hash and the job it made."""

    __tablename__ = "idempotency_keys"

    owner: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    job_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC, nullable=False)


class ApiKeyRow(Base):
    """An API key: its name, whether it is an admin's, and the hash of its secret."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    key_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    admin: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC)


class WebhookAttemptRow(Base):
    """One webhook delivery attempt and what came of it."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True
    )
    delivery_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False)
    attempt: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    at: Mapped[datetime] = mapped_column(DateTimeUTC, nullable=False)
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    error: Mapped[str | None] = mapped_column(sa.Text)
    duration_ms: Mapped[float] = mapped_column(sa.Float, nullable=False)


class UploadRow(Base):
    """A presigned upload handed out: its owner and key, until a job is made from it
    (that job takes the upload's id, so an upload makes one job)."""

    __tablename__ = "uploads"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    key: Mapped[str] = mapped_column(sa.String(512), nullable=False)
    max_bytes: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC, nullable=False)

    __table_args__ = (sa.Index("ix_uploads_created", "created_at"),)
