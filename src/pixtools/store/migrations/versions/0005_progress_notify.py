"""NOTIFY when an output moves: its status or its attempt changes

The UI (and any client) follows a running job with ``GET /api/v1/jobs/{id}?wait=N&since=``:
the answer comes as soon as an output starts, ends, or is taken over, not on a timer. One
notification per changed row, folded by PostgreSQL into one per job and transaction.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION pixtools_output_progress_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('pixtools_progress', NEW.job_id::text);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER output_progress_notify AFTER UPDATE OF status, attempts ON outputs
        FOR EACH ROW
        WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.attempts IS DISTINCT FROM NEW.attempts)
        EXECUTE FUNCTION pixtools_output_progress_notify()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS output_progress_notify ON outputs")
    op.execute("DROP FUNCTION IF EXISTS pixtools_output_progress_notify()")
