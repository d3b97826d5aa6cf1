# The per-environment stack: one file per concern (network.tf, alb.tf, compute.tf, rds.tf, s3.tf,
# iam_node.tf, iam_deploy.tf, ssm.tf, observability.tf, ...). Shared, account-level pieces (state
# bucket, lock table, ECR repositories, GitHub OIDC provider) come from bootstrap/.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  name       = "pixtools-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  # Every SSM parameter of the environment lives under this path (see ssm.tf).
  ssm_prefix = "/pixtools/${var.environment}"

  # The Ansible inventory (amazon.aws.aws_ec2) selects the K3s node on these two tags, and the
  # deploy role may only reach instances that carry this environment's tag.
  node_role_tag = "k3s-server"
  # The node's Name tag: unique to this environment, it is what the bootstrap association
  # (node_bootstrap.tf) targets.
  node_name_tag = "${local.name}-k3s"

  common_tags = merge(var.extra_tags, {
    Project     = "pixtools"
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}
