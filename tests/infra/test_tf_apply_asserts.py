"""The assertions of scripts/checks/tf-apply.sh, proven on a fixed applied state.

tf_apply_state_dev.json is `terraform show -json` of dev applied against moto by that script,
cut down to the resources and attributes the checks read. It passes every check; each mutation
below breaks one locked decision the way a wrong edit of terraform/ (or a provider default)
would, and the check must name it. Nothing here needs terraform, moto or a network.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).with_name("tf_apply_state_dev.json")


def _load_asserter() -> ModuleType:
    # scripts/checks is not a package: load the file itself, as tf-apply.sh runs it.
    path = REPO / "scripts" / "checks" / "tf_apply_assert.py"
    spec = importlib.util.spec_from_file_location("tf_apply_assert", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


A = _load_asserter()
State = dict[str, Any]


def _state() -> State:
    state: State = json.loads(FIXTURE.read_text())
    return state


def _values(state: State, address: str) -> dict[str, Any]:
    return A.managed_resources(state)[address]["values"]  # type: ignore[no-any-return]


def _images(state: State, type_: str) -> dict[str, Any]:
    return _values(state, f"module.images_bucket.{type_}.this")


def test_the_fixture_passes_every_check() -> None:
    assert A.check_environment(_state(), "dev") == []


def test_the_fixture_is_not_prod() -> None:
    # The OIDC subject and the bucket names are per environment.
    failures = A.check_environment(_state(), "prod")
    assert any("OIDC subject" in f for f in failures)
    assert any("'prod' is not in its name" in f for f in failures)


def _set(address: str, path: tuple[Any, ...], value: Any) -> Callable[[State], None]:
    def mutate(state: State) -> None:
        target: Any = _values(state, address)
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return mutate


def _drop(address: str) -> Callable[[State], None]:
    def drop(module: dict[str, Any]) -> None:
        module["resources"] = [r for r in module.get("resources", []) if r["address"] != address]
        for child in module.get("child_modules", []):
            drop(child)

    def mutate(state: State) -> None:
        drop(state["values"]["root_module"])

    return mutate


def _lifecycle_days(prefix: str, days: int) -> Callable[[State], None]:
    def mutate(state: State) -> None:
        for rule in _images(state, "aws_s3_bucket_lifecycle_configuration")["rule"]:
            if rule["filter"][0]["prefix"] == prefix:
                rule["expiration"][0]["days"] = days

    return mutate


def _drop_lifecycle_rule(prefix: str) -> Callable[[State], None]:
    def mutate(state: State) -> None:
        config = _images(state, "aws_s3_bucket_lifecycle_configuration")
        config["rule"] = [r for r in config["rule"] if r["filter"][0]["prefix"] != prefix]

    return mutate


def _parameter(name: str, key: str, value: Any) -> Callable[[State], None]:
    def mutate(state: State) -> None:
        for resource in A.managed_resources(state).values():
            if resource["type"] == "aws_ssm_parameter" and resource["values"]["name"] == name:
                resource["values"][key] = value

    return mutate


def _trust_subject(subject: str) -> Callable[[State], None]:
    def mutate(state: State) -> None:
        role = _values(state, "aws_iam_role.deploy")
        policy = json.loads(role["assume_role_policy"])
        policy["Statement"][0]["Condition"]["StringEquals"][
            "token.actions.githubusercontent.com:sub"
        ] = subject
        role["assume_role_policy"] = json.dumps(policy)

    return mutate


def _overrides(types: list[str]) -> Callable[[State], None]:
    def mutate(state: State) -> None:
        asg = _values(state, "aws_autoscaling_group.node")
        template = asg["mixed_instances_policy"][0]["launch_template"][0]
        template["override"] = [{"instance_type": t} for t in types]

    return mutate


ASG = "aws_autoscaling_group.node"
DIST = ("mixed_instances_policy", 0, "instances_distribution", 0)
LT = "aws_launch_template.node"
EBS = ("block_device_mappings", 0, "ebs", 0)
DB = "aws_db_instance.main"
SSE = ("rule", 0, "apply_server_side_encryption_by_default", 0)

MUTATIONS: dict[str, tuple[Callable[[State], None], str]] = {
    "an on-demand base of one": (
        _set(ASG, (*DIST, "on_demand_base_capacity"), 1),
        "on_demand_base",
    ),
    "half on-demand above base": (
        _set(ASG, (*DIST, "on_demand_percentage_above_base_capacity"), 50),
        "on_demand_percentage_above_base_capacity",
    ),
    "two nodes": (_set(ASG, ("max_size",), 2), "max_size"),
    "no node": (_set(ASG, ("desired_capacity",), 0), "desired_capacity"),
    "a fallback dropped": (_overrides(["m7i-flex.large", "c7i-flex.large"]), "spot instance types"),
    "fallbacks reordered": (
        _overrides(["m7i-flex.large", "m6i.large", "c7i-flex.large"]),
        "spot instance types",
    ),
    "another primary type": (_set(LT, ("instance_type",), "t3.large"), "instance_type"),
    "a 30 GiB root": (_set(LT, (*EBS, "volume_size"), 30), "root volume size"),
    "a gp2 root": (_set(LT, (*EBS, "volume_type"), "gp2"), "root volume type"),
    "an unencrypted root": (_set(LT, (*EBS, "encrypted"), "false"), "root volume encrypted"),
    "IMDSv1 allowed": (
        _set(LT, ("metadata_options", 0, "http_tokens"), "optional"),
        "http_tokens",
    ),
    "PostgreSQL 15": (_set(DB, ("engine_version_actual",), "15.7"), "engine version"),
    "MySQL": (_set(DB, ("engine",), "mysql"), "RDS engine"),
    "a bigger class": (_set(DB, ("instance_class",), "db.t4g.small"), "instance class"),
    "50 GiB of storage": (_set(DB, ("allocated_storage",), 50), "allocated storage"),
    "gp2 storage": (_set(DB, ("storage_type",), "gp2"), "storage type"),
    "Multi-AZ": (_set(DB, ("multi_az",), True), "multi_az"),
    "unencrypted storage": (_set(DB, ("storage_encrypted",), False), "storage_encrypted"),
    "a public database": (_set(DB, ("publicly_accessible",), True), "publicly_accessible"),
    "the password in state": (_set(DB, ("password",), "hunter2hunter2"), "password"),
    "raw/ kept 7 days": (_lifecycle_days("raw/", 7), "expiring prefixes"),
    "processed/ never expires": (_drop_lifecycle_rule("processed/"), "expiring prefixes"),
    "archives/ kept 30 days": (_lifecycle_days("archives/", 30), "expiring prefixes"),
    "images bucket on SSE-S3": (
        _set(
            "module.images_bucket.aws_s3_bucket_server_side_encryption_configuration.this",
            (*SSE, "sse_algorithm"),
            "AES256",
        ),
        "SSE algorithm",
    ),
    "manifests bucket on another key": (
        _set(
            "module.manifests_bucket.aws_s3_bucket_server_side_encryption_configuration.this",
            (*SSE, "kms_master_key_id"),
            "arn:aws:kms:us-east-1:123456789012:key/another",
        ),
        "SSE key",
    ),
    "public policies allowed": (
        _set(
            "module.images_bucket.aws_s3_bucket_public_access_block.this",
            ("block_public_policy",),
            False,
        ),
        "block_public_policy",
    ),
    "no public access block": (
        _drop("module.manifests_bucket.aws_s3_bucket_public_access_block.this"),
        "block_public_acls",
    ),
    "a log group kept 30 days": (
        _set("aws_cloudwatch_log_group.app", ("retention_in_days",), 30),
        "retention",
    ),
    "a log group kept forever": (
        _set("aws_cloudwatch_log_group.flow_logs", ("retention_in_days",), 0),
        "retention",
    ),
    "redis_url as a String": (_parameter("/pixtools/dev/redis_url", "type", "String"), "type"),
    "database_url renamed": (
        _parameter("/pixtools/dev/database_url", "name", "/pixtools/dev/db_url"),
        "/pixtools/dev/database_url",
    ),
    "webhook threshold under prod's path": (
        _parameter(
            "/pixtools/dev/webhook_cb_fail_threshold",
            "name",
            "/pixtools/prod/webhook_cb_fail_threshold",
        ),
        "outside /pixtools/dev/",
    ),
    "no K3s token parameter": (
        _drop("aws_ssm_parameter.k3s_token"),
        "/pixtools/dev/k3s_token: not in the applied state",
    ),
    "an unexpected parameter": (
        _parameter("/pixtools/dev/rabbitmq_username", "name", "/pixtools/dev/rabbitmq_user"),
        "/pixtools/dev/rabbitmq_user: not one of the expected parameters",
    ),
    "webhook_secret on the AWS-managed key": (
        _parameter("/pixtools/dev/webhook_secret", "key_id", "alias/aws/ssm"),
        "/pixtools/dev/webhook_secret key",
    ),
    "any branch may deploy": (_trust_subject("repo:pixtools/pixtools:*"), "OIDC subject"),
    "another repository may deploy": (
        _trust_subject("repo:someone/pixtools:ref:refs/heads/main"),
        "OIDC subject",
    ),
    "no deploy role": (_drop("aws_iam_role.deploy"), "aws_iam_role.deploy"),
    "no database": (_drop(DB), "aws_db_instance.main"),
}


def _extra_bucket(module: str, *, with_settings: bool) -> Callable[[State], None]:
    """Another bucket module: a copy of the manifests bucket's, with or without its settings."""

    def mutate(state: State) -> None:
        root = state["values"]["root_module"]
        source = next(c for c in root["child_modules"] if c["address"] == "module.manifests_bucket")
        copied = copy.deepcopy(source)
        copied["address"] = f"module.{module}"
        kept = []
        for resource in copied["resources"]:
            resource["address"] = resource["address"].replace(
                "module.manifests_bucket.", f"module.{module}.", 1
            )
            if resource["type"] == "aws_s3_bucket":
                resource["values"]["bucket"] = f"pixtools-dev-{module}"
            if with_settings or resource["type"] == "aws_s3_bucket":
                kept.append(resource)
        copied["resources"] = kept
        root["child_modules"].append(copied)

    return mutate


