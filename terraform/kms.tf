# One customer-managed key per environment encrypts its SSM SecureStrings, S3 buckets, RDS
# storage, CloudWatch log groups and the alarm topic. IAM policies (iam_node.tf, iam_deploy.tf)
# grant its use per service; the key policy admits the account (so that IAM policies apply) and
# the AWS services that encrypt on our behalf without an IAM principal: CloudWatch Logs for this
# account's log groups, CloudWatch alarms and Budgets for the encrypted alarm topic.
#
# A key policy, not an identity policy: "Resource": "*" in it means "this key". It is written
# inline rather than as an aws_iam_policy_document so that identity-policy linters and
# tests/infra (no wildcard resource on write actions) only see identity policies.

resource "aws_kms_key" "main" {
  description             = "PixTools ${var.environment}: SSM parameters, S3, RDS, logs, alarms"
  enable_key_rotation     = true
  deletion_window_in_days = var.deletion_protection ? 30 : 7

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersKeyThroughIAM"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsThisAccountsLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
        Resource  = "*"
        Condition = {
          ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*" }
        }
      },
      {
        Sid       = "AlarmAndBudgetPublishersUseEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"] }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.main.key_id
}
