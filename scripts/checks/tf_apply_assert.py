"""Assertions of scripts/checks/tf-apply.sh on Terraform applied against moto.

The checks read what the provider stored after apply (`terraform show -json`), i.e. what moto
answered, not what the .tf files say: the sprint plan's locked decisions (instance types and spot
distribution, root volume, IMDSv2, RDS, bucket lifecycle, encryption and public access block, log
retention, SSM parameter names and types, the GitHub OIDC subject), that the state file holds none
of the generated secrets (read back from moto's SSM), that the second plan's remaining changes are
all explained, that the only resource left out of the apply is the one moto cannot serve, and
after destroy that nothing is left behind.

The check functions are pure (dicts in, a list of failure messages out) so that
tests/infra/test_tf_apply_asserts.py proves each one fails on a broken decision; only the
command line talks to moto (boto3, imported there).

    tf_apply_assert.py bootstrap --state S.json --plan P.json
    tf_apply_assert.py environment --env dev --endpoint URL --state S.json --state-file S.tfstate \
        --full-plan P1.json --plan P2.json
    tf_apply_assert.py destroyed --endpoint URL --state-file A.tfstate [--state-file B.tfstate ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

Resource = dict[str, Any]

PRIMARY_INSTANCE_TYPE = "m7i-flex.large"
FALLBACK_INSTANCE_TYPES = ["c7i-flex.large", "m6i.large"]
EXPIRING_PREFIXES = {"raw/", "processed/", "archives/"}
LOG_RETENTION_DAYS = 14
# Every parameter under /pixtools/<env>/ (docs/infrastructure.md's table): the app's runtime
# settings, the RabbitMQ credentials and the K3s token. No more, no fewer.
SSM_PARAMETER_NAMES = frozenset(
    {
        "database_url",
        "redis_url",
        "rabbitmq_url",
        "rabbitmq_username",
        "rabbitmq_password",
        "aws_s3_bucket",
        "webhook_secret",
        "webhook_cb_fail_threshold",
        "webhook_cb_reset_timeout",
        "k3s_token",
    }
)
GITHUB_REPOSITORY = "pixtools/pixtools"
DEPLOY_CONTEXT = {"dev": "ref:refs/heads/main", "prod": "environment:prod"}
GITHUB_OIDC_URL = "token.actions.githubusercontent.com"

# Resources left out of the apply against moto, with the reason. Anything else missing from the
# applied state, compared with the plan of the whole configuration, is a failure.
EXCLUDED = {
    "aws_budgets_budget.monthly": "moto's Budgets hangs on DescribeSubscribersForNotification "
    "(called by the provider after CreateBudget); count = 0 in the scratch copy",
}

# SecureStrings whose values Terraform generates (write-only, never in state), and the length the
# configuration asks GetRandomPassword for. database_url and rabbitmq_url embed a password.
GENERATED_PARAMETERS = {
    "database_url": 40,
    "rabbitmq_url": 32,
    "rabbitmq_password": 32,
    "webhook_secret": 64,
    "k3s_token": 64,
}


@dataclass(frozen=True)
class KnownDiff:
    """A change the second plan may still show, and why it is not a bug of the configuration."""

    address: str  # regular expression, full match
    attributes: frozenset[str]  # the only attributes it may change ("*" for a whole create/replace)
    reason: str


# Changes the second plan still shows after an apply against moto, each checked against moto 5.2
# with boto3: moto stores or answers these differently from AWS, the configuration is right.
# Anything else a second plan shows is a failure.
_SG_RULES = (
    r"aws_vpc_security_group_(ingress|egress)_rule\.(alb_to_node|node_from_alb|rds_from_node)"
)
KNOWN_DIFFS: tuple[KnownDiff, ...] = (
    KnownDiff(
        r"aws_launch_template\.node",
        frozenset({"tag_specifications", "default_version", "latest_version"}),
        "moto gap: DescribeLaunchTemplateVersions returns the template's own tags (default_tags,"
        " sent as a launch-template TagSpecification) inside the version data, so the provider"
        " sees an extra tag_specifications block and plans a new version",
    ),
    KnownDiff(
        r"aws_autoscaling_group\.node",
        frozenset({"mixed_instances_policy"}),
        "follows the launch template's new version (latest_version known after apply);"
        " nothing of the group itself changes",
    ),
    KnownDiff(
        r"aws_db_instance\.main",
        frozenset({"network_type"}),
        "moto gap: DescribeDBInstances has no NetworkType (AWS answers IPV4, as configured)",
    ),
    KnownDiff(
        r"aws_db_parameter_group\.postgres16",
        frozenset({"parameter"}),
        "moto gap: DescribeDBParameters returns no Source, so the provider finds no"
        " user-modified parameter although moto stored all three",
    ),
    KnownDiff(
        _SG_RULES,
        frozenset({"description"}),
        "moto gap: a rule that references a security group loses its Description"
        " (AuthorizeSecurityGroupIngress/Egress and DescribeSecurityGroupRules)",
    ),
)


# --- reading terraform show -json ---------------------------------------------------------------


def _module_resources(module: dict[str, Any]) -> Iterator[Resource]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _module_resources(child)


def managed_resources(state: dict[str, Any]) -> dict[str, Resource]:
    """Managed resources of a `terraform show -json` state, by address."""
    root = state.get("values", {}).get("root_module", {})
    return {r["address"]: r for r in _module_resources(root) if r.get("mode") == "managed"}


def _of_type(resources: dict[str, Resource], type_: str) -> list[Resource]:
    return [r for r in resources.values() if r["type"] == type_]


def _one(resources: dict[str, Resource], address: str, failures: list[str]) -> dict[str, Any]:
    if address not in resources:
        failures.append(f"{address}: not in the applied state")
        return {}
    values: dict[str, Any] = resources[address]["values"]
    return values


def _first(block: Any) -> dict[str, Any]:
    """The single element of a nested block list (a missing block reads as empty)."""
    if isinstance(block, list) and block:
        first: dict[str, Any] = block[0]
        return first
    return {}


def _expect(failures: list[str], what: str, actual: Any, expected: Any) -> None:
    if actual != expected:
        failures.append(f"{what}: {actual!r}, expected {expected!r}")


# --- the locked decisions -----------------------------------------------------------------------


def check_node(resources: dict[str, Resource]) -> list[str]:
    """Spot-only single node: types, distribution, size, 40 GiB gp3 encrypted root, IMDSv2."""
    failures: list[str] = []
    asg = _one(resources, "aws_autoscaling_group.node", failures)
    if asg:
        for key in ("min_size", "max_size", "desired_capacity"):
            _expect(failures, f"autoscaling group {key}", asg.get(key), 1)
        policy = _first(asg.get("mixed_instances_policy"))
        dist = _first(policy.get("instances_distribution"))
        _expect(failures, "on_demand_base_capacity", dist.get("on_demand_base_capacity"), 0)
        _expect(
            failures,
            "on_demand_percentage_above_base_capacity",
            dist.get("on_demand_percentage_above_base_capacity"),
            0,
        )
        overrides = _first(policy.get("launch_template")).get("override", [])
        _expect(
            failures,
            "spot instance types (primary, fallbacks in order)",
            [o.get("instance_type") for o in overrides],
            [PRIMARY_INSTANCE_TYPE, *FALLBACK_INSTANCE_TYPES],
        )
    template = _one(resources, "aws_launch_template.node", failures)
    if template:
        _expect(
            failures,
            "launch template instance_type",
            template.get("instance_type"),
            PRIMARY_INSTANCE_TYPE,
        )
        ebs = _first(_first(template.get("block_device_mappings")).get("ebs"))
        _expect(failures, "root volume size (GiB)", ebs.get("volume_size"), 40)
        _expect(failures, "root volume type", ebs.get("volume_type"), "gp3")
        _expect(failures, "root volume encrypted", ebs.get("encrypted"), "true")
        metadata = _first(template.get("metadata_options"))
        _expect(failures, "IMDS http_tokens (IMDSv2)", metadata.get("http_tokens"), "required")
        _expect(failures, "IMDS http_endpoint", metadata.get("http_endpoint"), "enabled")
    return failures


def check_database(resources: dict[str, Resource]) -> list[str]:
    """PostgreSQL 16 on db.t4g.micro, 20 GiB gp3, single-AZ, encrypted, private."""
    failures: list[str] = []
    db = _one(resources, "aws_db_instance.main", failures)
    if db:
        _expect(failures, "RDS engine", db.get("engine"), "postgres")
        version = str(db.get("engine_version_actual") or db.get("engine_version"))
        if version.split(".")[0] != "16":
            failures.append(f"RDS engine version: {version!r}, expected PostgreSQL 16")
        _expect(failures, "RDS instance class", db.get("instance_class"), "db.t4g.micro")
        _expect(failures, "RDS allocated storage (GiB)", db.get("allocated_storage"), 20)
        _expect(failures, "RDS storage type", db.get("storage_type"), "gp3")
        _expect(failures, "RDS multi_az", db.get("multi_az"), False)
        _expect(failures, "RDS storage_encrypted", db.get("storage_encrypted"), True)
        _expect(failures, "RDS publicly_accessible", db.get("publicly_accessible"), False)
        if db.get("password") or db.get("password_wo"):
            failures.append("RDS master password is stored in the state (expected write-only)")
    return failures


def _bucket_parts(resources: dict[str, Resource], module: str) -> dict[str, dict[str, Any]]:
    prefix = f"module.{module}." if module else ""
    return {
        r["type"]: r["values"]
        for address, r in resources.items()
        if address.startswith(prefix) and address.count(".") == prefix.count(".") + 1
    }


def _check_public_access_block(failures: list[str], label: str, block: dict[str, Any]) -> None:
    for flag in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        _expect(failures, f"{label} {flag}", block.get(flag), True)


def check_buckets(resources: dict[str, Resource], env: str) -> list[str]:
    """Every bucket: SSE-KMS with the environment's key, all public access blocked, owner-enforced.

    Buckets come from the bucket module (its encryption, public access block and ownership
    controls beside each); the images and manifests buckets must be there, and any other bucket in
    the state is checked the same way. The images bucket: raw/, processed/ and archives/ expire
    after 1 day.
    """
    failures: list[str] = []
    key = resources.get("aws_kms_key.main", {}).get("values", {}).get("arn")
    if not key:
        failures.append("aws_kms_key.main: not in the applied state")
    modules = ["images_bucket", "manifests_bucket"]
    for address, resource in sorted(resources.items()):
        if resource["type"] != "aws_s3_bucket":
            continue
        segments = address.split(".")
        if len(segments) == 4 and segments[0] == "module":
            if segments[1] not in modules:
                modules.append(segments[1])
        else:
            failures.append(f"{address}: a bucket outside a bucket module (its settings unchecked)")
    for module in modules:
        parts = _bucket_parts(resources, module)
        name = parts.get("aws_s3_bucket", {}).get("bucket", f"module.{module}")
        if "aws_s3_bucket" not in parts:
            failures.append(f"module.{module}: no bucket in the applied state")
            continue
        if f"-{env}-" not in f"-{name}-":
            failures.append(f"bucket {name}: the environment {env!r} is not in its name")
        sse = _first(
            parts.get("aws_s3_bucket_server_side_encryption_configuration", {}).get("rule")
        )
        default = _first(sse.get("apply_server_side_encryption_by_default"))
        _expect(failures, f"bucket {name} SSE algorithm", default.get("sse_algorithm"), "aws:kms")
        _expect(failures, f"bucket {name} SSE key", default.get("kms_master_key_id"), key)
        _check_public_access_block(
            failures, f"bucket {name}", parts.get("aws_s3_bucket_public_access_block", {})
        )
        ownership = _first(parts.get("aws_s3_bucket_ownership_controls", {}).get("rule"))
        _expect(
            failures,
            f"bucket {name} object ownership",
            ownership.get("object_ownership"),
            "BucketOwnerEnforced",
        )
        if module == "images_bucket":
            expiring = {}
            for rule in parts.get("aws_s3_bucket_lifecycle_configuration", {}).get("rule", []):
                prefix = _first(rule.get("filter")).get("prefix") or rule.get("prefix")
                days = _first(rule.get("expiration")).get("days")
                if rule.get("status") == "Enabled" and prefix and days:
                    expiring[prefix] = days
            _expect(
                failures,
                f"bucket {name} expiring prefixes (days)",
                {p: expiring.get(p) for p in sorted(EXPIRING_PREFIXES)},
                dict.fromkeys(sorted(EXPIRING_PREFIXES), 1),
            )
    return failures


def check_logs(resources: dict[str, Resource]) -> list[str]:
    """Every log group keeps its events 14 days."""
    failures: list[str] = []
    groups = _of_type(resources, "aws_cloudwatch_log_group")
    if not groups:
        failures.append("no CloudWatch log group in the applied state")
    for group in groups:
        values = group["values"]
        _expect(
            failures,
            f"log group {values.get('name')} retention (days)",
            values.get("retention_in_days"),
            LOG_RETENTION_DAYS,
        )
    return failures


def check_parameters(resources: dict[str, Resource], env: str) -> list[str]:
    """Exactly the expected parameters under /pixtools/<env>/, each a SecureString encrypted with
    the environment's key."""
    failures: list[str] = []
    parameters = {
        r["values"]["name"]: r["values"] for r in _of_type(resources, "aws_ssm_parameter")
    }
    key = resources.get("aws_kms_key.main", {}).get("values", {}).get("arn")
    for name in sorted(SSM_PARAMETER_NAMES):
        if f"/pixtools/{env}/{name}" not in parameters:
            failures.append(f"SSM parameter /pixtools/{env}/{name}: not in the applied state")
    for name, values in sorted(parameters.items()):
        if not name.startswith(f"/pixtools/{env}/"):
            failures.append(f"SSM parameter {name}: outside /pixtools/{env}/")
        elif name.removeprefix(f"/pixtools/{env}/") not in SSM_PARAMETER_NAMES:
            failures.append(f"SSM parameter {name}: not one of the expected parameters")
        _expect(failures, f"SSM parameter {name} type", values.get("type"), "SecureString")
        _expect(failures, f"SSM parameter {name} key", values.get("key_id"), key)
    return failures