def test_another_bucket_is_checked_too() -> None:
    state = _state()
    _extra_bucket("exports_bucket", with_settings=True)(state)
    assert A.check_environment(state, "dev") == []
    bare = _state()
    _extra_bucket("exports_bucket", with_settings=False)(bare)
    failures = A.check_environment(bare, "dev")
    assert any("pixtools-dev-exports_bucket SSE algorithm" in f for f in failures), failures
    assert any("pixtools-dev-exports_bucket block_public_acls" in f for f in failures), failures
    loose = _state()
    loose["values"]["root_module"]["resources"].append(
        {
            "address": "aws_s3_bucket.loose",
            "mode": "managed",
            "type": "aws_s3_bucket",
            "name": "loose",
            "values": {"bucket": "pixtools-dev-loose"},
        }
    )
    assert "aws_s3_bucket.loose: a bucket outside a bucket module (its settings unchecked)" in (
        A.check_environment(loose, "dev")
    )


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_broken_decision_fails(name: str) -> None:
    mutate, expected = MUTATIONS[name]
    state = _state()
    mutate(state)
    failures = A.check_environment(state, "dev")
    assert failures, f"{name}: no check failed"
    assert any(expected in failure for failure in failures), failures


# --- exclusions, second-plan diffs, secrets ------------------------------------------------------


