"""What the cluster's platform pieces (installed by the Ansible roles) need from the manifests.

The charts K3s' Helm controller installs (ansible/roles/*/templates/helmchart.yaml.j2 with the
roles' defaults) and the rendered overlays are checked together: the ALB's instance target is
eligible, nothing but what needs it reaches the instance metadata service, and the whole node's
requests fit the smallest locked instance type.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from tests.support.manifests import (
    ENVS,
    Objects,
    all_containers,
    named,
    pod_template,
    quantity_mi,
    quantity_milli_cpu,
    render,
    workloads,
)

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "ansible" / "roles"


@pytest.fixture(params=ENVS)
def overlay(request: pytest.FixtureRequest) -> Objects:
    """The rendered overlay of each environment."""
    return render(str(request.param))


def role_defaults(role: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()))


def role_tasks(role: str, name: str = "main.yml") -> list[dict[str, Any]]:
    return list(yaml.safe_load((ROLES / role / "tasks" / name).read_text()))


class UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping.

    PyYAML and Helm (sigs.k8s.io/yaml) both keep the last of two equal keys without a word, so a
    second `sidecar:` under `grafana:` silently drops everything the first one set.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            assert key not in seen, f"duplicate key {key!r} at {key_node.start_mark}"
            seen.add(key)
        return dict(super().construct_mapping(node, deep=deep))


def load_unique(text: str) -> list[Any]:
    return [doc for doc in yaml.load_all(text, Loader=UniqueKeyLoader) if doc]


# ---------------------------------------------------------------------------------------------
# The ALB gets a target
# ---------------------------------------------------------------------------------------------

# aws-load-balancer-controller v2.12 pkg/backend/endpoint_utils.go: the default node selector of
# instance targets. A TargetGroupBinding's spec.nodeSelector is ADDED to it (selector.Add), never
# substituted for it.
LBC_DEFAULT_SELECTOR: list[dict[str, Any]] = [
    {"key": "node-role.kubernetes.io/master", "operator": "DoesNotExist"},
    {"key": "node.kubernetes.io/exclude-from-external-load-balancers", "operator": "DoesNotExist"},
    {"key": "alpha.service-controller.kubernetes.io/exclude-balancer", "operator": "DoesNotExist"},
    {"key": "eks.amazonaws.com/compute-type", "operator": "NotIn", "values": ["fargate"]},
]

# What K3s v1.31 (pkg/server setNodeLabelsAndAnnotations) and the kubelet put on our one node.
K3S_SERVER_NODE_LABELS = {
    "kubernetes.io/hostname": "i-0123456789abcdef0",
    "kubernetes.io/os": "linux",
    "node-role.kubernetes.io/control-plane": "true",
    "node-role.kubernetes.io/master": "true",
    "node.kubernetes.io/instance-type": "c7i-flex.large",
}


def requirement_holds(req: dict[str, Any], labels: dict[str, str]) -> bool:
    key, op = req["key"], req["operator"]
    if op == "DoesNotExist":
        return key not in labels
    if op == "Exists":
        return key in labels
    if op == "In":
        return labels.get(key) in req["values"]
    if op == "NotIn":
        return labels.get(key) not in req["values"]
    raise AssertionError(f"unknown operator {op}")


def lbc_selects(tgb: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether the controller registers a node with these labels for this binding."""
    requirements = list(LBC_DEFAULT_SELECTOR)
    custom = tgb["spec"].get("nodeSelector") or {}
    requirements += [
        {"key": k, "operator": "In", "values": [v]}
        for k, v in custom.get("matchLabels", {}).items()
    ]
    requirements += custom.get("matchExpressions", [])
    return all(requirement_holds(r, labels) for r in requirements)


def labels_after_bootstrap() -> dict[str, str]:
    """The node's labels once roles/aws_lb_controller has run on a freshly started K3s server."""
    defaults = role_defaults("aws_lb_controller")
    removed = defaults["aws_lb_controller_skipped_label"]
    return {k: v for k, v in K3S_SERVER_NODE_LABELS.items() if k != removed}


