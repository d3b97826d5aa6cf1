"""The locked decisions of the cloud sprint plan, asserted on the Terraform source in terraform/.

Every .tf file is parsed with python-hcl2; nothing here needs AWS, a provider or a network.
The few tests that run the terraform binary (variable validation rules) skip when it is absent;
scripts/checks/terraform.sh always has it.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from tests.support.terraform import TERRAFORM, Stack, expr, one, parse

BOOTSTRAP = TERRAFORM / "bootstrap"
BUCKET_MODULE = TERRAFORM / "modules" / "private_bucket"
ENVIRONMENTS = ("dev", "prod")


def _tf_files() -> list[Path]:
    return sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)


def dynamic(body: dict[str, Any], block: str) -> dict[str, Any]:
    for entry in body.get("dynamic", []):
        if block in entry:
            return cast("dict[str, Any]", entry[block])
    raise AssertionError(f"no dynamic {block} block")


@pytest.fixture(scope="module")
def root() -> Stack:
    return Stack(TERRAFORM)


@pytest.fixture(scope="module")
def bootstrap() -> Stack:
    return Stack(BOOTSTRAP)


@pytest.fixture(scope="module")
def bucket_module() -> Stack:
    return Stack(BUCKET_MODULE)


@pytest.fixture(scope="module")
def all_stacks(root: Stack, bootstrap: Stack, bucket_module: Stack) -> list[Stack]:
    return [root, bootstrap, bucket_module]


def tfvars(environment: str) -> dict[str, Any]:
    return parse(TERRAFORM / "env" / f"{environment}.tfvars")


# --- every file parses; providers -------------------------------------------------------------


def test_the_three_module_directories_hold_every_tf_file() -> None:
    directories = {path.parent for path in _tf_files()}
    assert directories == {TERRAFORM, BOOTSTRAP, BUCKET_MODULE}


@pytest.mark.parametrize("path", _tf_files(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(path: Path) -> None:
    assert parse(path), f"{path} parsed to nothing"


def test_only_the_aws_provider_pinned_to_5_100(all_stacks: list[Stack]) -> None:
    for stack in all_stacks:
        (settings,) = stack.terraform
        assert settings["required_version"] == ">= 1.11"
        (providers,) = settings["required_providers"]
        assert providers == {"aws": {"source": "hashicorp/aws", "version": "~> 5.100"}}
        for kind in (stack.resources, stack.data, stack.ephemerals):
            foreign = [type_ for type_ in kind if not type_.startswith("aws_")]
            assert not foreign, (
                f"{stack.directory.name}: non-AWS types {foreign} (no random, tls, ...)"
            )


def test_root_uses_a_partial_s3_backend_and_bootstrap_local_state(
    root: Stack, bootstrap: Stack
) -> None:
    assert root.terraform[0]["backend"] == [{"s3": {}}]
    assert "backend" not in bootstrap.terraform[0]


# --- region and per-environment values --------------------------------------------------------


def test_region_is_us_east_1_everywhere(root: Stack, bootstrap: Stack) -> None:
    for stack in (root, bootstrap):
        assert stack.default("region") == "us-east-1"
        assert any("us-east-1" in condition for condition in stack.validation_conditions("region"))
        assert stack.providers["aws"]["region"] == expr("var.region")
    for environment in ENVIRONMENTS:
        assert tfvars(environment).get("region", "us-east-1") == "us-east-1"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_tfvars_set_only_declared_variables_and_name_their_environment(
    root: Stack, environment: str
) -> None:
    values = tfvars(environment)
    assert values["environment"] == environment
    assert set(values) <= set(root.variables), f"undeclared: {set(values) - set(root.variables)}"
    secret_like = [name for name in values if re.search("password|secret|token|key", name)]
    assert not secret_like, f"secrets never go in tfvars: {secret_like}"


@pytest.mark.parametrize(
    "variable",
    [
        "region",
        "vpc_cidr",
        "instance_type",
        "spot_fallback_instance_types",
        "log_retention_days",
        "budget_limit_usd",
    ],
)
def test_no_environment_overrides_a_locked_default(variable: str) -> None:
    for environment in ENVIRONMENTS:
        assert variable not in tfvars(environment), (
            f"{environment}.tfvars overrides locked {variable}"
        )


def test_each_environment_has_its_own_state_key() -> None:
    keys = {env: parse(TERRAFORM / "env" / f"{env}.s3.tfbackend") for env in ENVIRONMENTS}
    for environment, config in keys.items():
        assert set(config) == {"key"}, "per-environment backend files hold only the state key"
        assert f"/{environment}/" in config["key"]
    assert len({config["key"] for config in keys.values()}) == len(ENVIRONMENTS)


def test_backend_example_points_at_the_bootstrap_bucket_and_lock_table(bootstrap: Stack) -> None:
    example = parse(TERRAFORM / "backend.hcl.example")
    assert example["bucket"] == "pixtools-tfstate-<ACCOUNT_ID>-us-east-1"
    assert example["region"] == "us-east-1"
    assert example["dynamodb_table"] == bootstrap.locals["lock_table_name"] == "pixtools-tf-locks"
    assert example["encrypt"] is True
    assert "key" not in example, "the key is per environment (env/<env>.s3.tfbackend)"


# --- bootstrap: state bucket and lock table ---------------------------------------------------


def test_state_bucket_is_named_versioned_encrypted_private_and_tls_only(bootstrap: Stack) -> None:
    assert bootstrap.locals["state_bucket_name"] == (
        "pixtools-tfstate-${data.aws_caller_identity.current.account_id}-${data.aws_region.current.name}"
    )
    bucket = bootstrap.resource("aws_s3_bucket", "state")
    assert one(bucket, "lifecycle")["prevent_destroy"] is True
    versioning = bootstrap.resource("aws_s3_bucket_versioning", "state")
    assert one(versioning, "versioning_configuration")["status"] == "Enabled"
    sse = one(
        bootstrap.resource("aws_s3_bucket_server_side_encryption_configuration", "state"), "rule"
    )
    assert one(sse, "apply_server_side_encryption_by_default")["sse_algorithm"] == "aws:kms"
    _assert_public_access_blocked(bootstrap.resource("aws_s3_bucket_public_access_block", "state"))
    _assert_tls_only(bootstrap.data["aws_iam_policy_document"]["state_tls_only"])
    assert bootstrap.resource("aws_s3_bucket_policy", "state")["policy"] == expr(
        "data.aws_iam_policy_document.state_tls_only.json"
    )


def test_lock_table(bootstrap: Stack) -> None:
    table = bootstrap.resource("aws_dynamodb_table", "locks")
    assert table["name"] == expr("local.lock_table_name")
    assert table["hash_key"] == "LockID"
    assert one(table, "attribute") == {"name": "LockID", "type": "S"}
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert one(table, "server_side_encryption")["enabled"] is True
    assert one(table, "point_in_time_recovery")["enabled"] is True


# --- network ----------------------------------------------------------------------------------


def test_vpc_is_10_40_0_0_16(root: Stack) -> None:
    assert root.default("vpc_cidr") == "10.40.0.0/16"
    assert root.resource("aws_vpc", "main")["cidr_block"] == expr("var.vpc_cidr")


def test_two_public_and_two_private_subnets_in_two_zones(root: Stack) -> None:
    zones = root.default("availability_zones")
    assert len(zones) == len(set(zones)) == 2 and all(
        zone.startswith("us-east-1") for zone in zones
    )
    assert any(
        "length(var.availability_zones) == 2" in c
        for c in root.validation_conditions("availability_zones")
    )

    public = root.resource("aws_subnet", "public")
    private = root.resource("aws_subnet", "private")
    assert public["for_each"] == expr("local.public_subnet_cidrs")
    assert private["for_each"] == expr("local.private_subnet_cidrs")
    for subnet in (public, private):
        assert subnet["map_public_ip_on_launch"] is False
        assert subnet["vpc_id"] == expr("aws_vpc.main.id")

    # Evaluate the subnet CIDR expressions: /24 slices of the VPC, disjoint, public 0-1, private 10-11.
    vpc = ipaddress.ip_network(root.default("vpc_cidr"))
    slices = list(vpc.subnets(new_prefix=24))
    newbits = re.compile(r"cidrsubnet\(var\.vpc_cidr, 8, (\d+ \+ )?index\)")
    public_match = newbits.search(root.locals["public_subnet_cidrs"])
    private_match = newbits.search(root.locals["private_subnet_cidrs"])
    assert public_match and private_match
    public_offset = int((public_match.group(1) or "0").rstrip(" +"))
    private_offset = int((private_match.group(1) or "0").rstrip(" +"))
    public_cidrs = {slices[public_offset + i] for i in range(len(zones))}
    private_cidrs = {slices[private_offset + i] for i in range(len(zones))}
    assert len(public_cidrs) == len(private_cidrs) == 2 and not public_cidrs & private_cidrs
    for cidr_map in ("public_subnet_cidrs", "private_subnet_cidrs"):
        assert "for index, az in var.availability_zones" in root.locals[cidr_map]


def test_the_api_trusts_forwarded_headers_from_the_alb_subnets_and_pods_only(root: Stack) -> None:
    """#14.10: X-Forwarded-For is believed only from the ALB (its public subnets, evaluated
    from Terraform as above) and K3s's pod network (10.42.0.0/16, its default cluster CIDR)."""
    env = Path(__file__).resolve().parents[2] / "manifests/base/config/pixtools.env"
    values = dict(
        line.split("=", 1)
        for line in env.read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    trusted = {ipaddress.ip_network(n) for n in values["PIXTOOLS_TRUSTED_PROXIES"].split(",")}
    vpc = ipaddress.ip_network(root.default("vpc_cidr"))
    slices = list(vpc.subnets(new_prefix=24))
    public = {slices[i] for i in range(len(root.default("availability_zones")))}
    assert trusted == public | {ipaddress.ip_network("10.42.0.0/16")}
    assert "aws_subnet.public" in str(root.resource("aws_lb", "api")["subnets"])


def test_routes_igw_for_public_one_nat_for_private_and_s3_gateway_endpoint(root: Stack) -> None:
    assert root.resource("aws_route", "public_internet")["gateway_id"] == expr(
        "aws_internet_gateway.main.id"
    )
    assert root.resource("aws_route", "private_nat")["nat_gateway_id"] == expr(
        "aws_nat_gateway.main.id"
    )
    assert root.resource("aws_nat_gateway", "main")["subnet_id"].startswith("${aws_subnet.public[")
    assert root.resource("aws_route_table_association", "public")["for_each"] == expr(
        "aws_subnet.public"
    )
    assert root.resource("aws_route_table_association", "private")["for_each"] == expr(
        "aws_subnet.private"
    )
    endpoint = root.resource("aws_vpc_endpoint", "s3")
    assert endpoint["vpc_endpoint_type"] == "Gateway"
    assert endpoint["service_name"].endswith(".s3")
    assert endpoint["route_table_ids"] == [expr("aws_route_table.private.id")]


# --- security groups --------------------------------------------------------------------------


def _ingress_rules(stack: Stack) -> list[dict[str, Any]]:
    rules = list(stack.resources.get("aws_vpc_security_group_ingress_rule", {}).values())
    rules += [
        r
        for r in stack.resources.get("aws_security_group_rule", {}).values()
        if r.get("type") == "ingress"
    ]
    for group in stack.resources.get("aws_security_group", {}).values():
        rules += group.get("ingress", [])
    return rules


def test_no_ingress_from_anywhere_and_no_ssh(all_stacks: list[Stack]) -> None:
    open_blocks = {"0.0.0.0/0", "::/0"}
    for stack in all_stacks:
        for rule in _ingress_rules(stack):
            sources = [rule.get("cidr_ipv4"), rule.get("cidr_ipv6")]
            sources += rule.get("cidr_blocks", []) + rule.get("ipv6_cidr_blocks", [])
            assert not open_blocks & set(filter(None, sources)), f"ingress from anywhere: {rule}"
            ports = (rule.get("from_port"), rule.get("to_port"))
            low, high = ports
            if isinstance(low, int) and isinstance(high, int):
                assert not low <= 22 <= high, f"SSH ingress: {rule}"
            else:  # the NodePort, validated to 30000-32767
                assert ports == (expr("var.api_node_port"),) * 2, (
                    f"unexpected port expression: {rule}"
                )
    assert "key_name" not in Stack(TERRAFORM).resource("aws_launch_template", "node"), (
        "no SSH key pair"
    )


def test_alb_admits_only_the_allowlist_node_only_the_alb_rds_only_the_node(root: Stack) -> None:
    alb = root.resource("aws_vpc_security_group_ingress_rule", "alb_http_allowlist")
    assert alb["for_each"] == expr("toset(var.alb_ingress_cidrs)")
    assert alb["cidr_ipv4"] == expr("each.value")
    assert (alb["from_port"], alb["to_port"]) == (80, 80)

    node = root.resource("aws_vpc_security_group_ingress_rule", "node_from_alb")
    assert node["referenced_security_group_id"] == expr("aws_security_group.alb.id")
    assert node["from_port"] == node["to_port"] == expr("var.api_node_port")

    rds = root.resource("aws_vpc_security_group_ingress_rule", "rds_from_node")
    assert rds["referenced_security_group_id"] == expr("aws_security_group.node.id")
    assert (rds["from_port"], rds["to_port"]) == (5432, 5432)

    ingress = root.resources["aws_vpc_security_group_ingress_rule"]
    assert set(ingress) == {"alb_http_allowlist", "node_from_alb", "rds_from_node"}, (
        "no other way in"
    )


def test_allowlist_variable_rejects_open_blocks_and_an_empty_prod_list(root: Stack) -> None:
    variable = root.variables["alb_ingress_cidrs"]
    assert "default" not in variable, "each environment must state its allowlist"
    assert variable["type"] == expr("list(string)")
    conditions = root.validation_conditions("alb_ingress_cidrs")
    assert any('!endswith(cidr, "/0")' in c for c in conditions)
    assert any(
        'var.environment != "prod" || length(var.alb_ingress_cidrs) > 0' in c for c in conditions
    )
    for environment in ENVIRONMENTS:
        cidrs = tfvars(environment)["alb_ingress_cidrs"]
        assert cidrs and all(ipaddress.ip_network(c).prefixlen > 0 for c in cidrs)


# --- compute ----------------------------------------------------------------------------------


def test_launch_template_al2023_imdsv2_hop_2_encrypted_40gib_gp3(root: Stack) -> None:
    ami = root.data["aws_ssm_parameter"]["al2023_ami"]
    assert ami["name"] == "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    template = root.resource("aws_launch_template", "node")
    assert template["image_id"] == expr("data.aws_ssm_parameter.al2023_ami.insecure_value")
    metadata = one(template, "metadata_options")
    assert metadata["http_endpoint"] == "enabled"
    assert metadata["http_tokens"] == "required"
    assert metadata["http_put_response_hop_limit"] == 2
    disk = one(template, "block_device_mappings")
    assert disk["device_name"] == "/dev/xvda"
    ebs = one(disk, "ebs")
    assert (ebs["volume_size"], ebs["volume_type"], ebs["encrypted"]) == (40, "gp3", True)
    assert one(template, "iam_instance_profile")["arn"] == expr("aws_iam_instance_profile.node.arn")
    assert template["vpc_security_group_ids"] == [expr("aws_security_group.node.id")]


def test_node_carries_the_tags_the_ansible_inventory_selects_on(root: Stack) -> None:
    tags = dynamic(root.resource("aws_launch_template", "node"), "tag_specifications")
    assert "instance" in tags["for_each"]
    assert "Role = local.node_role_tag" in tags["content"][0]["tags"]
    assert "local.common_tags" in tags["content"][0]["tags"]
    assert "Environment = var.environment" in root.locals["common_tags"]
    assert root.locals["node_role_tag"] == "k3s-server"


def test_user_data_is_minimal_and_holds_no_secret(root: Stack) -> None:
    template = root.resource("aws_launch_template", "node")
    assert template["user_data"] == expr(
        'base64encode(templatefile("${path.module}/templates/user_data.sh.tftpl", {environment = var.environment}))'
    )
    script = (TERRAFORM / "templates" / "user_data.sh.tftpl").read_text(encoding="utf-8")
    commands = [
        line for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(commands) <= 5, "K3s is installed by Ansible, not user data"
    for forbidden in (
        "k3s",
        "curl",
        "ssm get-parameter",
        "password",
        "token",
        "secret",
        "database_url",
    ):
        assert all(forbidden not in line.lower() for line in commands), (
            f"user data mentions {forbidden!r}"
        )


def test_asg_is_one_spot_only_node_with_the_locked_types(root: Stack) -> None:
    asg = root.resource("aws_autoscaling_group", "node")
    assert (asg["min_size"], asg["max_size"], asg["desired_capacity"]) == (1, 1, 1)
    assert asg["capacity_rebalance"] is True
    assert asg["vpc_zone_identifier"] == "${[for subnet in aws_subnet.private : subnet.id]}"
    assert "GroupInServiceInstances" in asg["enabled_metrics"]
    policy = one(asg, "mixed_instances_policy")
    distribution = one(policy, "instances_distribution")
    assert distribution["on_demand_base_capacity"] == 0
    assert distribution["on_demand_percentage_above_base_capacity"] == 0
    assert distribution["spot_allocation_strategy"] == "capacity-optimized"
    overrides = dynamic(one(policy, "launch_template"), "override")
    assert overrides["for_each"] == expr(
        "concat([var.instance_type], var.spot_fallback_instance_types)"
    )
    assert root.default("instance_type") == "m7i-flex.large"
    assert root.default("spot_fallback_instance_types") == ["c7i-flex.large", "m6i.large"]
    assert "on_demand_allocation_strategy" not in distribution


# --- ALB and WAF ------------------------------------------------------------------------------


def test_alb_http_listener_and_instance_target_group_on_readyz(root: Stack) -> None:
    alb = root.resource("aws_lb", "api")
    assert alb["internal"] is False and alb["load_balancer_type"] == "application"
    assert alb["subnets"] == "${[for subnet in aws_subnet.public : subnet.id]}"
    assert alb["security_groups"] == [expr("aws_security_group.alb.id")]
    assert alb["drop_invalid_header_fields"] is True
    assert alb["enable_deletion_protection"] == expr("var.deletion_protection")

    group = root.resource("aws_lb_target_group", "api")
    assert group["target_type"] == "instance"
    assert group["port"] == expr("var.api_node_port")
    assert root.default("api_node_port") == 30080
    health = one(group, "health_check")
    assert health["path"] == "/readyz"
    assert health["port"] == "traffic-port"

    listener = root.resource("aws_lb_listener", "http")
    assert (listener["port"], listener["protocol"]) == (80, "HTTP")
    assert one(listener, "default_action")["target_group_arn"] == expr(
        "aws_lb_target_group.api.arn"
    )
    assert len(root.resources["aws_lb"]) == 1, "one ALB per environment"


def test_waf_is_optional_rate_based_and_on_only_in_prod(root: Stack) -> None:
    acl = root.resource("aws_wafv2_web_acl", "api")
    assert acl["count"] == expr("var.enable_waf ? 1 : 0")
    assert root.resource("aws_wafv2_web_acl_association", "api")["count"] == acl["count"]
    rate_rules = [r for r in acl["rule"] if "rate_based_statement" in one(r, "statement")]
    assert len(rate_rules) == 1
    rate = one(one(rate_rules[0], "statement"), "rate_based_statement")
    assert rate["limit"] == expr("var.waf_rate_limit") and rate["aggregate_key_type"] == "IP"
    assert "block" in one(rate_rules[0], "action")
    assert root.default("enable_waf") is False
    assert tfvars("dev")["enable_waf"] is False
    assert tfvars("prod")["enable_waf"] is True


# --- RDS --------------------------------------------------------------------------------------


def test_rds_postgres_16_t4g_micro_20gib_gp3_single_az_encrypted_private(root: Stack) -> None:
    db = root.resource("aws_db_instance", "main")
    assert db["engine"] == "postgres"
    assert str(db["engine_version"]).split(".")[0] == "16"
    assert db["instance_class"] == "db.t4g.micro"
    assert db["allocated_storage"] == 20 and db["storage_type"] == "gp3"
    assert "max_allocated_storage" not in db
    assert db["multi_az"] is False
    assert db["storage_encrypted"] is True
    assert db["publicly_accessible"] is False
    assert db["db_subnet_group_name"] == expr("aws_db_subnet_group.main.name")
    assert root.resource("aws_db_subnet_group", "main")["subnet_ids"] == (
        "${[for subnet in aws_subnet.private : subnet.id]}"
    )


def test_rds_forces_tls(root: Stack) -> None:
    group = root.resource("aws_db_parameter_group", "postgres16")
    assert group["family"] == "postgres16"
    parameters = {p["name"]: p["value"] for p in group["parameter"]}
    assert parameters["rds.force_ssl"] == "1"
    assert root.resource("aws_db_instance", "main")["parameter_group_name"] == expr(
        "aws_db_parameter_group.postgres16.name"
    )


def test_rds_backups_always_deletion_protection_and_final_snapshot_in_prod(root: Stack) -> None:
    db = root.resource("aws_db_instance", "main")
    assert db["backup_retention_period"] == expr("var.db_backup_retention_days")
    assert any(">= 1" in c for c in root.validation_conditions("db_backup_retention_days"))
    assert db["deletion_protection"] == expr("var.deletion_protection")
    assert db["skip_final_snapshot"] == expr("!var.deletion_protection")
    assert root.default("deletion_protection") is True
    assert tfvars("prod")["deletion_protection"] is True
    assert tfvars("dev")["deletion_protection"] is False


def test_database_password_is_generated_and_write_only(root: Stack) -> None:
    db = root.resource("aws_db_instance", "main")
    assert "password" not in db and "manage_master_user_password" not in db
    assert db["password_wo"] == expr(
        "ephemeral.aws_secretsmanager_random_password.database.random_password"
    )
    assert db["password_wo_version"] == expr("var.secret_versions.database")
    url = root.resource("aws_ssm_parameter", "database_url")
    assert (
        "ephemeral.aws_secretsmanager_random_password.database.random_password" in url["value_wo"]
    )
    # The app's SQLAlchemy/asyncpg URL; TLS is enforced by the server (rds.force_ssl), not a query
    # parameter that one of the app's two URL parsers would reject.
    assert url["value_wo"].startswith("postgresql+asyncpg://${var.db_username}:")
    assert url["value_wo"].endswith("/${var.db_name}") and "?" not in url["value_wo"]
    assert url["value_wo_version"] == db["password_wo_version"], "password and URL rotate together"


# --- S3 ---------------------------------------------------------------------------------------


def _assert_public_access_blocked(block: dict[str, Any]) -> None:
    for setting in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert block[setting] is True, setting


def _assert_tls_only(document: dict[str, Any]) -> None:
    (statement,) = document["statement"]
    assert statement["effect"] == "Deny" and statement["actions"] == ["s3:*"]
    condition = one(statement, "condition")
    assert (condition["test"], condition["variable"], condition["values"]) == (
        "Bool",
        "aws:SecureTransport",
        ["false"],
    )


def test_bucket_module_private_kms_encrypted_tls_only_with_prefix_expiry(
    bucket_module: Stack,
) -> None:
    _assert_public_access_blocked(
        bucket_module.resource("aws_s3_bucket_public_access_block", "this")
    )
    ownership = one(bucket_module.resource("aws_s3_bucket_ownership_controls", "this"), "rule")
    assert ownership["object_ownership"] == "BucketOwnerEnforced"
    sse = one(
        bucket_module.resource("aws_s3_bucket_server_side_encryption_configuration", "this"), "rule"
    )
    default = one(sse, "apply_server_side_encryption_by_default")
    assert default["sse_algorithm"] == "aws:kms" and default["kms_master_key_id"] == expr(
        "var.kms_key_arn"
    )
    _assert_tls_only(bucket_module.data["aws_iam_policy_document"]["tls_only"])
    lifecycle = bucket_module.resource("aws_s3_bucket_lifecycle_configuration", "this")
    expiring = dynamic(lifecycle, "rule")
    assert expiring["for_each"] == expr("toset(var.expiring_prefixes)")
    assert one(expiring["content"][0], "expiration")["days"] == expr("var.expiration_days")
    abort = one(lifecycle, "rule")
    assert one(abort, "abort_incomplete_multipart_upload")["days_after_initiation"] == 1
    assert "aws_s3_bucket_versioning" not in bucket_module.resources


def test_images_and_manifests_buckets(root: Stack) -> None:
    images = root.modules["images_bucket"]
    manifests = root.modules["manifests_bucket"]
    assert images["name"] == "${local.name}-images-${local.account_id}-${local.region}"
    assert manifests["name"] == "${local.name}-manifests-${local.account_id}-${local.region}"
    assert images["expiring_prefixes"] == ["raw/", "processed/", "archives/"]
    assert images["expiration_days"] == 1
    assert manifests["expiring_prefixes"] == [expr("local.ansible_transfer_prefix")]
    assert root.locals["ansible_transfer_prefix"] == "i-", (
        "community.aws.aws_ssm writes <instance-id>/<path>"
    )
    assert manifests["expiration_days"] == 1
    for bucket in (images, manifests):
        assert bucket["source"] == "./modules/private_bucket"
        assert bucket["kms_key_arn"] == expr("aws_kms_key.main.arn")
    assert "aws_s3_bucket" not in root.resources, (
        "every environment bucket goes through the private module"
    )


# --- ECR --------------------------------------------------------------------------------------


def test_ecr_repositories_immutable_scanned_and_pruned(root: Stack, bootstrap: Stack) -> None:
    names = {"pixtools-api", "pixtools-worker"}
    assert set(bootstrap.default("ecr_repository_names")) == names
    assert root.locals["ecr_repository_names"] == '${toset(["pixtools-api", "pixtools-worker"])}'
    repo = bootstrap.resource("aws_ecr_repository", "app")
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert one(repo, "image_scanning_configuration")["scan_on_push"] is True
    lifecycle = bootstrap.resource("aws_ecr_lifecycle_policy", "app")
    assert (
        "imageCountMoreThan" in lifecycle["policy"] and "var.ecr_keep_images" in lifecycle["policy"]
    )
    assert bootstrap.default("ecr_keep_images") >= 5


# --- IAM --------------------------------------------------------------------------------------

_READ_ONLY = re.compile(r"^[a-z0-9-]+:(Describe|Get|List)[A-Za-z]*$")


def _policy_documents(stacks: list[Stack]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{stack.directory.name}/{name}", document)
        for stack in stacks
        for name, document in stack.data.get("aws_iam_policy_document", {}).items()
    ]


def test_no_wildcard_resource_on_write_actions(all_stacks: list[Stack]) -> None:
    documents = _policy_documents(all_stacks)
    assert len(documents) >= 8
    for name, document in documents:
        for statement in document["statement"]:
            if statement.get("effect", "Allow") != "Allow" or "principals" in statement:
                continue  # Deny guards and trust policies
            actions = statement["actions"]
            assert all("*" not in action for action in actions), (
                f"{name}: wildcard action in {actions}"
            )
            resources = statement["resources"]
            wildcard = resources == ["*"] or (isinstance(resources, str) and '"*"' in resources)
            if wildcard:
                writes = [a for a in actions if not _READ_ONLY.match(a)]
                assert not writes, (
                    f"{name}/{statement.get('sid')}: Resource * on write actions {writes}"
                )


def test_only_deny_statements_name_every_principal(all_stacks: list[Stack]) -> None:
    for name, document in _policy_documents(all_stacks):
        for statement in document["statement"]:
            for principal in statement.get("principals", []):
                if principal["identifiers"] == ["*"]:
                    assert statement["effect"] == "Deny", f"{name}: Allow to every principal"


def test_deploy_role_trusts_only_this_repository_and_context(root: Stack) -> None:
    trust = root.data["aws_iam_policy_document"]["deploy_assume"]
    (statement,) = trust["statement"]
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    conditions = {c["variable"]: c for c in statement["condition"]}
    assert conditions["token.actions.githubusercontent.com:aud"]["values"] == ["sts.amazonaws.com"]
    subject = conditions["token.actions.githubusercontent.com:sub"]
    assert subject["test"] == "StringEquals", "no StringLike wildcards on the subject"
    assert subject["values"] == ["repo:${var.github_repository}:${var.github_deploy_context}"]
    assert root.default("github_repository") == "pixtools/pixtools"
    assert tfvars("dev")["github_deploy_context"] == "ref:refs/heads/main"
    assert tfvars("prod")["github_deploy_context"] == "environment:prod"
    assert "*" not in root.validation_conditions("github_deploy_context")[0]


def test_deploy_role_reaches_only_its_environments_instances_and_buckets(root: Stack) -> None:
    statements = {s["sid"]: s for s in root.data["aws_iam_policy_document"]["deploy"]["statement"]}
    on_instances = statements["CommandsAndSessionsOnThisEnvironmentsInstances"]
    assert set(on_instances["actions"]) >= {"ssm:SendCommand", "ssm:StartSession"}
    condition = one(on_instances, "condition")
    assert condition["variable"] == "ssm:resourceTag/Environment" and condition["values"] == [
        expr("var.environment")
    ]
    push = statements["EcrPushAndPull"]
    assert "ecr:PutImage" in push["actions"]
    assert push["resources"] == "${[for repo in data.aws_ecr_repository.app : repo.arn]}"
    transfer = statements["TransferAndManifestObjects"]
    assert all(r.startswith("${module.manifests_bucket.arn}/") for r in transfer["resources"])
    readable = {a for s in statements.values() for a in s["actions"]}
    assert not {"ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"} & readable, (
        "runtime secrets are read on the node, never by the CI runner"
    )


def test_node_role_is_scoped_to_its_environment(root: Stack) -> None:
    statements = {s["sid"]: s for s in root.data["aws_iam_policy_document"]["node"]["statement"]}
    parameters = statements["ReadEnvironmentParameters"]["resources"]
    assert all("parameter${local.ssm_prefix}" in r for r in parameters)
    assert root.locals["ssm_prefix"] == "/pixtools/${var.environment}"
    assert statements["ReadWriteImages"]["resources"] == ["${module.images_bucket.arn}/*"]
    assert "s3:PutObject" not in statements["ReadManifests"]["actions"]
    assert statements["LoadBalancerControllerRegistersApiTargets"]["resources"] == [
        expr("aws_lb_target_group.api.arn")
    ]
    assert statements["WriteAppLogs"]["resources"][0] == expr("aws_cloudwatch_log_group.app.arn")
    kms = one(statements["UseEnvironmentKeyThroughSsmAndS3"], "condition")
    assert kms["variable"] == "kms:ViaService"
    attachment = root.resource("aws_iam_role_policy_attachment", "node_ssm_core")
    assert attachment["policy_arn"].endswith(":iam::aws:policy/AmazonSSMManagedInstanceCore")


def test_github_oidc_provider_is_account_level(bootstrap: Stack, root: Stack) -> None:
    provider = bootstrap.resource("aws_iam_openid_connect_provider", "github")
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["client_id_list"] == ["sts.amazonaws.com"]
    assert root.data["aws_iam_openid_connect_provider"]["github"]["url"] == provider["url"]


# --- SSM --------------------------------------------------------------------------------------

_CONTRACT = {
    "database_url",
    "redis_url",
    "rabbitmq_url",
    "aws_s3_bucket",
    "webhook_cb_fail_threshold",
    "webhook_cb_reset_timeout",
}
_GENERATED = {"database_url", "rabbitmq_url", "rabbitmq_password", "webhook_secret", "k3s_token"}


def test_ssm_parameters_are_the_contract_plus_the_cluster_secrets(root: Stack) -> None:
    parameters = root.resources["aws_ssm_parameter"]
    plain = root.resource("aws_ssm_parameter", "runtime")
    assert plain["for_each"] == expr("local.runtime_parameters")
    assert plain["name"] == "${local.ssm_prefix}/${each.key}"
    names = set(root.locals["runtime_parameters"]) | (set(parameters) - {"runtime"})
    assert names == _CONTRACT | {
        "webhook_secret",
        "k3s_token",
        "rabbitmq_username",
        "rabbitmq_password",
    }
    for name, parameter in parameters.items():
        assert parameter["type"] == "SecureString", name
        assert parameter["key_id"] == expr("aws_kms_key.main.arn"), name
        if name != "runtime":
            assert parameter["name"] == "${local.ssm_prefix}/" + name


def test_generated_secrets_are_write_only(root: Stack) -> None:
    for name in _GENERATED:
        parameter = root.resource("aws_ssm_parameter", name)
        assert "value" not in parameter and "insecure_value" not in parameter, name
        assert "ephemeral.aws_secretsmanager_random_password." in parameter["value_wo"], name
        if name == "k3s_token":
            # Written once: rotation is `k3s token rotate` (tests/infra/test_node_bootstrap.py).
            assert parameter["value_wo_version"] == 1
        else:
            assert parameter["value_wo_version"].startswith("${var.secret_versions."), name
    for generator in root.ephemerals["aws_secretsmanager_random_password"].values():
        assert generator["password_length"] >= 32
        assert generator["exclude_punctuation"] is True, "URL-safe without escaping"


def test_in_cluster_service_urls(root: Stack) -> None:
    assert root.locals["redis_url"] == "redis://redis.pixtools.svc.cluster.local:6379/0"
    rabbitmq = root.resource("aws_ssm_parameter", "rabbitmq_url")
    assert rabbitmq["value_wo"] == (
        "amqp://${local.rabbitmq_username}:${ephemeral.aws_secretsmanager_random_password.rabbitmq.random_password}"
        "@rabbitmq.pixtools.svc.cluster.local:5672/pixtools"
    )
    assert root.locals["rabbitmq_username"] == "pixtools"
    password = root.resource("aws_ssm_parameter", "rabbitmq_password")
    assert password["value_wo"] == expr(
        "ephemeral.aws_secretsmanager_random_password.rabbitmq.random_password"
    )
    assert password["value_wo_version"] == rabbitmq["value_wo_version"], (
        "broker and URL rotate together"
    )


# --- observability and cost -------------------------------------------------------------------


def test_every_log_group_keeps_14_days_encrypted(root: Stack) -> None:
    assert root.default("log_retention_days") == 14
    groups = root.resources["aws_cloudwatch_log_group"]
    assert {"app", "flow_logs", "rds", "waf"} <= set(groups)
    for name, group in groups.items():
        assert group["retention_in_days"] == expr("var.log_retention_days"), name
        assert group["kms_key_id"] == expr("aws_kms_key.main.arn"), name


def _window_seconds(alarm: dict[str, Any]) -> int:
    if "period" in alarm:
        return int(alarm["period"]) * int(alarm["evaluation_periods"])
    periods = [one(q, "metric")["period"] for q in dynamic(alarm, "metric_query")["content"]]
    return int(periods[0]) * int(alarm["evaluation_periods"])


def test_minimum_alarm_set(root: Stack) -> None:
    alarms = root.resources["aws_cloudwatch_metric_alarm"]

    cpu = alarms["rds_cpu_high"]
    assert (cpu["namespace"], cpu["metric_name"], cpu["threshold"]) == (
        "AWS/RDS",
        "CPUUtilization",
        80,
    )
    assert cpu["comparison_operator"] == "GreaterThanThreshold" and _window_seconds(cpu) == 600

    unhealthy = alarms["api_unhealthy"]
    assert (unhealthy["namespace"], unhealthy["metric_name"]) == (
        "AWS/ApplicationELB",
        "HealthyHostCount",
    )
    assert unhealthy["threshold"] == 1 and unhealthy["comparison_operator"] == "LessThanThreshold"
    assert _window_seconds(unhealthy) == 300

    errors = alarms["alb_5xx_rate"]
    metrics = set(dynamic(errors, "metric_query")["for_each"].values())
    assert metrics == {"HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count", "RequestCount"}
    assert "/ requests" in one(errors, "metric_query")["expression"]
    assert errors["threshold"] == expr("var.alb_5xx_rate_threshold_percent")

    nodes = alarms["no_in_service_node"]
    assert (nodes["namespace"], nodes["metric_name"]) == (
        "AWS/AutoScaling",
        "GroupInServiceInstances",
    )
    assert nodes["threshold"] == 1 and nodes["treat_missing_data"] == "breaching"

    for name, alarm in alarms.items():
        assert alarm["alarm_actions"] == [expr("aws_sns_topic.alarms.arn")], name


def test_alarm_topic_optional_email_and_budget(root: Stack) -> None:
    assert root.resource("aws_sns_topic", "alarms")["kms_master_key_id"] == expr(
        "aws_kms_key.main.arn"
    )
    email = root.resource("aws_sns_topic_subscription", "alarm_email")
    assert (
        email["count"] == expr("var.alarm_email == null ? 0 : 1") and email["protocol"] == "email"
    )
    assert root.variables["alarm_email"]["default"] is None
    budget = root.resource("aws_budgets_budget", "monthly")
    assert root.default("budget_limit_usd") == 20
    assert "var.budget_limit_usd" in budget["limit_amount"]
    assert (budget["budget_type"], budget["time_unit"], budget["limit_unit"]) == (
        "COST",
        "MONTHLY",
        "USD",
    )
    assert one(budget, "cost_filter") == {
        "name": "TagKeyValue",
        "values": ['${format("user:Environment$%s", var.environment)}'],
    }
    assert all(
        n["subscriber_sns_topic_arns"] == [expr("aws_sns_topic.alarms.arn")]
        for n in budget["notification"]
    )


def test_outputs(root: Stack) -> None:
    required = {
        "alb_dns_name",
        "api_target_group_arn",
        "rds_endpoint",
        "ecr_repository_urls",
        "ssm_parameter_prefix",
        "images_bucket_name",
        "manifests_bucket_name",
        "asg_name",
        "deploy_role_arn",
    }
    assert required <= set(root.outputs)
    for name, output in root.outputs.items():
        assert output.get("description"), f"output {name} needs a description"


def test_every_variable_is_typed_and_described(all_stacks: list[Stack]) -> None:
    for stack in all_stacks:
        for name, variable in stack.variables.items():
            assert variable.get("type"), f"{stack.directory.name}: variable {name} has no type"
            assert variable.get("description"), (
                f"{stack.directory.name}: variable {name} has no description"
            )


# --- validation rules, run through terraform itself -------------------------------------------

_TERRAFORM_BIN = shutil.which("terraform")


@pytest.fixture(scope="module")
def variables_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The root module's variables.tf alone: `terraform plan` then evaluates just its validation rules."""
    assert _TERRAFORM_BIN
    workdir = tmp_path_factory.mktemp("variables_only")
    shutil.copy(TERRAFORM / "variables.tf", workdir / "variables.tf")
    subprocess.run(
        [_TERRAFORM_BIN, "init", "-input=false", "-no-color"],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    return workdir


def _plan(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert _TERRAFORM_BIN
    return subprocess.run(
        [
            _TERRAFORM_BIN,
            "plan",
            "-input=false",
            "-no-color",
            "-lock=false",
            "-refresh=false",
            *args,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.skipif(_TERRAFORM_BIN is None, reason="the terraform binary is not installed")
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_environment_values_pass_every_validation_rule(
    variables_only: Path, environment: str
) -> None:
    result = _plan(variables_only, f"-var-file={TERRAFORM / 'env' / f'{environment}.tfvars'}")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(_TERRAFORM_BIN is None, reason="the terraform binary is not installed")
@pytest.mark.parametrize(
    ("environment", "cidrs", "message"),
    [
        ("prod", "[]", "prod needs at least one allowlisted CIDR"),
        ("prod", '["0.0.0.0/0"]', "allowlist-only"),
        ("dev", '["0.0.0.0/0"]', "allowlist-only"),
        ("dev", '["not-a-cidr"]', "IPv4 CIDR"),
    ],
)
def test_allowlist_validation_rejects(
    variables_only: Path, environment: str, cidrs: str, message: str
) -> None:
    context = "environment:prod" if environment == "prod" else "ref:refs/heads/main"
    result = _plan(
        variables_only,
        f"-var=environment={environment}",
        f"-var=alb_ingress_cidrs={cidrs}",
        f"-var=github_deploy_context={context}",
    )
    assert result.returncode != 0
    assert message in " ".join((result.stdout + result.stderr).split())


@pytest.mark.skipif(_TERRAFORM_BIN is None, reason="the terraform binary is not installed")
def test_region_other_than_us_east_1_is_rejected(variables_only: Path) -> None:
    result = _plan(
        variables_only, f"-var-file={TERRAFORM / 'env' / 'dev.tfvars'}", "-var=region=eu-west-1"
    )
    assert result.returncode != 0
    assert "us-east-1" in result.stdout + result.stderr
