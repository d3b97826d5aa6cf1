"""The monitoring component as rendered: workers scraped, dashboards shipped to Grafana."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.monitoring import promrules


@pytest.fixture(scope="module", params=["dev", "prod"])
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(promrules.ROOT / "manifests" / "overlays" / request.param)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_every_worker_serves_metrics_to_a_pod_monitor(rendered: list[dict[str, Any]]) -> None:
    workers = [
        d
        for d in rendered
        if d["kind"] == "Deployment"
        and d["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    ]
    assert {w["metadata"]["name"] for w in workers} == {"worker-standard", "worker-ml"}
    for w in workers:
        container = w["spec"]["template"]["spec"]["containers"][0]
        assert {"name": "metrics", "containerPort": 9191, "protocol": "TCP"} in container["ports"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["PIXTOOLS_WORKER_METRICS_PORT"] == "9191"
    monitor = next(d for d in rendered if d["kind"] == "PodMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    for w in workers:
        labels = w["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    policy = next(
        d
        for d in rendered
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "worker-metrics-ingress"
    )
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": "metrics", "protocol": "TCP"}]


def test_dashboards_ship_to_the_grafana_sidecar(rendered: list[dict[str, Any]]) -> None:
    cm = next(
        d
        for d in rendered
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "pixtools-dashboards"
    )
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    titles = set()
    for name, text in cm["data"].items():
        dashboard = json.loads(text)
        titles.add(dashboard["title"])
        assert dashboard["uid"] and name.endswith(".json")
        assert all(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    # The alerts' `dashboard` annotations name these.
    assert titles == {"PixTools / SLOs", "PixTools / Operations"}
    chart = (
        promrules.ROOT / "ansible" / "roles" / "monitoring" / "templates" / "helmchart.yaml.j2"
    ).read_text()
    assert "searchNamespace: ALL" in chart and "label: grafana_dashboard" in chart


def test_prod_scales_each_worker_on_its_queue_with_keda() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(promrules.ROOT / "manifests" / "overlays" / "prod")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    objects = [d for d in yaml.safe_load_all(out.stdout) if d]
    scaled = {
        d["spec"]["scaleTargetRef"]["name"]: d for d in objects if d["kind"] == "ScaledObject"
    }
    assert set(scaled) == {"worker-standard", "worker-ml"}
    deployments = {d["metadata"]["name"]: d for d in objects if d["kind"] == "Deployment"}
    for name, obj in scaled.items():
        (trigger,) = obj["spec"]["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "rabbitmq" and meta["mode"] == "QueueLength"
        # The queue this Deployment consumes, read with the URL its container already has.
        command = deployments[name]["spec"]["template"]["spec"]["containers"][0]["command"]
        assert meta["queueName"] == command[command.index("--queues") + 1]
        assert meta["hostFromEnv"] == "PIXTOOLS_RABBITMQ_URL"
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert {"secretRef": {"name": "pixtools-runtime"}} in container["envFrom"]
        assert 1 <= obj["spec"]["minReplicaCount"] < obj["spec"]["maxReplicaCount"]
    # KEDA itself: pinned, installed by the monitoring role, with small requests.
    role = promrules.ROOT / "ansible" / "roles" / "monitoring"
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    assert re.fullmatch(r"\d+\.\d+\.\d+", defaults["monitoring_keda_chart_version"])
    assert "keda-helmchart.yaml.j2" in (role / "tasks" / "main.yml").read_text()
    # dev renders no ScaledObject: the dev cluster may run without KEDA.
    dev = subprocess.run(
        ["kubectl", "kustomize", str(promrules.ROOT / "manifests" / "overlays" / "dev")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "kind: ScaledObject" not in dev
