# Two private buckets per environment (modules/private_bucket: no public access, SSE-KMS with the
# environment's key, TLS-only policy, prefix expiry, incomplete uploads aborted), unversioned:
# - images:    the app's sources and outputs; raw/, processed/ and archives/ expire after 1 day.
# - manifests: bootstrap manifests, and the transfer bucket of Ansible's community.aws.aws_ssm
#              connection. Files in transit may hold secrets, so no versioning (a deleted copy
#              is really gone) and transfers expire after 1 day. That plugin writes to
#              "<instance-id>/<path>" and deletes after each copy, so the transfer prefix is "i-".
# Named pixtools-<env>-<purpose>-<account>-<region>: bucket names are global, and dev and prod may
# share one account (docs/infrastructure.md, "Naming").

locals {
  ansible_transfer_prefix = "i-"
  manifests_prefix        = "manifests/"
}

module "images_bucket" {
  source = "./modules/private_bucket"

  name              = "${local.name}-images-${local.account_id}-${local.region}"
  kms_key_arn       = aws_kms_key.main.arn
  force_destroy     = !var.deletion_protection
  expiring_prefixes = ["raw/", "processed/", "archives/"]
  expiration_days   = 1
}

module "manifests_bucket" {
  source = "./modules/private_bucket"

  name              = "${local.name}-manifests-${local.account_id}-${local.region}"
  kms_key_arn       = aws_kms_key.main.arn
  force_destroy     = !var.deletion_protection
  expiring_prefixes = [local.ansible_transfer_prefix]
  expiration_days   = 1
}
