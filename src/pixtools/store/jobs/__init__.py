"""The job repository: every read and write of jobs, outputs, the outbox and idempotency keys.

Route handlers, actors and maintenance tasks reach the database only through here. Each
public method is one explicit transaction. State changes that must be announced to the
workers write an outbox row in the same transaction (see ``pixtools.worker.relay``),
addressed by the ``Routes`` the repository is built with.
"""

from pixtools.store.jobs.base import OnFinished
from pixtools.store.jobs.lifecycle import Lifecycle
from pixtools.store.jobs.reads import Reads
from pixtools.store.jobs.records import (
    Claim,
    Finished,
    Held,
    IdempotencyClaim,
    IdempotencyConflict,
    JobRecord,
    NewJob,
    NewOutput,
    OutputDone,
    SourceGone,
)
from pixtools.store.jobs.recovery import Recovery
from pixtools.store.jobs.removal import Removal
from pixtools.store.jobs.submit import Submission
from pixtools.store.jobs.work import OutputWork
from pixtools.store.messages import Routes

__all__ = [
    "Claim",
    "Finished",
    "Held",
    "IdempotencyClaim",
    "IdempotencyConflict",
    "JobRecord",
    "JobRepository",
    "NewJob",
    "NewOutput",
    "OnFinished",
    "OutputDone",
    "Routes",
    "SourceGone",
]


class JobRepository(Submission, Reads, OutputWork, Lifecycle, Removal, Recovery):
    """Jobs and their outputs."""