def test_the_fresh_k3s_server_node_is_an_alb_target(overlay: Objects) -> None:
    tgb = named(overlay, "TargetGroupBinding", "api")
    assert tgb["spec"]["targetType"] == "instance"
    # As K3s leaves it, the node is skipped: this is the defect the role exists for.
    assert not lbc_selects(tgb, K3S_SERVER_NODE_LABELS)
    assert lbc_selects(tgb, labels_after_bootstrap())


def test_the_label_stays_removed_across_k3s_restarts() -> None:
    """K3s re-adds `master` only when `control-plane` is missing or not "true"."""
    labels = labels_after_bootstrap()
    assert labels["node-role.kubernetes.io/control-plane"] == "true"


def test_every_bootstrap_and_every_deploy_makes_the_node_a_target() -> None:
    """The first node, every spot replacement (site.yml) and every deploy remove the label."""
    (unlabel,) = [t for t in role_tasks("aws_lb_controller", "targets.yml") if "loop" in t]
    command = unlabel["ansible.builtin.command"]
    assert " label " in command and "{{ aws_lb_controller_skipped_label }}-" in command
    main = role_tasks("aws_lb_controller")
    assert main[-1]["ansible.builtin.import_tasks"] == "targets.yml"
    includes = [
        t["ansible.builtin.include_role"]
        for t in role_tasks("app_deploy")
        if "ansible.builtin.include_role" in t
    ]
    assert {"name": "aws_lb_controller", "tasks_from": "targets.yml"} in includes
    (site,) = yaml.safe_load((ROOT / "ansible" / "site.yml").read_text())
    assert "aws_lb_controller" in site["roles"]


# ---------------------------------------------------------------------------------------------
# Every locked instance type holds the workload
# ---------------------------------------------------------------------------------------------

# The smallest locked type is c7i-flex.large: 2 vCPU, 4 GiB. The kernel keeps part of the 4 GiB,
# so the kubelet's capacity is about 3.7 GiB. K3s configures no kube-reserved or system-reserved,
# only the eviction threshold memory.available<100Mi, so allocatable = capacity - 100Mi. What
# runs outside any pod - the K3s server itself (API server, controllers, kine to RDS), containerd,
# the OS and the SSM agent - is not in any request: it is taken off the top here, and 10 % of what
# remains is kept free as headroom.
NODE_CAPACITY_MI = 3800
NODE_EVICTION_HARD_MI = 100
NODE_CPU_MILLI = 2000
UNPODDED_MI = 700
UNPODDED_CPU_MILLI = 300
HEADROOM = 0.10
BUDGET_MI = (NODE_CAPACITY_MI - NODE_EVICTION_HARD_MI - UNPODDED_MI) * (1 - HEADROOM)
BUDGET_CPU_MILLI = (NODE_CPU_MILLI - UNPODDED_CPU_MILLI) * (1 - HEADROOM)

# Each chart's values that size a container, and how many such containers run on the node.
CHART_CONTAINERS: dict[str, list[tuple[str, int]]] = {
    "kube-prometheus-stack": [
        ("prometheus.prometheusSpec.resources", 1),
        ("alertmanager.alertmanagerSpec.resources", 1),
        ("prometheusOperator.prometheusConfigReloader.resources", 2),  # Prometheus, Alertmanager
        ("prometheusOperator.resources", 1),
        ("grafana.resources", 1),
        ("grafana.sidecar.resources", 2),  # dashboards, datasources
        ("kube-state-metrics.resources", 1),
        ("prometheus-node-exporter.resources", 1),
    ],
    "aws-load-balancer-controller": [("resources", 1)],
    "aws-for-fluent-bit": [("resources", 1)],
    "keda": [
        ("resources.operator", 1),
        ("resources.metricServer", 1),
        ("resources.webhooks", 1),
    ],
}
# A chart's container that runs only when a value enables it: (chart, sizing values) -> switch.
CONTAINER_SWITCHES = {("keda", "resources.webhooks"): "webhooks.enabled"}


def sized_containers(chart: str, values: dict[str, Any]) -> list[tuple[str, int]]:
    """The chart's sizing values of the containers that actually run with these values."""
    return [
        (dotted, count)
        for dotted, count in CHART_CONTAINERS[chart]
        if (switch := CONTAINER_SWITCHES.get((chart, dotted))) is None
        or _switched_on(values, switch)
    ]