def _plan(*changes: tuple[str, list[str]]) -> dict[str, Any]:
    return {
        "resource_changes": [
            {
                "address": address,
                "mode": "managed",
                "change": {"actions": actions, "before": {"a": 1}, "after": {"a": 2}},
            }
            for address, actions in changes
        ]
    }


def _whole_plan(state: State, *extra: str) -> dict[str, Any]:
    addresses = [*A.managed_resources(state), *extra]
    return _plan(*((address, ["create"]) for address in addresses))


def test_only_the_budget_may_be_left_out() -> None:
    state = _state()
    assert A.check_exclusions(_whole_plan(state, "aws_budgets_budget.monthly"), state) == []
    # Another resource missing from the apply is a failure, not a silent exclusion.
    missing = A.check_exclusions(
        _whole_plan(state, "aws_budgets_budget.monthly", "aws_lb.extra"), state
    )
    assert missing == [
        "aws_lb.extra: planned but not applied (only ['aws_budgets_budget.monthly'] may be left out)"
    ]
    # An exclusion the configuration does not even plan is stale.
    assert A.check_exclusions(_whole_plan(state), state) == [
        "aws_budgets_budget.monthly: excluded but not in the plan of the whole configuration"
    ]


def test_the_excluded_budget_is_checked_on_the_plan() -> None:
    budget: dict[str, Any] = {
        "limit_amount": "20.00",
        "limit_unit": "USD",
        "time_unit": "MONTHLY",
        "cost_filter": [{"name": "TagKeyValue", "values": ["user:Environment$dev"]}],
        "notification": [
            {"notification_type": "FORECASTED", "threshold": 100},
            {"notification_type": "ACTUAL", "threshold": 80},
        ],
    }
    plan: dict[str, Any] = {
        "resource_changes": [{"address": "aws_budgets_budget.monthly", "change": {"after": budget}}]
    }
    assert A.check_budget_plan(plan, "dev") == []
    assert A.check_budget_plan(plan, "prod") != []  # dev's tag filter
    broken = copy.deepcopy(plan)
    broken["resource_changes"][0]["change"]["after"]["limit_amount"] = "200.00"
    assert any("budget limit" in f for f in A.check_budget_plan(broken, "dev"))


