"""Shared fixtures that start or borrow the real services.

Each test session gets its own PostgreSQL database, RabbitMQ vhost, Redis db and a moto
S3 server on a free loopback port, and removes them afterwards, so runs never collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from pixtools.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("PIXTOOLS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
RABBIT_HOST = os.environ.get("PIXTOOLS_TEST_RABBIT_HOST", "127.0.0.1:5672")
REDIS_BASE = os.environ.get("PIXTOOLS_TEST_REDIS", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("PIXTOOLS_TEST_REDIS_DB", "11"))
RUN_ID = f"{os.getpid()}_{secrets.token_hex(3)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def jpeg_bytes(
    width: int = 640, height: int = 480, color: tuple[int, int, int] = (180, 40, 60)
) -> bytes:
    """A real JPEG with some structure (a gradient and a box), made in memory."""
    img = Image.new("RGB", (width, height), color)
    px = img.load()
    assert px is not None
    for x in range(0, width, max(1, width // 64)):
        for y in range(height):
            px[x, y] = (x * 255 // width, y * 255 // height, 128)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def png_with_corrupt_pixels(width: int = 96, height: int = 64, mode: str = "RGB") -> bytes:
    """A PNG whose every chunk is whole (lengths and CRCs right) but whose deflate stream is
    broken: it passes the submit-time checks (header, container) and fails to decode on the
    worker, the one way left for a well-formed request to fail at render."""
    im = Image.linear_gradient("L").resize((width, height)).convert(mode)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    data = bytearray(buf.getvalue())
    at = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[at - 4 : at])
    middle = at + 4 + length // 3
    data[middle : middle + 16] = b"\xff" * 16
    crc = zlib.crc32(data[at : at + 4 + length]) & 0xFFFFFFFF
    data[at + 4 + length : at + 8 + length] = struct.pack(">I", crc)
    return bytes(data)


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


@dataclass
class Stack:
    """Real `pixtools` processes (api and workers) with their logs."""

    base_url: str
    env: dict[str, str]
    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "pixtools.cli", *args],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def stop(self, name: str, *, kill: bool = False) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def logs(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            return httpx.get(self.base_url + "/readyz", timeout=2).status_code == 200

        try:
            wait_for(ready, timeout, "api /readyz")
        except TimeoutError:
            raise TimeoutError("api not ready:\n" + self.logs("api")) from None


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


async def wait_job(
    client: httpx.AsyncClient,
    job_id: str,
    timeout: float = 60,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Long-poll a job until it is terminal; return it."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        wait = max(0.0, min(10.0, deadline - time.monotonic()))
        resp = await client.get(
            f"/api/v1/jobs/{job_id}", params={"wait": f"{wait:.1f}"}, headers=headers
        )
        assert resp.status_code == 200, resp.text
        job = resp.json()
        if job["status"] in ("succeeded", "partial", "failed", "canceled"):
            return job
        await asyncio.sleep(0.1)
    raise TimeoutError(f"job {job_id} still {job.get('status')} after {timeout}s: {job}")


@pytest.fixture
async def stack_client(services_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=services_stack.base_url, timeout=30) as client:
        yield client
