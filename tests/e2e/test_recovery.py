"""`pixtools reconcile` (the CronJob's command) beside the workers' own passes."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from tests.support.processes import ROOT, Stack
from tests.support.servers import RABBIT_HOST, rabbitmqctl

pytestmark = pytest.mark.services


def reconcile(env: dict[str, str]) -> tuple[dict[str, object], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pixtools.cli", "reconcile"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def test_the_first_reconcile_on_a_fresh_broker_reports_no_loss(
    services_env: dict[str, str], private_pg_url: str
) -> None:
    vhost = f"pixtools_fresh_{secrets.token_hex(3)}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        env = {
            **services_env,
            "PIXTOOLS_DATABASE_URL": private_pg_url,
            "PIXTOOLS_RABBITMQ_URL": f"amqp://guest:guest@{RABBIT_HOST}/{vhost}",
        }
        report, log = reconcile(env)
        assert report["broker_marker"] == "created"
        assert report["broker_reset_republished"] == 0
        assert "broker state lost" not in log
        again, _ = reconcile(env)
        assert again["broker_marker"] == "present"
    finally:
        rabbitmqctl("delete_vhost", vhost)


def test_reconcile_runs_beside_the_workers_passes(services_stack: Stack) -> None:
    # The workers pass every 3 s here under the same advisory lock: the command waits its
    # turn and reports a pass of its own.
    report, _ = reconcile(services_stack.env)
    assert set(report) >= {"stale_requeued", "finalized", "broker_marker", "outbox_published"}
