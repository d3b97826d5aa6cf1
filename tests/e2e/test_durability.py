"""A killed worker's work finishes with nobody running `pixtools reconcile`: in services mode
(a real `pixtools worker` killed with SIGKILL mid-output and started again) and in embedded
mode (`pixtools dev` killed with SIGKILL and started again).

The recovery times are printed (``pytest -s``); bench/recovery.py measures them properly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pika
import pytest

from pixtools.services import job_repository
from pixtools.settings import Settings
from pixtools.store.database import Database
from pixtools.store.jobs import Claim
from tests.support.images import jpeg_bytes
from tests.support.processes import ROOT, Stack, free_port, spawn_dev, wait_job
from tests.support.slow_jobs import SLOW_OUTPUT, noisy_jpeg, submit, until_running

pytestmark = pytest.mark.services


def restart_standard_worker(stack: Stack) -> None:
    stack.start(
        "worker-standard", "worker", "--queues", "standard", "--processes", "1", "--threads", "4"
    )


async def test_a_worker_killed_mid_output_recovers_without_reconcile(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    jid = await submit(stack_client, {"outputs": [SLOW_OUTPUT]}, noisy_jpeg(3000, 2000))
    await until_running(stack_client, jid)
    await asyncio.sleep(0.5)  # into the output (seconds of work remain)
    killed = time.monotonic()
    services_stack.stop("worker-standard", kill=True)  # SIGKILL: no chance to clean up
    try:
        restart_standard_worker(services_stack)
        # No `pixtools reconcile` anywhere: RabbitMQ redelivers the dead worker's message
        # at once; it waits for the heartbeat to go stale (6 s here) and takes over. (On the
        # code before, it was dropped and the job stayed running for good.)
        done = await wait_job(stack_client, jid, timeout=150)
    finally:
        if "worker-standard" not in services_stack.procs:
            restart_standard_worker(services_stack)
    print(f"\nservices: SIGKILL -> job {done['status']} in {time.monotonic() - killed:.1f} s")
    assert done["status"] == "succeeded", done
    assert done["outputs"][0]["attempts"] == 2  # the takeover shows in the attempts


async def test_a_message_for_an_output_held_by_a_dead_attempt_waits_and_takes_over(
    stack_client: httpx.AsyncClient, services_stack: Stack, services_settings: Settings
) -> None:
    """Deterministic: the output is claimed by an "attempt" that never beats (a worker that
    died right after its claim), so its heartbeat is fresh when the message arrives."""
    services_stack.stop("worker-standard")
    try:
        spec = {"outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}]}
        jid = await submit(stack_client, spec, jpeg_bytes(120, 90))
        db = Database(services_settings.database_url, pool_size=1)
        try:
            claim = await job_repository(db).claim_output(uuid.UUID(jid), "a", stale_after=60)
        finally:
            await db.dispose()
        assert isinstance(claim, Claim)
    finally:
        restart_standard_worker(services_stack)
    done = await wait_job(stack_client, jid, timeout=120)
    assert done["status"] == "succeeded", done
    assert done["outputs"][0]["attempts"] == 2
    log = services_stack.logs("worker-standard")
    assert f"output {jid}/a is held by another attempt; checking again in" in log, log


async def test_broker_state_lost_is_recovered_by_the_workers(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    services_stack.stop("worker-standard")
    try:
        spec = {"outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}]}
        jid = await submit(stack_client, spec, jpeg_bytes(120, 90))
        await asyncio.sleep(1.5)  # published and confirmed into the queue
        # The broker loses its state (a new node, an empty volume): queues and marker gone.
        conn = pika.BlockingConnection(
            pika.URLParameters(services_stack.env["PIXTOOLS_RABBITMQ_URL"])
        )
        try:
            ch = conn.channel()
            assert ch.queue_purge("standard").method.message_count >= 1
            ch.queue_delete("pixtools.marker")
        finally:
            conn.close()
    finally:
        restart_standard_worker(services_stack)
    # No reconcile command: a worker's periodic pass sees the marker gone and re-publishes.
    done = await wait_job(stack_client, jid, timeout=120)
    assert done["status"] == "succeeded"
    logs = services_stack.logs("worker-standard") + services_stack.logs("worker-ml")
    assert "broker state lost (marker queue missing)" in logs


# --- embedded mode ------------------------------------------------------------------------


def start_dev(data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXTOOLS_")}
    env.update(
        PIXTOOLS_DATA_DIR=str(data),
        PIXTOOLS_WORKER_THREADS="2",
        PIXTOOLS_HEARTBEAT_SECONDS="1",
        PIXTOOLS_STALE_AFTER_SECONDS="6",
    )
    log = open(data / "dev.log", "ab")  # noqa: SIM115 - closed with the process
    return spawn_dev(port, env, log, ROOT)


async def test_a_killed_dev_server_resumes_every_unfinished_job(tmp_path: Path) -> None:
    port = free_port()
    stack = Stack(f"http://127.0.0.1:{port}", {}, tmp_path)
    stack.procs["dev"] = start_dev(tmp_path, port)
    try:
        stack.wait_ready(90)
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
            source = noisy_jpeg(1600, 1200)
            # Two worker threads, four jobs: some run, some wait in the in-process queue.
            ids = [await submit(client, {"outputs": [SLOW_OUTPUT]}, source) for _ in range(4)]
            await until_running(client, ids[0])
        os.killpg(stack.procs["dev"].pid, signal.SIGKILL)
        stack.procs.pop("dev").wait(10)
        killed = time.monotonic()
        stack.procs["dev"] = start_dev(tmp_path, port)
        stack.wait_ready(90)
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
            jobs = [await wait_job(client, jid, timeout=240) for jid in ids]
        print(f"\nembedded: SIGKILL -> all 4 jobs done in {time.monotonic() - killed:.1f} s")
        assert [j["status"] for j in jobs] == ["succeeded"] * 4, jobs
        assert "resumed unfinished jobs at start" in (tmp_path / "dev.log").read_text()
    finally:
        stack.stop_all()
