# The role GitHub Actions assumes through OIDC to deploy this environment. Trusted only for
# repo:<github_repository>:<github_deploy_context>: the main branch for dev, the "prod" GitHub
# environment (required reviewers) for prod. A workflow job that declares a GitHub environment
# gets "environment:<name>" as its subject instead of the branch ref, so cd-dev's job must not
# declare one (or dev's github_deploy_context must name it).
#
# Allowed: push to the two ECR repositories; run commands and sessions over SSM on instances
# tagged with this environment only; use the manifests/transfer bucket; refresh the node bootstrap
# bundle and re-run its association. Runtime secrets are not
# readable here: the node reads them from SSM itself, so they never pass through a CI runner.

data "aws_iam_openid_connect_provider" "github" {
  url = "https://token.actions.githubusercontent.com"
}

data "aws_iam_policy_document" "deploy_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [data.aws_iam_openid_connect_provider.github.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${var.github_repository}:${var.github_deploy_context}"]
    }
  }
}

resource "aws_iam_role" "deploy" {
  name                 = "${local.name}-github-deploy"
  description          = "GitHub Actions deploy of PixTools ${var.environment} (OIDC)"
  assume_role_policy   = data.aws_iam_policy_document.deploy_assume.json
  max_session_duration = 3600
}

locals {
  # SSM Run Command and Session Manager documents the deploy may use: shell commands, and the
  # default session document that Ansible's aws_ssm connection starts.
  deploy_ssm_documents = [
    "arn:${local.partition}:ssm:${local.region}::document/AWS-RunShellScript",
    "arn:${local.partition}:ssm:${local.region}:${local.account_id}:document/SSM-SessionManagerRunShell",
  ]
}

data "aws_iam_policy_document" "deploy" {
  statement {
    # GetAuthorizationToken has no resource-level permissions: it only returns a registry login.
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "EcrPushAndPull"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [for repo in data.aws_ecr_repository.app : repo.arn]
  }

  statement {
    sid       = "CommandsAndSessionsOnThisEnvironmentsInstances"
    actions   = ["ssm:SendCommand", "ssm:StartSession", "ssm:GetConnectionStatus"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:instance/*"]

    condition {
      test     = "StringEquals"
      variable = "ssm:resourceTag/Environment"
      values   = [var.environment]
    }
  }

  statement {
    sid       = "CommandsAndSessionsWithApprovedDocuments"
    actions   = ["ssm:SendCommand", "ssm:StartSession"]
    resources = local.deploy_ssm_documents
  }

  statement {
    sid       = "EndOwnSessions"
    actions   = ["ssm:TerminateSession", "ssm:ResumeSession"]
    resources = ["arn:${local.partition}:ssm:${local.region}:${local.account_id}:session/*"]

    condition {
      test     = "StringLike"
      variable = "ssm:resourceTag/aws:ssmmessages:session-id"
      values   = ["$${aws:userid}*"]
    }
  }

  statement {
    # Read-only inventory and command status; these calls take no resource ARNs.
    sid = "InventoryAndCommandStatus"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "ec2:DescribeInstances",
      "ec2:DescribeTags",
      "ssm:DescribeInstanceInformation",
      "ssm:DescribeSessions",
      "ssm:GetCommandInvocation",
      "ssm:ListAssociations",
      "ssm:ListCommandInvocations",
      "ssm:ListCommands",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "TransferBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [module.manifests_bucket.arn]
  }

  statement {
    sid     = "TransferAndManifestObjects"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [
      "${module.manifests_bucket.arn}/${local.ansible_transfer_prefix}*",
      "${module.manifests_bucket.arn}/${local.manifests_prefix}*",
      # scripts/deploy/bundle.sh keeps the bundle new nodes bootstrap from in step with the deploy.
      "${module.manifests_bucket.arn}/${local.bootstrap_bundle_key}",
    ]
  }

  statement {
    # Re-run the node bootstrap on demand and follow its run (scripts/deploy/bundle.sh run).
    sid = "RerunNodeBootstrap"
    actions = [
      "ssm:StartAssociationsOnce",
      "ssm:DescribeAssociationExecutions",
      "ssm:DescribeAssociationExecutionTargets",
    ]
    resources = [aws_ssm_association.node_bootstrap.arn]
  }

  statement {
    sid       = "UseEnvironmentKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "deploy" {
  name   = "pixtools-deploy"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}
