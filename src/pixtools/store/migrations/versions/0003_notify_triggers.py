"""NOTIFY from triggers: an outbox insert wakes the relays, a finished job its waiters

PostgreSQL only (SQLite has no NOTIFY; the embedded mode signals in process). Before this,
every writer ran its own ``SELECT pg_notify(...)``: one more round trip per transaction,
and a writer that forgot it left the relay to its slow poll.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # One notification per inserting statement (NOTIFY is sent at commit, and PostgreSQL
    # folds identical notifications of one transaction into one).
    op.execute(
        """
        CREATE FUNCTION pixtools_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('pixtools_outbox', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
        FOR EACH STATEMENT EXECUTE FUNCTION pixtools_outbox_notify()
        """
    )
    op.execute(
        """
        CREATE FUNCTION pixtools_job_finished_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('pixtools_jobs', NEW.id::text);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER job_finished_notify AFTER UPDATE OF finished_at ON jobs
        FOR EACH ROW
        WHEN (OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL)
        EXECUTE FUNCTION pixtools_job_finished_notify()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS job_finished_notify ON jobs")
    op.execute("DROP FUNCTION IF EXISTS pixtools_job_finished_notify()")
    op.execute("DROP TRIGGER IF EXISTS outbox_notify ON outbox")
    op.execute("DROP FUNCTION IF EXISTS pixtools_outbox_notify()")
