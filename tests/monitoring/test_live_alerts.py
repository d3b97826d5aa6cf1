"""The monitoring, live: Prometheus with the repo's rules scrapes a real api and real
workers, Alertmanager routes with the repo's tree (its SNS receiver swapped for a local
webhook), and the alerts fire, arrive and resolve.

Short evaluation and scrape intervals come from this test's Prometheus configuration; the
rule expressions are the ones that ship. Only the two exercised alerts get a shorter `for:`
(their production values are asserted in test_rules.py), and only Alertmanager's grouping
timers are shortened in its copy of the tree. The same live Prometheus answers every
dashboard panel's query, and the live /metrics of the api and the workers are checked
against docs/metrics.md.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.monitoring import promrules
from tests.support.images import jpeg_bytes, png_with_corrupt_pixels
from tests.support.processes import Stack, free_port, wait_for, wait_job

pytestmark = pytest.mark.services

DASHBOARDS = promrules.MONITORING / "dashboards"
SHORT_FOR = {"PixToolsWorkersDown": "5s", "PixToolsJobFailureSpike": "5s"}
# Jobs that are accepted and then fail at render: a PNG whose container is whole (so it passes
# the submit-time checks) but whose compressed pixels are not (the decode fails on the worker).
FAIL_SPEC = {"outputs": [{"name": "bad", "steps": [{"op": "resize", "width": 48}]}]}


GOOD_SPEC = {
    "outputs": [
        {
            "name": "thumb",
            "steps": [{"op": "resize", "width": 32}, {"op": "convert", "format": "webp"}],
        }
    ]
}


class Receiver:
    """Alertmanager's webhook receiver: keeps every notification."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, name: str, status: str) -> list[dict[str, Any]]:
        return [
            a
            for n in self.notifications
            for a in n["alerts"]
            if a["labels"]["alertname"] == name and a["status"] == status
        ]


class Monitored:
    def __init__(self, stack: Stack, prometheus: str, receiver: Receiver, ports: dict[str, int]):
        self.stack = stack
        self.prometheus = prometheus
        self.receiver = receiver
        self.ports = ports

    def query(self, expr: str) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10)
        body = resp.json()
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def start_worker(self, queue: str, threads: int) -> None:
        self.stack.env["PIXTOOLS_WORKER_METRICS_PORT"] = str(self.ports[queue])
        self.stack.start(
            f"worker-{queue}",
            "worker",
            "--queues",
            queue,
            "--processes",
            "2" if queue == "standard" else "1",
            "--threads",
            str(threads),
        )
        self.stack.env.pop("PIXTOOLS_WORKER_METRICS_PORT")


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def private_services_env(
    services_env: dict[str, str], private_pg_url: str, private_rabbit_url: str
) -> dict[str, str]:
    """The services environment with a database and a vhost of this module alone: the session's
    own stack (other e2e tests) would otherwise consume these jobs, unscraped."""
    return {
        **services_env,
        "PIXTOOLS_DATABASE_URL": private_pg_url,
        "PIXTOOLS_RABBITMQ_URL": private_rabbit_url,
    }


