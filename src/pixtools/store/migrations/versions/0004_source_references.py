"""Sources by reference: ``jobs.source_key`` (the shared ``raw/`` object) and ``uploads``

A job may run on another job's source object, so an object is removed only when no job
row names it any more: ``source_key`` is the indexed column that check reads. ``uploads``
records presigned uploads (who asked, which key) until a job is created from them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("source_key", sa.String(length=512), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE jobs SET source_key = source->>'key'")
    else:
        op.execute("UPDATE jobs SET source_key = json_extract(source, '$.key')")
    op.create_index("ix_jobs_source_key", "jobs", ["source_key"])
    op.create_table(
        "uploads",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("max_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_uploads_created", "uploads", ["created_at"])


def downgrade() -> None:
    op.drop_table("uploads")
    op.drop_index("ix_jobs_source_key", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("source_key")
