"""The job repository on the real PostgreSQL (and on SQLite, the embedded mode's database)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pixtools.messaging.names import FINALIZE_ACTOR, PROCESS_ACTOR, WEBHOOK_ACTOR
from pixtools.services import job_repository
from pixtools.store.database import Database
from pixtools.store.jobs import (
    Claim,
    Held,
    IdempotencyClaim,
    IdempotencyConflict,
)
from pixtools.store.migrate import upgrade
from pixtools.store.models import JobRow, OutboxRow, OutputRow
from pixtools.store.outbox import OutboxRepository
from tests.support.jobs import DONE, new_job

pytestmark = pytest.mark.services


@pytest.fixture(params=["postgresql", "sqlite"])
async def db(
    request: pytest.FixtureRequest, private_pg_url: str, tmp_path: Path
) -> AsyncIterator[Database]:
    if request.param == "postgresql":
        url = private_pg_url
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        await asyncio.to_thread(upgrade, url)
    database = Database(url)
    yield database
    await database.dispose()


async def outbox_rows(db: Database, job_id: uuid.UUID) -> list[OutboxRow]:
    async with db.sessions() as s:
        return list(
            (
                await s.scalars(
                    sa.select(OutboxRow).where(OutboxRow.job_id == job_id).order_by(OutboxRow.id)
                )
            ).all()
        )


async def test_create_writes_job_outputs_and_outbox_in_one_go(db: Database) -> None:
    repo = job_repository(db)
    job = new_job("a", "b")
    await repo.create(job, None)
    record = await repo.get(job.id)
    assert record is not None
    assert record.job.status == "queued" and record.job.pending_outputs == 2
    assert [o.name for o in record.outputs] == ["a", "b"]
    rows = await outbox_rows(db, job.id)
    assert [(r.actor, r.args) for r in rows] == [
        ("process_output", [str(job.id), "a"]),
        ("process_output", [str(job.id), "b"]),
    ]


async def test_a_failed_insert_leaves_nothing(db: Database) -> None:
    repo = job_repository(db)
    job = new_job("a")
    await repo.create(job, None)
    with pytest.raises(sa.exc.IntegrityError):
        await repo.create(job, None)  # same id: the whole transaction rolls back
    async with db.sessions() as s:
        assert (
            await s.scalar(
                sa.select(sa.func.count()).select_from(OutputRow).where(OutputRow.job_id == job.id)
            )
            == 1
        )
    assert len(await outbox_rows(db, job.id)) == 1


async def test_idempotency_key_conflicts_tell_same_from_different(db: Database) -> None:
    repo = job_repository(db)
    first = new_job("a")
    key = f"k-{uuid.uuid4()}"
    await repo.create(first, IdempotencyClaim("tester", key, "h1"))
    with pytest.raises(IdempotencyConflict) as same:
        await repo.create(new_job("a"), IdempotencyClaim("tester", key, "h1"))
    assert same.value.job_id == first.id and same.value.same_request
    with pytest.raises(IdempotencyConflict) as other:
        await repo.create(new_job("a"), IdempotencyClaim("tester", key, "h2"))
    assert not other.value.same_request
    # Another owner may use the same key.
    await repo.create(
        new_job("a", owner="someone-else"), IdempotencyClaim("someone-else", key, "h1")
    )


async def test_claim_is_exclusive_and_fenced_by_attempt(db: Database) -> None:
    repo = job_repository(db)
    job = new_job("a")
    await repo.create(job, None)
    first = await repo.claim_output(job.id, "a", stale_after=60)
    assert isinstance(first, Claim) and first.attempts == 1
    # Fresh in other hands: held, with the seconds until that attempt would be stale.
    held = await repo.claim_output(job.id, "a", stale_after=60)
    assert isinstance(held, Held) and 55 < held.stale_in <= 60
    # A takeover after the heartbeat went stale fences the first attempt off.
    second = await repo.claim_output(job.id, "a", stale_after=0)
    assert isinstance(second, Claim) and second.attempts == 2
    assert not await repo.succeed_output(job.id, "a", 1, DONE)
    assert not await repo.heartbeat(job.id, "a", 1)
    assert await repo.succeed_output(job.id, "a", 2, DONE)
    assert await repo.claim_output(job.id, "a", stale_after=0) is None  # finished: never redone


async def test_last_output_to_finish_enqueues_finalize_exactly_once(db: Database) -> None:
    repo = job_repository(db)
    job = new_job("a", "b", "c")
    await repo.create(job, None)
    claims = [await repo.claim_output(job.id, n, stale_after=60) for n in "abc"]
    assert all(claims)
    results = await asyncio.gather(
        repo.succeed_output(job.id, "a", 1, DONE),
        repo.fail_output(job.id, "b", 1, "broken"),
        repo.succeed_output(job.id, "c", 1, DONE),
    )
    assert all(results)
    assert [r.last for r in results].count(True) == 1  # exactly one worker finalizes
    assert not [r for r in await outbox_rows(db, job.id) if r.actor == FINALIZE_ACTOR]
    status = await repo.complete_job(
        job.id, archive_status="succeeded", archive_key="archives/x.zip"
    )
    assert status == "partial"
    assert (
        await repo.complete_job(job.id, archive_status=None, archive_key=None) is None
    )  # idempotent
    record = await repo.get(job.id)
    assert record is not None and record.job.error == "outputs failed: b"


async def test_transient_failure_requeues_with_delay(db: Database) -> None:
    repo = job_repository(db)
    job = new_job("a")
    await repo.create(job, None)
    await repo.claim_output(job.id, "a", stale_after=60)
    assert await repo.retry_output_later(job.id, "a", 1, "boom", delay=30)
    rows = await outbox_rows(db, job.id)
    assert len(rows) == 2 and rows[1].available_at > rows[0].available_at
    again = await repo.claim_output(job.id, "a", stale_after=60)
    assert isinstance(again, Claim) and again.attempts == 2


async def test_stale_outputs_are_requeued_then_failed(db: Database) -> None:
    repo = job_repository(db)
    job = new_job("a")
    await repo.create(job, None)
    # (the database is shared by the session's tests: count only this job's rows)
    claim = await repo.claim_output(job.id, "a", stale_after=60)
    assert isinstance(claim, Claim) and claim.attempts == 1
    requeued, _ = await repo.requeue_stale_outputs(stale_after=0, max_attempts=2)
    assert requeued >= 1
    record = await repo.get(job.id)
    assert record is not None and record.outputs[0].status == "pending"
    assert "re-queued by the reconciler" in (record.outputs[0].error or "")
    claim = await repo.claim_output(job.id, "a", stale_after=60)
    assert isinstance(claim, Claim) and claim.attempts == 2
    _, failed = await repo.requeue_stale_outputs(stale_after=0, max_attempts=2)
    assert failed >= 1
    record = await repo.get(job.id)
    assert record is not None
    assert record.outputs[0].status == "failed" and "reconciler" in (record.outputs[0].error or "")
    # Nobody's worker is left to finalize: the reconciler enqueues it through the outbox.
    assert [r.actor for r in await outbox_rows(db, job.id)][-1] == FINALIZE_ACTOR


async def test_list_pages_newest_first_per_owner(db: Database) -> None:
    repo = job_repository(db)
    owner = f"lister-{uuid.uuid4()}"
    ids = []
    for _ in range(5):
        job = new_job("a", owner=owner)
        await repo.create(job, None)
        ids.append(job.id)
    seen: list[uuid.UUID] = []
    before = None
    while True:
        page = await repo.page(owner, status=None, limit=2, before=before)
        if not page:
            break
        seen += [r.job.id for r in page]
        before = (page[-1].job.created_at, page[-1].job.id)
    assert seen == list(reversed(ids))
    assert await repo.page(owner, status="succeeded", limit=10, before=None) == []


async def test_retry_failed_outputs_of_a_terminal_job(db: Database) -> None:
    repo = job_repository(db)
    job = new_job("a", "b")
    await repo.create(job, None)
    for n in "ab":
        await repo.claim_output(job.id, n, stale_after=60)
    await repo.succeed_output(job.id, "a", 1, DONE)
    await repo.fail_output(job.id, "b", 1, "nope")
    await repo.complete_job(job.id, archive_status="succeeded", archive_key="k")
    assert await repo.retry_failed_outputs(job.id, "tester") == ["b"]
    record = await repo.get(job.id)
    assert record is not None
    assert record.job.status == "queued" and record.job.pending_outputs == 1
    async with db.sessions() as s:
        job_row = await s.get(JobRow, job.id)
        assert job_row is not None and job_row.finished_at is None


async def test_a_job_without_archive_closes_with_its_last_output(db: Database) -> None:
    repo = job_repository(db)
    job = new_job("only")
    await repo.create(job, None)
    await repo.claim_output(job.id, "only", stale_after=60)
    finished = await repo.succeed_output(job.id, "only", 1, DONE)
    assert finished.recorded and finished.last and finished.closed
    record = await repo.get(job.id)
    assert record is not None and record.job.status == "succeeded" and record.job.finished_at
    assert await repo.complete_job(job.id, archive_status=None, archive_key=None) is None


async def test_finalize_forgotten_catches_a_job_whose_finalizer_died(db: Database) -> None:
    repo = job_repository(db)
    job = new_job("a", "b")  # two outputs: an archive, so finalize runs after the last one
    await repo.create(job, None)
    for n in "ab":
        await repo.claim_output(job.id, n, stale_after=60)
        finished = await repo.succeed_output(job.id, n, 1, DONE)
    assert finished.last and not finished.closed
    # ...and the worker dies before finalizing: the reconciler notices.
    assert await repo.finalize_forgotten() >= 1
    assert [r.actor for r in await outbox_rows(db, job.id)][-1] == FINALIZE_ACTOR
    await repo.finalize_forgotten()  # a second pass adds none for this job (one is unsent)
    rows = [r for r in await outbox_rows(db, job.id) if r.actor == FINALIZE_ACTOR]
    assert len(rows) == 1


async def test_a_connection_the_server_closed_is_replaced_not_handed_out(
    private_pg_url: str,
) -> None:
    # No pre-ping round trip on checkout: the pool relies on asyncpg knowing the socket closed.
    db = Database(private_pg_url, pool_size=1)
    repo = job_repository(db)
    try:
        async with db.reads() as s:
            first = await s.scalar(sa.text("SELECT pg_backend_pid()"))
        admin = Database(private_pg_url, pool_size=1)
        async with admin.reads() as s:
            assert await s.scalar(sa.text(f"SELECT pg_terminate_backend({first})"))
        await admin.dispose()
        await asyncio.sleep(0.2)  # the event loop reads the server's goodbye
        job = new_job("a")
        await repo.create(job, None)  # on a fresh connection, not the dead one
        record = await repo.get(job.id)
        assert record is not None and [o.name for o in record.outputs] == ["a"]
        async with db.reads() as s:
            assert await s.scalar(sa.text("SELECT pg_backend_pid()")) != first
    finally:
        await db.dispose()


async def test_triggers_notify_the_outbox_and_a_finished_job(private_pg_url: str) -> None:
    db = Database(private_pg_url)
    repo = job_repository(db)
    got: dict[str, list[str]] = {"pixtools_outbox": [], "pixtools_jobs": []}
    listeners = [await db.listen(channel, got[channel].append) for channel in got]
    try:
        job = new_job("a", "b")
        await repo.create(job, None)
        for n in "ab":
            await repo.claim_output(job.id, n, stale_after=60)
            await repo.succeed_output(job.id, n, 1, DONE)
        assert got["pixtools_jobs"] == []  # both outputs done, the job still to finalize
        await repo.complete_job(job.id, archive_status=None, archive_key=None)
        for _ in range(50):
            if got["pixtools_jobs"]:
                break
            await asyncio.sleep(0.02)
        assert got["pixtools_jobs"] == [str(job.id)]
        assert len(got["pixtools_outbox"]) == 1  # one per transaction that wrote outbox rows
    finally:
        for listener in listeners:
            await listener.close()
        await db.dispose()


async def test_a_jobs_whole_path_is_ten_statements(private_pg_url: str) -> None:
    """Round trips are the pipeline's fixed cost per job: submit 3 inserts, claim 2, finish 4
    (output, count-down, states, close), a read 1. BEGIN/COMMIT come on top; reads have none.
    A per-call pre-ping or a NOTIFY statement would show here."""
    db = Database(private_pg_url)
    repo = job_repository(db)
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        job = new_job("only")
        await repo.create(job, None)
        await repo.claim_output(job.id, "only", stale_after=60)
        finished = await repo.succeed_output(job.id, "only", 1, DONE)
        record = await repo.get(job.id)
        assert finished.closed and record is not None and record.job.status == "succeeded"
        assert seen == ["INSERT"] * 3 + ["UPDATE"] * 2 + [
            "UPDATE",
            "UPDATE",
            "SELECT",
            "UPDATE",
        ] + ["SELECT"]
        assert db.engine.pool._pre_ping is False
    finally:
        await db.dispose()


async def test_cancel_ends_the_job_and_fences_its_outputs(db: Database) -> None:
    repo = job_repository(db)
    job = new_job("a", "b")
    job = dataclasses.replace(job, webhook_url="https://example.com/hook")
    await repo.create(job, None)
    running = await repo.claim_output(job.id, "a", stale_after=60)
    assert isinstance(running, Claim)
    assert await repo.cancel(job.id, "someone-else") is None  # not the owner's: unknown
    assert await repo.cancel(job.id, "tester") == "running"
    record = await repo.get(job.id)
    assert record is not None
    assert record.job.status == "canceled" and record.job.finished_at is not None
    assert record.job.archive_status == "canceled"
    assert {o.name: o.status for o in record.outputs} == {"a": "canceled", "b": "canceled"}
    # The running attempt is fenced off; the pending output is never claimed.
    assert not await repo.succeed_output(job.id, "a", running.attempts, DONE)
    assert await repo.claim_output(job.id, "b", stale_after=0) is None
    rows = await outbox_rows(db, job.id)
    assert [r.actor for r in rows if r.sent_at is None] == [WEBHOOK_ACTOR]
    assert await repo.cancel(job.id, "tester") == "canceled"  # terminal: nothing changes
    assert await repo.retry_failed_outputs(job.id, "tester") is None  # stays canceled


async def test_resume_unfinished_requeues_running_and_republishes_pending(db: Database) -> None:
    repo = job_repository(db)
    job = new_job("a", "b")
    await repo.create(job, None)
    await db_mark_sent(db, job.id)
    claim = await repo.claim_output(job.id, "a", stale_after=60)
    assert isinstance(claim, Claim)
    report = await repo.resume_unfinished()
    # (The database holds other tests' jobs too: the rows of this one tell.)
    assert report["running_requeued"] >= 1 and report["pending_republished"] >= 1
    rows = [r for r in await outbox_rows(db, job.id) if r.sent_at is None]
    assert sorted(r.args[1] for r in rows) == ["a", "b"]  # each once: "a" re-queued, "b" again
    assert {r.actor for r in rows} == {PROCESS_ACTOR["standard"]}
    again = await repo.claim_output(job.id, "a", stale_after=60)
    assert isinstance(again, Claim) and again.attempts == 2


async def db_mark_sent(db: Database, job_id: uuid.UUID) -> None:
    async with db.transaction() as s:
        await s.execute(
            sa.update(OutboxRow).where(OutboxRow.job_id == job_id).values(sent_at=sa.func.now())
        )


async def test_a_job_canceled_during_a_relay_pass_does_not_undo_the_pass(tmp_path: Path) -> None:
    """SQLite (embedded mode): the relay's claim takes no row lock, so a cancel can delete an
    unsent row of the pass while it publishes. The pass failed at its commit (StaleDataError,
    an ERROR line) and rolled back the rows it had published, which went out again; found by
    the extended fuzz (submit, then cancel at once). (PostgreSQL: the cancel waits for the
    claim's row locks.)"""
    url = f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        repo = job_repository(db)
        first, canceled = new_job("a"), new_job("b", "c")
        await repo.create(first, None)
        await repo.create(canceled, None)
        published: list[list[str]] = []

        async def publish(row: OutboxRow) -> None:
            published.append(list(row.args))
            if row.job_id == first.id:  # the pass has claimed every row: cancel the other job
                assert await repo.cancel(canceled.id, None) == "queued"

        assert await OutboxRepository(db).publish_due(publish) == (3, False)
        assert [args[1] for args in published] == ["a", "b", "c"]
        rows = await outbox_rows(db, first.id)
        assert [r.sent_at is not None for r in rows] == [True]  # kept: not published twice
        assert await outbox_rows(db, canceled.id) == []  # deleted by the cancel, as before
    finally:
        await db.dispose()


async def test_the_filename_filter_folds_case_beyond_ascii(db: Database) -> None:
    """``?q=`` is case-insensitive for every letter: SQLite's own lower() and LIKE fold
    ASCII only, so "ünï" did not find "Ünïcödé.png" in embedded mode (found by the fuzz)."""
    repo = job_repository(db)
    tag = uuid.uuid4().hex[:8]
    job = new_job("a")
    job = dataclasses.replace(job, source={**job.source, "filename": f"Ünïcödé-{tag}_%.PNG"})
    await repo.create(job, None)
    for q in (f"ünïcödé-{tag}", f"ÜNÏCÖDÉ-{tag}_%.png", f"ödé-{tag}_%.p", f"{tag}_%"):
        found = await repo.page("tester", status=None, limit=10, before=None, name=q)
        assert [r.job.id for r in found] == [job.id], q
    for q in (f"unicode-{tag}", f"{tag}%_", f"Ünïcödé-{tag}x"):  # no accent folding; literal % _
        assert await repo.page("tester", status=None, limit=10, before=None, name=q) == [], q
