"""What the cluster's platform pieces (installed by the Ansible roles) need from the manifests.

The charts K3s' Helm controller installs (ansible/roles/*/templates/helmchart.yaml.j2 with the
roles' defaults) and the rendered overlays are checked together: the ALB's instance target is
eligible, nothing but what needs it reaches the instance metadata service, and the whole node's
requests fit the smallest locked instance type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.manifests.test_manifests import ENVS, Objects, named, render

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


# ---------------------------------------------------------------------------------------------
# The ALB gets a target
# ---------------------------------------------------------------------------------------------

# aws-load-balancer-controller v2.12 pkg/backend/endpoint_utils.go: the default node selector of
# instance targets. A TargetGroupBinding's spec.nodeSelector is ADDED to it (selector.Add), never
# substituted for it.
LBC_DEFAULT_SELECTOR = [
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
