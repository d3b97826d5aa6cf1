"""The cluster manifests and the Dockerfile, checked as rendered.

Each overlay is rendered with ``kubectl kustomize`` (offline) and the invariants that the
deployment relies on are asserted on the result: probes, resources, security contexts, queue
names and concurrency from the seed, images by digest, Redis eviction, the RabbitMQ volume,
NetworkPolicies, CronJob schedules, the migration ordering and the spot-notice timings.

Needs only pytest, PyYAML and kubectl. ``scripts/checks/manifests.sh`` runs these in its own
virtual environment (where kubernetes-validate is also installed and the schema test must run);
the main test suite runs them too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from tests.support.manifests import (
    ENVS,
    K8S_SCHEMA_VERSION,
    Objects,
    all_containers,
    containers,
    named,
    of_kind,
    pod_template,
    quantity_mi,
    render,
    workloads,
)

ROOT = Path(__file__).resolve().parents[2]
# The plan's worker split, as the repo's own docs write it down (the repo stands alone).
CLUSTER_DOC = ROOT / "docs" / "cluster.md"

# The seed's worker split (Architecture Freeze): default_queue x5, ml_inference_queue x1.
# PixTools names the queues `standard` and `ml` (docs/api.md, "Ops").
SEED_QUEUES = {"default_queue": "standard", "ml_inference_queue": "ml"}
QUEUE_CONCURRENCY = {"standard": 5, "ml": 1}
WORKER_FOR_QUEUE = {"standard": "worker-standard", "ml": "worker-ml"}

# Kinds that are custom resources: kubernetes-validate has no schema for them, so they are the
# only objects the schema check may skip; their shape is asserted by the tests below instead.
CRD_KINDS = {
    ("elbv2.k8s.aws/v1beta1", "TargetGroupBinding"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("keda.sh/v1alpha1", "ScaledObject"),
}

SPOT_NOTICE_SECONDS = 120
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
ECR = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/(pixtools-api|pixtools-worker)@")
APP_IMAGES = {"api": "pixtools-api", "worker": "pixtools-worker"}

# What the whole node requests (these manifests and the charts the roles install) against the
# smallest locked instance type: tests/manifests/test_platform.py.


# ---------------------------------------------------------------------------------------------
# Rendering and walking the objects
# ---------------------------------------------------------------------------------------------


@pytest.fixture(params=ENVS)
def env(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def objects(env: str) -> Objects:
    return render(env)


def main_container(obj: dict[str, Any]) -> dict[str, Any]:
    found = pod_template(obj)["spec"]["containers"]
    assert len(found) == 1, f"{obj['metadata']['name']}: expected one container"
    return dict(found[0])


def env_value(container: dict[str, Any], name: str) -> str | None:
    for item in container.get("env", []):
        if item["name"] == name:
            return cast("str | None", item.get("value"))
    return None


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([smh])", duration)
    assert match, duration
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


# ---------------------------------------------------------------------------------------------
# Rendering, schema, namespace
# ---------------------------------------------------------------------------------------------


def test_overlay_renders_the_whole_application(objects: Objects) -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    expected = {
        ("Namespace", "pixtools"),
        ("Deployment", "api"),
        ("Service", "api"),
        ("TargetGroupBinding", "api"),
        ("Deployment", "worker-standard"),
        ("Deployment", "worker-ml"),
        ("StatefulSet", "rabbitmq"),
        ("Service", "rabbitmq"),
        ("Deployment", "redis"),
        ("Service", "redis"),
        ("CronJob", "reconcile"),
        ("CronJob", "cleanup"),
        ("NetworkPolicy", "default-deny-ingress"),
        ("PrometheusRule", "pixtools"),
    }
    assert expected <= kinds, expected - kinds


def test_every_object_validates_against_the_kubernetes_schema(objects: Objects) -> None:
    """Strict schema validation, offline; only the known custom resources are skipped."""
    if os.environ.get("PIXTOOLS_REQUIRE_K8S_VALIDATE"):
        import kubernetes_validate.utils as kv  # the checks script must not skip this
    else:
        kv = pytest.importorskip("kubernetes_validate.utils")
    skipped = set()
    errors: list[str] = []
    for obj in objects:
        try:
            kv.validate(obj, K8S_SCHEMA_VERSION, strict=True)
        except kv.SchemaNotFoundError:
            skipped.add((obj["apiVersion"], obj["kind"]))
        except kv.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {where}: {exc.message}")
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)
    assert skipped <= CRD_KINDS, f"unvalidated kinds that are not known CRDs: {skipped - CRD_KINDS}"


def test_everything_lives_in_the_pixtools_namespace(objects: Objects) -> None:
    for obj in objects:
        if obj["kind"] == "Namespace":
            continue
        assert obj["metadata"].get("namespace") == "pixtools", obj["metadata"]["name"]


def test_namespace_enforces_the_restricted_pod_security_standard(objects: Objects) -> None:
    labels = named(objects, "Namespace", "pixtools")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_no_secret_values_are_rendered(objects: Objects) -> None:
    """The runtime Secret comes from SSM at deploy time; the repository holds only its shape."""
    assert of_kind(objects, "Secret") == []
    for cm in of_kind(objects, "ConfigMap"):
        for key in cm.get("data", {}):
            assert not re.search(r"PASS|SECRET|TOKEN|DATABASE_URL|RABBITMQ_URL", key), key


# ---------------------------------------------------------------------------------------------
# Every container: resources, security, temp space, images
# ---------------------------------------------------------------------------------------------


def test_every_container_has_requests_and_limits(objects: Objects) -> None:
    for where, _, c in all_containers(objects):
        res = c.get("resources", {})
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                assert resource in res.get(bound, {}), f"{where}: no {bound}.{resource}"
        assert quantity_mi(res["requests"]["memory"]) <= quantity_mi(res["limits"]["memory"]), where


def test_every_pod_and_container_is_locked_down(objects: Objects) -> None:
    for w in workloads(objects):
        spec = pod_template(w)["spec"]
        name = w["metadata"]["name"]
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("runAsUser", 0) >= 10000, f"{name}: run as a high, non-root uid"
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        assert spec.get("serviceAccountName") == "pixtools", name
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(flag), f"{name}: {flag}"
        assert all("hostPath" not in v for v in spec.get("volumes", [])), name
    for where, _, c in all_containers(objects):
        sc = c.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False, where
        assert sc.get("readOnlyRootFilesystem") is True, where
        assert sc.get("runAsNonRoot") is True, where
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
        assert not sc.get("capabilities", {}).get("add"), where
        assert not sc.get("privileged"), where


def test_every_container_writes_temp_files_to_an_emptydir(objects: Objects) -> None:
    for where, spec, c in all_containers(objects):
        empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        assert mounts.get("/tmp") in empty_dirs, f"{where}: /tmp is not an emptyDir"


def test_every_image_is_pinned_by_digest(objects: Objects) -> None:
    for where, _, c in all_containers(objects):
        assert DIGEST.search(c["image"]), f"{where}: {c['image']} is not pinned by digest"
        # With a digest there is nothing newer to pull; restarts must not depend on the registry.
        assert c.get("imagePullPolicy") == "IfNotPresent", where


def test_application_images_come_from_ecr(objects: Objects) -> None:
    expected = {
        "api": "pixtools-api",
        "reconcile": "pixtools-api",
        "cleanup": "pixtools-api",
        "worker-standard": "pixtools-worker",
        "worker-ml": "pixtools-worker",
    }
    for w in workloads(objects):
        want = expected.get(w["metadata"]["name"])
        if want is None:
            continue
        for c in containers(pod_template(w)["spec"]):
            match = ECR.match(c["image"])
            assert match and match.group(1) == want, f"{w['metadata']['name']}: {c['image']}"


def test_config_comes_from_the_generated_configmap_then_the_runtime_secret(
    objects: Objects,
) -> None:
    configmaps = {cm["metadata"]["name"] for cm in of_kind(objects, "ConfigMap")}
    app = {"api", "worker-standard", "worker-ml", "reconcile", "cleanup"}
    for w in workloads(objects):
        if w["metadata"]["name"] not in app:
            continue
        for c in containers(pod_template(w)["spec"]):
            sources = c["envFrom"]
            cm_name = sources[0]["configMapRef"]["name"]
            # Generated: the hash suffix changes with the content, so a change rolls the pods.
            assert re.fullmatch(r"pixtools-config-[a-z0-9]{10}", cm_name), cm_name
            assert cm_name in configmaps
            # The Secret second: SSM values win over the ConfigMap's defaults.
            assert sources[1] == {"secretRef": {"name": "pixtools-runtime"}}


def test_config_enforces_auth_and_is_not_debug_in_prod(env: str, objects: Objects) -> None:
    data = next(
        cm["data"]
        for cm in of_kind(objects, "ConfigMap")
        if cm["metadata"]["name"].startswith("pixtools-config")
    )
    assert data["PIXTOOLS_AUTH"] == "required"
    assert data["PIXTOOLS_DATA_DIR"].startswith("/tmp/")
    if env == "prod":
        assert data["PIXTOOLS_LOG_LEVEL"] in {"INFO", "WARNING"}


def test_pixtools_variables_are_settings_the_application_knows(objects: Objects) -> None:
    """Every PIXTOOLS_* name in the manifests is a field of the one settings object."""
    from pixtools.settings import Settings  # the main suite runs this; manifests.sh deselects it

    known = {"PIXTOOLS_" + name.upper() for name in Settings.__struct_fields__}
    used: set[str] = set()
    for cm in of_kind(objects, "ConfigMap"):
        used |= {k for k in cm.get("data", {}) if k.startswith("PIXTOOLS_")}
    for _, _, c in all_containers(objects):
        used |= {e["name"] for e in c.get("env", []) if e["name"].startswith("PIXTOOLS_")}
    assert used - known == set(), f"not settings of pixtools: {sorted(used - known)}"


# ---------------------------------------------------------------------------------------------
# The API: probes, migration ordering, graceful shutdown, exposure
# ---------------------------------------------------------------------------------------------


def test_api_probes_liveness_on_livez_and_readiness_on_readyz(objects: Objects) -> None:
    api = main_container(named(objects, "Deployment", "api"))
    assert api["command"][:2] == ["pixtools", "api"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # Liveness must never depend on other services: never /readyz or /health.
    assert api["startupProbe"]["httpGet"]["path"] == "/livez"
    port_names = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert port_names == {"http": 8000}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert api[probe]["httpGet"]["port"] == "http"


def test_migrations_run_before_new_pods_can_take_traffic(objects: Objects) -> None:
    """`pixtools migrate` runs as an init container of every pod that runs new code long-lived."""
    for name in ("api", "worker-standard", "worker-ml"):
        deployment = named(objects, "Deployment", name)
        spec = pod_template(deployment)["spec"]
        (init,) = spec["initContainers"]
        assert init["command"] == ["pixtools", "migrate"], name
        assert init["image"] == spec["containers"][0]["image"], (
            f"{name}: migrate with the same code"
        )
    api = named(objects, "Deployment", "api")
    # Old api pods keep serving until a new one is migrated and Ready.
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_api_drains_before_it_stops_within_the_spot_notice(objects: Objects) -> None:
    api = named(objects, "Deployment", "api")
    spec = pod_template(api)["spec"]
    pre_stop = main_container(api)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and 5 <= int(pre_stop[1]) <= 20
    assert int(pre_stop[1]) < spec["terminationGracePeriodSeconds"] < SPOT_NOTICE_SECONDS


def test_api_is_bound_to_the_terraform_target_group(env: str, objects: Objects) -> None:
    service = named(objects, "Service", "api")
    assert service["spec"]["type"] == "NodePort"
    (port,) = service["spec"]["ports"]
    binding = named(objects, "TargetGroupBinding", "api")
    assert binding["apiVersion"] == "elbv2.k8s.aws/v1beta1"
    spec = binding["spec"]
    # K3s pod IPs are on the flannel overlay, not the VPC: instance targets on the NodePort.
    assert spec["targetType"] == "instance"
    assert spec["serviceRef"] == {"name": "api", "port": port["port"]}
    assert re.fullmatch(
        rf"arn:aws:elasticloadbalancing:us-east-1:\d{{12}}:targetgroup/pixtools-{env}-api/[0-9a-f]{{16}}",
        spec["targetGroupARN"],
    ), spec["targetGroupARN"]
    # Terraform owns the security groups; the controller must not manage rules of its own.
    assert "networking" not in spec


# ---------------------------------------------------------------------------------------------
# Workers: queues and concurrency from the seed, images, shutdown
# ---------------------------------------------------------------------------------------------


def worker_args(container: dict[str, Any]) -> dict[str, str]:
    command = container["command"]
    assert command[:2] == ["pixtools", "worker"], command
    flags = command[2:]
    return dict(zip(flags[::2], flags[1::2], strict=True))


def test_queue_names_and_concurrency_match_the_seed() -> None:
    text = CLUSTER_DOC.read_text(encoding="utf-8")
    rows = re.findall(r"Queue `(\w+)` \(the seed's `(\w+_queue)`\)[^|]*?concurrency (\d+)", text)
    assert {seed: ours for ours, seed, _ in rows} == SEED_QUEUES
    assert {ours: int(n) for ours, _, n in rows} == QUEUE_CONCURRENCY


@pytest.mark.parametrize("queue", sorted(QUEUE_CONCURRENCY))
def test_each_queue_has_its_worker_at_the_seed_concurrency(queue: str, objects: Objects) -> None:
    deployment = named(objects, "Deployment", WORKER_FOR_QUEUE[queue])
    args = worker_args(main_container(deployment))
    assert args["--queues"] == queue
    assert int(args["--processes"]) * int(args["--threads"]) == QUEUE_CONCURRENCY[queue]
    assert deployment["spec"]["replicas"] == 1, "concurrency is per worker pod"


def test_only_the_two_workers_consume_and_each_one_queue(objects: Objects) -> None:
    consumers = {}
    for d in of_kind(objects, "Deployment"):
        c = main_container(d)
        if c.get("command", [None, None])[:2] == ["pixtools", "worker"]:
            consumers[d["metadata"]["name"]] = worker_args(c)["--queues"]
    assert consumers == {v: k for k, v in WORKER_FOR_QUEUE.items()}


def test_workers_shut_down_gracefully_inside_the_spot_notice(objects: Objects) -> None:
    for name in WORKER_FOR_QUEUE.values():
        deployment = named(objects, "Deployment", name)
        grace = pod_template(deployment)["spec"]["terminationGracePeriodSeconds"]
        worker = main_container(deployment)
        # Dramatiq's --worker-shutdown-timeout, in milliseconds, as `pixtools worker` passes it.
        timeout = int(env_value(worker, "dramatiq_worker_shutdown_timeout") or 0) / 1000
        # Dramatiq stops, requeues what it prefetched and exits before the kubelet's hard kill,
        # and the kubelet's hard kill comes before the spot instance goes away.
        assert 30 <= timeout < grace < SPOT_NOTICE_SECONDS, (name, timeout, grace)
        assert env_value(worker, "MALLOC_ARENA_MAX") == "2"
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0


# ---------------------------------------------------------------------------------------------
# RabbitMQ and Redis
# ---------------------------------------------------------------------------------------------


def rabbitmq_conf(objects: Objects) -> dict[str, str]:
    cm = next(
        cm
        for cm in of_kind(objects, "ConfigMap")
        if cm["metadata"]["name"].startswith("rabbitmq-config")
    )
    (text,) = cm["data"].values()
    pairs = (
        line.split("=", 1)
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


def test_rabbitmq_keeps_its_queues_on_a_persistent_volume(objects: Objects) -> None:
    sts = named(objects, "StatefulSet", "rabbitmq")
    assert sts["spec"]["replicas"] == 1
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "local-path"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    rabbit = main_container(sts)
    mounts = {m["mountPath"]: m["name"] for m in rabbit["volumeMounts"]}
    assert mounts["/var/lib/rabbitmq"] == claim["metadata"]["name"]
    assert env_value(rabbit, "RABBITMQ_DEFAULT_VHOST") == "pixtools"
    # A fixed node name: the data directory on the volume is keyed by it.
    assert env_value(rabbit, "RABBITMQ_NODENAME") == "rabbit@localhost"
    secret_keys = {
        e["valueFrom"]["secretKeyRef"]["name"] for e in rabbit["env"] if "valueFrom" in e
    }
    assert secret_keys == {"pixtools-runtime"}


def test_rabbitmq_has_memory_and_disk_alarms_and_a_memory_ceiling(objects: Objects) -> None:
    conf = rabbitmq_conf(objects)
    rabbit = main_container(named(objects, "StatefulSet", "rabbitmq"))
    limit = quantity_mi(rabbit["resources"]["limits"]["memory"])
    assert rabbit["resources"]["requests"]["memory"] == rabbit["resources"]["limits"]["memory"]
    watermark = conf["vm_memory_high_watermark.absolute"]
    assert watermark.endswith("MiB") and 0.4 * limit <= float(watermark[:-3]) <= 0.7 * limit
    assert conf["disk_free_limit.absolute"].endswith("GB")
    assert conf["log.console"] == "true"
    assert conf["prometheus.return_per_object_metrics"] == "true"


def test_redis_evicts_lru_and_persists_nothing(objects: Objects) -> None:
    redis = named(objects, "Deployment", "redis")
    c = main_container(redis)
    args = c["args"]
    flags = dict(zip(args[::2], args[1::2], strict=True))
    assert flags["--maxmemory-policy"] == "allkeys-lru"
    assert quantity_mi(flags["--maxmemory"].replace("mb", "M")) < quantity_mi(
        c["resources"]["limits"]["memory"]
    )
    assert flags["--save"] == ""
    assert flags["--appendonly"] == "no"
    volumes = pod_template(redis)["spec"]["volumes"]
    assert all("persistentVolumeClaim" not in v for v in volumes)


def test_stateful_services_are_probed(objects: Objects) -> None:
    for kind, name in (("StatefulSet", "rabbitmq"), ("Deployment", "redis")):
        c = main_container(named(objects, kind, name))
        assert "readinessProbe" in c and "livenessProbe" in c, name


# ---------------------------------------------------------------------------------------------
# NetworkPolicies and disruption budgets
# ---------------------------------------------------------------------------------------------


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert "matchExpressions" not in selector
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def test_ingress_is_denied_unless_a_policy_allows_it(objects: Objects) -> None:
    deny = named(objects, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert (
        deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    )


def test_only_the_api_is_reachable_from_outside_the_namespace(objects: Objects) -> None:
    pods = {
        w["metadata"]["name"]: pod_template(w)["metadata"]["labels"] for w in workloads(objects)
    }
    for policy in of_kind(objects, "NetworkPolicy"):
        spec = policy["spec"]
        selected = {name for name, labels in pods.items() if selects(spec["podSelector"], labels)}
        for rule in spec.get("ingress", []):
            peers = rule.get("from")
            if not peers:
                # Open to any source: only the api, and only on its HTTP port.
                assert selected == {"api"}, policy["metadata"]["name"]
                assert [p["port"] for p in rule["ports"]] == ["http"]
                continue
            for peer in peers:
                if "namespaceSelector" in peer:
                    # Other namespaces: only Prometheus, and only on a metrics port; and
                    # KEDA (prod) reading RabbitMQ's queue lengths over AMQP.
                    namespace = peer["namespaceSelector"]["matchLabels"]
                    ports = [p["port"] for p in rule["ports"]]
                    if namespace == {"kubernetes.io/metadata.name": "keda"}:
                        assert selected == {"rabbitmq"} and ports == ["amqp"]
                        continue
                    assert namespace == {"kubernetes.io/metadata.name": "monitoring"}
                    assert ports in (["prometheus"], ["metrics"])
                else:
                    assert "ipBlock" not in peer, policy["metadata"]["name"]
                    assert peer["podSelector"] == {
                        "matchLabels": {"app.kubernetes.io/part-of": "pixtools"}
                    }


@pytest.mark.parametrize(("name", "port"), [("rabbitmq", "amqp"), ("redis", "redis")])
def test_broker_and_cache_admit_only_pixtools_pods(name: str, port: str, objects: Objects) -> None:
    policies = [
        p
        for p in of_kind(objects, "NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == name
        and p["metadata"]["name"] == f"{name}-ingress"  # (prod adds rabbitmq-from-keda)
    ]
    (policy,) = policies
    rules = [r for r in policy["spec"]["ingress"] if [p["port"] for p in r["ports"]] == [port]]
    (rule,) = rules
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "pixtools"}}}
    ]
    # And they talk to nothing but DNS.
    assert "Egress" in policy["spec"]["policyTypes"]
    egress_ports = {p["port"] for r in policy["spec"]["egress"] for p in r["ports"]}
    assert egress_ports == {53}


def test_every_pod_is_selected_by_some_ingress_allow_or_needs_none(objects: Objects) -> None:
    pods = {
        w["metadata"]["name"]: pod_template(w)["metadata"]["labels"] for w in workloads(objects)
    }
    listening = {"api", "rabbitmq", "redis", "worker-standard", "worker-ml"}  # workers: /metrics
    allowed = set()
    for policy in of_kind(objects, "NetworkPolicy"):
        if policy["spec"].get("ingress"):
            allowed |= {
                n for n, labels in pods.items() if selects(policy["spec"]["podSelector"], labels)
            }
    assert allowed == listening


def test_disruption_budgets_never_block_a_single_replica(objects: Objects) -> None:
    for pdb in of_kind(objects, "PodDisruptionBudget"):
        spec = pdb["spec"]
        assert "minAvailable" not in spec, "minAvailable on one node blocks every drain"
        assert int(spec["maxUnavailable"]) >= 1
        assert spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow"


# ---------------------------------------------------------------------------------------------
# CronJobs and alerts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "schedule"),
    [("reconcile", "* * * * *"), ("cleanup", re.compile(r"\d{1,2} \* \* \* \*"))],
)
def test_maintenance_cronjobs(name: str, schedule: str | re.Pattern[str], objects: Objects) -> None:
    cron = named(objects, "CronJob", name)
    spec = cron["spec"]
    if isinstance(schedule, str):
        assert spec["schedule"] == schedule
    else:
        assert schedule.fullmatch(spec["schedule"]), spec["schedule"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert main_container(cron)["command"] == ["pixtools", name]
    pod = pod_template(cron)["spec"]
    assert pod["restartPolicy"] == "Never"
    if name == "reconcile":
        # A pass must end before the next minute's pass is due.
        assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] < 60


def test_alerts_cover_the_seed_minimum(objects: Objects) -> None:
    rule = named(objects, "PrometheusRule", "pixtools")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert seconds(alerts["PixToolsApiDown"]["for"]) == 5 * 60
    assert seconds(alerts["PixToolsQueueBacklog"]["for"]) == 10 * 60
    assert "standard|ml" in alerts["PixToolsQueueBacklog"]["expr"]
    assert "worker-standard|worker-ml" in alerts["PixToolsWorkersDown"]["expr"]
    for r in alerts.values():
        assert r["labels"]["severity"] in {"warning", "critical"}


# ---------------------------------------------------------------------------------------------
# Overlays patch only what differs
# ---------------------------------------------------------------------------------------------


def _flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{path}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{path}/{i}")
    else:
        yield path, value


def _normalised(env: str) -> dict[str, Any]:
    flat = {}
    for obj in render(env):
        key = f"{obj['kind']}/{re.sub(r'-[a-z0-9]{10}$', '', obj['metadata']['name'])}"
        for path, value in _flatten(obj):
            if isinstance(value, str):
                value = re.sub(r"(pixtools-config|rabbitmq-config)-[a-z0-9]{10}", r"\1", value)
            flat[key + path] = value
    return flat


def test_overlays_differ_only_in_what_an_environment_owns() -> None:
    dev, prod = _normalised("dev"), _normalised("prod")
    differing = {k for k in dev.keys() | prod.keys() if dev.get(k) != prod.get(k)}
    allowed = re.compile(
        r"^(Deployment/\w[\w-]*/spec/replicas"
        r"|Deployment/[\w-]+/spec/template/spec/containers/\d+/resources/.+"
        r"|Deployment/[\w-]+/spec/template/spec/(init)?[cC]ontainers/\d+/image"
        r"|StatefulSet/.+/image|CronJob/.+/image"
        r"|ConfigMap/pixtools-config/data/(PIXTOOLS_LOG_LEVEL|OTEL_RESOURCE_ATTRIBUTES)"
        r"|TargetGroupBinding/api/spec/targetGroupARN"
        r"|ScaledObject/.+|NetworkPolicy/rabbitmq-from-keda/.+)$"
    )
    assert sorted(k for k in differing if not allowed.match(k)) == []
    assert "TargetGroupBinding/api/spec/targetGroupARN" in differing


# ---------------------------------------------------------------------------------------------
# The Dockerfile
# ---------------------------------------------------------------------------------------------


def dockerfile_stages() -> dict[str, list[str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical = re.sub(r"\\\n", " ", text)
    stages: dict[str, list[str]] = {}
    current = None
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, re.IGNORECASE)
        if m:
            current = m.group(2)
            stages[current] = [line]
        elif current:
            stages[current].append(line)
    return stages


def test_dockerfile_bases_are_pinned_by_digest() -> None:
    # The base is a build argument (checks build on a local stand-in); its default is the pin.
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.MULTILINE))
    for name, lines in dockerfile_stages().items():
        base = lines[0].split()[1]
        if base in dockerfile_stages():
            continue
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert re.fullmatch(r"python:3\.11[\w.-]*-slim-bookworm@sha256:[0-9a-f]{64}", base), (
            name,
            base,
        )


def test_dockerfile_has_api_and_worker_targets_running_as_non_root() -> None:
    stages = dockerfile_stages()
    for target in ("api", "worker"):
        lines = stages[target]
        assert lines[0].split()[1] == "runtime", target
        users = [ln for ln in lines if ln.startswith("USER ")]
        assert users[-1] == "USER 10001:10001", target
        copies = [ln for ln in lines if ln.startswith("COPY --from=")]
        assert copies == [f"COPY --from=build-{target} /opt/venv /opt/venv"], target
    assert any("MALLOC_ARENA_MAX=2" in ln for ln in stages["worker"])
    runtime = " ".join(stages["runtime"])
    assert "-dev" not in runtime and "build-essential" not in runtime, "runtime has build tools"
    assert "TMPDIR=/tmp" in runtime


def test_dockerfile_installs_pillow_simd_last_and_ml_only_in_the_worker() -> None:
    stages = dockerfile_stages()
    builder = " ".join(stages["builder"])
    for dev in (
        "libjpeg62-turbo-dev",
        "zlib1g-dev",
        "libwebp-dev",
        "libtiff-dev",
        "liblcms2-dev",
        "libfreetype-dev",
    ):
        assert dev in builder, dev
    simd = "bash scripts/install-pillow-simd.sh /opt/venv"
    for target in ("api", "worker"):
        run = next(ln for ln in stages[f"build-{target}"] if ln.startswith("RUN "))
        steps = [s.strip() for s in run[4:].split("&&")]
        assert steps[-1] == simd, steps
        assert steps[-2] == "/opt/venv/bin/pip uninstall -y pillow", steps
        ml = [s for s in steps if ".[ml]" in s or "install-ml.sh" in s]
        if target == "worker":
            assert ml == [
                '/opt/venv/bin/pip install ".[ml]"',
                "bash scripts/install-ml.sh /opt/venv",
            ]
        else:
            assert ml == [], "the API image carries no onnxruntime and no models"
    for script in ("install-pillow-simd.sh", "install-ml.sh"):
        assert (ROOT / "scripts" / script).is_file(), f"the Dockerfile runs scripts/{script}"
    text = (ROOT / "scripts" / "install-pillow-simd.sh").read_text(encoding="utf-8")
    assert 'CC="cc -mavx2"' in text and "--force-reinstall --no-deps" in text


def test_dockerignore_is_an_allowlist() -> None:
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()]
    entries = [ln for ln in lines if ln and not ln.startswith("#")]
    assert entries[0] == "*"
    assert {
        "!pyproject.toml",
        "!README.md",
        "!src/",
        "!scripts/install-ml.sh",
        "!scripts/install-pillow-simd.sh",
    } <= set(entries)
