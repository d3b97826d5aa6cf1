"""The real services the tests run on: a PostgreSQL database, a RabbitMQ vhost of their own."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator

PG_ADMIN = os.environ.get("PIXTOOLS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
RABBIT_HOST = os.environ.get("PIXTOOLS_TEST_RABBIT_HOST", "127.0.0.1:5672")
REDIS_BASE = os.environ.get("PIXTOOLS_TEST_REDIS", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("PIXTOOLS_TEST_REDIS_DB", "11"))
RUN_ID = f"{os.getpid()}_{secrets.token_hex(3)}"


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", PG_ADMIN, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def migrated_database(name: str) -> Iterator[str]:
    from pixtools.store.migrate import upgrade

    _psql(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def own_vhost(vhost: str) -> Iterator[str]:
    """A RabbitMQ vhost made for the caller and deleted afterwards; yields its AMQP URL."""
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield f"amqp://guest:guest@{RABBIT_HOST}/{vhost}"
    finally:
        with contextlib.suppress(Exception):
            rabbitmqctl("delete_vhost", vhost)
