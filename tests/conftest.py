"""Shared fixtures that start or borrow the real services.

Each test session gets its own PostgreSQL database, RabbitMQ vhost, Redis db and a moto
S3 server on a free loopback port, and removes them afterwards, so runs never collide.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from PIL import Image

from pixtools.settings import Settings
from tests.support.imageserver import Images
from tests.support.processes import Stack, free_port, wait_for
from tests.support.servers import REDIS_BASE, REDIS_DB, RUN_ID, migrated_database, own_vhost


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (PIXTOOLS_FORBID_SKIPS=1) a skipped test fails the run: every test must run."""
    if os.environ.get("PIXTOOLS_FORBID_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        for report in skipped:
            print(f"\nSKIPPED IN CI (not allowed): {report.nodeid}: {report.longrepr}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The session's database (the services stack uses it), schema migrated."""
    with migrated_database(f"pixtools_test_{RUN_ID}") as url:
        yield url


@pytest.fixture(scope="module")
def private_pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of this test module alone: no running relay or worker touches it."""
    suffix = secrets.token_hex(3)
    with migrated_database(f"pixtools_test_{RUN_ID}_{suffix}") as url:
        yield url


# --- RabbitMQ -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def rabbit_url() -> Iterator[str]:
    with own_vhost(f"pixtools_test_{RUN_ID}") as url:
        yield url


@pytest.fixture(scope="module")
def private_rabbit_url() -> Iterator[str]:
    """A vhost of this test module alone: no worker of the session's stack consumes from it."""
    with own_vhost(f"pixtools_test_{RUN_ID}_{secrets.token_hex(3)}") as url:
        yield url


# --- Redis --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    import redis

    url = f"{REDIS_BASE}/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


# --- S3 (moto server over HTTP) -----------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: httpx.get(url + "/moto-api/", timeout=1).status_code < 500, 30, "moto server"
        )
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


@pytest.fixture(scope="session")
def s3_bucket(s3_endpoint: str) -> str:
    import boto3

    name = f"pixtools-test-{RUN_ID.replace('_', '-')}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket=name)
    return name


@pytest.fixture(autouse=True)
def _pillow_pixel_limit() -> Iterator[None]:
    """Each decode sets Pillow's process-wide pixel limit from its ``max_pixels``; a test that
    decodes under a tiny limit must not leave it for the next test's plain ``Image.open``."""
    limit = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = limit


@pytest.fixture(scope="session", autouse=True)
def _aws_test_credentials() -> None:
    # Only ever the local moto server: never real AWS.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


# --- a local image server (URL sources) ------------------------------------------------


@pytest.fixture(scope="module")
def image_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- settings -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def services_env(
    pg_url: str,
    rabbit_url: str,
    redis_url: str,
    s3_endpoint: str,
    s3_bucket: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """The PIXTOOLS_* environment of the services mode against this session's services."""
    return {
        "PIXTOOLS_DATABASE_URL": pg_url,
        "PIXTOOLS_RABBITMQ_URL": rabbit_url,
        "PIXTOOLS_REDIS_URL": redis_url,
        "PIXTOOLS_S3_BUCKET": s3_bucket,
        "PIXTOOLS_S3_ENDPOINT_URL": s3_endpoint,
        "PIXTOOLS_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "PIXTOOLS_WEBHOOK_SECRET": "test-secret",
        "PIXTOOLS_HEARTBEAT_SECONDS": "1",
        "PIXTOOLS_STALE_AFTER_SECONDS": "6",
        "PIXTOOLS_OUTBOX_POLL_SECONDS": "1",
        "PIXTOOLS_LOG_LEVEL": "INFO",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }


@pytest.fixture(scope="session")
def services_settings(services_env: dict[str, str]) -> Settings:
    return Settings.from_env(services_env)


# --- processes ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def services_stack(
    services_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """api + standard worker + ml worker as real processes on the real services."""
    port = free_port()
    stack = Stack(f"http://127.0.0.1:{port}", dict(services_env), tmp_path_factory.mktemp("logs"))
    stack.start("api", "api", "--host", "127.0.0.1", "--port", str(port))
    stack.start(
        "worker-standard", "worker", "--queues", "standard", "--processes", "1", "--threads", "4"
    )
    stack.start("worker-ml", "worker", "--queues", "ml", "--processes", "1", "--threads", "1")
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
async def stack_client(services_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=services_stack.base_url, timeout=30) as client:
        yield client