def _switched_on(values: dict[str, Any], dotted: str) -> bool:
    *parents, last = dotted.split(".")
    for key in parents:
        values = values.get(key) or {}
    return values.get(last, True) is not False


# K3s v1.31's packaged components (manifests/coredns.yaml, metrics-server-deployment.yaml);
# local-path-provisioner requests nothing.
K3S_PACKAGED = {"coredns": (100, 70.0), "metrics-server": (100, 70.0)}
# KEDA (prod's autoscaler) until its chart is installed by a role: operator, metrics server and
# admission webhooks at their sizes for this node.
KEDA_ALLOWANCE = (60, 160.0)


def render_role_template(path: Path, env: str) -> list[dict[str, Any]]:
    """A role's template rendered as Ansible would, with the group vars and the role's defaults.

    The few Ansible-only functions the templates use are stood in for: `lookup('...template',
    name)` renders the role's other template, `lookup('...env', ...)` is its default, and
    `undef(...)` (a required variable nobody set) a placeholder.
    """
    context: dict[str, Any] = {}
    group_vars = ROOT / "ansible" / "inventory" / "group_vars"
    for source in (group_vars / "all.yml", group_vars / f"{env}.yml"):
        context.update(yaml.safe_load(source.read_text()))
    context.update(role_defaults(path.parents[1].name))
    jinja = jinja2.Environment(undefined=jinja2.ChainableUndefined)

    def lookup(plugin: str, *terms: str, **options: Any) -> str:
        if plugin.endswith("template"):
            return jinja.from_string((path.parent / terms[0]).read_text()).render(**context)
        return str(options.get("default", ""))

    context.update(lookup=lookup, undef=lambda **_: "required-variable")
    for _ in range(2):  # defaults refer to group vars and to each other
        for key, value in context.items():
            if isinstance(value, str) and "{{" in value:
                # Ansible-only filters stay as they are.
                with contextlib.suppress(jinja2.TemplateError):
                    context[key] = jinja.from_string(value).render(**context)
    rendered = jinja.from_string(path.read_text()).render(**context)
    return load_unique(rendered)


def helm_charts(env: str) -> dict[str, dict[str, Any]]:
    """The values of every HelmChart the roles install, by chart name."""
    charts = {}
    for path in sorted(ROLES.glob("*/templates/*.yaml.j2")):
        if "kind: HelmChart" not in path.read_text():
            continue
        for doc in render_role_template(path, env):
            if doc.get("kind") == "HelmChart":
                (charts[doc["spec"]["chart"]],) = load_unique(doc["spec"]["valuesContent"])
    return charts


def dig(values: dict[str, Any], dotted: str) -> dict[str, Any]:
    for key in dotted.split("."):
        values = values.get(key) or {}
    return values


def chart_requests(env: str) -> dict[str, tuple[int, float]]:
    """(CPU millicores, memory MiB) requested by each chart's containers on the node."""
    totals = {}
    for chart, values in helm_charts(env).items():
        assert chart in CHART_CONTAINERS, f"{chart}: say which of its values size its containers"
        cpu = memory = 0.0
        for dotted, count in sized_containers(chart, values):
            res = dig(values, dotted)
            where = f"{chart} {dotted}"
            assert {"cpu", "memory"} <= set(res.get("requests", {})), f"{where}: no requests"
            assert "memory" in res.get("limits", {}), f"{where}: no memory limit"
            cpu += count * quantity_milli_cpu(res["requests"]["cpu"])
            memory += count * quantity_mi(res["requests"]["memory"])
        totals[chart] = (int(cpu), memory)
    return totals


def pod_requests(objs: Objects) -> tuple[int, float]:
    """What the scheduler reserves for the rendered workloads (init containers run first)."""
    cpu = memory = 0.0
    for w in workloads(objs):
        replicas = 1 if w["kind"] == "CronJob" else w["spec"].get("replicas", 1)
        spec = pod_template(w)["spec"]

        def total(items: list[dict[str, Any]], key: str, parse: Any) -> float:
            return float(sum(parse(c["resources"]["requests"][key]) for c in items))

        inits = spec.get("initContainers", [])
        pod_cpu = max(
            [total(spec["containers"], "cpu", quantity_milli_cpu)]
            + [quantity_milli_cpu(c["resources"]["requests"]["cpu"]) for c in inits]
        )
        pod_memory = max(
            [total(spec["containers"], "memory", quantity_mi)]
            + [quantity_mi(c["resources"]["requests"]["memory"]) for c in inits]
        )
        cpu += replicas * pod_cpu
        memory += replicas * pod_memory
    return int(cpu), memory


