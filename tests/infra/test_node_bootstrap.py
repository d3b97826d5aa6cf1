"""A replacement spot node bootstraps itself, and rotating a secret cannot break the cluster.

Asserted on the Terraform source (python-hcl2). The SSM document's script itself is exercised by
tests/deploy/test_bootstrap.py (it needs PyYAML, which this venv does not have).
"""

from __future__ import annotations

import pytest

from tests.support.terraform import TERRAFORM, Stack, expr, one


@pytest.fixture(scope="module")
def root() -> Stack:
    return Stack(TERRAFORM)


# --- item 2: the node bootstraps itself ---------------------------------------------------


def test_an_association_runs_the_bootstrap_document_on_every_new_node(root: Stack) -> None:
    association = root.resource("aws_ssm_association", "node_bootstrap")
    document = root.resource("aws_ssm_document", "node_bootstrap")
    assert association["name"] == expr("aws_ssm_document.node_bootstrap.name")
    # A new document version re-runs it on the node; "$DEFAULT" would not follow the content.
    assert association["document_version"] == expr("aws_ssm_document.node_bootstrap.latest_version")
    assert document["document_type"] == "Command"
    assert document["document_format"] == "YAML"
    assert "templates/node-bootstrap-document.yaml.tftpl" in document["content"]
    # Runs on each new target as it registers: no schedule, not only at cron intervals.
    assert "schedule_expression" not in association
    assert association.get("apply_only_at_cron_interval") is False
    assert association["max_concurrency"] == "1"


def test_the_association_targets_the_tag_every_instance_of_the_asg_carries(root: Stack) -> None:
    association = root.resource("aws_ssm_association", "node_bootstrap")
    target = one(association, "targets")
    assert target["key"] == "tag:Name"
    assert target["values"] == [expr("local.node_name_tag")]
    assert root.locals["node_name_tag"] == "${local.name}-k3s"
    # The launch template puts that tag on the instance itself (the ASG's own tags do not
    # propagate: propagate_at_launch is false), so every replacement matches at boot.
    template = root.resource("aws_launch_template", "node")
    specs = next(s for s in template["dynamic"] if "tag_specifications" in s)["tag_specifications"]
    assert "instance" in specs["for_each"]
    tags = specs["content"][0]["tags"]
    assert "Name = local.node_name_tag" in tags


def test_the_bundle_lives_in_the_manifests_bucket_the_node_may_read(root: Stack) -> None:
    assert root.locals["bootstrap_bundle_key"] == "bootstrap/pixtools-bootstrap.tar.gz"
    assert root.locals["bootstrap_bundle_uri"] == (
        "s3://${module.manifests_bucket.id}/${local.bootstrap_bundle_key}"
    )
    parameters = root.resource("aws_ssm_association", "node_bootstrap")["parameters"]
    assert parameters["BundleUri"] == expr("local.bootstrap_bundle_uri")
    assert parameters["Environment"] == expr("var.environment")
    # The transfer prefix expires after a day; the bundle must not.
    manifests = root.modules["manifests_bucket"]
    assert manifests["expiring_prefixes"] == [expr("local.ansible_transfer_prefix")]
    node_policy = root.data["aws_iam_policy_document"]["node"]["statement"]
    read = next(s for s in node_policy if s.get("sid") == "ReadManifests")
    assert "s3:GetObject" in read["actions"]
    assert "${module.manifests_bucket.arn}/*" in read["resources"]


def test_the_deploy_role_may_refresh_the_bundle_and_rerun_the_bootstrap(root: Stack) -> None:
    statements = root.data["aws_iam_policy_document"]["deploy"]["statement"]
    by_sid = {s["sid"]: s for s in statements}
    objects = by_sid["TransferAndManifestObjects"]
    assert "${module.manifests_bucket.arn}/${local.bootstrap_bundle_key}" in objects["resources"]
    rerun = by_sid["RerunNodeBootstrap"]
    assert rerun["actions"][0] == "ssm:StartAssociationsOnce"
    assert all(a.startswith("ssm:") and "Association" in a for a in rerun["actions"])
    assert rerun["resources"] == [expr("aws_ssm_association.node_bootstrap.arn")]


def test_outputs_name_the_bundle_and_the_association(root: Stack) -> None:
    assert root.outputs["bootstrap_bundle_uri"]["value"] == expr("local.bootstrap_bundle_uri")
    assert root.outputs["node_bootstrap_association_id"]["value"] == expr(
        "aws_ssm_association.node_bootstrap.association_id"
    )


# --- item 9: secret rotation ---------------------------------------------------------------


def test_terraform_cannot_rotate_the_k3s_token(root: Stack) -> None:
    # The token encrypts K3s' bootstrap data in k3s_state: a new value in SSM makes every new
    # server fail ("bootstrap data already found and encrypted with different token").
    # Rotation is `k3s token rotate` (ansible/rotate-k3s-token.yml), never a new parameter.
    versions = root.variables["secret_versions"]["type"]
    assert "k3s_token" not in versions
    token = root.resource("aws_ssm_parameter", "k3s_token")
    assert token["value_wo_version"] == 1
    # The value in SSM is what the rotation playbook writes after `k3s token rotate`: Terraform
    # creates it once and never writes it again.
    assert "value_wo" in token


def test_a_new_database_password_reruns_the_bootstrap_on_the_node(root: Stack) -> None:
    # The datastore endpoint in /etc/rancher/k3s/config.yaml embeds the password; the re-run of
    # site.yml rewrites it (and the runtime Secret) and restarts K3s.
    association = root.resource("aws_ssm_association", "node_bootstrap")
    assert association["parameters"]["SecretsVersion"] == expr(
        "tostring(var.secret_versions.database)"
    )
    depends = association["depends_on"]
    assert expr("aws_ssm_parameter.database_url") in depends
    assert expr("aws_db_instance.main") in depends
    db_url = root.resource("aws_ssm_parameter", "database_url")
    assert db_url["value_wo_version"] == expr("var.secret_versions.database")
    rds = root.resource("aws_db_instance", "main")
    assert rds["password_wo_version"] == expr("var.secret_versions.database")
