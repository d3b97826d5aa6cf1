# The repositories are account-wide and created by bootstrap/ (ecr.tf there): dev builds an image
# once and prod deploys the same digest. This environment only looks them up for its IAM policies
# and outputs.

locals {
  ecr_repository_names = toset(["pixtools-api", "pixtools-worker"])
}

data "aws_ecr_repository" "app" {
  for_each = local.ecr_repository_names

  name = each.value
}