@pytest.mark.parametrize("env", ENVS)
def test_the_whole_node_fits_the_smallest_locked_instance_type(env: str) -> None:
    parts = {"pixtools": pod_requests(render(env)), **chart_requests(env), **K3S_PACKAGED}
    if env == "prod" and "keda" not in parts:
        parts["keda"] = KEDA_ALLOWANCE
    cpu = sum(c for c, _ in parts.values())
    memory = sum(m for _, m in parts.values())
    table = ", ".join(f"{name} {c}m/{m:.0f}Mi" for name, (c, m) in parts.items())
    assert memory <= BUDGET_MI, f"{env}: {memory:.0f}Mi > {BUDGET_MI:.0f}Mi ({table})"
    assert cpu <= BUDGET_CPU_MILLI, f"{env}: {cpu}m > {BUDGET_CPU_MILLI:.0f}m ({table})"


@pytest.mark.parametrize("env", ENVS)
def test_no_single_container_may_grow_past_the_node(env: str) -> None:
    """A memory limit above what the node can give would only trade an OOM kill for another."""
    ceiling = NODE_CAPACITY_MI - NODE_EVICTION_HARD_MI - UNPODDED_MI
    for where, _, c in all_containers(render(env)):
        assert quantity_mi(c["resources"]["limits"]["memory"]) <= ceiling, where
    for chart, values in helm_charts(env).items():
        for dotted, _ in sized_containers(chart, values):
            limit = quantity_mi(dig(values, dotted)["limits"]["memory"])
            assert limit <= ceiling, f"{chart} {dotted}"


def test_the_budget_is_what_the_locked_types_offer() -> None:
    """The locked instance types (Terraform) are the ones this budget was worked out for."""
    tfvars = (ROOT / "terraform" / "variables.tf").read_text()
    for locked in ("m7i-flex.large", "c7i-flex.large", "m6i.large"):
        assert locked in tfvars, locked


@pytest.mark.parametrize("env", ENVS)
def test_chart_values_set_each_key_once(env: str) -> None:
    """Helm keeps the last of two equal keys: a repeated one drops what the first one set."""
    charts = helm_charts(env)  # parsed with UniqueKeyLoader: a duplicate fails here
    assert {"kube-prometheus-stack", "aws-load-balancer-controller", "aws-for-fluent-bit"} <= set(
        charts
    )


@pytest.mark.parametrize("env", ENVS)
def test_grafana_loads_the_dashboards_of_every_namespace_and_is_sized(env: str) -> None:
    """The dashboards ship as ConfigMaps in the pixtools namespace (components/monitoring)."""
    sidecar = helm_charts(env)["kube-prometheus-stack"]["grafana"]["sidecar"]
    dashboards = sidecar["dashboards"]
    assert dashboards["enabled"] is True
    assert (dashboards["label"], dashboards["labelValue"]) == ("grafana_dashboard", "1")
    assert dashboards["searchNamespace"] == "ALL"
    assert {"cpu", "memory"} <= set(sidecar["resources"]["requests"])


# ---------------------------------------------------------------------------------------------
# Pods cannot take the node's credentials
# ---------------------------------------------------------------------------------------------

IMDS = "169.254.169.254"
IMDS_GUARD = ROLES / "imds_guard" / "files" / "imds-guard.yaml"
# Pods that reach IMDS on purpose, and why (roles/imds_guard/defaults/main.yml).
IMDS_ON_PURPOSE = {
    ("pixtools", "api"),  # S3 with the node role (locked decision)
    ("pixtools", "worker-standard"),
    ("pixtools", "worker-ml"),
    ("pixtools", "reconcile"),
    ("pixtools", "cleanup"),
    ("monitoring", "alertmanager"),  # SNS alarm topic
}


