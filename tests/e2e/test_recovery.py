"""Nothing accepted is lost: a worker killed mid-job, and a broker that lost its queues."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys

import httpx
import numpy as np
import pika
import pytest
from PIL import Image

from tests.conftest import ROOT, Stack, jpeg_bytes, wait_job

pytestmark = pytest.mark.services


def reconcile(stack: Stack) -> dict[str, int]:
    proc = subprocess.run(
        [sys.executable, "-m", "pixtools.cli", "reconcile"],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def restart_standard_worker(stack: Stack) -> None:
    stack.start(
        "worker-standard", "worker", "--queues", "standard", "--processes", "1", "--threads", "4"
    )


def noisy_jpeg(w: int, h: int) -> bytes:
    arr = np.random.default_rng(1).integers(0, 255, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95)
    return buf.getvalue()


async def test_worker_killed_mid_output_is_recovered_by_the_reconciler(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    slow = {
        "outputs": [
            {
                "name": "slow",
                "steps": [
                    {"op": "blur", "sigma": 60},
                    {"op": "blur", "sigma": 60},
                    {"op": "blur", "sigma": 60},
                    {"op": "sharpen", "amount": 5, "radius": 10},
                    {"op": "convert", "format": "png"},
                ],
            }
        ]
    }
    resp = await stack_client.post(
        "/api/v1/jobs",
        files={"file": ("big.jpg", noisy_jpeg(3000, 2000))},
        data={"spec": json.dumps(slow)},
    )
    assert resp.status_code == 202
    jid = resp.json()["id"]
    for _ in range(300):
        job = (await stack_client.get(f"/api/v1/jobs/{jid}")).json()
        if job["outputs"][0]["status"] == "running":
            break
        await asyncio.sleep(0.05)
    assert job["outputs"][0]["status"] == "running", job
    services_stack.stop("worker-standard", kill=True)  # SIGKILL: no chance to clean up
    try:
        restart_standard_worker(services_stack)
        # The redelivered message finds the output fresh in (dead) hands and leaves it;
        # once the heartbeat is stale (6 s here) the reconciler re-queues it.
        await asyncio.sleep(7)
        report = reconcile(services_stack)
        assert report["stale_requeued"] >= 1
        done = await wait_job(stack_client, jid, timeout=180)
    finally:
        if "worker-standard" not in services_stack.procs:
            restart_standard_worker(services_stack)
    out = done["outputs"][0]
    assert done["status"] == "succeeded"
    assert out["attempts"] == 2  # the recovery shows in the attempts


async def test_pending_work_lost_with_the_broker_is_published_again(
    stack_client: httpx.AsyncClient, services_stack: Stack
) -> None:
    reconcile(services_stack)  # the marker exists from here on
    services_stack.stop("worker-standard")
    try:
        spec = {"outputs": [{"name": "a", "steps": [{"op": "grayscale"}]}]}
        resp = await stack_client.post(
            "/api/v1/jobs",
            files={"file": ("a.jpg", jpeg_bytes(120, 90))},
            data={"spec": json.dumps(spec)},
        )
        jid = resp.json()["id"]
        await asyncio.sleep(1.5)  # published and confirmed into the queue
        # The broker loses its state (a new node, an empty volume): queues and marker gone.
        params = pika.URLParameters(services_stack.env["PIXTOOLS_RABBITMQ_URL"])
        conn = pika.BlockingConnection(params)
        try:
            ch = conn.channel()
            assert ch.queue_purge("standard").method.message_count >= 1
            ch.queue_delete("pixtools.marker")
        finally:
            conn.close()
        report = reconcile(services_stack)
        assert report["broker_reset_republished"] >= 1
        assert reconcile(services_stack)["broker_reset_republished"] == 0  # once only
    finally:
        restart_standard_worker(services_stack)
    done = await wait_job(stack_client, jid, timeout=120)
    assert done["status"] == "succeeded"
