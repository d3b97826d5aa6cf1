"""The adapters one process (or one event loop) works with, chosen from the settings."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from pixtools.messaging.names import FINALIZE_ACTOR, PROCESS_ACTOR, WEBHOOK_ACTOR
from pixtools.observability.metrics import job_finished
from pixtools.observability.tracing import current_traceparent
from pixtools.settings import Settings
from pixtools.store.cache import Cache, MemoryCache, RedisCache
from pixtools.store.database import Database, LocalSignals
from pixtools.store.jobs import JobRepository, Routes
from pixtools.store.keys import ApiKeyRepository
from pixtools.store.objects import LocalObjectStore, ObjectStore, S3ObjectStore
from pixtools.store.outbox import OutboxRepository
from pixtools.store.sources import UploadRepository
from pixtools.store.webhooks import WebhookRepository


@dataclass(slots=True)
class Services:
    """What every use case works with: settings, database, repositories, objects and cache."""

    settings: Settings
    db: Database
    jobs: JobRepository
    objects: ObjectStore
    cache: Cache
    #: The other repositories over ``db``, built once here.
    uploads: UploadRepository = field(init=False)
    webhooks: WebhookRepository = field(init=False)
    keys: ApiKeyRepository = field(init=False)
    outbox: OutboxRepository = field(init=False)

    def __post_init__(self) -> None:
        self.uploads = UploadRepository(self.db)
        self.webhooks = WebhookRepository(self.db, self.jobs.routes)
        self.keys = ApiKeyRepository(self.db)
        self.outbox = OutboxRepository(self.db)

    async def close(self) -> None:
        """Close the object store, cache and database (the first two best effort)."""
        with contextlib.suppress(Exception):
            await self.objects.close()
        with contextlib.suppress(Exception):
            await self.cache.close()
        await self.db.dispose()


ROUTES = Routes(dict(PROCESS_ACTOR.items()), FINALIZE_ACTOR, WEBHOOK_ACTOR, current_traceparent)


def job_repository(db: Database) -> JobRepository:
    """The job repository addressing messaging's actors, counting the jobs it finishes."""
    return JobRepository(db, ROUTES, on_finished=job_finished)


def build_object_store(settings: Settings) -> ObjectStore:
    """S3 when a bucket is set, else the local folder."""
    if settings.s3_bucket:
        return S3ObjectStore(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url or None,
            region=settings.s3_region,
            presign_seconds=settings.presign_seconds,
        )
    return LocalObjectStore(settings.effective_storage_dir)


def build_services(
    settings: Settings,
    *,
    cache: Cache | None = None,
    pool_size: int = 10,
    signals: LocalSignals | None = None,
) -> Services:
    """Create the adapters; call on the event loop that will use them."""
    db = Database(settings.effective_database_url, pool_size=pool_size, signals=signals)
    if cache is None:
        cache = RedisCache(settings.redis_url) if settings.redis_url else MemoryCache()
    return Services(settings, db, job_repository(db), build_object_store(settings), cache)