@pytest.fixture(scope="module")
def monitored(
    private_services_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Monitored]:
    services_env = private_services_env
    tmp = tmp_path_factory.mktemp("monitoring")
    # RabbitMQ's own exporter (the cluster's rabbitmq.conf enables it; here: per-object path).
    subprocess.run(
        ["rabbitmq-plugins", "enable", "rabbitmq_prometheus"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    api_port = free_port()
    ports = {"standard": free_port(), "ml": free_port()}
    node_port, am_port, prom_port = free_port(), free_port(), free_port()
    stack = Stack(f"http://127.0.0.1:{api_port}", dict(services_env), tmp)
    stack.env["PIXTOOLS_OUTBOX_POLL_SECONDS"] = "0.5"
    receiver = Receiver()
    procs: list[subprocess.Popen[bytes]] = []

    config = promrules.alertmanager_config()
    for r in config["receivers"]:
        if r["name"] == "sns":
            r.pop("sns_configs")
            r["webhook_configs"] = [{"url": receiver.url, "send_resolved": True}]
    config["route"].update(group_wait="1s", group_interval="2s", repeat_interval="1h")
    (tmp / "alertmanager.yml").write_text(yaml.safe_dump(config))
    rules = promrules.write_rules(tmp / "rules.yml", for_overrides=SHORT_FOR, interval="1s")
    pixtools = {"namespace": "pixtools"}
    scrape = [
        (
            "api",
            f"127.0.0.1:{api_port}",
            "/metrics",
            {**pixtools, "service": "api", "pod": "api-0"},
        ),
        *(
            (
                f"worker-{q}",
                f"127.0.0.1:{p}",
                "/metrics",
                {**pixtools, "pod": f"worker-{q}-0", "container": "worker"},
            )
            for q, p in ports.items()
        ),
        ("rabbitmq", "127.0.0.1:15692", "/metrics/per-object", {**pixtools, "pod": "rabbitmq-0"}),
        ("node", f"127.0.0.1:{node_port}", "/metrics", {"instance": "node"}),
    ]
    prom_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules)],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": path,
                "static_configs": [{"targets": [target], "labels": labels}],
            }
            for job, target, path, labels in scrape
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
    try:
        stack.start("api", "api", "--host", "127.0.0.1", "--port", str(api_port))
        monitored = Monitored(stack, f"http://127.0.0.1:{prom_port}", receiver, ports)
        monitored.start_worker("standard", 3)
        monitored.start_worker("ml", 1)
        procs.append(
            _start(
                [
                    "prometheus-node-exporter",
                    f"--web.listen-address=127.0.0.1:{node_port}",
                    "--collector.disable-defaults",
                    "--collector.cpu",
                    "--collector.meminfo",
                    "--collector.loadavg",
                    "--collector.filesystem",
                ],
                tmp / "node-exporter.log",
            )
        )
        procs.append(
            _start(
                [
                    "prometheus-alertmanager",
                    f"--config.file={tmp / 'alertmanager.yml'}",
                    f"--storage.path={tmp / 'am'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                tmp / "alertmanager.log",
            )
        )
        procs.append(
            _start(
                [
                    "prometheus",
                    f"--config.file={tmp / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                tmp / "prometheus.log",
            )
        )
        stack.wait_ready()

        def all_up() -> bool:
            try:
                up = monitored.query("up")
            except httpx.HTTPError:
                return False
            return len(up) == len(scrape) and all(r["value"][1] == "1" for r in up)

        try:
            wait_for(all_up, 60, "every target up")
        except TimeoutError:
            logs = {n: stack.logs(n) for n in stack.procs}
            raise TimeoutError(f"targets: {monitored.query('up')}\n{logs}") from None
        yield monitored
    finally:
        stack.stop_all()
        for proc in procs:
            _stop(proc)
        receiver.server.shutdown()


async def _run_jobs(
    base_url: str, spec: dict[str, Any], count: int, source: bytes | None = None
) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        files = {"file": ("p.img", source or jpeg_bytes(96, 64), "application/octet-stream")}

        async def one() -> str:
            resp = await client.post("/api/v1/jobs", files=files, data={"spec": json.dumps(spec)})
            assert resp.status_code == 202, resp.text
            done = await wait_job(client, resp.json()["id"], timeout=90)
            return str(done["status"])

        return list(await asyncio.gather(*(one() for _ in range(count))))


def _wait_alert(
    m: Monitored, name: str, status: str, timeout: float, **labels: str
) -> dict[str, Any]:
    def arrived() -> list[dict[str, Any]]:
        return [
            a
            for a in m.receiver.alerts(name, status)
            if all(a["labels"].get(k) == v for k, v in labels.items())
        ]

    try:
        wait_for(arrived, timeout, f"{name} {status}", 0.5)
    except TimeoutError:
        alerts = m.query("ALERTS")
        raise TimeoutError(f"{name} {labels} never {status}; ALERTS: {alerts}") from None
    return arrived()[-1]


def test_live_metrics_match_docs_and_alerts_fire_arrive_and_resolve(monitored: Monitored) -> None:
    m = monitored
    assert asyncio.run(_run_jobs(m.stack.base_url, GOOD_SPEC, 4)) == ["succeeded"] * 4

    # docs/metrics.md lists exactly the series the api and the workers expose.
    documented = set(
        re.findall(
            r"^\| `(pixtools_\w+)`",
            (promrules.ROOT / "docs" / "metrics.md").read_text(),
            re.M,
        )
    )
    live: set[str] = set()
    for port in [m.stack.base_url.rsplit(":", 1)[1], *map(str, m.ports.values())]:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        # (prometheus-client adds a `<name>_created` timestamp beside each counter and
        # histogram; not a series of ours.)
        families = re.findall(r"^# TYPE (pixtools_\w+) ", text, re.M)
        live |= {f for f in families if not f.endswith("_created")}
    assert live == documented, (sorted(live - documented), sorted(documented - live))

    # Both pools report their consumers (standard: 2 processes x 3 threads).
    wait_for(
        lambda: (
            {
                r["metric"]["queue"]: r["value"][1]
                for r in m.query("sum by (queue) (pixtools_worker_consumers)")
            }
            == {"standard": "6", "ml": "1"}
        ),
        30,
        "consumer gauges",
    )
    wait_for(
        lambda: m.query('pixtools_jobs_finished_total{status="succeeded"} >= 4'), 30, "job count"
    )

    # Jobs fail: the failure-spike alert fires and reaches the receiver.
    assert (
        asyncio.run(_run_jobs(m.stack.base_url, FAIL_SPEC, 5, png_with_corrupt_pixels()))
        == ["failed"] * 5
    )
    fired = _wait_alert(m, "PixToolsJobFailureSpike", "firing", 60)
    assert fired["labels"]["severity"] == "warning"

    # Every dashboard panel has data now (the SLO panels' windows start with this run).
    for dashboard in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(dashboard.read_text())["panels"]:
            for target in panel.get("targets", []):
                result = m.query(target["expr"])
                assert result, f"{dashboard.name}: {panel['title']!r} has no data: {target['expr']}"

    # Good jobs dilute the failures below a quarter: the alert resolves.
    assert set(asyncio.run(_run_jobs(m.stack.base_url, GOOD_SPEC, 30))) == {"succeeded"}
    _wait_alert(m, "PixToolsJobFailureSpike", "resolved", 60)

    # The standard workers stop: worker-zero fires for that queue, and resolves on restart.
    # (The ML pool, slow to start while it loads its models, may have fired and resolved
    # already at the start: real behaviour, hence the filter on the queue.)
    m.stack.stop("worker-standard")
    down = _wait_alert(m, "PixToolsWorkersDown", "firing", 60, queue="standard")
    assert down["labels"]["severity"] == "critical"
    m.start_worker("standard", 3)
    _wait_alert(m, "PixToolsWorkersDown", "resolved", 90, queue="standard")