def check_deploy_role(resources: dict[str, Resource], env: str) -> list[str]:
    """The deploy role trusts GitHub's OIDC provider for exactly this environment's subject."""
    failures: list[str] = []
    role = _one(resources, "aws_iam_role.deploy", failures)
    if not role:
        return failures
    policy = json.loads(role.get("assume_role_policy") or "{}")
    statements = policy.get("Statement", [])
    subjects, audiences, principals = [], [], []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        equals = statement.get("Condition", {}).get("StringEquals", {})
        subjects.append(equals.get(f"{GITHUB_OIDC_URL}:sub"))
        audiences.append(equals.get(f"{GITHUB_OIDC_URL}:aud"))
        principals.append(statement.get("Principal", {}).get("Federated", ""))
        if "StringLike" in statement.get("Condition", {}):
            failures.append("deploy role trust: a StringLike (wildcard) condition")
    _expect(
        failures,
        "deploy role OIDC subject",
        subjects,
        [f"repo:{GITHUB_REPOSITORY}:{DEPLOY_CONTEXT[env]}"],
    )
    _expect(failures, "deploy role OIDC audience", audiences, ["sts.amazonaws.com"])
    if not all(str(p).endswith(f":oidc-provider/{GITHUB_OIDC_URL}") for p in principals):
        failures.append(
            f"deploy role trust principal: {principals!r}, expected the GitHub OIDC provider"
        )
    return failures