def test_remaining_diffs_are_explained_or_fail() -> None:
    plan = _plan(
        ("aws_lb.api", ["no-op"]),
        ("aws_vpc.main", ["update"]),
        ("aws_eip.nat", ["delete", "create"]),
    )
    known = (A.KnownDiff(r"aws_vpc\.main", frozenset({"a"}), "moto reports a the other way"),)
    diffs = A.remaining_diffs(plan, known)
    assert [(d.address, d.actions, d.attributes, d.reason) for d in diffs] == [
        ("aws_vpc.main", ("update",), ("a",), "moto reports a the other way"),
        ("aws_eip.nat", ("delete", "create"), ("*",), None),
    ]
    # A known diff covers only the attributes it names.
    other = A.KnownDiff(r"aws_vpc\.main", frozenset({"b"}), "another attribute")
    assert A.remaining_diffs(plan, (other,))[0].reason is None
    assert A.report_diffs("dev", _plan(("aws_lb.api", ["no-op"]))) == []
    assert A.report_diffs("dev", plan) != []


def test_generated_secrets_are_found_anywhere_in_the_state() -> None:
    values = {
        "database_url": "postgresql+asyncpg://pixtools:" + "d" * 40 + "@db.example:5432/pixtools",
        "rabbitmq_url": "amqp://pixtools:" + "r" * 32 + "@rabbitmq:5672/pixtools",
        "rabbitmq_password": "r" * 32,
        "webhook_secret": "w" * 64,
        "k3s_token": "k" * 64,
    }
    secrets = A.generated_secrets(values)
    assert secrets["database_url"] == "d" * 40
    assert A.check_secret_lengths(secrets) == []
    assert A.check_secret_lengths({**secrets, "k3s_token": ""}) == [
        "generated secret in k3s_token: 0 characters, expected 64"
    ]
    clean = FIXTURE.read_text()
    assert A.check_no_secrets({"the state file": clean}, secrets) == []
    leaked = clean.replace('"insecure_value": null', '"insecure_value": "' + "k" * 64 + '"', 1)
    assert leaked != clean
    assert A.check_no_secrets({"the state file": leaked}, secrets) == [
        "the generated secret of k3s_token appears in the state file"
    ]