def in_block(address: str, block: dict[str, Any]) -> bool:
    ip = ipaddress.ip_address(address)
    excepted = any(ip in ipaddress.ip_network(e) for e in block.get("except", []))
    return ip in ipaddress.ip_network(block["cidr"]) and not excepted


def egress_reaches(policy_spec: dict[str, Any], address: str) -> bool:
    """Whether some egress rule of a policy admits traffic to an address outside the cluster."""
    if "Egress" not in policy_spec.get("policyTypes", []):
        return True
    for rule in policy_spec.get("egress", []):
        peers = rule.get("to")
        if not peers:
            return True
        for peer in peers:
            block = peer.get("ipBlock")
            if block and in_block(address, block):
                return True
    return False


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    return all(requirement_holds(r, labels) for r in selector.get("matchExpressions", []))


def reaches_imds(policies: list[dict[str, Any]], labels: dict[str, str]) -> bool:
    """NetworkPolicy semantics: unselected pods are unrestricted; selected ones need an allow."""
    selecting = [p["spec"] for p in policies if selector_matches(p["spec"]["podSelector"], labels)]
    egress = [p for p in selecting if "Egress" in p.get("policyTypes", [])]
    return not egress or any(egress_reaches(p, IMDS) for p in egress)


def test_platform_pods_cannot_reach_the_instance_metadata_service() -> None:
    docs = [d for d in yaml.safe_load_all(IMDS_GUARD.read_text()) if d]
    policies: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        if doc["kind"] == "NetworkPolicy":
            policies.setdefault(doc["metadata"]["namespace"], []).append(doc)
    # Pod labels as the charts and K3s set them.
    pods = {
        ("monitoring", "grafana"): {"app.kubernetes.io/name": "grafana"},
        ("monitoring", "prometheus"): {"app.kubernetes.io/name": "prometheus"},
        ("monitoring", "kube-state-metrics"): {"app.kubernetes.io/name": "kube-state-metrics"},
        ("monitoring", "operator"): {"app": "kube-prometheus-stack-operator"},
        ("monitoring", "alertmanager"): {"app.kubernetes.io/name": "alertmanager"},
        ("kube-system", "coredns"): {"k8s-app": "kube-dns"},
        ("kube-system", "metrics-server"): {"k8s-app": "metrics-server"},
        ("kube-system", "helm-install"): {"helmcharts.helm.cattle.io/chart": "x"},
        ("keda", "operator"): {"app": "keda-operator", "name": "keda-operator"},
        ("keda", "metrics-apiserver"): {"app": "keda-operator-metrics-apiserver"},
    }
    for (namespace, name), labels in pods.items():
        expected = (namespace, name) in IMDS_ON_PURPOSE
        assert reaches_imds(policies.get(namespace, []), labels) == expected, (namespace, name)
    # ... while everything else stays reachable: other pods, the node, AWS endpoints.
    for namespace_policies in policies.values():
        for policy in namespace_policies:
            spec = policy["spec"]
            assert egress_reaches(spec, "10.0.1.10") and egress_reaches(spec, "52.94.0.1")
            assert {"to": [{"namespaceSelector": {}}]} in spec["egress"]


def guarded_namespaces() -> set[str]:
    """Namespaces where a policy of the guard denies IMDS to every pod it does not exempt."""
    return {
        d["metadata"]["namespace"]
        for d in yaml.safe_load_all(IMDS_GUARD.read_text())
        if d and d["kind"] == "NetworkPolicy" and not egress_reaches(d["spec"], IMDS)
    }


@pytest.mark.parametrize("env", ENVS)
def test_every_namespace_a_chart_runs_pods_in_is_guarded(env: str) -> None:
    """A chart added into a new namespace (KEDA's `keda`) must not bring IMDS-capable pods."""
    guarded = guarded_namespaces()
    templates = sorted(ROLES.glob("*/templates/*.yaml.j2"))
    charts = [
        doc
        for path in templates
        if "kind: HelmChart" in path.read_text()
        for doc in render_role_template(path, env)
        if doc.get("kind") == "HelmChart"
    ]
    assert len(charts) >= 4
    for chart in charts:
        values: dict[str, Any] = next(iter(load_unique(chart["spec"]["valuesContent"])), {})
        if values.get("hostNetwork") is True:
            continue  # the node's own network: IMDS by design (docs/cluster.md)
        namespace = chart["spec"]["targetNamespace"]
        assert namespace in guarded, f"{chart['spec']['chart']}: {namespace} has no IMDS guard"


