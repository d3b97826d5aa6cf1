"""The repo's Prometheus rules and Alertmanager routing tree, as the test tools take them.

``promtool`` and Prometheus read plain rule files (``groups:``); the cluster reads them from
the PrometheusRule object. This module extracts the one from the other, so the tests run
exactly the expressions that ship. The Alertmanager configuration is the Ansible template
rendered with Jinja2, the way the monitoring role renders it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jinja2
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "manifests" / "components" / "monitoring"
RULE_FILE = MONITORING / "prometheusrule.yaml"
AM_TEMPLATE = ROOT / "ansible" / "roles" / "monitoring" / "templates" / "alertmanager.yaml.j2"
TOPIC = "arn:aws:sns:us-east-1:123456789012:pixtools-dev-alarms"


def rule_groups() -> list[dict[str, Any]]:
    """The PrometheusRule's ``spec.groups``."""
    doc = yaml.safe_load(RULE_FILE.read_text())
    assert doc["kind"] == "PrometheusRule"
    groups: list[dict[str, Any]] = doc["spec"]["groups"]
    return groups


def rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def write_rules(
    path: Path, *, for_overrides: dict[str, str] | None = None, interval: str = ""
) -> Path:
    """Write the groups as a Prometheus rule file; optionally shorten some alerts' ``for``
    and set every group's evaluation interval (the live test's copy only)."""
    groups = copy.deepcopy(rule_groups())
    for group in groups:
        if interval:
            group["interval"] = interval
        for rule in group["rules"]:
            if for_overrides and rule.get("alert") in for_overrides:
                rule["for"] = for_overrides[rule["alert"]]
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def alertmanager_config(topic_arn: str = TOPIC, region: str = "us-east-1") -> dict[str, Any]:
    """The routing tree as the monitoring role renders it."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # YAML, not HTML
    text = env.from_string(AM_TEMPLATE.read_text()).render(
        monitoring_alertmanager_sns_topic_arn=topic_arn, aws_region=region
    )
    config: dict[str, Any] = yaml.safe_load(text)
    return config