def check_environment(state: dict[str, Any], env: str) -> list[str]:
    """All locked decisions of one environment's applied state."""
    resources = managed_resources(state)
    return [
        *check_node(resources),
        *check_database(resources),
        *check_buckets(resources, env),
        *check_logs(resources),
        *check_parameters(resources, env),
        *check_deploy_role(resources, env),
    ]


def check_bootstrap(state: dict[str, Any]) -> list[str]:
    """The account foundation: OIDC provider, private versioned state bucket, lock table."""
    failures: list[str] = []
    resources = managed_resources(state)
    oidc = _one(resources, "aws_iam_openid_connect_provider.github", failures)
    if oidc:
        _expect(
            failures,
            "OIDC provider url",
            str(oidc.get("url", "")).removeprefix("https://"),
            GITHUB_OIDC_URL,
        )
        _expect(
            failures, "OIDC provider client ids", oidc.get("client_id_list"), ["sts.amazonaws.com"]
        )
    sse = _first(
        _first(
            resources.get("aws_s3_bucket_server_side_encryption_configuration.state", {})
            .get("values", {})
            .get("rule")
        ).get("apply_server_side_encryption_by_default")
    )
    _expect(failures, "state bucket SSE algorithm", sse.get("sse_algorithm"), "aws:kms")
    _check_public_access_block(
        failures,
        "state bucket",
        resources.get("aws_s3_bucket_public_access_block.state", {}).get("values", {}),
    )
    versioning = _first(
        resources.get("aws_s3_bucket_versioning.state", {})
        .get("values", {})
        .get("versioning_configuration")
    )
    _expect(failures, "state bucket versioning", versioning.get("status"), "Enabled")
    table = _one(resources, "aws_dynamodb_table.locks", failures)
    if table:
        _expect(failures, "lock table hash key", table.get("hash_key"), "LockID")
    return failures