def test_pixtools_pods_reach_imds_only_when_they_use_s3(overlay: Objects) -> None:
    policies = [o for o in overlay if o["kind"] == "NetworkPolicy"]
    for w in workloads(overlay):
        labels = pod_template(w)["metadata"]["labels"]
        expected = ("pixtools", w["metadata"]["name"]) in IMDS_ON_PURPOSE
        assert reaches_imds(policies, labels) == expected, w["metadata"]["name"]


def test_the_guard_is_installed_before_the_charts_and_the_aws_callers_use_the_host() -> None:
    (site,) = yaml.safe_load((ROOT / "ansible" / "site.yml").read_text())
    roles = site["roles"]
    assert roles.index("imds_guard") < min(
        roles.index(r) for r in ("aws_lb_controller", "log_shipper", "monitoring")
    )
    for env in ENVS:
        charts = helm_charts(env)
        for chart in ("aws-load-balancer-controller", "aws-for-fluent-bit"):
            values = charts[chart]
            assert values["hostNetwork"] is True, chart
            assert values["dnsPolicy"] == "ClusterFirstWithHostNet", chart
        lbc = charts["aws-load-balancer-controller"]
        assert lbc["region"] == "us-east-1"
        # The VPC ID comes from the role (instance metadata on the host), never from the pod.
        assert "vpcId" in lbc


def test_hop_limit_2_is_kept_only_for_the_app_and_imds_v2_is_required() -> None:
    """The app's S3 client runs in pods: hop limit 2, tokens required, nothing else loosened."""
    compute = (ROOT / "terraform" / "compute.tf").read_text()
    assert re.search(r'http_tokens\s*=\s*"required"', compute)
    assert re.search(r"http_put_response_hop_limit\s*=\s*2\b", compute)


# ---------------------------------------------------------------------------------------------
# Logs reach CloudWatch
# ---------------------------------------------------------------------------------------------


def test_logs_are_shipped_as_json_to_the_log_group_terraform_owns() -> None:
    observability = (ROOT / "terraform" / "observability.tf").read_text()
    match = re.search(
        r'resource "aws_cloudwatch_log_group" "app" \{\s*name\s*=\s*"([^"]+)"', observability
    )
    assert match, "terraform/observability.tf has no app log group"
    for env in ENVS:
        group = match.group(1).replace("${var.environment}", env)
        values = helm_charts(env)["aws-for-fluent-bit"]
        out = values["cloudWatchLogs"]
        assert out["enabled"] is True and out["logGroupName"] == group
        assert out["region"] == "us-east-1"
        # Terraform owns the group and its retention; the node role may not create groups.
        assert out["autoCreateGroup"] is False and not out.get("logRetentionDays")
        assert not values.get("cloudWatch", {}).get("enabled")
        # The app's JSON lines become fields, once.
        assert values["filter"]["mergeLog"] == "On" and values["filter"]["keepLog"] == "Off"
        assert values["input"]["multilineParser"] == "cri"
        assert "_pixtools_" in values["input"]["path"]
    defaults = role_defaults("log_shipper")
    assert re.fullmatch(r"\d+\.\d+\.\d+", defaults["log_shipper_chart_version"])
    (site,) = yaml.safe_load((ROOT / "ansible" / "site.yml").read_text())
    assert "log_shipper" in site["roles"]


def test_the_node_role_may_write_to_that_group() -> None:
    iam = (ROOT / "terraform" / "iam_node.tf").read_text()
    grant = iam[iam.index('sid     = "WriteAppLogs"') :]
    grant = grant[: grant.index("}")]
    for action in ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"):
        assert action in grant
    assert "aws_cloudwatch_log_group.app.arn" in grant


def test_the_guard_policies_validate_against_the_kubernetes_schema() -> None:
    import kubernetes_validate.utils as kv

    from tests.support.manifests import K8S_SCHEMA_VERSION

    for doc in yaml.safe_load_all(IMDS_GUARD.read_text()):
        kv.validate(doc, K8S_SCHEMA_VERSION, strict=True)
