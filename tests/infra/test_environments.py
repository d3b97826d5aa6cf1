"""dev and prod share one AWS account: every name that must be unique carries the environment.

S3 bucket names are global (across every account), the other names below are unique per account
and region. A name without the environment makes the second environment's apply fail
(BucketAlreadyExists, EntityAlreadyExists, ...) and, worse, lets one environment's destroy reach
the other's resources. Parsed with python-hcl2 like tests/infra/test_terraform.py.
"""

from __future__ import annotations

import re

import pytest

from tests.support.terraform import TERRAFORM, Stack

# Attributes that name a resource in its account (or, for buckets, globally).
NAME_ATTRIBUTES = ("name", "name_prefix", "bucket", "identifier", "alarm_name", "association_name")
# Names scoped inside another resource of the environment (an inline policy inside its role).
SCOPED_INSIDE_PARENT = {"aws_iam_role_policy"}
# Attributes called "name" that refer to something else (an association's document).
NOT_A_NAME = {("aws_ssm_association", "name")}
# A name carries the environment when it is built from one of these.
ENVIRONMENT_REFERENCES = ("local.name", "var.environment", "local.ssm_prefix")


@pytest.fixture(scope="module")
def root() -> Stack:
    return Stack(TERRAFORM)


def _carries_environment(name: str) -> bool:
    return any(ref in name for ref in ENVIRONMENT_REFERENCES)


def _named(root: Stack) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for type_, named in root.resources.items():
        if type_ in SCOPED_INSIDE_PARENT:
            continue
        for name, body in named.items():
            for attribute in NAME_ATTRIBUTES:
                if (type_, attribute) in NOT_A_NAME:
                    continue
                value = body.get(attribute)
                if isinstance(value, str):
                    found.append((f"{type_}.{name}.{attribute}", value))
    for name, module in root.modules.items():
        if isinstance(module.get("name"), str):
            found.append((f"module.{name}.name", module["name"]))
    return found


def test_locals_name_is_built_from_the_environment(root: Stack) -> None:
    assert root.locals["name"] == "pixtools-${var.environment}"
    assert root.locals["ssm_prefix"] == "/pixtools/${var.environment}"


def test_every_account_or_globally_named_resource_carries_the_environment(root: Stack) -> None:
    named = _named(root)
    # The walk found the resources it is about (a rename of the attributes would empty it).
    assert {"module.images_bucket.name", "module.manifests_bucket.name"} <= {n for n, _ in named}
    assert len(named) > 20
    missing = [f"{where} = {value!r}" for where, value in named if not _carries_environment(value)]
    assert not missing, "names without the environment (dev and prod share an account):\n" + (
        "\n".join(missing)
    )


@pytest.mark.parametrize("purpose", ["images", "manifests"])
def test_bucket_names_differ_between_environments_and_fit_s3_rules(
    root: Stack, purpose: str
) -> None:
    template = root.modules[f"{purpose}_bucket"]["name"]
    rendered = {
        env: template.replace("${local.name}", f"pixtools-{env}")
        .replace("${local.account_id}", "123456789012")
        .replace("${local.region}", "us-east-1")
        for env in ("dev", "prod")
    }
    assert rendered["dev"] != rendered["prod"]
    for name in rendered.values():
        # S3: 3-63 characters, lower case, digits, dashes; no interpolation left over.
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", name), name