# --- exclusions, remaining diffs, secrets ---------------------------------------------------------


def check_exclusions(full_plan: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """The applied state holds exactly the planned resources minus EXCLUDED (each one planned)."""
    failures: list[str] = []
    planned = {
        c["address"]
        for c in full_plan.get("resource_changes", [])
        if c.get("mode") == "managed" and "create" in c["change"]["actions"]
    }
    applied = set(managed_resources(state))
    for address in sorted(set(EXCLUDED) - planned):
        failures.append(f"{address}: excluded but not in the plan of the whole configuration")
    for address in sorted(planned - applied - set(EXCLUDED)):
        failures.append(
            f"{address}: planned but not applied (only {sorted(EXCLUDED)} may be left out)"
        )
    for address in sorted(applied - planned):
        failures.append(f"{address}: applied but not in the plan of the whole configuration")
    return failures


def check_budget_plan(full_plan: dict[str, Any], env: str) -> list[str]:
    """The excluded budget as planned: 20 USD a month on this environment's tag, two alerts."""
    failures: list[str] = []
    changes = {c["address"]: c for c in full_plan.get("resource_changes", [])}
    budget = changes.get("aws_budgets_budget.monthly", {}).get("change", {}).get("after")
    if not budget:
        return ["aws_budgets_budget.monthly: not in the plan of the whole configuration"]
    _expect(
        failures,
        "budget limit",
        (budget.get("limit_amount"), budget.get("limit_unit"), budget.get("time_unit")),
        ("20.00", "USD", "MONTHLY"),
    )
    _expect(
        failures,
        "budget cost filter",
        [(f.get("name"), f.get("values")) for f in budget.get("cost_filter", [])],
        [("TagKeyValue", [f"user:Environment${env}"])],
    )
    _expect(
        failures,
        "budget alerts",
        sorted(
            (n.get("notification_type"), n.get("threshold")) for n in budget.get("notification", [])
        ),
        [("ACTUAL", 80), ("FORECASTED", 100)],
    )
    return failures


@dataclass(frozen=True)
class Diff:
    """One resource the second plan would still change."""

    address: str
    actions: tuple[str, ...]
    attributes: tuple[str, ...]
    reason: str | None


def _any_unknown(marks: Any) -> bool:
    """Whether an after_unknown value marks anything unknown (it mirrors the value's shape)."""
    if isinstance(marks, dict):
        return any(_any_unknown(v) for v in marks.values())
    if isinstance(marks, list):
        return any(_any_unknown(v) for v in marks)
    return marks is True


def _normal(value: Any) -> Any:
    """A value with null and "" made equal, as the plan renderer treats unset optional strings."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return "" if value is None else value


def remaining_diffs(plan: dict[str, Any], known: tuple[KnownDiff, ...] = KNOWN_DIFFS) -> list[Diff]:
    """Every change of a second plan, each with its reason from `known` (None: unexplained)."""
    diffs = []
    for change in plan.get("resource_changes", []):
        actions = tuple(change["change"]["actions"])
        if actions in (("no-op",), ("read",)):
            continue
        before = change["change"].get("before") or {}
        after = change["change"].get("after") or {}
        unknown = change["change"].get("after_unknown") or {}
        if actions == ("update",):
            attributes = tuple(
                sorted(
                    key
                    for key in set(before) | set(after)
                    if _any_unknown(unknown.get(key))
                    or _normal(before.get(key)) != _normal(after.get(key))
                )
            )
        else:
            attributes = ("*",)
        reason = next(
            (
                k.reason
                for k in known
                if re.fullmatch(k.address, change["address"]) and set(attributes) <= k.attributes
            ),
            None,
        )
        diffs.append(Diff(change["address"], actions, attributes, reason))
    return diffs


def report_diffs(label: str, plan: dict[str, Any]) -> list[str]:
    """Print the second plan's remaining diffs with their reasons; failures for unexplained ones."""
    diffs = remaining_diffs(plan)
    print(f"{label}: second plan: {len(diffs)} remaining change(s)")
    failures = []
    for diff in diffs:
        what = f"{diff.address} {'/'.join(diff.actions)} {','.join(diff.attributes)}"
        print(f"  {what}: {diff.reason or 'UNEXPLAINED'}")
        if diff.reason is None:
            failures.append(f"second plan: unexplained change {what}")
    return failures


def generated_secrets(values: dict[str, str]) -> dict[str, str]:
    """The generated secrets inside the SecureString values (by parameter name) moto returned."""
    secrets = {}
    for name, value in values.items():
        if name in ("database_url", "rabbitmq_url"):
            secrets[name] = urlsplit(value).password or ""
        else:
            secrets[name] = value
    return secrets


def check_secret_lengths(secrets: dict[str, str]) -> list[str]:
    """Each generated secret is there and as long as the configuration asked for."""
    return [
        f"generated secret in {name}: {len(secrets.get(name, ''))} characters, expected {length}"
        for name, length in GENERATED_PARAMETERS.items()
        if len(secrets.get(name, "")) != length
    ]


def check_no_secrets(texts: dict[str, str], secrets: dict[str, str]) -> list[str]:
    """None of the secrets appears in any of the texts (state file, show -json, plans)."""
    return [
        f"the generated secret of {name} appears in {where}"
        for name, secret in sorted(secrets.items())
        if secret
        for where, text in sorted(texts.items())
        if secret in text
    ]


# --- the command line (talks to moto) ----------------------------------------------------------


def _load(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def _client(service: str, endpoint: str) -> Any:
    import boto3  # only the command line needs it; the tests run the pure checks

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
    )


def _figure(line: str) -> None:
    """Record a figure for tf-apply.sh's closing summary (the file in TF_APPLY_SUMMARY, if set)."""
    summary = os.environ.get("TF_APPLY_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def _diff_figure(plan: dict[str, Any]) -> str:
    diffs = remaining_diffs(plan)
    if not diffs:
        return "second plan: no change"
    explained = sum(1 for d in diffs if d.reason)
    names = ", ".join(d.address.split(".", 1)[0].removeprefix("aws_") for d in diffs)
    return f"second plan: {len(diffs)} change(s), {explained} explained as moto gaps ({names})"


def _finish(label: str, failures: list[str]) -> int:
    if failures:
        print(f"\n*** {label}: {len(failures)} failed assertion(s):", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print(f"{label}: all assertions hold")
    return 0


def _bootstrap(args: argparse.Namespace) -> int:
    state = _load(args.state)
    print(f"bootstrap: {len(managed_resources(state))} resources applied")
    failures = check_bootstrap(state) + report_diffs("bootstrap", _load(args.plan))
    _figure(
        f"bootstrap: {len(managed_resources(state))} resources applied;"
        f" {_diff_figure(_load(args.plan))}"
    )
    return _finish("bootstrap", failures)


def _environment(args: argparse.Namespace) -> int:
    env = args.env
    state, full_plan, plan = _load(args.state), _load(args.full_plan), _load(args.plan)
    planned = sum(1 for c in full_plan.get("resource_changes", []) if c.get("mode") == "managed")
    print(
        f"{env}: {len(managed_resources(state))} resources applied, {planned} planned;"
        f" excluded: {', '.join(EXCLUDED)}"
    )
    failures = (
        check_environment(state, env)
        + check_exclusions(full_plan, state)
        + check_budget_plan(full_plan, env)
    )
    failures += report_diffs(env, plan)
    _figure(
        f"{env}: {len(managed_resources(state))} resources applied ({planned} planned,"
        f" {len(EXCLUDED)} excluded); {_diff_figure(plan)}"
    )

    ssm = _client("ssm", args.endpoint)
    values = {}
    for name in GENERATED_PARAMETERS:
        answer = ssm.get_parameter(Name=f"/pixtools/{env}/{name}", WithDecryption=True)
        _expect(
            failures,
            f"moto: /pixtools/{env}/{name} type",
            answer["Parameter"]["Type"],
            "SecureString",
        )
        values[name] = answer["Parameter"]["Value"]
    secrets = generated_secrets(values)
    failures += check_secret_lengths(secrets)
    texts = {
        "the state file": Path(args.state_file).read_text(),
        "terraform show -json": Path(args.state).read_text(),
        "the second plan": Path(args.plan).read_text(),
        "the first plan": Path(args.full_plan).read_text(),
    }
    failures += check_no_secrets(texts, secrets)
    print(
        f"{env}: {len(secrets)} generated secrets read back from moto's SSM;"
        " none in the state file or plans"
    )
    return _finish(env, failures)


def _destroyed(args: argparse.Namespace) -> int:
    failures = []
    for path in args.state_file:
        left = [
            r
            for r in json.loads(Path(path).read_text()).get("resources", [])
            if r.get("mode") == "managed"
        ]
        if left:
            failures.append(f"{path}: {len(left)} resources left in the state after destroy")
    s3, rds, ec2 = (_client(s, args.endpoint) for s in ("s3", "rds", "ec2"))
    iam, ssm, ecr = (_client(s, args.endpoint) for s in ("iam", "ssm", "ecr"))
    leftovers = {
        "S3 buckets": [b["Name"] for b in s3.list_buckets().get("Buckets", [])],
        "RDS instances": [
            d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]
        ],
        "VPCs": [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")],
        "IAM roles": [
            r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("pixtools")
        ],
        "SSM parameters": [
            p["Name"]
            for p in ssm.describe_parameters()["Parameters"]
            if p["Name"].startswith("/pixtools/")
        ],
        "ECR repositories": [
            r["repositoryName"] for r in ecr.describe_repositories()["repositories"]
        ],
        "SSM documents": [
            d["Name"]
            for d in ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])[
                "DocumentIdentifiers"
            ]
        ],
        "SSM associations": [a["AssociationId"] for a in ssm.list_associations()["Associations"]],
    }
    for kind, names in leftovers.items():
        if names:
            failures.append(f"left in moto after destroy: {kind} {names}")
    if not failures:
        line = (
            f"destroy: {len(args.state_file)} states empty; moto holds no bucket, RDS instance,"
            " VPC, role, parameter, document, association or repository of ours"
        )
        print(line)
        _figure(line)
    return _finish("destroy", failures)


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; exit status 1 if any assertion failed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    bootstrap = sub.add_parser("bootstrap")
    bootstrap.add_argument("--state", required=True)
    bootstrap.add_argument("--plan", required=True)
    environment = sub.add_parser("environment")
    environment.add_argument("--env", required=True, choices=sorted(DEPLOY_CONTEXT))
    environment.add_argument("--endpoint", required=True)
    environment.add_argument("--state", required=True)
    environment.add_argument("--state-file", required=True)
    environment.add_argument("--full-plan", required=True)
    environment.add_argument("--plan", required=True)
    destroyed = sub.add_parser("destroyed")
    destroyed.add_argument("--endpoint", required=True)
    destroyed.add_argument("--state-file", action="append", required=True)
    args = parser.parse_args(argv)
    handler = {"bootstrap": _bootstrap, "environment": _environment, "destroyed": _destroyed}[
        args.command
    ]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
